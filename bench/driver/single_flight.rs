//! (d) single-flight: a stampede of first requests with one fresh token.

use super::*;

/// (d) single-flight: a stampede of first requests with one fresh token.
pub(crate) async fn single_flight(b: &mut Bench) -> Result<(), Failure> {
    let stampede = b.sizes.stampede;
    let fresh = issue_tokens(&b.http, &b.emu, 1).await?.remove(0);
    reset_stats(&b.http, &b.emu).await?;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(stampede));
    let tasks: Vec<_> = (0..stampede)
        .map(|_| {
            let (http, url, token, instance, barrier) = (
                b.http.clone(),
                format!("{}/oauth2/userinfo", b.gw),
                fresh.clone(),
                b.emu.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                get_me(&http, &url, &token, &instance).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await, Ok(Ok(200))) {
            ok += 1;
        }
    }
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    let met = calls == 1 && ok == stampede;
    if !met {
        b.problems.push(format!(
            "(d) {ok}/{stampede} answered 200 with {calls} calls (expected all, 1)"
        ));
    }
    b.target(
        Rank::Supplementary,
        format!("(d) calls for {stampede} concurrent first requests"),
        "exactly 1",
        format!("{calls} ({ok} answered 200)"),
        Some(met),
    );
    Ok(())
}
