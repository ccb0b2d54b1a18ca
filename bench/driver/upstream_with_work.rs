//! An upstream that spends time per request: what the gateway adds when the app is not a no-op.

use super::*;

/// Milliseconds the `/work` route of the app upstream waits before answering.
pub(crate) const UPSTREAM_WORK_MS: u64 = 5;

/// An upstream that spends 5 ms per request, as an app that queries a database does: what
/// the gateway adds when the upstream is not a no-op.
pub(crate) async fn upstream_with_work(b: &mut Bench) -> Result<(), Failure> {
    let upstream = start_app_upstream().await?;
    let (gateway, gw, _) = start_gateway(
        &b.args.binary,
        &b.emu,
        &[("IDENTITY_CACHE_TTL", "600"), ("UPSTREAM_URL", &upstream)],
    )
    .await?;
    let direct = b.wrk(&format!("{upstream}/work"), false).await?;
    let proxied = b.wrk(&format!("{gw}/work"), true).await?;
    drop(gateway);
    b.check_no_failures("(w) proxied /work", &proxied);
    b.row(
        format!("(w) `GET /work` ({UPSTREAM_WORK_MS} ms of upstream work) directly"),
        &direct,
        None,
    );
    b.row(
        "(w) `GET /work` through sfgate (cached identity)",
        &proxied,
        None,
    );
    b.ratio(
        Rank::Supplementary,
        &format!("(w) proxied vs. direct with an upstream spending {UPSTREAM_WORK_MS} ms (supplementary)"),
        &proxied,
        &direct,
        0.8,
    );
    Ok(())
}
