//! The real `sfgate` binary, logging at `trace` in both formats, never writes a secret.
//!
//! The emulator runs as a separate `sfgate emulator` process so that only the gateway's own
//! output (including everything its dependencies log) is captured and searched.

use crate::common::{expect_status, free_port, get_accepting, location, urlencode, ACME, ALICE};
use crate::helpers::sfgate_process::*;
use reqwest::redirect::Policy;
use std::time::Duration;

/// The value of cookie `name` among a response's `Set-Cookie` headers.
fn cookie_value(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (n, v) = pair.split_once('=')?;
            (n == name && !v.is_empty()).then(|| v.to_string())
        })
}

/// Runs every flow that handles a secret; returns the secrets that went over the wire.
async fn exercise(base: &str, emulator: &str) -> Vec<String> {
    let mut secrets: Vec<String> =
        vec![CLIENT_SECRET.into(), SESSION_SECRET.into(), ALICE.1.into()];
    sfgate::crypto::install_tls_provider();
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    sfgate::crypto::install_tls_provider();
    let plain = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");

    // Browser login: authorize, the emulator's form, the callback.
    let start = browser
        .get(format!("{base}/oauth2/authorize"))
        .send()
        .await
        .expect("authorize");
    let start = expect_status(start, 302).await;
    secrets.extend(cookie_value(&start, "sfgate_login"));
    let to_salesforce = location(start.headers());
    let url = reqwest::Url::parse(&to_salesforce).expect("url");
    let mut form: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let state = form
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone())
        .expect("state");
    secrets.push(state);
    form.push(("username".into(), ALICE.0.into()));
    form.push(("password".into(), ALICE.1.into()));
    form.push(("action".into(), "allow".into()));
    let back = browser
        .post(format!("{emulator}/services/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .expect("emulator login");
    let back = expect_status(back, 302).await;
    let callback = location(back.headers());
    let code = reqwest::Url::parse(&callback)
        .expect("callback url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    secrets.push(code);
    let done = get_accepting(&browser, &callback, "application/json").await;
    let done = expect_status(done, 200).await;
    secrets.extend(cookie_value(&done, "sfgate_session"));
    let tokens: serde_json::Value = done.json().await.expect("tokens");
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let instance = tokens["instance_url"]
        .as_str()
        .expect("instance")
        .to_string();
    secrets.push(access.clone());
    secrets.push(refresh.clone());

    // The replayed callback fails and is logged as a failure.
    let replay = get_accepting(&browser, &callback, "application/json").await;
    assert!(replay.status().is_client_error());

    // Protected calls: session cookie, Bearer, the Node.js app's headers, a bad token.
    let me = browser
        .get(format!("{base}/api/me"))
        .send()
        .await
        .expect("me");
    expect_status(me, 200).await;
    let bearer = plain
        .get(format!("{base}/secured"))
        .bearer_auth(&access)
        .header("x-instance-url", &instance)
        .send()
        .await
        .expect("bearer");
    expect_status(bearer, 200).await;
    let legacy = plain
        .get(format!("{base}/secured"))
        .header("bearer", &access)
        .header("instanceurl", &instance)
        .send()
        .await
        .expect("legacy");
    expect_status(legacy, 200).await;
    let fake = format!("{ACME}!fake-token-never-logged-91d3");
    secrets.push(fake.clone());
    let bad = plain
        .get(format!("{base}/secured"))
        .bearer_auth(&fake)
        .header("x-instance-url", &instance)
        .send()
        .await
        .expect("bad");
    expect_status(bad, 401).await;

    // Refresh with a token in the body, then with the session cookie.
    let refreshed = plain
        .post(format!("{base}/oauth2/refresh"))
        .form(&[("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("refresh");
    let refreshed = expect_status(refreshed, 200).await;
    let body: serde_json::Value = refreshed.json().await.expect("json");
    secrets.push(
        body["access_token"]
            .as_str()
            .expect("new access")
            .to_string(),
    );
    let by_session = browser
        .post(format!("{base}/oauth2/refresh"))
        .send()
        .await
        .expect("refresh by session");
    let by_session = expect_status(by_session, 200).await;
    secrets.extend(cookie_value(&by_session, "sfgate_session"));
    let body: serde_json::Value = by_session.json().await.expect("json");
    assert!(
        body.get("access_token").is_none(),
        "a cookie-authenticated refresh answers without tokens"
    );

    // The password flow and a code exchange with an unknown code.
    let password = plain
        .post(format!("{base}/oauth2/password"))
        .form(&[("username", ALICE.0), ("password", ALICE.1)])
        .send()
        .await
        .expect("password");
    let password = expect_status(password, 200).await;
    let body: serde_json::Value = password.json().await.expect("json");
    secrets.push(body["access_token"].as_str().expect("access").to_string());
    let bogus_code = "bogus-authorization-code-5e2f";
    secrets.push(bogus_code.into());
    let token = plain
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("code", bogus_code),
            ("code_verifier", "verifier-secret-8a7b6c"),
        ])
        .send()
        .await
        .expect("token");
    expect_status(token, 400).await;
    secrets.push("verifier-secret-8a7b6c".into());

    // A JWT-based access token: checked locally, its user's profile fetched with it.
    let grants: serde_json::Value = plain
        .post(format!("{emulator}/__emulator/tokens"))
        .json(&serde_json::json!({"username": ALICE.0, "format": "jwt"}))
        .send()
        .await
        .expect("jwt")
        .json()
        .await
        .expect("json");
    let jwt = grants[0]["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let me = plain
        .get(format!("{base}/api/me"))
        .bearer_auth(&jwt)
        .header("x-instance-url", emulator)
        .send()
        .await
        .expect("me");
    expect_status(me, 200).await;
    secrets.extend(jwt.rsplit('.').next().map(str::to_string));
    secrets.push(jwt);

    // Logout revokes at Salesforce.
    let logout = browser
        .post(format!("{base}/oauth2/logout"))
        .send()
        .await
        .expect("logout");
    // 200 with the list of revoked tokens (a bare 204 before logout said what it revoked).
    expect_status(logout, 200).await;
    // An API logout that also hands in its refresh token (already revoked above: the failed
    // revocation is logged, the tokens are not).
    let api_logout = plain
        .post(format!("{base}/oauth2/logout"))
        .bearer_auth(&access)
        .header("x-instance-url", &instance)
        .form(&[("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("api logout");
    expect_status(api_logout, 200).await;
    secrets
}

/// Secrets and their telling parts: a classic token's org prefix is not secret, the rest is.
fn needles(secrets: &[String]) -> Vec<String> {
    let mut all = Vec::new();
    for s in secrets {
        assert!(s.len() >= 8, "a secret too short to search for: {s}");
        all.push(s.clone());
        if let Some((_, rest)) = s.split_once('!') {
            all.push(rest.to_string());
        }
        // Percent-encoded forms, as they would appear in a logged query or form body.
        let encoded: String = urlencode(s);
        if encoded != *s {
            all.push(encoded);
        }
    }
    all
}

fn run_and_capture(format: &str) -> (String, Vec<String>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The gateway must know its port before it starts (it is part of the redirect URI), so the
    // port is chosen here; when another process takes it first, try another one.
    for _ in 0..5 {
        let port = free_port();
        let redirect_uri = format!("http://127.0.0.1:{port}/oauth2/callback");
        let (emulator, emulator_url) = start_emulator(&redirect_uri);
        let mut gateway = start_gateway(port, &emulator_url, format);
        let base = format!("http://127.0.0.1:{port}");
        if !runtime.block_on(healthy(&base, &mut gateway)) {
            let output = gateway.stop();
            assert!(
                output.contains("is in use"),
                "gateway did not start:\n{output}"
            );
            continue;
        }
        let secrets = runtime.block_on(exercise(&base, &emulator_url));
        // Give the last log lines a moment to be written.
        std::thread::sleep(Duration::from_millis(300));
        let logs = gateway.stop();
        drop(emulator);
        return (logs, secrets);
    }
    panic!("the gateway found its port taken 5 times");
}

fn assert_no_secret(logs: &str, secrets: &[String]) {
    for needle in needles(secrets) {
        if let Some(at) = logs.find(&needle) {
            let line_start = logs[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
            let line_end = logs[at..].find('\n').map(|i| i + at).unwrap_or(logs.len());
            panic!(
                "a secret appears in the logs:\n{}",
                &logs[line_start..line_end]
            );
        }
    }
}

#[test]
fn json_logs_at_trace_level_are_one_object_per_line_and_hold_no_secret() {
    let (logs, secrets) = run_and_capture("json");
    assert!(logs.lines().count() > 50, "trace logging produced:\n{logs}");
    assert_no_secret(&logs, &secrets);

    let mut finished = Vec::new();
    let mut levels = std::collections::HashSet::new();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(value[field].is_string(), "{field} in {line}");
        }
        levels.insert(value["level"].as_str().unwrap_or_default().to_string());
        if value["message"] == "request finished" {
            finished.push(value);
        }
    }
    assert!(
        levels.contains("TRACE"),
        "RUST_LOG=trace took effect: {levels:?}"
    );
    assert!(finished.len() >= 10, "one line per request");
    for line in &finished {
        let span = &line["span"];
        assert!(
            span["request_id"].as_str().is_some_and(|s| s.len() == 36),
            "{line}"
        );
        assert!(span["method"].is_string(), "{line}");
        assert!(span["path"].is_string(), "{line}");
        assert!(line["status"].is_u64(), "{line}");
        // Two decimals at most: `0.07`, never `0.06669900000000001`.
        let latency = line["latency_ms"].to_string();
        assert!(
            latency.split_once('.').is_none_or(|(_, d)| d.len() <= 2),
            "{line}"
        );
    }
    let me = finished
        .iter()
        .find(|l| l["span"]["path"] == "/api/me")
        .expect("/api/me logged");
    assert_eq!(me["status"], 200);
    assert_eq!(me["span"]["org_id"].as_str().map(|o| &o[..15]), Some(ACME));
    assert!(me["span"]["user_id"].is_string(), "{me}");
    let callback = finished
        .iter()
        .find(|l| l["span"]["path"] == "/oauth2/callback" && l["status"] == 200)
        .expect("callback logged");
    assert!(callback["span"]["user_id"].is_string(), "{callback}");
}

#[test]
fn text_logs_at_trace_level_hold_no_secret() {
    let (logs, secrets) = run_and_capture("text");
    assert!(logs.lines().count() > 50, "trace logging produced:\n{logs}");
    assert!(logs.contains("TRACE"));
    assert!(logs.contains("request finished"));
    assert!(logs.contains("path=/api/me"));
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes when not on a terminal"
    );
    assert_no_secret(&logs, &secrets);
    assert!(
        serde_json::from_str::<serde_json::Value>(logs.lines().next().unwrap_or("")).is_err(),
        "text, not JSON"
    );
}
