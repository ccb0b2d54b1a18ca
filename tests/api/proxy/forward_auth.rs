//! Forward auth (`/oauth2/auth`) for nginx and Traefik: 202 with identity headers, JSON
//! refusals, renewal, and Salesforce trouble.

use super::*;

#[tokio::test]
async fn forward_auth_answers_202_with_identity_headers_for_every_credential_form() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let bearer = format!("Bearer {}", t.access_token);
    let header_forms = [
        header_map(&[
            ("authorization", &bearer),
            ("x-instance-url", &t.instance_url),
        ]),
        header_map(&[
            ("bearer", &t.access_token),
            ("instanceurl", &t.instance_url),
        ]),
    ];
    for headers in header_forms {
        let r = forward_auth(&app, headers).await;
        let r = expect_status(r, 202).await;
        assert_eq!(r.headers()["x-salesforce-username"], ALICE.0);
        assert_eq!(r.headers()["x-forwarded-email"], "alice@acme.example");
        assert_eq!(
            r.headers()["x-salesforce-instance-url"],
            app.emulator.base_url().as_str()
        );
        for name in IDENTITY_HEADERS {
            assert!(r.headers().contains_key(name), "{name}");
        }
        assert!(!r.headers().contains_key("authorization"));
    }
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .head(app.url("/oauth2/auth"))
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 202).await;
    assert_eq!(r.headers()["x-salesforce-username"], ALICE.0);
}

#[tokio::test]
async fn forward_auth_renews_an_expired_session_and_returns_the_cookie() {
    let app = TestApp::builder()
        .env("IDENTITY_CACHE_TTL", "0")
        .spawn()
        .await;
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    app.emulator.expire_access_tokens();
    let r = browser
        .get(app.url("/oauth2/auth"))
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 202).await;
    assert_eq!(r.headers()["x-salesforce-username"], ALICE.0);
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
}

#[tokio::test]
async fn forward_auth_refuses_with_json_and_never_redirects() {
    let app = TestApp::builder().spawn().await;
    let r = forward_auth(&app, header_map(&[("accept", "text/html")])).await;
    let r = expect_status(r, 401).await;
    assert!(r.headers().get("location").is_none());
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("application/json"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
    for name in IDENTITY_HEADERS {
        assert!(body.get(name).is_none());
    }

    let carol = app.tokens(CAROL.0);
    let r = forward_auth(
        &app,
        header_map(&[
            ("bearer", &carol.access_token),
            ("instanceurl", &carol.instance_url),
            ("accept", "text/html"),
        ]),
    )
    .await;
    let r = expect_status(r, 403).await;
    assert!(!r.headers().contains_key("x-salesforce-user-id"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "org_not_allowed");
}

#[tokio::test]
async fn forward_auth_reports_salesforce_trouble_as_502_503_and_504() {
    let closed = refusing_address();
    let dead_instance = format!("http://{}", closed.addr);
    let origins = dead_instance.clone();
    let app = TestApp::builder()
        .configure(move |env| {
            let emulator = env["SF_INSTANCE_ORIGINS"].clone();
            env.insert(
                "SF_INSTANCE_ORIGINS".into(),
                format!("{emulator},{origins}"),
            );
        })
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    let with_token =
        |instance: &str| header_map(&[("bearer", &t.access_token), ("instanceurl", instance)]);

    let r = forward_auth(&app, with_token(&dead_instance)).await;
    expect_status(r, 503).await;

    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let r = forward_auth(&app, with_token(&t.instance_url)).await;
    expect_status(r, 502).await;

    app.emulator.set_fault_for(Endpoint::UserInfo, Fault::Hang);
    let r = forward_auth(&app, with_token(&t.instance_url)).await;
    let r = expect_status(r, 504).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable");
}
