//! `PROXY_PREFIX`: oauth2-proxy users move sfgate's namespace (`--proxy-prefix=/sso`) when their
//! app itself uses `/oauth2`. Every path sfgate owns moves under the prefix, in both modes, and
//! the pages, redirects and forward auth's redirect follow; `/oauth2/...` is then the app's.

use crate::common::*;
use crate::helpers::upstream::start_echo;
use serde_json::Value;

/// An sfgate with `PROXY_PREFIX=/sso/` (a trailing slash is dropped) whose callback is
/// `/sso/callback`, in gateway mode in front of the echo app when `upstream` is given.
async fn sfgate_at_sso(upstream: Option<&StubServer>, extra: &[(&str, &str)]) -> TestApp {
    let at_sso = |uri: &str| uri.replace("/oauth2/callback", "/sso/callback");
    let mut builder = TestApp::builder()
        .emulator(move |emulator| {
            emulator.redirect_uris = emulator.redirect_uris.iter().map(|u| at_sso(u)).collect();
        })
        .configure(move |env| {
            let redirect = at_sso(&env["SF_REDIRECT_URI"]);
            env.insert("SF_REDIRECT_URI".into(), redirect);
        })
        .env("PROXY_PREFIX", "/sso/");
    if let Some(upstream) = upstream {
        builder = builder.gateway_for(&upstream.url());
    }
    builder.envs(extra).spawn().await
}

async fn echoed(response: reqwest::Response, why: &str) -> Value {
    let r = expect_status_for(response, 200, why).await;
    r.json().await.expect("echo json")
}

#[tokio::test]
async fn a_browser_login_through_the_prefix_start_lands_on_rd_at_the_app() {
    let upstream = start_echo().await;
    let app = sfgate_at_sso(Some(&upstream), &[]).await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(&browser, "/sso/start?rd=%2Fx%3Fy%3D1", ALICE, "allow")
        .await;
    assert!(
        callback.starts_with(&format!("{}/sso/callback?", app.base)),
        "Salesforce returns to the callback under the prefix: {callback}"
    );
    let r = get_accepting(&browser, callback, "text/html").await;
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/x?y=1");
    let r = browser.get(app.url("/x?y=1")).send().await.expect("app");
    let body = echoed(r, "the app answers the logged-in browser").await;
    assert_eq!(body["path"], "/x");
    assert_eq!(
        received(&body, "x-forwarded-preferred-username"),
        vec![ALICE.0.to_string()]
    );
    // Without `rd`, the welcome page under the prefix.
    let browser = browser_client();
    let r = app.login_via(&browser, "/sso/authorize").await;
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/sso/welcome");
    let r = browser
        .get(app.url("/sso/welcome"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("welcome");
    let page = expect_status(r, 200).await.text().await.expect("html");
    assert!(page.contains(ALICE.0), "{page}");
    assert_own_links_only_under_sso(&page);
}

trait LoginVia {
    async fn login_via(&self, browser: &reqwest::Client, start: &str) -> reqwest::Response;
}

impl LoginVia for TestApp {
    async fn login_via(&self, browser: &reqwest::Client, start: &str) -> reqwest::Response {
        let callback = self
            .authorize_at_emulator(browser, start, ALICE, "allow")
            .await;
        get_accepting(browser, callback, "text/html").await
    }
}

/// The page names sfgate's routes and assets under `/sso` only.
fn assert_own_links_only_under_sso(page: &str) {
    assert!(page.contains("\"/sso/assets/sfgate.css\""), "{page}");
    assert!(page.contains("\"/sso/assets/sfgate.js\""), "{page}");
    assert!(
        !page.contains("/oauth2/"),
        "no link to the default prefix: {page}"
    );
}

#[tokio::test]
async fn with_another_prefix_the_default_prefix_belongs_to_the_app() {
    let upstream = start_echo().await;
    let app = sfgate_at_sso(Some(&upstream), &[]).await;
    let t = app.tokens(ALICE.0);
    for path in [
        "/oauth2/start",
        "/oauth2/sign_in",
        "/oauth2/healthz",
        "/oauth2/auth",
        "/oauth2/callback",
        "/oauth2/assets/sfgate.css",
        "/oauth2",
    ] {
        let r = app
            .get_with_token(path, &t.access_token, &t.instance_url)
            .await;
        assert_eq!(echoed(r, path).await["path"], path, "{path} is the app's");
    }
    // A browser without a session is sent to the login under the prefix, back to the app's
    // `/oauth2/start` afterwards.
    let r = app
        .http
        .get(app.url("/oauth2/start?rd=/y"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 303).await;
    assert_eq!(
        location(r.headers()),
        "/sso/authorize?return_to=%2Foauth2%2Fstart%3Frd%3D%2Fy"
    );
    let before = upstream.hits();
    for path in ["/sso", "/sso/nothing-here", "/sso/start/x"] {
        let r = app.http.get(app.url(path)).send().await.expect("r");
        expect_status_for(r, 404, path).await;
    }
    assert_eq!(
        upstream.hits(),
        before,
        "nothing under /sso reached the app"
    );
}

#[tokio::test]
async fn health_pages_and_assets_move_under_the_prefix() {
    let upstream = start_echo().await;
    let app = sfgate_at_sso(Some(&upstream), &[]).await;
    let r = app
        .http
        .get(app.url("/sso/healthz"))
        .send()
        .await
        .expect("r");
    let body: Value = expect_status(r, 200).await.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    let r = app
        .http
        .get(app.url("/sso/readyz"))
        .send()
        .await
        .expect("r");
    expect_status(r, 200).await;
    for asset in ["sfgate.css", "sfgate.js", "favicon.svg"] {
        let r = app
            .http
            .get(app.url(&format!("/sso/assets/{asset}")))
            .send()
            .await
            .expect("asset");
        expect_status_for(r, 200, asset).await;
    }
    let r = app
        .http
        .get(app.url("/sso/sign_in"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("sign in");
    let page = expect_status(r, 200).await.text().await.expect("html");
    assert!(page.contains("\"/sso/authorize\""), "{page}");
    assert_own_links_only_under_sso(&page);
    // An error page for a browser links its assets and the login under the prefix too.
    let r = app
        .http
        .get(app.url("/sso/callback"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("r");
    assert!(r.status().is_client_error(), "{}", r.status());
    let page = r.text().await.expect("html");
    assert!(page.contains("<html"), "{page}");
    assert_own_links_only_under_sso(&page);
    // sfgate's even unconfigured (no ASSERTION_KEY): never the app's.
    let r = app
        .http
        .get(app.url("/sso/jwks.json"))
        .send()
        .await
        .expect("r");
    expect_status(r, 404).await;
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn sign_out_and_logout_answer_under_the_prefix() {
    let upstream = start_echo().await;
    let app = sfgate_at_sso(Some(&upstream), &[]).await;
    let browser = browser_client();
    expect_status(app.login_via(&browser, "/sso/start").await, 303).await;
    let r = browser
        .get(app.url("/sso/userinfo"))
        .send()
        .await
        .expect("r");
    let body: Value = expect_status(r, 200).await.json().await.expect("json");
    assert_eq!(body["preferredUsername"], ALICE.0);
    let r = browser
        .get(app.url("/sso/sign_out"))
        .send()
        .await
        .expect("sign out");
    let r = expect_status(r, 302).await;
    assert_eq!(location(r.headers()), "/sso/sign_in?logout=done");
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=;")));
    let r = browser
        .get(app.url("/sso/userinfo"))
        .send()
        .await
        .expect("r");
    expect_status_for(r, 401, "signed out").await;
    let browser = browser_client();
    expect_status(app.login_via(&browser, "/sso/start").await, 303).await;
    let r = browser
        .post(app.url("/sso/logout"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/sso/sign_in?logout=done");
}

/// Forward auth is at `/sso/auth` (and Envoy's `/sso/auth/<original path>`); a browser is
/// sent to `/sso/start?rd=<original>` where the front proxy expects a redirect.
#[tokio::test]
async fn forward_auth_answers_at_the_prefix_and_redirects_to_its_start() {
    let app = sfgate_at_sso(
        None,
        &[("TRUST_PROXY", "true"), ("FORWARD_AUTH_STYLE", "auto")],
    )
    .await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/sso/auth"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .header("x-original-uri", "/admin/x")
        .send()
        .await
        .expect("r");
    expect_status_for(r, 202, "a caller with a token is admitted").await;
    let r = app
        .http
        .get(app.url("/sso/auth/admin/x"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .send()
        .await
        .expect("r");
    expect_status_for(r, 202, "Envoy's spelling").await;
    let r = app
        .http
        .get(app.url("/sso/auth"))
        .header("accept", "text/html")
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .header("x-forwarded-uri", "/admin/x?y=1")
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 302).await;
    assert_eq!(location(r.headers()), "/sso/start?rd=%2Fadmin%2Fx%3Fy%3D1");
    let r = app
        .http
        .get(app.url("/oauth2/auth"))
        .send()
        .await
        .expect("r");
    expect_status_for(r, 404, "standalone: the default prefix is no route").await;
}

#[tokio::test]
async fn standalone_sfgate_moves_its_prefix_and_keeps_its_root_paths() {
    let app = sfgate_at_sso(None, &[]).await;
    for (path, status) in [
        ("/sso/healthz", 200),
        ("/healthz", 200),
        ("/oauth2/healthz", 404),
        ("/oauth2/start", 404),
    ] {
        let r = app.http.get(app.url(path)).send().await.expect("r");
        expect_status_for(r, status, path).await;
    }
    let r = app
        .http
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("home");
    let page = expect_status(r, 200).await.text().await.expect("html");
    assert!(page.contains("\"/sso/authorize\""), "{page}");
    assert_own_links_only_under_sso(&page);
    let browser = browser_client();
    let r = app.login_via(&browser, "/sso/authorize").await;
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/sso/welcome");
    let r = browser.get(app.url("/api/me")).send().await.expect("r");
    expect_status_for(r, 200, "the session works").await;
}
