//! (a) the ceiling and (b) a cached identity on sfgate's own protected route, in alternated
//! rounds.

use super::gateway_vs_nginx::median;
use super::*;

/// Rounds of (a) and (b); each reported figure is the median over them. Single 10-second
/// rows of the two moved the ratio between 0.81 and 0.97 from one run of the same code to the
/// next on this machine.
const ROUNDS: usize = 3;

/// (a) the ceiling, (b) a cached identity on sfgate's own protected route, alternated (the
/// order swaps each round, so load from neighbours falls on both alike).
pub(crate) async fn identity_cache(b: &mut Bench) -> Result<(), Failure> {
    check_ok(
        &b.http,
        &format!("{}/oauth2/userinfo", b.gw),
        &b.token,
        &b.emu,
    )
    .await?;
    reset_stats(&b.http, &b.emu).await?;
    let rounds = if b.args.smoke { 1 } else { ROUNDS };
    let (mut ceiling, mut cached) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for second in [round % 2 == 1, round % 2 == 0] {
            if second {
                cached.push(b.wrk(&format!("{}/oauth2/userinfo", b.gw), true).await?);
            } else {
                ceiling.push(b.wrk(&format!("{}/oauth2/healthz", b.gw), false).await?);
            }
        }
    }
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    let (a, me) = (median(&ceiling), median(&cached));
    let of = if rounds > 1 {
        format!(", median of {rounds} alternated rounds")
    } else {
        String::new()
    };
    b.row(format!("(a) `GET /oauth2/healthz`, no auth{of}"), &a, None);
    b.row(
        format!("(b) `GET /oauth2/userinfo`, cached identity{of}"),
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
