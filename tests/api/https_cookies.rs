//! Over HTTPS (an `https` redirect URI) sfgate's cookies are served as `__Host-sfgate_login`
//! and `__Host-sfgate_session`: a browser keeps such a cookie only from the host itself,
//! `Secure`, with `Path=/` and no `Domain`, so no other host of the site can plant one. Only
//! those names, as sent, are read; the app never receives them.

use crate::common::*;
use crate::helpers::login_cookies::{expired_session, session_cookie, value_of};
use crate::helpers::upstream::*;
use serde_json::Value;

/// A gateway its users reach over HTTPS (what its redirect URI says), in front of `echo`.
async fn https_gateway(echo: &StubServer) -> TestApp {
    let https = |uri: &mut String| *uri = uri.replacen("http://", "https://", 1);
    TestApp::builder()
        .gateway_for(&echo.url())
        .emulator(move |emulator| emulator.redirect_uris.iter_mut().for_each(https))
        .configure(move |env| {
            if let Some(uri) = env.get_mut("SF_REDIRECT_URI") {
                https(uri);
            }
        })
        .spawn()
        .await
}

async fn get_with_cookie(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.http
        .get(app.url("/app/page"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn over_https_the_cookies_carry_the_host_prefix_and_only_those_names_are_read() {
    let echo = start_echo().await;
    let app = https_gateway(&echo).await;

    let start = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("authorize");
    let start = expect_status(start, 302).await;
    let login = set_cookies(start.headers());
    let login = login
        .iter()
        .find(|c| c.starts_with("__Host-sfgate_login="))
        .unwrap_or_else(|| panic!("a prefixed login cookie in {login:?}"));
    for attribute in ["Secure", "Path=/", "HttpOnly"] {
        assert!(
            login.split("; ").any(|a| a == attribute),
            "{attribute} in {login}"
        );
    }
    assert!(!login.to_ascii_lowercase().contains("domain="), "{login}");

    let session = session_cookie(&app).await;
    assert!(session.starts_with("__Host-sfgate_session="), "{session}");
    let landed = expect_status(get_with_cookie(&app, &session).await, 200).await;
    let echoed: Value = landed.json().await.expect("the echo's JSON");
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0, "{echoed}");
    assert!(received(&echoed, "cookie").is_empty(), "{echoed}");

    // What another host of the site could set: the plain name (sealed for it, as over plain
    // HTTP with the same secret) and a percent-encoded spelling of the prefix (which the
    // browser stores as a plain cookie). Neither is read, alone or in front of the real one.
    let t = app.tokens(ALICE.0);
    let (_, plain) = expired_session(&t.access_token, &t.instance_url);
    let encoded = format!("__Host%2Dsfgate_session={}", value_of(&session));
    let hits = echo.hits();
    for planted in [&plain, &encoded] {
        let alone = get_with_cookie(&app, planted).await;
        assert_eq!(alone.status(), 401, "{planted}");
    }
    assert_eq!(echo.hits(), hits, "no planted cookie reached the app");
    for planted in [&plain, &encoded] {
        let both = get_with_cookie(&app, &format!("{planted}; theme=dark; {session}")).await;
        let echoed: Value = expect_status(both, 200).await.json().await.expect("json");
        assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
        // Every spelling of sfgate's cookies is taken out; the app's own stays.
        assert_eq!(received(&echoed, "cookie"), ["theme=dark"], "{echoed}");
    }

    // Logout removes the prefixed cookie.
    let out = app
        .http
        .post(app.url("/oauth2/logout"))
        .header("cookie", &session)
        .send()
        .await
        .expect("logout");
    let removals = set_cookies(out.headers());
    assert!(
        removals
            .iter()
            .any(|c| c.starts_with("__Host-sfgate_session=;") && c.contains("Secure")),
        "{removals:?}"
    );
}
