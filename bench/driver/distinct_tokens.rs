//! (e) distinct tokens, each used twice.

use super::*;

/// (e) distinct tokens, each used twice.
pub(crate) async fn distinct_tokens(b: &mut Bench) -> Result<(), Failure> {
    let distinct = b.sizes.distinct;
    let tokens = issue_tokens(&b.http, &b.emu, distinct).await?;
    reset_stats(&b.http, &b.emu).await?;
    let ok = drive(&b.http, &b.gw, &b.emu, &tokens, 2, 64).await;
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    let requests = 2 * distinct as u64;
    let hit = 1.0 - calls as f64 / requests as f64;
    let met = calls == distinct as u64 && ok == requests;
    if !met {
        b.problems.push(format!(
            "(e) {ok}/{requests} answered 200 with {calls} calls (expected all, {distinct})"
        ));
    }
    b.target(
        Rank::Supplementary,
        format!("(e) calls for {distinct} distinct tokens used twice ({requests} requests)"),
        &format!("exactly {distinct}"),
        format!("{calls} (hit ratio {hit:.3})"),
        Some(met),
    );
    let rss = rss_kib(&b.gateway)?;
    b.memory.push((
        format!("RSS after (e) ({} identities)", distinct + 2),
        format!("{:.1} MiB", mib(rss)),
    ));
    Ok(())
}
