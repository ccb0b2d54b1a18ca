//! Operations: metrics, security headers, caching rules, rate limits, readiness and request
//! limits, over HTTP against the real gateway and the emulator.
//!
//! The metrics recorder is process-wide and tests run in parallel, so metric assertions compare
//! a scrape before and after with "grew by at least": other tests may add to the same series.

use crate::common::*;
use sfgate_emulator::{Endpoint, Fault};

#[tokio::test]
async fn metrics_count_logins_protected_calls_and_salesforce_latency_by_route_template() {
    let app = TestApp::builder().spawn().await;
    let before = scrape(&app).await;
    let browser = browser_client();
    let r = app.login(&browser, ALICE).await;
    expect_status(r, 303).await;
    let me = browser.get(app.url("/api/me")).send().await.expect("me");
    expect_status(me, 200).await;
    let logout = browser
        .post(app.url("/oauth2/logout"))
        .send()
        .await
        .expect("logout");
    // 200 with the list of revoked tokens (it was 204 before logout said what it revoked).
    expect_status(logout, 200).await;
    let denied = app
        .http
        .get(app.url("/oauth2/callback?error=access_denied&error_description=no"))
        .send()
        .await
        .expect("denied");
    expect_status(denied, 403).await;
    let unknown = app
        .http
        .get(app.url("/no/such/page/12345"))
        .send()
        .await
        .expect("404");
    expect_status(unknown, 404).await;
    let after = scrape(&app).await;

    let grew = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    assert!(grew("sfgate_logins_total", &[("result", "started")]) >= 1.0);
    assert!(grew("sfgate_logins_total", &[("result", "completed")]) >= 1.0);
    assert!(grew("sfgate_logins_total", &[("result", "failed")]) >= 1.0);
    assert!(
        grew(
            "sfgate_http_requests_total",
            &[("method", "GET"), ("route", "/api/me"), ("status", "200")]
        ) >= 1.0
    );
    assert!(
        grew(
            "sfgate_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/oauth2/callback"),
                ("status", "303")
            ]
        ) >= 1.0
    );
    assert!(
        grew(
            "sfgate_http_requests_total",
            &[("route", "/oauth2/authorize"), ("status", "302")]
        ) >= 1.0
    );
    assert!(
        grew(
            "sfgate_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0
    );
    assert!(
        !after.contains("/no/such/page"),
        "raw paths never become labels"
    );
    assert!(
        !after.contains("code="),
        "query strings never become labels"
    );
    assert!(
        grew(
            "sfgate_http_request_duration_seconds_count",
            &[("route", "/api/me")]
        ) >= 1.0
    );
    assert!(after.contains("sfgate_http_request_duration_seconds_bucket{"));
    assert!(grew("sfgate_identity_validations_total", &[("outcome", "valid")]) >= 2.0);
    assert!(grew("sfgate_identity_cache_total", &[("result", "miss")]) >= 1.0);
    assert!(grew("sfgate_identity_cache_total", &[("result", "hit")]) >= 1.0);
    assert!(after.contains("sfgate_identity_cache_entries "));
    for endpoint in ["token", "userinfo", "revoke"] {
        assert!(
            grew(
                "sfgate_salesforce_call_seconds_count",
                &[("endpoint", endpoint)]
            ) >= 1.0,
            "{endpoint} latency recorded"
        );
    }
    assert!(after.contains("sfgate_salesforce_call_seconds_bucket{"));
    for help in [
        "# HELP sfgate_http_requests_total",
        "# TYPE sfgate_http_request_duration_seconds histogram",
    ] {
        assert!(after.contains(help), "{help}");
    }
}

/// What grows with the rate of logouts is in `/metrics`: each logout is remembered (the
/// access token and the session's refresh token) for as long as it could be replayed.
#[tokio::test]
async fn metrics_show_the_logouts_the_process_remembers() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let logout = browser
        .post(app.url("/oauth2/logout"))
        .send()
        .await
        .expect("logout");
    expect_status(logout, 200).await;
    // The gauges are set from this gateway's state at its own scrape; a test running beside
    // it may set them from its own gateway in between, so a few scrapes are allowed.
    let mut last = String::new();
    for _ in 0..5 {
        last = scrape(&app).await;
        let remembered = |set| metric(&last, "sfgate_logouts_remembered", &[("set", set)]);
        let bytes = metric(
            &last,
            "sfgate_logouts_remembered_bytes",
            &[("set", "refresh_tokens")],
        );
        if remembered("access_tokens") >= 1.0 && remembered("refresh_tokens") >= 1.0 && bytes > 0.0
        {
            return;
        }
    }
    panic!("the logout is not among the remembered sets:\n{last}");
}

#[tokio::test]
async fn whatever_the_process_records_through_the_metrics_facade_is_exported() {
    let app = TestApp::builder().spawn().await;
    // The proxy records its upstream statuses this way.
    metrics::counter!("sfgate_proxy_requests_total", "status" => "599").increment(3);
    let scraped = scrape(&app).await;
    assert!(scraped.contains("# HELP sfgate_proxy_requests_total"));
    assert!(
        metric(
            &scraped,
            "sfgate_proxy_requests_total",
            &[("status", "599")]
        ) >= 3.0
    );
}

#[tokio::test]
async fn identity_validation_outcomes_are_counted_by_name() {
    let app = TestApp::builder().spawn().await;
    let before = scrape(&app).await;
    let alice = app.tokens(ALICE.0);
    let carol = app.tokens(CAROL.0);
    let cases = [
        (
            format!("{ACME}!not-a-real-token"),
            alice.instance_url.clone(),
            401,
        ),
        (carol.access_token.clone(), carol.instance_url.clone(), 403),
        (
            alice.access_token.clone(),
            "https://evil.example".to_string(),
            401,
        ),
    ];
    for (token, instance, status) in &cases {
        let r = app.get_with_token("/api/me", token, instance).await;
        expect_status_for(r, *status, instance).await;
    }
    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let r = app
        .get_with_token("/api/me", &alice.access_token, &alice.instance_url)
        .await;
    expect_status(r, 502).await;
    let after = scrape(&app).await;
    for outcome in [
        "invalid",
        "org_refused",
        "instance_refused",
        "upstream_error",
    ] {
        let grew = metric(
            &after,
            "sfgate_identity_validations_total",
            &[("outcome", outcome)],
        ) - metric(
            &before,
            "sfgate_identity_validations_total",
            &[("outcome", outcome)],
        );
        assert!(grew >= 1.0, "{outcome} counted");
    }
}

#[tokio::test]
async fn metrics_token_protects_the_metrics_endpoint() {
    let app = TestApp::builder()
        .env("METRICS_TOKEN", "metrics-token-4f9a")
        .spawn()
        .await;
    let r = app.http.get(app.url("/metrics")).send().await.expect("r");
    let r = expect_status(r, 401).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
    for wrong in [
        "Bearer metrics-token-4f9",
        "Bearer metrics-token-4f9aa",
        "Basic metrics-token-4f9a",
    ] {
        let r = app
            .http
            .get(app.url("/metrics"))
            .header("authorization", wrong)
            .send()
            .await
            .expect("r");
        expect_status_for(r, 401, &wrong).await;
    }
    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("metrics-token-4f9a")
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 200).await;
    assert!(r.text().await.expect("text").contains("sfgate_"));
}

fn assert_security_headers(r: &reqwest::Response, login_origin: &str, what: &str) {
    let h = r.headers();
    let csp = h
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("CSP on {what}"))
        .to_str()
        .expect("csp");
    assert_eq!(
        csp,
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self' {login_origin}; frame-ancestors 'none'; \
             base-uri 'none'"
        ),
        "{what}"
    );
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
}

#[tokio::test]
async fn own_pages_errors_and_the_success_page_carry_security_headers() {
    let app = TestApp::builder().spawn().await;
    let origin = app.emulator.base_url();
    let home = app.http.get(app.url("/")).send().await.expect("home");
    let home = expect_status(home, 200).await;
    assert_security_headers(&home, &origin, "home");
    assert!(
        home.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain http"
    );

    let html_error = get_accepting(&app.http, app.url("/api/me"), "text/html").await;
    let html_error = expect_status(html_error, 401).await;
    assert!(html_error.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/html"));
    assert_security_headers(&html_error, &origin, "HTML error page");
    assert_eq!(html_error.headers()["cache-control"], "no-store");

    let json_error = app
        .http
        .get(app.url("/oauth2/callback?error=access_denied&error_description=no"))
        .send()
        .await
        .expect("denied");
    let json_error = expect_status(json_error, 403).await;
    assert_security_headers(&json_error, &origin, "JSON error");

    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let success = browser
        .get(app.url("/oauth2/welcome"))
        .send()
        .await
        .expect("welcome page");
    let success = expect_status(success, 200).await;
    assert_security_headers(&success, &origin, "success page");
    assert_eq!(success.headers()["cache-control"], "no-store");

    for path in ["/healthz", "/readyz", "/metrics", "/assets/sfgate.js"] {
        let r = app.http.get(app.url(path)).send().await.expect(path);
        let r = expect_status_for(r, 200, &path).await;
        assert_security_headers(&r, &origin, path);
    }

    // Paths sfgate does not serve: its own 404, JSON or a page, with the same headers.
    let missing = app
        .http
        .get(app.url("/no/such/page"))
        .send()
        .await
        .expect("404");
    let missing = expect_status(missing, 404).await;
    assert_security_headers(&missing, &origin, "404");
    assert_eq!(missing.headers()["cache-control"], "no-store");
    let body: serde_json::Value = missing.json().await.expect("json");
    assert_eq!(body["error"], "not_found");
    let page = get_accepting(&app.http, app.url("/no/such/page"), "text/html").await;
    let page = expect_status(page, 404).await;
    assert_security_headers(&page, &origin, "404 page");
    assert!(page.text().await.expect("html").contains("<html"));
}

#[tokio::test]
async fn hsts_is_sent_when_users_reach_sfgate_over_https() {
    let app = TestApp::builder()
        .env(
            "SF_REDIRECT_URI",
            "https://gateway.example.com/oauth2/callback",
        )
        .spawn()
        .await;
    let r = app.http.get(app.url("/")).send().await.expect("home");
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

#[test]
fn templates_have_no_inline_script_or_style_for_the_csp_to_block() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("templates") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("html") {
            continue;
        }
        let html = std::fs::read_to_string(&path)
            .expect("read")
            .to_ascii_lowercase();
        for (i, _) in html.match_indices("<script") {
            let tag_end = html[i..].find('>').expect("tag end") + i;
            assert!(
                // sfgate's own assets, under its prefix (`PROXY_PREFIX`).
                html[i..tag_end].contains("src=\"{{ paths.asset_"),
                "{path:?}: inline script"
            );
        }
        assert!(!html.contains("<style"), "{path:?}: inline style");
        assert!(!html.contains(" style="), "{path:?}: style attribute");
        assert!(!html.contains(" onclick="), "{path:?}: inline handler");
        assert!(!html.contains("javascript:"), "{path:?}: javascript: URL");
        for form in html.match_indices("<form") {
            let tag_end = html[form.0..].find('>').expect("tag end") + form.0;
            assert!(
                html[form.0..tag_end].contains("action=\"{{ paths."),
                "{path:?}: form posts to sfgate itself"
            );
        }
        checked += 1;
    }
    assert!(checked >= 4, "templates found: {checked}");
}

#[tokio::test]
async fn token_carrying_answers_are_never_cached() {
    let app = TestApp::builder().password_flow().spawn().await;
    let password = password_grant(&app, ALICE).await;
    let password = expect_status(password, 200).await;
    assert_eq!(password.headers()["cache-control"], "no-store");
    let tokens: serde_json::Value = password.json().await.expect("json");
    let grant = app.tokens(ALICE.0);
    let refresh_token = grant.refresh_token.as_deref().expect("refresh token");

    let refresh = app
        .http
        .post(app.url("/oauth2/refresh"))
        .form(&[("refresh_token", refresh_token)])
        .send()
        .await
        .expect("refresh");
    let refresh = expect_status(refresh, 200).await;
    assert_eq!(refresh.headers()["cache-control"], "no-store");

    let token = app
        .http
        .post(app.url("/oauth2/token"))
        .form(&[("code", "not-a-code")])
        .send()
        .await
        .expect("token");
    let token = expect_status(token, 400).await;
    assert_eq!(token.headers()["cache-control"], "no-store");

    let access = tokens["access_token"].as_str().expect("token");
    let instance = tokens["instance_url"].as_str().expect("instance");
    let me = app.get_with_token("/api/me", access, instance).await;
    let me = expect_status(me, 200).await;
    assert_eq!(me.headers()["cache-control"], "no-store");

    let home = app.http.get(app.url("/healthz")).send().await.expect("h");
    assert_eq!(
        home.headers()["cache-control"],
        "no-store",
        "default for own answers"
    );
    let js = app
        .http
        .get(app.url("/assets/sfgate.js"))
        .send()
        .await
        .expect("js");
    assert_eq!(
        js.headers()["cache-control"],
        "public, max-age=3600",
        "assets keep their own caching"
    );
}

async fn assert_rate_limited(r: reqwest::Response) {
    let r = expect_status(r, 429).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("retry-after")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited");
    assert!(body["error_description"].is_string());
}

#[tokio::test]
async fn login_routes_answer_429_after_the_burst_but_other_clients_and_routes_go_on() {
    let app = TestApp::builder()
        .env("RATE_LIMIT_BURST", "3")
        .env("RATE_LIMIT_PER_MINUTE", "1")
        .spawn()
        .await;
    for _ in 0..3 {
        let r = app
            .http
            .get(app.url("/oauth2/authorize"))
            .send()
            .await
            .expect("r");
        expect_status(r, 302).await;
    }
    let r = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("r");
    assert_rate_limited(r).await;

    // Without TRUST_PROXY a forged X-Forwarded-For changes nothing.
    let r = app
        .http
        .get(app.url("/oauth2/authorize"))
        .header("x-forwarded-for", "203.0.113.50")
        .send()
        .await
        .expect("r");
    expect_status(r, 429).await;

    // Another route has its own budget; unlimited routes are not affected.
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .form(&[("code", "x")])
        .send()
        .await
        .expect("r");
    expect_status(r, 400).await;
    for path in ["/healthz", "/", "/readyz"] {
        let r = app.http.get(app.url(path)).send().await.expect("r");
        expect_status_for(r, 200, &path).await;
    }

    // Another client address (127.0.0.2 is loopback too) has its own budget.
    let other = client_from("127.0.0.2");
    let r = other
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("r");
    expect_status(r, 302).await;

    // The callback, token, password and refresh routes are limited as well.
    for (method, path) in [
        ("GET", "/oauth2/callback"),
        ("POST", "/oauth2/token"),
        ("POST", "/oauth2/password"),
        ("POST", "/oauth2/refresh"),
    ] {
        let mut last = None;
        for _ in 0..4 {
            let request = match method {
                "GET" => app.http.get(app.url(path)),
                _ => app.http.post(app.url(path)).form(&[("x", "y")]),
            };
            last = Some(request.send().await.expect("r"));
        }
        assert_rate_limited(last.expect("response")).await;
    }
    // Logout is never limited: a user must always be able to end a session.
    for _ in 0..5 {
        let r = app
            .http
            .post(app.url("/oauth2/logout"))
            .send()
            .await
            .expect("r");
        expect_status(r, 200).await;
    }
    let metrics = scrape(&app).await;
    assert!(
        metric(
            &metrics,
            "sfgate_rate_limited_total",
            &[("route", "/oauth2/authorize")]
        ) >= 2.0
    );
}

#[tokio::test]
async fn browser_gets_an_html_429_page_with_security_headers() {
    let app = TestApp::builder()
        .env("RATE_LIMIT_BURST", "1")
        .env("RATE_LIMIT_PER_MINUTE", "1")
        .spawn()
        .await;
    let _ = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("r");
    let r = get_accepting(&app.http, app.url("/oauth2/authorize"), "text/html").await;
    let r = expect_status(r, 429).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_security_headers(&r, &app.emulator.base_url(), "429 page");
    assert!(r.text().await.expect("html").contains("rate_limited"));
}

#[tokio::test]
async fn with_trust_proxy_the_rightmost_forwarded_address_is_the_client() {
    let app = TestApp::builder()
        .env("RATE_LIMIT_BURST", "2")
        .env("RATE_LIMIT_PER_MINUTE", "1")
        .env("TRUST_PROXY", "true")
        .spawn()
        .await;
    let authorize = |xff: &'static str| {
        app.http
            .get(app.url("/oauth2/authorize"))
            .header("x-forwarded-for", xff)
            .send()
    };
    expect_status(authorize("10.1.1.1, 203.0.113.9").await.expect("r"), 302).await;
    expect_status(authorize("10.2.2.2, 203.0.113.9").await.expect("r"), 302).await;
    // Changing the client-supplied (left) part does not give a new budget.
    assert_rate_limited(authorize("10.3.3.3, 203.0.113.9").await.expect("r")).await;
    assert_rate_limited(authorize("203.0.113.9").await.expect("r")).await;
    // A different address as seen by the proxy does.
    expect_status(authorize("10.1.1.1, 203.0.113.10").await.expect("r"), 302).await;
    // No header: the socket address counts, which has its own budget.
    let r = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("r");
    expect_status(r, 302).await;
}

#[tokio::test]
async fn liveness_is_plain_and_readiness_reports_the_last_salesforce_call_without_calling_it() {
    let app = TestApp::builder().spawn().await;
    let live = app.http.get(app.url("/healthz")).send().await.expect("h");
    let live = expect_status(live, 200).await;
    let live: serde_json::Value = live.json().await.expect("json");
    assert_eq!(live["status"], "ok");

    let ready = |app: &TestApp| {
        let request = app.http.get(app.url("/readyz"));
        async move {
            let r = request.send().await.expect("readyz");
            let r = expect_status_for(r, 200, "degraded is reported, not a failed probe").await;
            r.json::<serde_json::Value>().await.expect("json")
        }
    };
    let fresh = ready(&app).await;
    assert_eq!(fresh["status"], "ready");
    assert_eq!(fresh["config"], "loaded");
    assert!(fresh["salesforce"]["last_call"].is_null());

    let calls_before = app.emulator.stats();
    for _ in 0..5 {
        ready(&app).await;
    }
    assert_eq!(
        format!("{:?}", app.emulator.stats()),
        format!("{calls_before:?}"),
        "probes never call Salesforce"
    );

    let alice = app.tokens(ALICE.0);
    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let r = app
        .get_with_token("/api/me", &alice.access_token, &alice.instance_url)
        .await;
    expect_status(r, 502).await;
    let degraded = ready(&app).await;
    assert_eq!(degraded["status"], "degraded");
    assert_eq!(degraded["salesforce"]["last_call"]["ok"], false);
    assert_eq!(degraded["salesforce"]["last_call"]["endpoint"], "userinfo");
    assert!(degraded["salesforce"]["last_call"]["error"].is_string());

    app.emulator.set_fault(Fault::None);
    let r = app
        .get_with_token("/api/me", &alice.access_token, &alice.instance_url)
        .await;
    expect_status(r, 200).await;
    let recovered = ready(&app).await;
    assert_eq!(recovered["status"], "ready");
    assert_eq!(recovered["salesforce"]["last_call"]["ok"], true);
    assert!(recovered["identity_cache_entries"].is_u64());
}

#[tokio::test]
async fn a_failed_token_call_also_marks_readiness_degraded() {
    let app = TestApp::builder().password_flow().spawn().await;
    app.emulator.set_fault_for(Endpoint::Token, Fault::Garbage);
    let r = password_grant(&app, ALICE).await;
    expect_status(r, 502).await;
    let ready: serde_json::Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("r")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["salesforce"]["last_call"]["endpoint"], "token");
}

#[tokio::test]
async fn oversized_headers_get_431_and_the_server_keeps_serving() {
    let app = TestApp::builder().spawn().await;
    sfgate::crypto::install_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    let big = "a".repeat(64 * 1024);
    let r = client
        .get(app.url("/healthz"))
        .header("x-big", &big)
        .send()
        .await
        .expect("answered, not hung");
    expect_status(r, 431).await;
    // The same through several headers, on a limited route and on a protected one.
    for path in ["/oauth2/authorize", "/api/me"] {
        let mut request = client.get(app.url(path));
        for i in 0..8 {
            request = request.header(format!("x-part-{i}"), "b".repeat(8 * 1024));
        }
        let r = request.send().await.expect("answered");
        expect_status_for(r, 431, &path).await;
    }
    // Far past hyper's own buffer: refused by hyper (431) or the connection is closed, but
    // never a hang or a crash.
    let huge = "c".repeat(1024 * 1024);
    match client
        .get(app.url("/healthz"))
        .header("x-huge", &huge)
        .send()
        .await
    {
        Ok(r) => assert!(
            r.status() == 431 || r.status() == 400,
            "status {}",
            r.status()
        ),
        Err(e) => assert!(!e.is_timeout(), "hung: {e}"),
    }
    let r = client
        .get(app.url("/healthz"))
        .header("x-ok", "a".repeat(4 * 1024))
        .send()
        .await
        .expect("healthz");
    expect_status(r, 200).await;
}

#[tokio::test]
async fn own_request_bodies_are_limited_to_64_kb() {
    let app = TestApp::builder().password_flow().spawn().await;
    let body = format!("username=x&password={}", "p".repeat(70 * 1024));
    let r = app
        .http
        .post(app.url("/oauth2/password"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("r");
    expect_status(r, 413).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let limits = sfgate::server::ConnectionLimits {
        header_read_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sfgate::server::serve(
        listener,
        app,
        async {
            let _ = stopped.await;
        },
        limits,
    ));

    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A complete request on the same server is answered as usual.
    sfgate::crypto::install_tls_provider();
    let ok = reqwest::get(format!("http://{addr}/")).await.expect("get");
    assert_eq!(ok.text().await.expect("text"), "ok");
    let _ = stop.send(());
    server.await.expect("join").expect("served");
}
