//! The identity layer over HTTP: credentials, instance and org allowlists, the cache, and
//! failing closed when Salesforce misbehaves.

use crate::common::*;
use sfgate_emulator::{Endpoint, Fault, TokenGrant};
use std::time::Duration;

#[tokio::test]
async fn bearer_token_with_instance_header_reaches_secured_and_api_me() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/secured", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 200).await;
    assert_eq!(r.text().await.expect("body"), "Accessing secured resource");

    let r = app
        .get_with_token("/api/me", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 200).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["content-type"], "application/json");
    let me: serde_json::Value = r.json().await.expect("json");
    assert_eq!(me["username"], "alice@acme.example");
    assert_eq!(me["display_name"], "Alice Admin");
    assert_eq!(me["email"], "alice@acme.example");
    assert_eq!(me["organization_id"].as_str().map(str::len), Some(18));
    assert!(me["organization_id"]
        .as_str()
        .expect("org")
        .starts_with(ACME));
    assert_eq!(me["user_id"].as_str().map(str::len), Some(18));
    assert_eq!(me["instance_url"], app.emulator.base_url());
    // The second call is a cache hit, rendered from the cached identity: the same.
    let again: serde_json::Value = app
        .get_with_token("/api/me", &t.access_token, &t.instance_url)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again, me);
}

#[tokio::test]
async fn protected_routes_check_the_caller_before_the_method() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    for path in ["/api/me", "/secured"] {
        // Unauthenticated: 401 whatever the method, nothing learnt about the route.
        for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
            let r = app
                .http
                .request(method, app.url(path))
                .send()
                .await
                .expect("sent");
            expect_status_for(r, 401, path).await;
        }
        // Admitted: only GET and HEAD are served.
        let r = app
            .http
            .post(app.url(path))
            .bearer_auth(&t.access_token)
            .header("x-instance-url", &t.instance_url)
            .send()
            .await
            .expect("sent");
        let r = expect_status_for(r, 405, path).await;
        assert_eq!(r.headers()["allow"], "GET,HEAD", "{path}");
        let r = app
            .http
            .head(app.url(path))
            .bearer_auth(&t.access_token)
            .header("x-instance-url", &t.instance_url)
            .send()
            .await
            .expect("sent");
        let r = expect_status_for(r, 200, path).await;
        assert_eq!(r.text().await.expect("body"), "", "{path}");
    }
}

#[tokio::test]
async fn legacy_bearer_and_instanceurl_headers_work_as_in_the_node_app() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/secured"))
        .header("bearer", &t.access_token)
        .header("instanceurl", &t.instance_url)
        .send()
        .await
        .expect("request");
    expect_status(r, 200).await;
}

#[tokio::test]
async fn request_without_credentials_gets_a_bare_bearer_challenge() {
    let app = TestApp::builder().spawn().await;
    let r = app
        .http
        .get(app.url("/api/me"))
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 401).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"sfgate\"");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
    assert!(body["error_description"]
        .as_str()
        .expect("text")
        .contains("Authorization"));
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 0);
}

#[tokio::test]
async fn browsers_get_an_html_page_with_a_login_link() {
    let app = TestApp::builder().spawn().await;
    let r = get_accepting(
        &app.http,
        app.url("/api/me"),
        "text/html,application/xhtml+xml",
    )
    .await;
    let r = expect_status(r, 401).await;
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/html"));
    let body = r.text().await.expect("body");
    assert!(
        body.contains("/oauth2/authorize?return_to=%2Fapi%2Fme"),
        "{body}"
    );
}

#[tokio::test]
async fn token_without_instance_url_is_refused_naming_the_header() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/secured"))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 401).await;
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .expect("header")
        .to_string();
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["error_description"]
        .as_str()
        .expect("d")
        .contains("X-Instance-Url"));

    let r = app
        .http
        .get(app.url("/secured"))
        .header("bearer", &t.access_token)
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 401).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["error_description"]
        .as_str()
        .expect("d")
        .contains("instanceurl"));
}

#[tokio::test]
async fn refused_instance_urls_cause_no_outgoing_request() {
    let app = TestApp::builder().spawn().await;
    // A server the client names as its instance, ready to say "valid" to anything.
    let liar = StubServer::start(
        200,
        "application/json",
        format!(r#"{{"user_id":"0055j00000AlIcE","organization_id":"{ACME}","preferred_username":"evil"}}"#),
    )
    .await;
    let t = app.tokens(ALICE.0);
    let port = liar.addr.port();
    let refused = [
        liar.url(),
        format!("https://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        "https://login.salesforce.com.evil.example".to_string(),
        "https://evilsalesforce.com".to_string(),
        "http://acme.my.salesforce.com".to_string(),
        "https://acme.my.salesforce.com:8443".to_string(),
        "https://user:pw@acme.my.salesforce.com".to_string(),
        "https://acme.my.salesforce.com/services/data".to_string(),
        "https://acme.my.salesforce.com/?x=1".to_string(),
        "https://[::1]".to_string(),
        "https://2130706433".to_string(),
        "not a url".to_string(),
        format!("{}/path", app.emulator.base_url()),
    ];
    for instance in &refused {
        let r = app
            .get_with_token("/api/me", &t.access_token, instance)
            .await;
        let r = expect_status_for(r, 401, &instance).await;
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .expect("header")
            .to_string();
        assert!(
            challenge.contains("invalid_request"),
            "{instance}: {challenge}"
        );
        let body: serde_json::Value = r.json().await.expect("json");
        assert!(
            body["error_description"]
                .as_str()
                .expect("d")
                .contains("instance URL"),
            "{instance}: {body}"
        );
    }
    assert_eq!(liar.hits(), 0, "a refused instance must never be called");
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 0);
}

#[tokio::test]
async fn token_from_an_org_not_on_the_allowlist_is_forbidden() {
    let app = TestApp::builder().spawn().await;
    let carol = app.tokens(CAROL.0);
    let r = app
        .get_with_token("/api/me", &carol.access_token, &carol.instance_url)
        .await;
    let r = expect_status(r, 403).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "org_not_allowed");
    // Carol's classic token names her org, so no call to Salesforce was needed to refuse it.
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 0);

    let open = TestApp::builder().env("SF_ALLOWED_ORGS", "*").spawn().await;
    let carol = open.tokens(CAROL.0);
    let r = open
        .get_with_token("/api/me", &carol.access_token, &carol.instance_url)
        .await;
    expect_status(r, 200).await;
}

#[tokio::test]
async fn eighteen_character_allowlist_entries_match_fifteen_character_orgs() {
    let acme18 = sfgate::domain::OrgId::parse(ACME).expect("org").to_string();
    let app = TestApp::builder()
        .env("SF_ALLOWED_ORGS", acme18.to_lowercase())
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    expect_status(
        app.get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await,
        200,
    )
    .await;
}

#[tokio::test]
async fn token_whose_org_prefix_contradicts_the_identity_is_refused() {
    // An allowed instance that reports an Acme identity for a token naming Globex... and one
    // naming Acme for a token that says Acme but whose identity is Globex.
    let instance = StubServer::start(
        200,
        "application/json",
        format!(r#"{{"user_id":"0055j00000CaRoL","organization_id":"{GLOBEX}","preferred_username":"carol@globex.example","user_type":"STANDARD","active":true}}"#),
    )
    .await;
    let instance_url = instance.url();
    let app = TestApp::builder()
        .env("SF_INSTANCE_ORIGINS", instance_url.clone())
        .env("SF_ALLOWED_ORGS", format!("{ACME},{GLOBEX}"))
        .spawn()
        .await;
    let r = app
        .get_with_token("/api/me", &format!("{ACME}!forged"), &instance.url())
        .await;
    let r = expect_status(r, 401).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token");
    // Without a prefix (JWT-style tokens) the same identity is accepted.
    let r = app
        .get_with_token("/api/me", "eyJhbGciOiJub25lIn0.e30.sig", &instance.url())
        .await;
    expect_status(r, 200).await;
}

#[tokio::test]
async fn invalid_token_gets_rfc6750_invalid_token() {
    let app = TestApp::builder().spawn().await;
    let r = app
        .get_with_token(
            "/api/me",
            &format!("{ACME}!not-a-real-token"),
            &app.emulator.base_url(),
        )
        .await;
    let r = expect_status(r, 401).await;
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .expect("h")
        .to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"sfgate\", error=\"invalid_token\""),
        "{challenge}"
    );
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn sequential_requests_with_one_token_make_one_salesforce_call() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    for _ in 0..10 {
        expect_status(
            app.get_with_token("/api/me", &t.access_token, &t.instance_url)
                .await,
            200,
        )
        .await;
    }
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 1);
}

#[tokio::test]
async fn with_the_cache_disabled_every_request_asks_salesforce() {
    let app = TestApp::builder()
        .env("IDENTITY_CACHE_TTL", "0")
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    for _ in 0..4 {
        expect_status(
            app.get_with_token("/api/me", &t.access_token, &t.instance_url)
                .await,
            200,
        )
        .await;
    }
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 4);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_salesforce_call() {
    let app = TestApp::builder().spawn().await;
    app.emulator.set_latency(Duration::from_millis(300));
    let t = app.tokens(ALICE.0);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let client = app.http.clone();
        let url = app.url("/api/me");
        let (token, instance) = (t.access_token.clone(), t.instance_url.clone());
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(token)
                .header("x-instance-url", instance)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task").expect("request"), 200);
    }
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 1);
}

#[tokio::test]
async fn rejected_tokens_are_cached_briefly_and_transient_failures_not_at_all() {
    let app = TestApp::builder().spawn().await;
    let bad = format!("{ACME}!bogus");
    for _ in 0..5 {
        expect_status(
            app.get_with_token("/api/me", &bad, &app.emulator.base_url())
                .await,
            401,
        )
        .await;
    }
    assert_eq!(
        app.emulator.calls(Endpoint::UserInfo),
        1,
        "negative verdicts are cached"
    );

    app.emulator.reset_stats();
    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let t = app.tokens(ALICE.0);
    for _ in 0..3 {
        expect_status(
            app.get_with_token("/api/me", &t.access_token, &t.instance_url)
                .await,
            502,
        )
        .await;
    }
    assert_eq!(
        app.emulator.calls(Endpoint::UserInfo),
        3,
        "outages are never cached"
    );
    app.emulator.set_fault(Fault::None);
    expect_status(
        app.get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await,
        200,
    )
    .await;
}

/// A full cache makes room for a token just confirmed, whatever the others' use: its next
/// requests are served from the cache, not sent to Salesforce again until it is admitted.
#[tokio::test]
async fn a_full_cache_makes_room_for_a_token_at_its_first_check() {
    let app = TestApp::builder()
        .env("IDENTITY_CACHE_MAX", "16")
        .spawn()
        .await;
    let me = |t: &TokenGrant| {
        let (token, instance) = (t.access_token.clone(), t.instance_url.clone());
        let app = &app;
        async move {
            expect_status(app.get_with_token("/api/me", &token, &instance).await, 200).await;
        }
    };
    // Sixteen tokens in steady use fill the cache.
    let regulars: Vec<TokenGrant> = (0..16).map(|_| app.tokens(ALICE.0)).collect();
    for _ in 0..10 {
        for t in &regulars {
            me(t).await;
        }
    }
    let newcomer = app.tokens(ALICE.0);
    app.emulator.reset_stats();
    for _ in 0..6 {
        me(&newcomer).await;
        // Time for the cache's upkeep (eviction and admission) to run between requests.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(
        app.emulator.calls(Endpoint::UserInfo),
        1,
        "a newcomer to a full cache was checked at Salesforce again"
    );
}

#[tokio::test]
async fn cached_identities_expire_after_the_ttl() {
    let app = TestApp::builder()
        .env("IDENTITY_CACHE_TTL", "1")
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    expect_status(
        app.get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await,
        200,
    )
    .await;
    expect_status(
        app.get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await,
        200,
    )
    .await;
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    expect_status(
        app.get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await,
        200,
    )
    .await;
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 2);
}

#[tokio::test]
async fn every_emulator_fault_fails_closed_with_retry_after() {
    let app = TestApp::builder()
        .env("SALESFORCE_TIMEOUT", "1")
        .env("IDENTITY_CACHE_TTL", "0")
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    let cases = [
        (Fault::ServerError, 502),
        (Fault::Garbage, 502),
        (Fault::Slow(Duration::from_millis(2500)), 504),
        (Fault::Hang, 504),
        (Fault::CloseConnection, 503),
    ];
    for (fault, expected) in cases {
        app.emulator
            .set_fault_for(Endpoint::UserInfo, fault.clone());
        let r = app
            .get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await;
        let status = r.status().as_u16();
        assert!(
            status == expected || (matches!(fault, Fault::CloseConnection) && status == 502),
            "{fault:?}: got {status}"
        );
        assert!(r.headers().contains_key("retry-after"), "{fault:?}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "temporarily_unavailable", "{fault:?}");
    }
    app.emulator.set_fault(Fault::None);
    expect_status(
        app.get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await,
        200,
    )
    .await;
}

#[tokio::test]
async fn malformed_headers_get_clear_4xx_answers() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let huge = "a".repeat(64 * 1024);
    let r = app.get_with_token("/api/me", &huge, &t.instance_url).await;
    assert!(
        matches!(r.status().as_u16(), 400 | 401 | 431),
        "{}",
        r.status()
    );

    let r = app
        .http
        .get(app.url("/api/me"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("bytes"),
        )
        .header("x-instance-url", &t.instance_url)
        .send()
        .await
        .expect("request");
    expect_status(r, 400).await;

    let r = app
        .http
        .get(app.url("/api/me"))
        .header("authorization", format!("Bearer {}", t.access_token))
        .header("authorization", "Bearer other")
        .header("x-instance-url", &t.instance_url)
        .send()
        .await
        .expect("request");
    expect_status(r, 400).await;

    let r = app
        .http
        .get(app.url("/api/me"))
        .header("authorization", "Basic dXNlcjpwdw==")
        .send()
        .await
        .expect("request");
    expect_status(r, 401).await;
    // Still serving.
    expect_status(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz"),
        200,
    )
    .await;
}
