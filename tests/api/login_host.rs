//! The first login on a developer's machine: the host it must start on, the page for a callback
//! that comes back without its login cookie, and the page for a redirect URI Salesforce does
//! not know.

use crate::common::*;
use sfgate::auth::session::LOGIN_COOKIE;

/// `localhost:PORT` for an app whose redirect URI is on `127.0.0.1:PORT`.
fn other_loopback_name(app: &TestApp) -> String {
    app.base.replace("127.0.0.1", "localhost")
}

#[tokio::test]
async fn a_login_started_on_another_loopback_name_moves_to_the_redirect_uris_host_first() {
    let app = TestApp::builder().spawn().await;
    let elsewhere = other_loopback_name(&app);
    let r = app
        .http
        .get(format!(
            "{elsewhere}/oauth2/authorize?return_to=%2Fapp&prompt=login"
        ))
        .send()
        .await
        .expect("authorize");
    let r = expect_status(r, 302).await;
    assert_eq!(
        location(r.headers()),
        app.url("/oauth2/authorize?return_to=%2Fapp&prompt=login")
    );
    assert!(
        set_cookies(r.headers()).is_empty(),
        "no login cookie on the wrong host"
    );

    // Followed by a browser, the login completes: the cookie lands where the callback reads it.
    let browser = browser_client();
    let start = browser
        .get(format!("{elsewhere}/oauth2/authorize"))
        .send()
        .await
        .expect("start");
    let start = expect_status(start, 302).await;
    let on_callback_host = location(start.headers());
    assert_eq!(on_callback_host, app.url("/oauth2/authorize"));
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "allow")
        .await;
    let done = get_accepting(&browser, callback, "text/html").await;
    expect_status_for(done, 303, "logged in").await;
}

#[tokio::test]
async fn only_the_login_start_moves_and_only_to_the_configured_origin() {
    let app = TestApp::builder().spawn().await;
    let port = app.base.rsplit(':').next().expect("port").to_string();
    // Other pages on another name stay where they are.
    let r = app
        .http
        .get(format!("{}/", other_loopback_name(&app)))
        .send()
        .await
        .expect("home");
    expect_status(r, 200).await;
    // A Host the client chose is never a redirect target, and not a reason to move.
    for host in [format!("evil.example:{port}"), "localhost:1".to_string()] {
        let r = app
            .http
            .get(app.url("/oauth2/authorize"))
            .header("host", &host)
            .send()
            .await
            .expect("authorize");
        let r = expect_status_for(r, 302, &host).await;
        let to = location(r.headers());
        assert!(to.starts_with(&app.emulator.base_url()), "{host}: {to}");
        assert!(
            set_cookies(r.headers())
                .iter()
                .any(|c| c.starts_with(LOGIN_COOKIE)),
            "{host}: the login starts here"
        );
    }
}

#[tokio::test]
async fn a_callback_without_the_login_cookie_says_which_host_to_open() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "allow")
        .await;
    // Another browser (no cookie): the page names the redirect URI's origin.
    let page = get_accepting(&app.http, callback.clone(), "text/html").await;
    let page = expect_status(page, 400).await;
    let html = page.text().await.expect("html");
    assert!(
        html.contains(&format!(r#"id="start-on" href="{}/""#, app.base)),
        "{html}"
    );
    assert!(
        html.contains("localhost</code> and <code>127.0.0.1</code>"),
        "{html}"
    );
    let json = app.http.get(callback).send().await.expect("json");
    let json: serde_json::Value = expect_status(json, 400).await.json().await.expect("json");
    let said = json["error_description"].as_str().expect("description");
    assert!(said.contains("login cookie is missing"), "{said}");
    assert!(said.contains(&format!("open {}/", app.base)), "{said}");
}

#[tokio::test]
async fn a_redirect_uri_salesforce_does_not_know_gets_a_page_that_says_where_to_register_it() {
    // The Connected App lists another callback URL than the one sfgate sends.
    let app = TestApp::builder()
        .emulator(|emulator| emulator.redirect_uris = vec!["https://elsewhere.example/cb".into()])
        .spawn()
        .await;
    let start = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("authorize");
    let to_salesforce = location(expect_status(start, 302).await.headers());
    // Like Salesforce, the emulator shows its own page and does not redirect...
    let page = get_accepting(&app.http, to_salesforce, "text/html").await;
    let page = expect_status(page, 400).await;
    let html = page.text().await.expect("html");
    assert!(html.contains("error=redirect_uri_mismatch"), "{html}");
    // ...but links back to the redirect URI that was sent, with the error.
    let back = regex::Regex::new(r#"id="back" href="([^"]+)""#)
        .expect("regex")
        .captures(&html)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().replace("&amp;", "&"))
        .expect("a link back");
    assert!(
        back.starts_with(&app.url("/oauth2/callback?error=redirect_uri_mismatch")),
        "{back}"
    );

    let sent = app.url("/oauth2/callback");
    let page = get_accepting(&app.http, back.clone(), "text/html").await;
    let page = expect_status(page, 400).await;
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Salesforce does not know this redirect URI"),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"<code id="redirect-uri">{sent}</code>"#)),
        "{html}"
    );
    for step in [
        "App Manager",
        "Callback URL",
        "External Client App Manager",
        "Troubleshooting",
    ] {
        assert!(html.contains(step), "{step}: {html}");
    }
    assert!(
        html.contains("/assets/sfgate.css"),
        "styled like every page"
    );

    let json = app.http.get(back).send().await.expect("json");
    let json: serde_json::Value = expect_status(json, 400).await.json().await.expect("json");
    assert_eq!(json["error"], "redirect_uri_mismatch");
    assert!(
        json["error_description"]
            .as_str()
            .expect("d")
            .contains(&sent),
        "{json}"
    );
}

#[tokio::test]
async fn the_emulators_sign_in_page_lists_the_demo_users() {
    let app = TestApp::builder().spawn().await;
    let start = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("authorize");
    let to_salesforce = location(expect_status(start, 302).await.headers());
    let page = app.http.get(to_salesforce).send().await.expect("page");
    let html = expect_status(page, 200).await.text().await.expect("html");
    assert!(html.contains(r#"id="demo-users""#), "{html}");
    for (user, password) in [ALICE, CAROL] {
        assert!(
            html.contains(user) && html.contains(password),
            "{user}: {html}"
        );
    }
}
