//! Start to first 200: fresh gateways, each timed from its spawn (bench/driver/processes.rs,
//! [`start_gateway`]: the port tried every millisecond, one raw request once it accepts).

use super::*;

/// Fresh gateways started one after another; the report gives the median.
pub(crate) const STARTS: usize = 5;

/// The goal, in ms.
const GOAL_MS: f64 = 50.0;

/// Starts [`Sizes::starts`] gateways configured as the main one (gateway mode in front of the
/// static upstream), one at a time, each stopped before the next; reports the median time to
/// the first 200 with where it went (spawn, binding the port, the first answer).
pub(crate) async fn start_to_first_200(b: &mut Bench) -> Result<(), Failure> {
    let upstream = format!("http://127.0.0.1:{}", b.nginx.ports.upstream);
    let mut runs = Vec::with_capacity(b.sizes.starts);
    for _ in 0..b.sizes.starts {
        let (gateway, _, started) = start_gateway(
            &b.args.binary,
            &b.emu,
            &[("IDENTITY_CACHE_TTL", "600"), ("UPSTREAM_URL", &upstream)],
        )
        .await?;
        drop(gateway);
        runs.push(started);
        // Let the stopped one's exit finish before the next spawn.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    runs.sort_by(|x, y| x.first_200_ms.total_cmp(&y.first_200_ms));
    let median = runs[runs.len() / 2];
    let (min, max) = (runs[0].first_200_ms, runs[runs.len() - 1].first_200_ms);
    b.target(
        Rank::Start,
        format!(
            "start to first 200 (`/oauth2/healthz`, median of {} fresh starts)",
            runs.len()
        ),
        &format!("< {GOAL_MS} ms"),
        format!(
            "{:.1} ms (spawn returned {:.1} ms, port accepting {:.1} ms, CPU used {}; all {min:.1}–{max:.1} ms)",
            median.first_200_ms,
            median.spawned_ms,
            median.listening_ms,
            median
                .cpu_ms
                .map_or("-".to_string(), |cpu| format!("{cpu:.1} ms")),
        ),
        Some(median.first_200_ms < GOAL_MS),
    );
    b.memory.push((
        "start to first 200".into(),
        format!(
            "{:.1} ms (median of {}; {min:.1}–{max:.1} ms)",
            median.first_200_ms,
            runs.len()
        ),
    ));
    Ok(())
}
