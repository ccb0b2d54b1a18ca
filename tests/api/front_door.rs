//! The front door oauth2-proxy users know: in gateway mode sfgate answers under `/oauth2/`
//! only and the app owns every other path, `/` included; metrics live on a listener of their
//! own; `/oauth2/sign_in`, `/oauth2/sign_out?rd=` and `/oauth2/userinfo` mean what they mean
//! in oauth2-proxy.

use crate::common::*;
use crate::helpers::upstream::start_echo;
use sfgate_emulator::Endpoint;

/// A gateway in front of the echo app, and a caller's token.
async fn gateway(extra: &[(&str, &str)]) -> (TestApp, StubServer) {
    let upstream = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&upstream.url())
        .envs(extra)
        .spawn()
        .await;
    (app, upstream)
}

async fn echoed_path(response: reqwest::Response) -> String {
    let r = expect_status(response, 200).await;
    let body: serde_json::Value = r.json().await.expect("echo json");
    body["path"].as_str().expect("path").to_string()
}

#[tokio::test]
async fn in_gateway_mode_the_root_and_former_sfgate_paths_reach_the_app() {
    let (app, upstream) = gateway(&[]).await;
    let t = app.tokens(ALICE.0);
    for path in [
        "/",
        "/api/me",
        "/secured",
        "/healthz",
        "/readyz",
        "/assets/app.css",
        "/favicon.ico",
        "/.well-known/jwks.json",
    ] {
        let r = app
            .get_with_token(path, &t.access_token, &t.instance_url)
            .await;
        assert_eq!(echoed_path(r).await, path, "{path} goes to the app");
    }
    assert!(upstream.hits() >= 8);
}

#[tokio::test]
async fn in_gateway_mode_sfgate_answers_under_its_prefix() {
    let (app, upstream) = gateway(&[]).await;
    let r = app
        .http
        .get(app.url("/oauth2/healthz"))
        .send()
        .await
        .expect("healthz");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    let r = app
        .http
        .get(app.url("/oauth2/readyz"))
        .send()
        .await
        .expect("readyz");
    let body: serde_json::Value = expect_status(r, 200).await.json().await.expect("json");
    assert_eq!(body["config"], "loaded");
    for asset in ["sfgate.css", "sfgate.js", "favicon.svg"] {
        let r = app
            .http
            .get(app.url(&format!("/oauth2/assets/{asset}")))
            .send()
            .await
            .expect("asset");
        expect_status_for(r, 200, asset).await;
    }
    let r = app
        .http
        .get(app.url("/oauth2/sign_in"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("sign in");
    let page = expect_status(r, 200).await.text().await.expect("html");
    assert!(page.contains("Log in with Salesforce"), "{page}");
    assert!(
        page.contains("/oauth2/assets/sfgate.css"),
        "the page's assets are sfgate's"
    );
    // An unknown path under the prefix is sfgate's 404, never the app's.
    let r = app
        .http
        .get(app.url("/oauth2/nothing-here"))
        .send()
        .await
        .expect("r");
    expect_status(r, 404).await;
    assert_eq!(upstream.hits(), 0, "nothing under /oauth2/ reached the app");
}

#[tokio::test]
async fn in_gateway_mode_metrics_are_not_on_the_main_port_but_on_metrics_addr() {
    let (app, _upstream) = gateway(&[("METRICS_ADDR", "127.0.0.1:0")]).await;
    let t = app.tokens(ALICE.0);
    // Through the main port, /metrics is the app's path: login first, then the app answers.
    let r = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    expect_status_for(r, 401, "the app's /metrics needs a login like any path").await;
    let r = app
        .get_with_token("/metrics", &t.access_token, &t.instance_url)
        .await;
    assert_eq!(echoed_path(r).await, "/metrics");
    let metrics_addr = app.gateway.metrics_addr.expect("metrics listener");
    let r = app
        .http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("metrics listener");
    let text = expect_status(r, 200).await.text().await.expect("text");
    assert!(text.contains("sfgate_"), "Prometheus text: {text}");
    // The metrics listener serves metrics alone.
    let r = app
        .http
        .get(format!("http://{metrics_addr}/oauth2/healthz"))
        .send()
        .await
        .expect("r");
    expect_status(r, 404).await;
}

#[tokio::test]
async fn standalone_with_metrics_addr_serves_metrics_there_only() {
    let app = TestApp::builder()
        .env("METRICS_ADDR", "127.0.0.1:0")
        .spawn()
        .await;
    let r = app.http.get(app.url("/metrics")).send().await.expect("r");
    expect_status(r, 404).await;
    let addr = app.gateway.metrics_addr.expect("metrics listener");
    let r = app
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("r");
    expect_status(r, 200).await;
    // Standalone mode keeps its root paths and answers the prefixed ones too.
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/oauth2/healthz",
        "/oauth2/sign_in",
    ] {
        let r = app.http.get(app.url(path)).send().await.expect("r");
        expect_status_for(r, 200, path).await;
    }
}

#[tokio::test]
async fn userinfo_answers_the_callers_identity_in_oauth2_proxy_and_sfgate_fields() {
    for gateway_mode in [false, true] {
        let (app, _upstream) = if gateway_mode {
            let (a, u) = gateway(&[]).await;
            (a, Some(u))
        } else {
            (TestApp::builder().spawn().await, None)
        };
        let t = app.tokens(ALICE.0);
        let r = app
            .get_with_token("/oauth2/userinfo", &t.access_token, &t.instance_url)
            .await;
        let r = expect_status(r, 200).await;
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["email"], ALICE.0, "{body}");
        assert_eq!(body["preferredUsername"], ALICE.0, "{body}");
        assert_eq!(body["user"], body["user_id"], "{body}");
        assert_eq!(
            body["organization_id"].as_str().map(|o| &o[..15]),
            Some(ACME)
        );
        assert_eq!(body["instance_url"], t.instance_url.trim_end_matches('/'));

        // No credentials: 401 JSON, never a redirect, even for a browser's Accept.
        let r = app
            .http
            .get(app.url("/oauth2/userinfo"))
            .send()
            .await
            .expect("r");
        let r = expect_status(r, 401).await;
        let body: serde_json::Value = r.json().await.expect("json error");
        assert!(body["error"].is_string() && body["error_description"].is_string());
        let r = app
            .http
            .get(app.url("/oauth2/userinfo"))
            .header("accept", "text/html")
            .send()
            .await
            .expect("r");
        expect_status(r, 401).await;

        // A browser session works too.
        let browser = browser_client();
        expect_status(app.login(&browser, ALICE).await, 303).await;
        let r = browser
            .get(app.url("/oauth2/userinfo"))
            .send()
            .await
            .expect("r");
        let body: serde_json::Value = expect_status(r, 200).await.json().await.expect("json");
        assert_eq!(body["preferredUsername"], ALICE.0);
    }
}

#[tokio::test]
async fn sign_out_logs_out_revokes_and_lands_on_a_same_site_rd() {
    let (app, _upstream) = gateway(&[]).await;
    for method in ["GET", "POST"] {
        let browser = browser_client();
        expect_status(app.login(&browser, ALICE).await, 303).await;
        let revocations = app.emulator.calls(Endpoint::Revoke);
        let request = match method {
            "GET" => browser.get(app.url("/oauth2/sign_out?rd=%2Fafter%3Ftab%3D1")),
            _ => browser.post(app.url("/oauth2/sign_out?rd=/after?tab=1")),
        };
        let r = request.send().await.expect("sign out");
        let r = expect_status_for(r, 302, method).await;
        assert_eq!(location(r.headers()), "/after?tab=1");
        assert!(
            set_cookies(r.headers())
                .iter()
                .any(|c| c.starts_with("sfgate_session=;")),
            "the cookie is cleared"
        );
        assert!(
            app.emulator.calls(Endpoint::Revoke) > revocations,
            "the refresh token is revoked at Salesforce"
        );
        let r = browser
            .get(app.url("/oauth2/userinfo"))
            .send()
            .await
            .expect("r");
        expect_status_for(r, 401, "signed out").await;
    }
    // Without rd: sfgate's sign-in page with the notice (in gateway mode `/` is the app's).
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .get(app.url("/oauth2/sign_out"))
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 302).await;
    assert_eq!(location(r.headers()), "/oauth2/sign_in?logout=done");
    // The old route keeps its answer, now pointing at the sign-in page in gateway mode.
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .post(app.url("/oauth2/logout"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/oauth2/sign_in?logout=done");
}

#[tokio::test]
async fn sign_out_never_redirects_off_site() {
    let app = TestApp::builder().spawn().await;
    // Raw query strings: each decodes to something that is not a same-origin path.
    let offsite = [
        "//evil.example",
        "%2F%2Fevil.example",
        "/%2Fevil.example",
        "/\\evil.example",
        "%2F%5Cevil.example",
        "/%5Cevil.example",
        "https://evil.example",
        "https%3A%2F%2Fevil.example",
        "%09//evil.example",
        "/%09/evil.example",
        "%20//evil.example",
        "/%0d%0a/evil.example",
        "evil.example",
        "\\\\evil.example",
        "%5C%5Cevil.example",
        "javascript:alert(1)",
    ];
    for rd in offsite {
        let browser = browser_client();
        expect_status(app.login(&browser, ALICE).await, 303).await;
        let r = browser
            .get(app.url(&format!("/oauth2/sign_out?rd={rd}")))
            .send()
            .await
            .expect("sign out");
        let r = expect_status_for(r, 302, rd).await;
        assert_eq!(
            location(r.headers()),
            "/?logout=done",
            "rd={rd} is dropped, the logout still happens"
        );
    }
    // A parameter given twice is refused before anything changes.
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .get(app.url("/oauth2/sign_out?rd=/a&rd=//evil.example"))
        .send()
        .await
        .expect("r");
    expect_status(r, 400).await;
    let r = browser
        .get(app.url("/oauth2/userinfo"))
        .send()
        .await
        .expect("r");
    expect_status_for(r, 200, "still logged in").await;
}

#[tokio::test]
async fn a_cross_site_sign_out_changes_nothing() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .get(app.url("/oauth2/sign_out?rd=/"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("r");
    expect_status(r, 403).await;
    let r = browser
        .get(app.url("/oauth2/userinfo"))
        .send()
        .await
        .expect("r");
    expect_status_for(r, 200, "still logged in").await;
}

#[tokio::test]
async fn the_sample_apps_own_root_shows_who_is_logged_in_and_links_sign_out() {
    let upstream = sfgate::demo::sample_app::SampleApp::start()
        .await
        .expect("sample app");
    let app = TestApp::builder()
        .gateway_for(&upstream.base_url())
        .spawn()
        .await;
    // A browser without a session is sent to log in, and comes back to the app's `/`.
    let r = app
        .http
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/oauth2/authorize?return_to=%2F");
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    let page = expect_status(r, 200).await.text().await.expect("html");
    assert!(page.contains("Hello from the sample app"), "{page}");
    assert!(
        page.contains(r#"Logged in as <strong id="user">alice@acme.example</strong>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"href="/oauth2/sign_out?rd=/oauth2/sign_in""#),
        "{page}"
    );
    let r = browser
        .get(app.url("/oauth2/sign_out?rd=/oauth2/sign_in"))
        .send()
        .await
        .expect("sign out");
    let r = expect_status(r, 302).await;
    assert_eq!(location(r.headers()), "/oauth2/sign_in");
}
