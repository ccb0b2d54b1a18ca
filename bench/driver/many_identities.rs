//! (g) many cached identities.

use super::*;

/// (g) many cached identities; the emulator answers at once so filling takes seconds.
pub(crate) async fn many_identities(b: &mut Bench) -> Result<(), Failure> {
    set_latency(&b.http, &b.emu, 0).await?;
    let mut filled = 0u64;
    let mut remaining = b.sizes.many.saturating_sub(b.sizes.distinct + 2);
    while remaining > 0 {
        let batch = remaining.min(10_000);
        let tokens = issue_tokens(&b.http, &b.emu, batch).await?;
        filled += drive(&b.http, &b.gw, &b.emu, &tokens, 1, 128).await;
        remaining -= batch;
    }
    set_latency(&b.http, &b.emu, b.args.latency_ms).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kib(&b.gateway)?;
    let cached = filled + b.sizes.distinct as u64 + 2;
    // The goal is in decimal megabytes: 100 MB = 95.37 MiB.
    b.target(
        Rank::ManyIdentities,
        format!("RSS with {cached} cached identities"),
        "< 100 MB (= 95.37 MiB)",
        mib_and_mb(rss),
        Some(megabytes(rss) < 100.0),
    );
    b.memory.push((
        format!("RSS with {cached} cached identities"),
        format!("{:.1} MiB", mib(rss)),
    ));
    Ok(())
}
