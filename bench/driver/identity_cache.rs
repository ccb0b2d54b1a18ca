//! (a) the ceiling and (b) a cached identity on sfgate's own protected route, in alternated
//! rounds, beside the same two answers from the floor (bench/driver/jwt_floor.rs, seeded with
//! sfgate's own answer bodies): the floor of the (b)/(a) ratio on this machine.

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
    let body = |path: &'static str, token: Option<String>| {
        let (http, url) = (b.http.clone(), format!("{}{path}", b.gw));
        let emu = b.emu.clone();
        async move {
            let mut request = http.get(url);
            if let Some(token) = token {
                request = request.bearer_auth(token).header("x-instance-url", emu);
            }
            request.send().await?.error_for_status()?.text().await
        }
    };
    let seeded = jwt_floor::Seeded {
        healthz: Some(body("/oauth2/healthz", None).await?),
        known: vec![(
            b.emu.clone(),
            b.token.clone(),
            body("/oauth2/userinfo", Some(b.token.clone())).await?,
        )],
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let floor = jwt_floor::start(
        &b.http,
        &b.emu,
        CLIENT_ID,
        cores,
        jwt_floor::ANSWER_FLOOR_THREADS,
        seeded,
    )
    .await?;
    reset_stats(&b.http, &b.emu).await?;
    let rounds = if b.args.smoke { 1 } else { ROUNDS };
    // sfgate's (a) and (b), then the floor's, the order reversed every other round.
    let urls = [
        (format!("{}/oauth2/healthz", b.gw), false),
        (format!("{}/oauth2/userinfo", b.gw), true),
        (format!("{floor}/oauth2/healthz"), false),
        (format!("{floor}/oauth2/userinfo"), true),
    ];
    let mut loads: [Vec<Load>; 4] = Default::default();
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            vec![0, 1, 2, 3]
        } else {
            vec![3, 2, 1, 0]
        };
        for i in order {
            let (url, authenticated) = &urls[i];
            loads[i].push(b.wrk(url, *authenticated).await?);
        }
    }
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    let (a, me) = (median(&loads[0]), median(&loads[1]));
    let (floor_a, floor_b) = (median(&loads[2]), median(&loads[3]));
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
    b.row(
        format!("(floor) (a)'s answer from a bare thread-per-core server{of}"),
        &floor_a,
        None,
    );
    b.row(
        format!(
            "(floor) (b)'s answer from a bare thread-per-core server (hash, one map lookup){of}"
        ),
        &floor_b,
        None,
    );
    let floor_ratio = floor_b.rps / floor_a.rps.max(f64::MIN_POSITIVE);
    // Gateway mode's main gateway answers its own routes under `/oauth2/` only: the
    // `/api/me` handler is served there as `/oauth2/userinfo` (with two more JSON fields).
    b.ratio(
        Rank::CachedHit,
        "(b)/(a) throughput, cached `/oauth2/userinfo` (`/api/me`'s handler under gateway mode's prefix) vs. `/oauth2/healthz`",
        &me,
        &a,
        0.95,
    )
    .floor = Some(format!(
        "the same two answers (sfgate's bodies) from a bare thread-per-core server that hashes \
         the token and looks it up in a plain map (bench/driver/jwt_floor.rs): {floor_ratio:.2}; \
         sfgate's (a) {:.2} × the floor's, its (b) {:.2} × the floor's",
        a.rps / floor_a.rps.max(f64::MIN_POSITIVE),
        me.rps / floor_b.rps.max(f64::MIN_POSITIVE),
    ));
    let added = me.p99_ms - a.p99_ms;
    b.target(
        Rank::Supplementary,
        "added p99 latency on a cache hit",
        "< 1 ms",
        format!("{added:.2} ms"),
        Some(added < 1.0),
    )
    .floor = Some(format!(
        "the bare answers' floor, (b)'s p99 minus (a)'s: {:.2} ms ({:.2} against {:.2} ms)",
        floor_b.p99_ms - floor_a.p99_ms,
        floor_b.p99_ms,
        floor_a.p99_ms,
    ));
    Ok(())
}
