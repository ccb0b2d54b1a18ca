//! The browser login flow and the token routes, over HTTP against the emulator.

use crate::common::*;
use sfgate_emulator::{Endpoint, Fault};

fn query_map(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn authorize_redirects_to_salesforce_with_state_pkce_and_a_sealed_cookie() {
    let app = TestApp::builder().spawn().await;
    let r = app
        .http
        .get(app.url("/oauth2/authorize?prompt=login&login_hint=alice@acme.example"))
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 302).await;
    let to_salesforce = location(r.headers());
    assert!(
        to_salesforce.starts_with(&format!(
            "{}/services/oauth2/authorize?",
            app.emulator.base_url()
        )),
        "{to_salesforce}"
    );
    let q = query_map(&to_salesforce);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], format!("{}/oauth2/callback", app.base));
    assert_eq!(q["scope"], "api refresh_token");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(
        q["state"].len() >= 43,
        "state carries at least 128 random bits"
    );
    assert_eq!(q["prompt"], "login");
    assert_eq!(q["login_hint"], "alice@acme.example");
    let cookies = set_cookies(r.headers());
    let login = cookies
        .iter()
        .find(|c| c.starts_with("sfgate_login="))
        .expect("login cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Max-Age=600", "Path=/"] {
        assert!(login.contains(attr), "{attr} in {login}");
    }
    assert!(
        !login.contains(&q["state"]),
        "state is sealed, not readable"
    );

    let again = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("r");
    assert_ne!(
        query_map(&location(again.headers()))["state"],
        q["state"],
        "state is fresh each time"
    );
}

#[tokio::test]
async fn authorize_refuses_invalid_prompt_and_login_hint() {
    let app = TestApp::builder().spawn().await;
    for bad in [
        "/oauth2/authorize?prompt=everything",
        "/oauth2/authorize?login_hint=%0Aevil",
        "/oauth2/authorize?prompt=login&prompt=consent",
    ] {
        let r = app.http.get(app.url(bad)).send().await.expect("r");
        let r = expect_status_for(r, 400, &bad).await;
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn browser_login_shows_who_logged_in_and_the_session_reaches_protected_routes() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let r = app.login(&browser, ALICE).await;
    // Post/redirect/get: the browser leaves the callback (and its code) at once.
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/oauth2/welcome");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookies = set_cookies(r.headers());
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("sfgate_session=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("sfgate_login=;")),
        "login cookie cleared: {cookies:?}"
    );
    let r = get_accepting(&browser, app.url("/oauth2/welcome"), "text/html").await;
    let r = expect_status(r, 200).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.expect("page");
    for expected in [
        "Alice Admin",
        "alice@acme.example",
        ACME,
        &app.emulator.base_url(),
        "curl -H &#39;Authorization: Bearer ",
        "/api/me",
    ] {
        assert!(page.contains(expected), "success page lacks {expected}");
    }
    let me = browser.get(app.url("/api/me")).send().await.expect("me");
    let me = expect_status(me, 200).await;
    let me: serde_json::Value = me.json().await.expect("json");
    assert_eq!(me["username"], "alice@acme.example");
    // The login warmed the cache: the session's first protected call asked Salesforce nothing new.
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 1);
    let home = browser
        .get(app.url("/"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("html");
    assert!(home.contains("Alice Admin") && home.contains("/oauth2/logout"));
}

#[tokio::test]
async fn callback_answers_json_to_api_clients() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "allow")
        .await;
    let r = get_accepting(&browser, callback, "application/json").await;
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    for field in [
        "access_token",
        "instance_url",
        "id",
        "issued_at",
        "token_type",
        "scope",
        "refresh_token",
    ] {
        assert!(body[field].is_string(), "{field} in {body}");
    }
    assert!(body["access_token"].as_str().expect("t").starts_with(ACME));
}

#[tokio::test]
async fn return_to_sends_the_browser_back_but_never_off_site() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(
            &browser,
            "/oauth2/authorize?return_to=%2Fapi%2Fme%3Fx%3D1",
            ALICE,
            "allow",
        )
        .await;
    let r = browser.get(callback).send().await.expect("r");
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/api/me?x=1");

    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let browser = browser_client();
        let path = format!("/oauth2/authorize?return_to={}", urlencode(evil));
        let callback = app
            .authorize_at_emulator(&browser, &path, ALICE, "allow")
            .await;
        let r = get_accepting(&browser, callback, "text/html").await;
        let r = expect_status(r, 303).await;
        assert_eq!(
            location(r.headers()),
            "/oauth2/welcome",
            "{evil} must be ignored, landing on the welcome page"
        );
    }
}

#[tokio::test]
async fn an_error_description_in_the_callback_is_escaped_on_the_page() {
    // A denial at Salesforce is tested in the pages module (the page about the person's choice).
    let app = TestApp::builder().spawn().await;
    let r = get_accepting(&app.http, app.url("/oauth2/callback?error=invalid_scope&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E"), "text/html").await;
    let r = expect_status(r, 400).await;
    let page = r.text().await.expect("page");
    assert!(
        !page.contains("<script>alert(1)"),
        "description must be escaped"
    );
    assert!(page.contains("&#60;script&#62;alert(1)"), "{page}");
    assert_eq!(app.emulator.calls(Endpoint::Token), 0);
}

#[tokio::test]
async fn callback_problems_are_400_and_never_reach_the_token_endpoint() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "allow")
        .await;
    let q = query_map(&callback);
    let code = q["code"].clone();
    let state = q["state"].clone();
    let cb = |query: String| app.url(&format!("/oauth2/callback?{query}"));

    // No login cookie (another browser).
    let r = app
        .http
        .get(cb(format!("code={code}&state={state}")))
        .send()
        .await
        .expect("r");
    expect_status(r, 400).await;
    // Wrong state.
    let r = browser
        .get(cb(format!("code={code}&state=forged")))
        .send()
        .await
        .expect("r");
    expect_status(r, 400).await;
    // Missing state; both code and error; repeated parameters.
    for query in [
        format!("code={code}"),
        format!("code={code}&error=access_denied&state={state}"),
        format!("code={code}&state={state}&state={state}"),
    ] {
        let r = browser.get(cb(query.clone())).send().await.expect("r");
        expect_status_for(r, 400, &query).await;
    }
    // A tampered login cookie.
    sfgate::crypto::install_tls_provider();
    let tampered = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("c");
    let r = tampered
        .get(cb(format!("code={code}&state={state}")))
        .header(
            "cookie",
            "sfgate_login=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 400).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["error_description"]
        .as_str()
        .expect("d")
        .contains("login cookie"));
    assert_eq!(app.emulator.calls(Endpoint::Token), 0);
}

#[tokio::test]
async fn a_replayed_callback_is_refused_before_reaching_salesforce() {
    let app = TestApp::builder().spawn().await;
    // An attacker who captured both the callback URL and the login cookie replays them after
    // the real callback completed.
    let login = crate::helpers::login_cookies::pending_login(&app).await;
    let (back, pair) = (app.url(&login.callback), login.login_cookie);
    let first = app
        .http
        .get(&back)
        .header("cookie", &pair)
        .send()
        .await
        .expect("first");
    expect_status_for(first, 303, "the real callback completes").await;
    let calls = app.emulator.calls(Endpoint::Token);
    let replay = app
        .http
        .get(&back)
        .header("cookie", &pair)
        .send()
        .await
        .expect("replay");
    expect_status(replay, 400).await;
    assert_eq!(
        app.emulator.calls(Endpoint::Token),
        calls,
        "a replay makes no token request"
    );
}

#[tokio::test]
async fn a_reused_code_is_refused_by_salesforce() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "allow")
        .await;
    let code = query_map(&callback)["code"].clone();
    // The code was issued with a PKCE challenge this client does not know, so exchange it
    // through the compatibility route twice: both are refused, the second as a reused code.
    let first = app
        .http
        .post(app.url("/oauth2/token"))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .expect("r");
    expect_status(first, 400).await;
    let second = app
        .http
        .post(app.url("/oauth2/token"))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .expect("r");
    let second = expect_status(second, 400).await;
    let body: serde_json::Value = second.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_user_from_an_org_not_allowed_gets_a_403_page_and_no_session() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let r = app.login(&browser, CAROL).await;
    let r = expect_status(r, 403).await;
    assert!(!set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
    let page = r.text().await.expect("page");
    assert!(
        page.contains("organization") && page.contains("not allowed"),
        "{page}"
    );
}

#[tokio::test]
async fn a_token_response_with_a_bad_signature_is_discarded() {
    // A token endpoint that answers like Salesforce but signs with the wrong key.
    let stub = StubServer::start(
        200,
        "application/json",
        format!(
            r#"{{"access_token":"{ACME}!abc","refresh_token":"r","signature":"d/SxeYBxH0GSVko0HMgcUxuZy0PA2cDDz1u7g7JtDHw=","scope":"api","instance_url":"http://127.0.0.1:1","id":"https://login.salesforce.com/id/00D5j00000AcMe1AAA/0055j00000AlIcEAAA","token_type":"Bearer","issued_at":"1558553873237"}}"#
        ),
    )
    .await;
    let stub_url = stub.url();
    let app = TestApp::builder()
        .env("SF_LOGIN_URL", stub_url.clone())
        .spawn()
        .await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .form(&[("code", "x")])
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 502).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["error_description"]
            .as_str()
            .expect("d")
            .contains("signature"),
        "{body}"
    );
    assert!(!body.to_string().contains("abc"));
}

#[tokio::test]
async fn token_route_exchanges_a_code_from_query_form_or_json() {
    let app = TestApp::builder().spawn().await;
    for style in ["query", "form", "json"] {
        // Codes obtained without PKCE by an app that runs the authorize step itself.
        let browser = browser_client();
        let url = format!(
            "{}/services/oauth2/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&state=s",
            app.emulator.base_url(),
            urlencode(&format!("{}/oauth2/callback", app.base))
        );
        let form = vec![
            ("response_type", "code".to_string()),
            ("client_id", CLIENT_ID.to_string()),
            ("redirect_uri", format!("{}/oauth2/callback", app.base)),
            ("state", "s".to_string()),
            ("username", ALICE.0.to_string()),
            ("password", ALICE.1.to_string()),
            ("action", "allow".to_string()),
        ];
        expect_status(browser.get(&url).send().await.expect("page"), 200).await;
        let answer = browser
            .post(format!(
                "{}/services/oauth2/authorize",
                app.emulator.base_url()
            ))
            .form(&form)
            .send()
            .await
            .expect("submit");
        let code = query_map(&location(answer.headers()))["code"].clone();
        let request = app.http.post(app.url("/oauth2/token"));
        let request = match style {
            "query" => request.query(&[("code", &code)]),
            "form" => request.form(&[("code", &code)]),
            _ => request.json(&serde_json::json!({ "code": code })),
        };
        let r = request.send().await.expect("r");
        let r = expect_status_for(r, 200, &style).await;
        let body: serde_json::Value = r.json().await.expect("json");
        assert!(
            body["access_token"].as_str().expect("t").starts_with(ACME),
            "{style}"
        );
    }
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .send()
        .await
        .expect("r");
    expect_status(r, 400).await;
}

#[tokio::test]
async fn refresh_gives_a_new_access_token_or_401_with_salesforces_reason() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let refresh = t.refresh_token.clone().expect("refresh token");
    let r = app
        .http
        .post(app.url("/oauth2/refresh"))
        .form(&[("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    let fresh = body["access_token"].as_str().expect("t").to_string();
    assert_ne!(fresh, t.access_token);
    expect_status(
        app.get_with_token("/api/me", &fresh, &t.instance_url).await,
        200,
    )
    .await;

    let r = app
        .http
        .post(app.url("/oauth2/refresh"))
        .json(&serde_json::json!({"refresh_token": "nope"}))
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 401).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["error_description"]
            .as_str()
            .expect("d")
            .contains("expired access/refresh token"),
        "{body}"
    );

    let r = app
        .http
        .post(app.url("/oauth2/refresh"))
        .send()
        .await
        .expect("r");
    expect_status(r, 400).await;
}

#[tokio::test]
async fn refresh_with_the_session_cookie_updates_the_cookie() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .post(app.url("/oauth2/refresh"))
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 200).await;
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
}

#[tokio::test]
async fn sessions_renew_themselves_and_end_when_renewal_fails() {
    let app = TestApp::builder()
        .env("IDENTITY_CACHE_TTL", "0")
        .spawn()
        .await;
    let browser = browser_client();
    // Logged in as a JSON caller, which learns the session's refresh token (to revoke it below).
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "allow")
        .await;
    let login = get_accepting(&browser, callback, "application/json").await;
    let login = expect_status(login, 200).await;
    let login: serde_json::Value = login.json().await.expect("json");
    let refresh_token = login["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    app.emulator.expire_access_tokens();
    let token_calls = app.emulator.calls(Endpoint::Token);
    let r = browser.get(app.url("/api/me")).send().await.expect("r");
    let r = expect_status_for(r, 200, "renewed with the refresh token").await;
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls + 1);
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
    // The renewed cookie works without another renewal.
    expect_status(
        browser.get(app.url("/api/me")).send().await.expect("r"),
        200,
    )
    .await;
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls + 1);

    // Revoke the session's refresh token at Salesforce: the next renewal fails, the session
    // ends, and a browser is sent back to log in.
    let revoked = app
        .http
        .post(format!(
            "{}/services/oauth2/revoke",
            app.emulator.base_url()
        ))
        .form(&[("token", refresh_token.as_str())])
        .send()
        .await
        .expect("revoke");
    expect_status(revoked, 200).await;
    app.emulator.expire_access_tokens();
    let r = get_accepting(&browser, app.url("/api/me"), "text/html").await;
    let r = expect_status(r, 303).await;
    assert_eq!(
        location(r.headers()),
        "/oauth2/authorize?return_to=%2Fapi%2Fme"
    );
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=;")));
    let r = browser.get(app.url("/api/me")).send().await.expect("r");
    expect_status_for(r, 401, "the cookie is gone").await;
}

#[tokio::test]
async fn logout_revokes_at_salesforce_evicts_and_clears_the_cookie() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let r = app.login(&browser, ALICE).await;
    expect_status(r, 303).await;
    let r = browser
        .post(app.url("/oauth2/logout"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/?logout=done");
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=;")));
    assert!(app.emulator.calls(Endpoint::Revoke) >= 1);
    let r = browser.get(app.url("/api/me")).send().await.expect("me");
    expect_status(r, 401).await;

    // API logout with a bearer token: revoked, evicted from the cache at once, and the answer
    // says what was revoked (it was a bare 204 before).
    let t = app.tokens(ALICE.0);
    expect_status(
        app.get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await,
        200,
    )
    .await;
    let r = app
        .http
        .post(app.url("/oauth2/logout"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["revoked"], serde_json::json!(["access_token"]));
    assert!(app.emulator.is_revoked(&t.access_token));
    expect_status(
        app.get_with_token("/api/me", &t.access_token, &t.instance_url)
            .await,
        401,
    )
    .await;
}

#[tokio::test]
async fn logout_clears_local_state_and_says_so_when_revocation_fails() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    app.emulator
        .set_fault_for(Endpoint::Revoke, Fault::ServerError);
    let r = app
        .http
        .post(app.url("/oauth2/logout"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        body["revoked"],
        serde_json::json!([]),
        "nothing was revoked"
    );
    assert_eq!(body["error"], "revocation_failed");

    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .post(app.url("/oauth2/logout"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("logout");
    assert_eq!(location(r.headers()), "/?logout=revocation_failed");
    let home = browser
        .get(app.url("/?logout=revocation_failed"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("html");
    assert!(home.contains("did not confirm"));
    assert!(
        home.contains("Log in with Salesforce"),
        "the session is gone"
    );
}

/// A session whose refresh token Salesforce did not revoke (it did not answer in time) is not
/// reported as logged out at Salesforce because its access token's revocation went through
/// afterwards: the refresh token may still be honoured there.
#[tokio::test]
async fn a_session_logout_whose_refresh_token_revocation_timed_out_says_so() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    app.emulator.reset_stats();
    app.emulator.set_fault_for(Endpoint::Revoke, Fault::Hang);
    let logout = tokio::spawn({
        let (browser, url) = (browser.clone(), app.url("/oauth2/logout"));
        async move { browser.post(url).header("accept", "text/html").send().await }
    });
    // The refresh token's revocation is under way and will time out; the access token's,
    // asked next, is answered.
    while app.emulator.calls(Endpoint::Revoke) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app.emulator.set_fault_for(Endpoint::Revoke, Fault::None);
    let r = logout.await.expect("task").expect("logout");
    assert_eq!(location(r.headers()), "/?logout=revocation_failed");
    assert_eq!(
        app.emulator.calls(Endpoint::Revoke),
        2,
        "the access token is revoked all the same"
    );
}

#[tokio::test]
async fn password_flow_is_off_by_default_and_never_takes_credentials_in_the_url() {
    let app = TestApp::builder().spawn().await;
    let r = password_grant(&app, ALICE).await;
    expect_status(r, 404).await;
    for path in [
        "/oauth2/password?username=a&password=b",
        "/oauth2/login?username=a&password=b",
    ] {
        let r = app.http.get(app.url(path)).send().await.expect("r");
        let r = expect_status_for(r, 405, &path).await;
        assert_eq!(r.headers()["allow"], "POST");
    }

    let app = TestApp::builder().password_flow().spawn().await;
    let r = password_grant(&app, ALICE).await;
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["access_token"].is_string());
    let r = app
        .http
        .post(app.url("/oauth2/password"))
        .json(&serde_json::json!({"username": ALICE.0, "password": "wrong"}))
        .send()
        .await
        .expect("r");
    let r = expect_status(r, 400).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    let r = password_grant(&app, CAROL).await;
    expect_status(r, 403).await;
}

/// The harness itself: a wrong status names the body's `error_description`, so a failing
/// test says why without a rerun.
#[tokio::test]
async fn expect_status_failure_names_the_error_description() {
    let app = TestApp::builder().spawn().await;
    let path = "/oauth2/authorize?prompt=sideways";
    let body: serde_json::Value = app
        .http
        .get(app.url(path))
        .send()
        .await
        .expect("r")
        .json()
        .await
        .expect("json");
    let description = body["error_description"]
        .as_str()
        .expect("error_description")
        .to_string();
    let r = app.http.get(app.url(path)).send().await.expect("r");
    let panic = tokio::spawn(expect_status(r, 200))
        .await
        .expect_err("a 400 is not a 200")
        .into_panic();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains("expected status 200, got 400"),
        "{message}"
    );
    assert!(message.contains(&description), "{message}");
}
