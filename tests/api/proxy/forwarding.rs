//! What the upstream receives: identity headers, credentials, cookies, skip-auth routes, and
//! where browsers and API clients without credentials are sent.

use super::*;

#[tokio::test]
async fn authenticated_request_reaches_the_upstream_with_identity_headers() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let t = app.tokens(ALICE.0);
    let r = spoofed(
        app.http
            .put(app.url("/app/items/7?sort=name&x=%20y"))
            .bearer_auth(&t.access_token)
            .header("x-instance-url", &t.instance_url)
            .header("x-custom", "kept")
            .header("x-forwarded-for", "6.6.6.6")
            .header("connection", "x-private")
            .header("x-private", "dropped")
            .body("payload"),
    )
    .send()
    .await
    .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["path"], "/app/items/7");
    assert_eq!(echoed["query"], "sort=name&x=%20y");
    assert_eq!(echoed["body"], "payload");
    assert_eq!(one(&echoed, "content-length"), "7");
    let org18 = sfgate::domain::OrgId::parse(ACME).expect("org").to_string();
    assert_eq!(one(&echoed, "x-salesforce-org-id"), org18);
    let user_id = one(&echoed, "x-salesforce-user-id");
    assert_eq!(user_id.len(), 18);
    assert_eq!(one(&echoed, "x-forwarded-user"), user_id);
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
    assert_eq!(one(&echoed, "x-forwarded-preferred-username"), ALICE.0);
    assert_eq!(one(&echoed, "x-forwarded-email"), "alice@acme.example");
    assert_eq!(
        one(&echoed, "x-salesforce-instance-url"),
        app.emulator.base_url()
    );
    assert_eq!(one(&echoed, "x-custom"), "kept");
    assert_eq!(one(&echoed, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(one(&echoed, "x-forwarded-proto"), "http");
    assert_eq!(
        one(&echoed, "x-forwarded-host"),
        app.gateway.addr.to_string()
    );
    assert_eq!(one(&echoed, "host"), echo.addr.to_string());
    for gone in ["authorization", "x-instance-url", "x-private", "connection"] {
        assert!(received(&echoed, gone).is_empty(), "{gone} in {echoed}");
    }
}

#[tokio::test]
async fn legacy_credentials_are_accepted_and_not_passed_on() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/app"))
        .header("bearer", &t.access_token)
        .header("instanceurl", &t.instance_url)
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
    assert!(received(&echoed, "bearer").is_empty(), "{echoed}");
    assert!(received(&echoed, "instanceurl").is_empty(), "{echoed}");
    // A bodiless GET stays bodiless upstream.
    assert!(
        received(&echoed, "transfer-encoding").is_empty(),
        "{echoed}"
    );
    assert!(received(&echoed, "content-length").is_empty(), "{echoed}");
}

#[tokio::test]
async fn a_path_in_upstream_url_is_kept_as_a_prefix() {
    let echo = start_echo().await;
    let upstream = format!("{}/base/", echo.url());
    let app = TestApp::builder()
        .env("UPSTREAM_URL", upstream)
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/app/x?y=1", &t.access_token, &t.instance_url)
        .await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["path"], "/base/app/x");
    assert_eq!(echoed["query"], "y=1");
}

#[tokio::test]
async fn forwarded_headers_from_a_trusted_proxy_are_extended() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("TRUST_PROXY", "true")])
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/app"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .send()
        .await
        .expect("request");
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(one(&echoed, "x-forwarded-for"), "203.0.113.7, 127.0.0.1");
    assert_eq!(one(&echoed, "x-forwarded-proto"), "https");
    assert_eq!(one(&echoed, "x-forwarded-host"), "app.example.com");
}

#[tokio::test]
async fn session_cookies_are_stripped_and_other_cookies_kept() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let login = app.login(&browser_client(), ALICE).await;
    let login = expect_status(login, 303).await;
    let session = set_cookies(login.headers())
        .into_iter()
        .find(|c| c.starts_with("sfgate_session="))
        .and_then(|c| c.split(';').next().map(str::to_string))
        .expect("session cookie");
    let r = app
        .http
        .get(app.url("/dashboard"))
        .header(
            "cookie",
            format!("theme=dark; {session}; sfgate_login=stale"),
        )
        .header("cookie", "lang=en")
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
    let cookies = received(&echoed, "cookie").join("; ");
    assert!(cookies.contains("theme=dark"), "{cookies}");
    assert!(cookies.contains("lang=en"), "{cookies}");
    assert!(!cookies.contains("sfgate_"), "{cookies}");
}

#[tokio::test]
async fn pass_access_token_forwards_the_token_and_instance() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("PASS_ACCESS_TOKEN", "true")])
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/app"))
        .header("bearer", &t.access_token)
        .header("instanceurl", &t.instance_url)
        .send()
        .await
        .expect("request");
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(
        one(&echoed, "authorization"),
        format!("Bearer {}", t.access_token)
    );
    assert_eq!(one(&echoed, "x-instance-url"), t.instance_url);
    assert!(received(&echoed, "bearer").is_empty(), "{echoed}");
}

#[tokio::test]
async fn skip_auth_routes_are_proxied_without_credentials_and_without_spoofed_identity() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("SKIP_AUTH_ROUTES", "GET=^/public/,^/webhook$")])
        .spawn()
        .await;
    let r = spoofed(
        app.http
            .get(app.url("/public/logo.png"))
            .header("authorization", "Bearer x"),
    )
    .send()
    .await
    .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    for name in IDENTITY_HEADERS.iter().chain(&["authorization"]) {
        assert!(received(&echoed, name).is_empty(), "{name} in {echoed}");
    }
    for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
        let r = app
            .http
            .request(method.clone(), app.url("/webhook"))
            .send()
            .await
            .expect("request");
        expect_status_for(r, 200, format!("{method} /webhook")).await;
    }
    let hits = echo.hits();
    // The method-specific rule lets only GET through; the rule sees the path, not the query.
    let r = app
        .http
        .post(app.url("/public/logo.png"))
        .send()
        .await
        .expect("request");
    expect_status(r, 401).await;
    let r = app
        .http
        .get(app.url("/private?next=/public/"))
        .send()
        .await
        .expect("request");
    expect_status(r, 401).await;
    assert_eq!(
        echo.hits(),
        hits,
        "refused requests never reach the upstream"
    );
}

#[tokio::test]
async fn dot_segments_cannot_escape_a_skip_auth_rule() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("SKIP_AUTH_ROUTES", "^/public/")])
        .spawn()
        .await;
    for path in ["/public/../admin", "/public/%2e%2e/admin", "/public/./x"] {
        let status = raw_status(
            &app,
            &format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn unauthenticated_api_requests_get_401_and_never_reach_the_upstream() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let r = app
        .http
        .post(app.url("/app/items"))
        .body("x")
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 401).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"sfgate\"");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");

    let r = app
        .get_with_token("/app", &format!("{ACME}!bogus"), &app.emulator.base_url())
        .await;
    let r = expect_status(r, 401).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token");

    let carol = app.tokens(CAROL.0);
    let r = app
        .get_with_token("/app", &carol.access_token, &carol.instance_url)
        .await;
    expect_status(r, 403).await;
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn browsers_without_a_session_are_sent_to_the_login_with_return_to() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let r = get_accepting(
        &app.http,
        app.url("/reports/q3?tab=sales"),
        "text/html,application/xhtml+xml",
    )
    .await;
    let r = expect_status(r, 303).await;
    assert_eq!(
        location(r.headers()),
        "/oauth2/authorize?return_to=%2Freports%2Fq3%3Ftab%3Dsales"
    );
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn a_renewed_session_cookie_is_set_on_the_proxied_response() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("IDENTITY_CACHE_TTL", "0")])
        .spawn()
        .await;
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    app.emulator.expire_access_tokens();
    let token_calls = app.emulator.calls(Endpoint::Token);
    let r = browser.get(app.url("/app")).send().await.expect("request");
    let r = expect_status(r, 200).await;
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls + 1);
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
    // The renewed cookie works without another renewal.
    let r = browser.get(app.url("/app")).send().await.expect("request");
    expect_status(r, 200).await;
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls + 1);
}
