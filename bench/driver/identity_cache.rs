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
    // Gateway mode's main gateway answers its own routes under `/oauth2/` only: the
    // `/api/me` handler is served there as `/oauth2/userinfo` (with two more JSON fields).
    b.ratio(
        Rank::CachedHit,
        "(b)/(a) throughput, cached `/oauth2/userinfo` (`/api/me`'s handler under gateway mode's prefix) vs. `/oauth2/healthz`",
        &me,
        &a,
        0.95,
    )
    .floor = Some("`/oauth2/healthz` on the same server (row (a)): the ratio is against it".into());
    let added = me.p99_ms - a.p99_ms;
    b.target(
        Rank::Supplementary,
        "added p99 latency on a cache hit",
        "< 1 ms",
        format!("{added:.2} ms"),
        Some(added < 1.0),
    );
    Ok(())
}
