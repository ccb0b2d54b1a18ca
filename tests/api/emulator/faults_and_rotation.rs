//! Revocation, call counts, injected faults, and refresh-token rotation.

use super::*;

#[tokio::test]
async fn revocation_of_access_and_refresh_tokens() {
    let emu = start(|_| {}).await;
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    let r = emu
        .http
        .post(emu.url("/services/oauth2/revoke"))
        .form(&[("token", grant.access_token.as_str())])
        .send()
        .await
        .expect("revoke");
    expect_status(r, 200).await;
    expect_status(emu.userinfo(&grant.access_token).await, 403).await;

    // Revoking a refresh token takes the access tokens issued from it along.
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    let refresh = grant.refresh_token.clone().expect("refresh");
    let r = emu
        .http
        .get(emu.url("/services/oauth2/revoke"))
        .query(&[("token", refresh.as_str())])
        .send()
        .await
        .expect("revoke");
    expect_status(r, 200).await;
    assert!(emu.handle.is_revoked(&grant.access_token));
    expect_status(emu.userinfo(&grant.access_token).await, 403).await;

    let r = emu
        .http
        .post(emu.url("/services/oauth2/revoke"))
        .form(&[("token", "unknown")])
        .send()
        .await
        .expect("revoke");
    let r = expect_status(r, 400).await;
    assert_eq!(
        error_of(&r.json().await.expect("json")),
        "unsupported_token_type"
    );
}

#[tokio::test]
async fn calls_are_counted_per_endpoint() {
    let emu = start(|_| {}).await;
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    for _ in 0..3 {
        emu.userinfo(&grant.access_token).await;
    }
    assert_eq!(emu.handle.calls(Endpoint::UserInfo), 3);
    assert_eq!(emu.handle.calls(Endpoint::Token), 0);
    let stats: Value = emu
        .http
        .get(emu.url("/__emulator/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["userinfo"], 3, "{stats}");
    assert_eq!(stats["token"], 0, "{stats}");
    emu.handle.reset_stats();
    assert_eq!(emu.handle.calls(Endpoint::UserInfo), 0);
}

#[tokio::test]
async fn fault_slow_delays_then_answers() {
    let emu = start(|_| {}).await;
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    emu.handle
        .set_fault(Fault::Slow(Duration::from_millis(400)));
    let started = Instant::now();
    let r = emu.userinfo(&grant.access_token).await;
    expect_status(r, 200).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn fault_server_error_answers_503_html() {
    let emu = start(|_| {}).await;
    emu.handle
        .set_fault_for(Endpoint::Token, Fault::ServerError);
    let (status, body) = emu.token(&[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, Value::Null, "the body is HTML, not JSON");
    // Only the token endpoint was switched.
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    expect_status(emu.userinfo(&grant.access_token).await, 200).await;
}

#[tokio::test]
async fn fault_garbage_answers_200_with_a_body_that_is_not_json() {
    let emu = start(|_| {}).await;
    emu.handle.set_fault(Fault::Garbage);
    let r = emu.userinfo("anything").await;
    let r = expect_status(r, 200).await;
    let body = r.text().await.expect("body");
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
}

#[tokio::test]
async fn fault_hang_never_answers_until_shutdown() {
    let emu = start(|_| {}).await;
    emu.handle.set_fault(Fault::Hang);
    let r = emu
        .http
        .get(emu.url("/services/oauth2/userinfo"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(r.as_ref().is_err_and(|e| e.is_timeout()), "{r:?}");
    // Shutting down releases hanging requests instead of waiting for them forever.
    let pending = tokio::spawn({
        let http = emu.http.clone();
        let url = emu.url("/services/oauth2/userinfo");
        async move { http.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), emu.handle.shutdown())
        .await
        .expect("shutdown does not wait for hanging requests");
    let _ = pending.await;
}

#[tokio::test]
async fn fault_close_breaks_the_connection() {
    let emu = start(|_| {}).await;
    emu.handle.set_fault(Fault::CloseConnection);
    let result = match emu
        .http
        .get(emu.url("/services/oauth2/userinfo"))
        .send()
        .await
    {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(result.is_err(), "the response must not complete");
}

#[tokio::test]
async fn faults_can_be_switched_over_http_and_bad_switches_are_refused() {
    let emu = start(|_| {}).await;
    let post = |body: Value| {
        emu.http
            .post(emu.url("/__emulator/fault"))
            .json(&body)
            .send()
    };
    let r = post(serde_json::json!({"fault": "server_error", "endpoint": "userinfo"}))
        .await
        .expect("fault");
    expect_status(r, 204).await;
    expect_status(emu.userinfo("x").await, 503).await;
    let r = post(serde_json::json!({"fault": "none"}))
        .await
        .expect("fault");
    expect_status(r, 204).await;
    expect_status(emu.userinfo("x").await, 403).await;

    for bad in [
        serde_json::json!({"fault": "explode"}),
        serde_json::json!({"fault": "hang", "endpoint": "nowhere"}),
        serde_json::json!({"nothing": true}),
    ] {
        let r = post(bad.clone()).await.expect("fault");
        expect_status_for(r, 400, bad).await;
    }

    let r = emu
        .http
        .post(emu.url("/__emulator/tokens"))
        .json(&serde_json::json!({"username": "alice@acme.example", "count": 2}))
        .send()
        .await
        .expect("tokens");
    let r = expect_status(r, 200).await;
    let tokens: Value = r.json().await.expect("json");
    let first = tokens
        .as_array()
        .and_then(|a| a.first())
        .and_then(|t| t["access_token"].as_str())
        .expect("an access token")
        .to_string();
    expect_status(emu.userinfo(&first).await, 200).await;
}

#[tokio::test]
async fn rotation_answers_a_new_refresh_token_and_spends_the_old_one() {
    let emu = start(|c| c.rotate_refresh_tokens = true).await;
    let code = emu.code_for(None).await;
    let (_, first) = emu.exchange(&code, None).await;
    let old = first["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let refresh = |token: String| {
        let emu = &emu;
        async move {
            emu.token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ])
            .await
        }
    };
    let (status, renewed) = refresh(old.clone()).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let new = renewed["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_string();
    assert_ne!(new, old);
    let (status, body) = refresh(old.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the old one is spent");
    assert_eq!(body["error"], "invalid_grant");
    // The access token issued before the rotation keeps working until it expires.
    expect_status(
        emu.userinfo(first["access_token"].as_str().expect("at"))
            .await,
        200,
    )
    .await;
    let (status, _) = refresh(new).await;
    assert_eq!(status, StatusCode::OK, "the new one works");
    assert_eq!(emu.handle.refresh_calls(), 3);

    // The control endpoint switches it off (and refuses a bad body).
    let switch = |body: &'static str| {
        emu.http
            .post(emu.url("/__emulator/rotation"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    expect_status(switch(r#"{"enabled":"maybe"}"#).await.expect("r"), 400).await;
    expect_status(switch(r#"{"enabled":false}"#).await.expect("r"), 204).await;
    let code = emu.code_for(None).await;
    let (_, first) = emu.exchange(&code, None).await;
    let rt = first["refresh_token"].as_str().expect("rt").to_string();
    let (_, renewed) = refresh(rt.clone()).await;
    assert!(
        renewed.get("refresh_token").is_none(),
        "no rotation: {renewed}"
    );
    let (status, _) = refresh(rt).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "without rotation a refresh token is reusable"
    );
    let stats: Value = emu
        .http
        .get(emu.url("/__emulator/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["refresh"], 5, "{stats}");
}

#[tokio::test]
async fn in_demo_mode_the_password_grant_also_issues_a_working_refresh_token() {
    let emu = start(|c| c.password_grant_refresh_token = true).await;
    let (status, body) = emu
        .token(&[
            ("grant_type", "password"),
            ("username", "alice@acme.example"),
            ("password", "alice-demo-1"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "api refresh_token");
    let refresh = body["refresh_token"].as_str().expect("a refresh token");
    let (status, body) = emu
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}
