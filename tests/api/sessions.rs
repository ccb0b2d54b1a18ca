//! Browser sessions under real conditions: bursts of requests with an expired session,
//! Salesforce's refresh-token rotation, replayed old cookies, the session's maximum age, the
//! same-origin rule for cookie-authenticated refresh and logout, the reload-safe callback, and
//! what logout revokes. The real gateway and the emulator, on loopback.

use crate::common::*;
use futures_util::future::join_all;
use sfgate_emulator::{Endpoint, Fault};
use std::time::Duration;

/// A gateway whose identity cache is off, so an access token the emulator expired is seen as
/// expired at once (with the cache, the gateway would keep trusting it for a minute).
async fn app_with(extra: &[(&str, &str)]) -> TestApp {
    TestApp::builder()
        .env("IDENTITY_CACHE_TTL", "0")
        .envs(extra)
        .spawn()
        .await
}

fn clears_session(headers: &reqwest::header::HeaderMap) -> bool {
    set_cookies(headers)
        .iter()
        .any(|c| c.starts_with("sfgate_session=;"))
}

fn max_age(headers: &reqwest::header::HeaderMap) -> u64 {
    let cookie = set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;"))
        .expect("a session cookie");
    cookie
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Max-Age in {cookie}"))
}

/// Logs Alice in through the emulator's form; returns the session cookie pair.
async fn log_in(app: &TestApp) -> String {
    let browser = browser_client();
    let r = app.login(&browser, ALICE).await;
    let r = expect_status_for(r, 303, "the callback redirects").await;
    session_pair(r.headers()).expect("the callback sets the session cookie")
}

/// GET `path` with exactly this cookie (no jar: every request shows what it carried).
async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    plain_client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request")
}

/// 20 requests at once with the same expired session; all must pass with one refresh call,
/// and every cookie they hand back must work for the next request without another.
async fn burst_shares_one_refresh(app: &TestApp, path_of: impl Fn(usize) -> String) {
    app.emulator.set_refresh_token_rotation(true);
    let cookie = log_in(app).await;
    app.emulator.expire_access_tokens();
    // A slow token endpoint keeps the renewal in flight while the burst arrives.
    app.emulator
        .set_fault_for(Endpoint::Token, Fault::Slow(Duration::from_millis(300)));
    let before = app.emulator.refresh_calls();
    let paths: Vec<String> = (0..20).map(&path_of).collect();
    let answers = join_all(paths.iter().map(|p| get_with_cookie(app, p, &cookie))).await;
    let mut renewed = Vec::new();
    for (i, r) in answers.into_iter().enumerate() {
        let context = format!("request {i}: {:?}", r.headers());
        let r = expect_status_for(r, 200, context).await;
        assert!(
            !clears_session(r.headers()),
            "request {i} cleared the session"
        );
        renewed.extend(session_pair(r.headers()));
    }
    assert_eq!(
        app.emulator.refresh_calls(),
        before + 1,
        "the burst shares one refresh call"
    );
    assert!(
        !renewed.is_empty(),
        "the renewed cookie reached the browser"
    );
    for (i, cookie) in renewed.iter().enumerate() {
        let r = get_with_cookie(app, &path_of(100 + i), cookie).await;
        expect_status_for(r, 200, format!("renewed cookie {i} works")).await;
    }
    assert_eq!(
        app.emulator.refresh_calls(),
        before + 1,
        "renewed cookies need no further refresh"
    );
}

#[tokio::test]
async fn a_burst_on_an_expired_session_shares_one_refresh_under_rotation() {
    let app = app_with(&[]).await;
    burst_shares_one_refresh(&app, |_| "/api/me".to_string()).await;
}

#[tokio::test]
async fn a_burst_of_proxied_requests_on_an_expired_session_shares_one_refresh() {
    let upstream = StubServer::start(200, "text/javascript", "/* asset */".to_string()).await;
    let app = app_with(&[("UPSTREAM_URL", &upstream.url())]).await;
    burst_shares_one_refresh(&app, |i| format!("/app/asset-{i}.js")).await;
    assert!(upstream.hits() >= 20, "the assets reached the upstream");
}

#[tokio::test]
async fn the_old_cookie_replayed_five_seconds_after_a_renewal_gets_the_new_session() {
    // The default SESSION_RENEWAL_GRACE (30 s) covers it.
    let app = app_with(&[]).await;
    app.emulator.set_refresh_token_rotation(true);
    let old = log_in(&app).await;
    app.emulator.expire_access_tokens();
    let before = app.emulator.refresh_calls();
    let first = get_with_cookie(&app, "/api/me", &old).await;
    let first = expect_status(first, 200).await;
    let new = session_pair(first.headers()).expect("renewed cookie");
    assert_eq!(app.emulator.refresh_calls(), before + 1);

    tokio::time::sleep(Duration::from_secs(5)).await;
    let replay = get_with_cookie(&app, "/api/me", &old).await;
    let replay = expect_status_for(replay, 200, "the old cookie still works").await;
    assert_eq!(
        app.emulator.refresh_calls(),
        before + 1,
        "no second refresh: the rotated-out refresh token was not spent again"
    );
    let replayed = session_pair(replay.headers()).expect("the replay gets the new cookie");
    for cookie in [new, replayed] {
        expect_status(get_with_cookie(&app, "/api/me", &cookie).await, 200).await;
    }
    assert_eq!(app.emulator.refresh_calls(), before + 1);
}

#[tokio::test]
async fn after_the_grace_window_a_rotated_out_refresh_token_ends_only_the_old_cookie() {
    let app = app_with(&[("SESSION_RENEWAL_GRACE", "1")]).await;
    app.emulator.set_refresh_token_rotation(true);
    let old = log_in(&app).await;
    app.emulator.expire_access_tokens();
    let first = get_with_cookie(&app, "/api/me", &old).await;
    let first = expect_status(first, 200).await;
    let new = session_pair(first.headers()).expect("renewed cookie");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = app.emulator.refresh_calls();
    let replay = get_with_cookie(&app, "/api/me", &old).await;
    let replay = expect_status_for(replay, 401, "Salesforce refused the spent refresh token").await;
    assert!(clears_session(replay.headers()));
    assert_eq!(app.emulator.refresh_calls(), before + 1);
    // The session that holds the new refresh token is untouched, and renews with it.
    app.emulator.expire_access_tokens();
    let r = get_with_cookie(&app, "/api/me", &new).await;
    expect_status_for(r, 200, "the session stored the rotated refresh token").await;
    assert_eq!(app.emulator.refresh_calls(), before + 2);
}

#[tokio::test]
async fn a_transient_renewal_failure_answers_503_and_keeps_the_session() {
    let app = app_with(&[]).await;
    let cookie = log_in(&app).await;
    app.emulator.expire_access_tokens();
    for fault in [Fault::ServerError, Fault::CloseConnection] {
        app.emulator.set_fault_for(Endpoint::Token, fault.clone());
        let r = get_with_cookie(&app, "/api/me", &cookie).await;
        let r = expect_status_for(r, 503, format!("{fault:?}")).await;
        assert!(r.headers().contains_key("retry-after"), "{fault:?}");
        assert!(!clears_session(r.headers()), "{fault:?} kept the cookie");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    app.emulator.set_fault_for(Endpoint::Token, Fault::None);
    let r = get_with_cookie(&app, "/api/me", &cookie).await;
    let r = expect_status_for(r, 200, "the same cookie renews once Salesforce is back").await;
    assert!(session_pair(r.headers()).is_some());
}

#[tokio::test]
async fn cookie_refresh_renews_the_cookie_and_answers_without_tokens() {
    let app = app_with(&[]).await;
    // A JSON login, to know the session's tokens.
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "allow")
        .await;
    let login = get_accepting(&browser, callback, "application/json").await;
    let login = expect_status(login, 200).await;
    let cookie = session_pair(login.headers()).expect("session cookie");
    let tokens: serde_json::Value = login.json().await.expect("json");
    let refresh_token = tokens["refresh_token"].as_str().expect("rt").to_string();
    let access_token = tokens["access_token"].as_str().expect("at").to_string();

    let r = plain_client()
        .post(app.url("/oauth2/refresh"))
        .header("cookie", &cookie)
        .header("origin", &app.base)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("refresh");
    let r = expect_status(r, 200).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let renewed = session_pair(r.headers()).expect("renewed cookie");
    let text = r.text().await.expect("body");
    let body: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["renewed"], true);
    assert!(body["expires_at"].as_u64().expect("expires_at") > 0);
    for field in ["access_token", "refresh_token", "id_token"] {
        assert!(body.get(field).is_none(), "{field} in {text}");
    }
    assert!(!text.contains(&refresh_token) && !text.contains(&access_token));
    assert!(
        !text.contains("5Aep861"),
        "no refresh token of any kind: {text}"
    );
    expect_status(get_with_cookie(&app, "/api/me", &renewed).await, 200).await;

    // An API client that sends its own refresh token still gets tokens.
    let r = app
        .http
        .post(app.url("/oauth2/refresh"))
        .form(&[("refresh_token", refresh_token.as_str())])
        .send()
        .await
        .expect("refresh");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn cross_site_refresh_and_logout_are_refused_and_change_nothing() {
    let app = app_with(&[]).await;
    let cookie = log_in(&app).await;
    let foreign: [&[(&str, &str)]; 5] = [
        &[("origin", "http://evil.example")],
        &[
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ],
        &[("origin", "null"), ("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
    ];
    for path in ["/oauth2/refresh", "/oauth2/logout"] {
        for headers in foreign {
            for accept in ["application/json", "text/html"] {
                let mut request = plain_client()
                    .post(app.url(path))
                    .header("cookie", &cookie)
                    .header("accept", accept);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let r = request.send().await.expect("request");
                let what = format!("{path} with {headers:?}, accept {accept}");
                let r = expect_status_for(r, 403, &what).await;
                assert!(set_cookies(r.headers()).is_empty(), "{what} set a cookie");
                if accept == "application/json" {
                    let body: serde_json::Value = r.json().await.expect("json");
                    assert_eq!(body["error"], "cross_site_request", "{what}");
                }
            }
        }
    }
    assert_eq!(
        app.emulator.calls(Endpoint::Revoke),
        0,
        "nothing was revoked"
    );
    assert_eq!(app.emulator.refresh_calls(), 0, "nothing was renewed");
    expect_status_for(
        get_with_cookie(&app, "/api/me", &cookie).await,
        200,
        "the session survived",
    )
    .await;

    // From sfgate's own page (whose no-referrer policy makes browsers send `Origin: null`),
    // logout works.
    let r = plain_client()
        .post(app.url("/oauth2/logout"))
        .header("cookie", &cookie)
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .header("accept", "text/html")
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 303).await;
    assert!(clears_session(r.headers()));
    assert!(app.emulator.calls(Endpoint::Revoke) >= 1);
}

#[tokio::test]
async fn sessions_end_at_their_maximum_age_and_renewal_never_extends_it() {
    let app = app_with(&[("SESSION_MAX_AGE", "6"), ("SESSION_TTL", "3600")]).await;
    let browser = browser_client();
    let r = app.login(&browser, ALICE).await;
    assert!(max_age(r.headers()) <= 6, "{:?}", r.headers());
    let cookie = session_pair(r.headers()).expect("cookie");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.emulator.expire_access_tokens();
    let renewal = get_with_cookie(&app, "/api/me", &cookie).await;
    let renewal = expect_status(renewal, 200).await;
    assert!(
        max_age(renewal.headers()) <= 5,
        "the renewed cookie ends with the session, not SESSION_TTL later"
    );
    let renewed = session_pair(renewal.headers()).expect("renewed");

    tokio::time::sleep(Duration::from_millis(5500)).await;
    // Replayed past the maximum age (a browser would have dropped them): refused, cleared.
    for c in [&cookie, &renewed] {
        let r = get_with_cookie(&app, "/api/me", c).await;
        let r = expect_status(r, 401).await;
        assert!(clears_session(r.headers()));
    }
}

#[tokio::test]
async fn sessions_default_to_a_seven_day_maximum_age() {
    let app = app_with(&[("SESSION_TTL", "30000000")]).await;
    let browser = browser_client();
    let r = app.login(&browser, ALICE).await;
    let age = max_age(r.headers());
    assert!(
        (7 * 24 * 3600 - 5..=7 * 24 * 3600).contains(&age),
        "Max-Age {age}"
    );
}

/// A login that came back from Salesforce's form: the callback URL and the login cookie.
async fn pending_login(app: &TestApp) -> (String, String) {
    let login = crate::helpers::login_cookies::pending_login(app).await;
    (app.url(&login.callback), login.login_cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_callbacks_with_the_same_state_let_exactly_one_through() {
    let app = TestApp::builder().spawn().await;
    for round in 0..5 {
        let (callback, login_cookie) = pending_login(&app).await;
        // A slow token endpoint would let a second callback reach Salesforce too, if both
        // passed the state check.
        app.emulator
            .set_fault_for(Endpoint::Token, Fault::Slow(Duration::from_millis(200)));
        let token_calls = app.emulator.calls(Endpoint::Token);
        let send = || {
            let (callback, cookie) = (callback.clone(), login_cookie.clone());
            tokio::spawn(async move {
                plain_client()
                    .get(callback)
                    .header("cookie", cookie)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .expect("callback")
                    .status()
                    .as_u16()
            })
        };
        let (a, b) = (send(), send());
        let mut statuses = vec![a.await.expect("task"), b.await.expect("task")];
        statuses.sort_unstable();
        assert_eq!(statuses, vec![200, 400], "round {round}");
        assert_eq!(
            app.emulator.calls(Endpoint::Token),
            token_calls + 1,
            "round {round}: the loser never reached Salesforce"
        );
    }
}

#[tokio::test]
async fn the_callback_redirects_and_a_reload_or_back_lands_on_the_welcome_page() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "allow")
        .await;
    let r = get_accepting(&browser, &callback, "text/html").await;
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/oauth2/welcome");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let token_calls = app.emulator.calls(Endpoint::Token);

    let page = get_accepting(&browser, app.url("/oauth2/welcome"), "text/html").await;
    let page = expect_status(page, 200).await;
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.expect("html");
    assert!(html.contains("Welcome, Alice Admin"), "{html}");
    assert!(!html.contains("5Aep861"), "no refresh token on the page");

    // Reload (or Back to) the callback: the login cookie is gone, the session is not.
    for _ in 0..2 {
        let again = get_accepting(&browser, &callback, "text/html").await;
        let again = expect_status(again, 303).await;
        assert_eq!(location(again.headers()), "/oauth2/welcome");
        assert!(!clears_session(again.headers()));
    }
    // A JSON caller replaying it gets the error, and nothing reached Salesforce.
    let json = get_accepting(&browser, &callback, "application/json").await;
    expect_status(json, 400).await;
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls);

    // Without a session the welcome page sends the browser home.
    let r = app
        .http
        .get(app.url("/oauth2/welcome"))
        .send()
        .await
        .expect("welcome");
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/");
}

#[tokio::test]
async fn in_gateway_mode_the_welcome_page_shows_no_token() {
    let upstream = StubServer::start(200, "text/plain", "app".to_string()).await;
    let app = app_with(&[("UPSTREAM_URL", &upstream.url())]).await;
    let cookie = log_in(&app).await;
    let html = get_with_cookie(&app, "/oauth2/welcome", &cookie)
        .await
        .text()
        .await
        .expect("html");
    assert!(html.contains("Welcome, Alice Admin"), "{html}");
    assert!(
        !html.contains("access-token") && !html.contains("Bearer"),
        "{html}"
    );
}

#[tokio::test]
async fn api_logout_revokes_the_refresh_token_it_is_given_and_says_so() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let refresh = t.refresh_token.clone().expect("refresh token");
    let r = app
        .http
        .post(app.url("/oauth2/logout"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .form(&[("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["logged_out"], true);
    assert_eq!(
        body["revoked"],
        serde_json::json!(["access_token", "refresh_token"])
    );
    assert!(app.emulator.is_revoked(&t.access_token));
    assert!(app.emulator.is_revoked(&refresh));

    // A browser session's logout revokes its refresh token, which takes the access token along.
    let cookie = log_in(&app).await;
    let r = plain_client()
        .post(app.url("/oauth2/logout"))
        .header("cookie", &cookie)
        .header("accept", "application/json")
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 200).await;
    assert!(clears_session(r.headers()));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        body["revoked"],
        serde_json::json!(["refresh_token", "access_token"])
    );
    expect_status(get_with_cookie(&app, "/api/me", &cookie).await, 401).await;
}
