//! Calls to the emulator and the gateway: tokens, call counts, latency, a checked request.

use super::*;

pub(crate) async fn issue_tokens(
    http: &reqwest::Client,
    emu: &str,
    count: usize,
) -> Result<Vec<String>, Failure> {
    issue_tokens_as(http, emu, count, "opaque").await
}

/// `count` access tokens for Alice from the emulator, in `format` (`opaque` or `jwt`).
pub(crate) async fn issue_tokens_as(
    http: &reqwest::Client,
    emu: &str,
    count: usize,
    format: &str,
) -> Result<Vec<String>, Failure> {
    let grants: Value = http
        .post(format!("{emu}/__emulator/tokens"))
        .json(&serde_json::json!({"username": "alice@acme.example", "count": count, "format": format}))
        // Minting thousands of RSA-signed tokens takes a while on a loaded machine.
        .timeout(Duration::from_secs(300))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tokens: Vec<String> = grants
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g["access_token"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if tokens.len() != count {
        return Err(fail("the emulator issued the wrong number of tokens"));
    }
    Ok(tokens)
}

pub(crate) async fn reset_stats(http: &reqwest::Client, emu: &str) -> Result<(), Failure> {
    http.post(format!("{emu}/__emulator/reset-stats"))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

pub(crate) async fn set_latency(http: &reqwest::Client, emu: &str, ms: u64) -> Result<(), Failure> {
    http.post(format!("{emu}/__emulator/latency"))
        .json(&serde_json::json!({ "ms": ms }))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

pub(crate) async fn userinfo_calls(http: &reqwest::Client, emu: &str) -> Result<u64, Failure> {
    let stats: Value = http
        .get(format!("{emu}/__emulator/stats"))
        .send()
        .await?
        .json()
        .await?;
    stats["userinfo"]
        .as_u64()
        .ok_or_else(|| fail("no userinfo count in the emulator's stats"))
}

pub(crate) async fn get_me(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    instance: &str,
) -> Result<u16, reqwest::Error> {
    let r = http
        .get(url)
        .bearer_auth(token)
        .header("x-instance-url", instance)
        .send()
        .await?;
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    Ok(status)
}

pub(crate) async fn check_ok(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    instance: &str,
) -> Result<(), Failure> {
    match get_me(http, url, token, instance).await? {
        200 => Ok(()),
        s => Err(fail(format!("{url} answered {s} to a valid token"))),
    }
}
