//! (a) the ceiling and (b) a cached identity on sfgate's own protected route.

use super::*;

/// (a) the ceiling, (b) a cached identity on sfgate's own protected route.
pub(crate) async fn identity_cache(b: &mut Bench) -> Result<(), Failure> {
    let a = b.wrk(&format!("{}/oauth2/healthz", b.gw), false).await?;
    check_ok(
        &b.http,
        &format!("{}/oauth2/userinfo", b.gw),
        &b.token,
        &b.emu,
    )
    .await?;
    reset_stats(&b.http, &b.emu).await?;
    let me = b.wrk(&format!("{}/oauth2/userinfo", b.gw), true).await?;
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    b.row("(a) `GET /oauth2/healthz`, no auth", &a, None);
    b.row(
        "(b) `GET /oauth2/userinfo`, cached identity",
        &me,
        Some(calls),
    );
    b.ratio(
        "(b)/(a) throughput, cached `/oauth2/userinfo` vs. `/oauth2/healthz`",
        &me,
        &a,
        0.9,
    );
    let added = me.p99_ms - a.p99_ms;
    b.target(
        "added p99 latency on a cache hit",
        "< 1 ms",
        format!("{added:.2} ms"),
        Some(added < 1.0),
    );
    Ok(())
}
