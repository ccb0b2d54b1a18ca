//! (c) the identity cache off: every request is a Salesforce call.

use super::*;

/// (c) the cache off: every request is a Salesforce call.
pub(crate) async fn cache_off(b: &mut Bench) -> Result<(), Failure> {
    let (gateway, gw, _) =
        start_gateway(&b.args.binary, &b.emu, &[("IDENTITY_CACHE_TTL", "0")]).await?;
    reset_stats(&b.http, &b.emu).await?;
    let c = b.wrk(&format!("{gw}/api/me"), true).await?;
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    drop(gateway);
    b.row(
        "(c) `GET /api/me`, cache off (`IDENTITY_CACHE_TTL=0`)",
        &c,
        Some(calls),
    );
    b.notes.push(format!(
        "(c) is bounded by the emulator's {} ms round trip: about connections ÷ latency.",
        b.args.latency_ms
    ));
    Ok(())
}
