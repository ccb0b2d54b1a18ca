//! The login's own input: sfgate's cookies tampered with, truncated, foreign or expired;
//! states replayed, codes reused and callbacks confused.

use super::*;

#[tokio::test]
async fn tampered_truncated_foreign_and_expired_cookies_are_refused() {
    watch();
    let app = TestApp::builder().spawn().await;
    let session = session_cookie(&app).await;
    // A second gateway with another SESSION_SECRET mints cookies that are genuine, elsewhere.
    let other = TestApp::builder()
        .env("SESSION_SECRET", OTHER_SECRET)
        .spawn()
        .await;
    let foreign_session = session_cookie(&other).await;
    let foreign_login = pending_login(&other).await;
    let t = app.tokens(ALICE.0);
    let (expired, fresh) = expired_session(&t.access_token, &t.instance_url);
    let login = pending_login(&app).await;
    let state = login.state.clone();
    let callback_with = |cookie: &str| {
        get(
            format!("callback with {cookie:.40}"),
            login.callback.clone(),
        )
        .header("cookie", cookie)
    };
    let token_calls = app.emulator.calls(Endpoint::Token);

    let rows = vec![
        get("control: the real session cookie", "/api/me")
            .header("cookie", &session)
            .expect(200, None),
        get(
            "control: a session cookie sealed with 60 s to live",
            "/api/me",
        )
        .header("cookie", &fresh)
        .expect(200, None),
        get("a tampered session cookie", "/api/me")
            .header("cookie", tampered(&session))
            .expect(401, Some("invalid_token")),
        get("a truncated session cookie", "/api/me")
            .header("cookie", truncated(&session))
            .expect(401, Some("invalid_token")),
        get("a session cookie sealed by another gateway", "/api/me")
            .header("cookie", &foreign_session)
            .expect(401, Some("invalid_token")),
        get("an expired session cookie", "/api/me")
            .header("cookie", &expired)
            .expect(401, Some("invalid_token")),
        get("an expired session cookie, from a browser", "/api/me")
            .header("cookie", &expired)
            .header("accept", "text/html")
            .expect(303, None),
        get("a login cookie offered as the session", "/api/me")
            .header(
                "cookie",
                format!("{SESSION_COOKIE}={}", value_of(&login.login_cookie)),
            )
            .expect(401, Some("invalid_token")),
        get("an empty session cookie", "/api/me")
            .header("cookie", format!("{SESSION_COOKIE}="))
            .expect(401, Some("invalid_token")),
        get("a session cookie of percent signs", "/api/me")
            .header("cookie", format!("{SESSION_COOKIE}=%%%%%%"))
            .expect(401, Some("invalid_token")),
        get(
            "a tampered session cookie on the home page shows it logged out",
            "/",
        )
        .header("cookie", tampered(&session))
        .expect(200, None),
        // 200 with an empty `revoked` list (a bare 204 before logout said what it revoked).
        post("logout with a tampered session cookie", "/oauth2/logout")
            .header("cookie", tampered(&session))
            .expect(200, None),
        post("refresh with a foreign session cookie", "/oauth2/refresh")
            .header("cookie", &foreign_session)
            .expect(401, Some("invalid_token")),
        callback_with(&tampered(&login.login_cookie)).expect(400, Some("invalid_request")),
        callback_with(&truncated(&login.login_cookie)).expect(400, Some("invalid_request")),
        callback_with(&foreign_login.login_cookie).expect(400, Some("invalid_request")),
        callback_with(&expired_login_cookie(&state)).expect(400, Some("invalid_request")),
        callback_with(&format!("{LOGIN_COOKIE}={}", value_of(&session)))
            .expect(400, Some("invalid_request")),
        get("callback without a login cookie", login.callback.clone())
            .expect(400, Some("invalid_request")),
    ];
    let answers = run_rows(&app, rows).await;
    // Refused session cookies are removed; the home page does not crash on one.
    for answer in &answers[2..6] {
        assert!(
            answer
                .header("set-cookie")
                .iter()
                .any(|c| c.starts_with("sfgate_session=;")),
            "a refused session cookie is cleared: {}",
            answer.head
        );
    }
    assert_eq!(
        answers[6].header("location"),
        ["/oauth2/authorize?return_to=%2Fapi%2Fme"]
    );
    assert!(answers[10].text().contains("Log in with Salesforce"));
    assert!(answers[13].text().contains("login cookie"));
    assert_eq!(
        app.emulator.calls(Endpoint::Token),
        token_calls,
        "no refused login cookie reaches the token endpoint"
    );
    let mut secrets = vec![
        value_of(&session),
        value_of(&foreign_session),
        value_of(&login.login_cookie),
        value_of(&foreign_login.login_cookie),
        value_of(&expired),
        login.code.clone(),
        login.state.clone(),
        foreign_login.code.clone(),
        t.access_token.clone(),
        OTHER_SECRET.to_string(),
    ];
    secrets.push(SESSION_SECRET.into());
    assert_secrets_not_logged(&secrets);
}

#[tokio::test]
async fn replayed_states_reused_codes_and_confused_callbacks_are_refused() {
    watch();
    let app = TestApp::builder().spawn().await;
    let done = pending_login(&app).await;
    let first = send_raw(
        app.gateway.addr,
        &get("complete", done.callback.clone())
            .header("cookie", &done.login_cookie)
            .bytes(app.gateway.addr),
    )
    .await;
    assert_eq!(first.status, 303, "the real callback completes");
    let a = pending_login(&app).await;
    let b = pending_login(&app).await;
    let cb = |query: String| format!("/oauth2/callback?{query}");
    let token_calls = app.emulator.calls(Endpoint::Token);
    let huge = "c".repeat(60 * 1024);

    let rows = vec![
        get(
            "a replayed callback (same state, same cookie)",
            done.callback.clone(),
        )
        .header("cookie", &done.login_cookie)
        .expect(400, Some("invalid_request")),
        get(
            "both code and error",
            cb(format!(
                "code={}&error=access_denied&state={}",
                a.code, a.state
            )),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get(
            "both error and code, error first",
            cb(format!(
                "error=access_denied&state={}&code={}",
                a.state, a.code
            )),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get(
            "state from another login",
            cb(format!("code={}&state={}", a.code, b.state)),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get("no state", cb(format!("code={}", a.code)))
            .header("cookie", &a.login_cookie)
            .expect(400, Some("invalid_request")),
        get("an empty state", cb(format!("code={}&state=", a.code)))
            .header("cookie", &a.login_cookie)
            .expect(400, Some("invalid_request")),
        get(
            "state given twice",
            cb(format!(
                "code={}&state={}&state={}",
                a.code, a.state, a.state
            )),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get("no code", cb(format!("state={}", a.state)))
            .header("cookie", &a.login_cookie)
            .expect(400, Some("invalid_request")),
        get("an empty code", cb(format!("code=&state={}", a.state)))
            .header("cookie", &a.login_cookie)
            .expect(400, Some("invalid_request")),
        get(
            "state in non-UTF-8 percent-encoding",
            cb(format!("code={}&state=%ff%fe", a.code)),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get(
            "a 60 KB code without a login cookie",
            cb(format!("code={huge}&state=x")),
        )
        .expect(400, Some("invalid_request")),
        get(
            "five thousand parameters",
            cb((0..5_000).map(|i| format!("p{i}=v&")).collect()),
        )
        .expect(400, Some("invalid_request")),
        get(
            "a query longer than the server accepts",
            cb(format!("code={}", "c".repeat(70 * 1024))),
        )
        .expect(414, None),
        get(
            "denied at Salesforce",
            cb(format!(
                "error=access_denied&error_description=end-user+denied&state={}",
                a.state
            )),
        )
        .expect(403, Some("access_denied")),
        get(
            "another Salesforce error",
            cb("error=invalid_scope&error_description=%3Cb%3E".into()),
        )
        .expect(400, Some("access_denied")),
        get(
            "a huge error description",
            cb(format!("error=server_error&error_description={huge}")),
        )
        .expect(400, Some("access_denied")),
        get(
            "a 60 KB return_to is ignored",
            format!("/oauth2/authorize?return_to=/{huge}"),
        )
        .expect(302, None),
        get(
            "a 60 KB query on a protected route",
            format!("/api/me?x={huge}"),
        )
        .expect(401, Some("unauthorized")),
    ];
    run_rows(&app, rows).await;
    assert_eq!(
        app.emulator.calls(Endpoint::Token),
        token_calls,
        "none of these reached the token endpoint"
    );

    // Login A's code with login B's cookie and state: the code is bound to A's PKCE challenge,
    // so Salesforce refuses it, and it is used up.
    let rows = vec![
        get(
            "a code injected into another login",
            cb(format!("code={}&state={}", a.code, b.state)),
        )
        .header("cookie", &b.login_cookie)
        .expect(400, Some("invalid_grant")),
        get(
            "the injected code, now with its own login",
            a.callback.clone(),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_grant")),
    ];
    run_rows(&app, rows).await;

    // A code without PKCE, exchanged twice through the token route: the second is refused.
    let code = code_without_pkce(&app).await;
    let rows = vec![
        post("first use of a code", "/oauth2/token")
            .body("application/x-www-form-urlencoded", format!("code={code}"))
            .expect(200, None),
        post("second use of the same code", "/oauth2/token")
            .body("application/x-www-form-urlencoded", format!("code={code}"))
            .expect(400, Some("invalid_grant")),
    ];
    let answers = run_rows(&app, rows).await;
    let tokens: serde_json::Value = serde_json::from_slice(&answers[0].body).expect("json");
    assert_secrets_not_logged(&[
        done.code,
        done.state,
        value_of(&done.login_cookie),
        a.code,
        a.state,
        value_of(&a.login_cookie),
        b.code,
        b.state,
        value_of(&b.login_cookie),
        code,
        tokens["access_token"].as_str().expect("token").to_string(),
        tokens["refresh_token"].as_str().expect("token").to_string(),
        CLIENT_SECRET.to_string(),
    ]);
}

/// A code issued to an app that ran the authorize step itself, without PKCE.
async fn code_without_pkce(app: &TestApp) -> String {
    let redirect = format!("{}/oauth2/callback", app.base);
    let form = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect.as_str()),
        ("state", "s"),
        ("scope", "api refresh_token"),
        ("username", ALICE.0),
        ("password", ALICE.1),
        ("action", "allow"),
    ];
    let answer = app
        .http
        .post(format!(
            "{}/services/oauth2/authorize",
            app.emulator.base_url()
        ))
        .form(&form)
        .send()
        .await
        .expect("submit");
    let back = reqwest::Url::parse(&location(answer.headers())).expect("url");
    back.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code")
}
