//! Canvas apps: `POST /oauth2/canvas` with a signed request built here from the consumer
//! secret, as Salesforce builds it. A valid one starts an embedded session that reaches the
//! app behind sfgate; every kind of bad one is refused with nothing created.

use crate::common::*;
use crate::helpers::upstream::{one, start_echo};
use serde_json::{json, Value};
use sfgate_emulator::sign_request as sign;

const BOB: &str = "bob@acme.example";

/// A Salesforce id in its 18-character form, as Canvas contexts carry ids.
fn long(id: &str) -> String {
    sfgate::domain::SalesforceId::parse(id)
        .expect("id")
        .to_string()
}

/// A gateway with Canvas on, in front of the echo app, landing on `/app`.
async fn canvas_gateway(extra: &[(&str, &str)]) -> (TestApp, StubServer) {
    let echo = start_echo().await;
    let mut all = vec![("CANVAS_ENABLED", "true"), ("CANVAS_LANDING", "/app")];
    all.extend_from_slice(extra);
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&all)
        .spawn()
        .await;
    (app, echo)
}

/// The context Salesforce signs for `username`'s `token` at `instance`.
fn context(token: &str, instance: &str, user_id: &str, org_id: &str) -> Value {
    json!({
        "algorithm": "HMACSHA256",
        "issuedAt": null,
        "userId": user_id,
        "client": {"oauthToken": token, "instanceUrl": instance, "refreshToken": null,
                   "targetOrigin": instance},
        "context": {
            "user": {"userId": user_id, "userName": ALICE.0},
            "organization": {"organizationId": org_id, "name": "Acme"}
        }
    })
}

fn alice_context(app: &TestApp) -> Value {
    let token = app.tokens(ALICE.0).access_token;
    context(
        &token,
        &app.emulator.base_url(),
        &long("0055j00000AlIcE"),
        &long(ACME),
    )
}

async fn post_signed(app: &TestApp, signed: &str, accept: &str) -> reqwest::Response {
    post_form(
        app,
        &format!("signed_request={}", urlencode(signed)),
        accept,
    )
    .await
}

async fn post_form(app: &TestApp, form: &str, accept: &str) -> reqwest::Response {
    app.http
        .post(app.url("/oauth2/canvas"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", accept)
        .body(form.to_string())
        .send()
        .await
        .expect("canvas post")
}

#[tokio::test]
async fn a_valid_signed_request_starts_an_embedded_session_that_reaches_the_app() {
    let (app, _echo) = canvas_gateway(&[]).await;
    let signed = sign(&alice_context(&app), CLIENT_SECRET.as_bytes());
    let answer = expect_status(post_signed(&app, &signed, "text/html").await, 303).await;
    assert_eq!(location(answer.headers()), "/app");
    let cookie = set_cookies(answer.headers())
        .into_iter()
        .find(|c| c.starts_with("sfgate_session="))
        .expect("session cookie");
    for attribute in [
        "SameSite=None",
        "Secure",
        "Partitioned",
        "HttpOnly",
        "Path=/",
    ] {
        assert!(
            cookie.split("; ").any(|a| a == attribute),
            "{attribute} in {cookie}"
        );
    }
    let pair = session_pair(answer.headers()).expect("pair");
    let landed = app
        .http
        .get(app.url("/app"))
        .header("cookie", &pair)
        .send()
        .await
        .expect("landing");
    let echoed: Value = expect_status(landed, 200).await.json().await.expect("json");
    assert_eq!(
        one(&echoed, "x-salesforce-user-id"),
        long("0055j00000AlIcE")
    );
    assert_eq!(one(&echoed, "x-salesforce-org-id"), long(ACME));
}

#[tokio::test]
async fn canvas_is_off_unless_enabled() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let signed = sign(&alice_context(&app), CLIENT_SECRET.as_bytes());
    let answer = post_signed(&app, &signed, "application/json").await;
    assert_eq!(answer.status(), 404);
    assert!(session_pair(answer.headers()).is_none());
    assert_eq!(echo.hits(), 0, "an /oauth2 path is never proxied");
}

#[tokio::test]
async fn every_bad_signed_request_is_refused_and_creates_nothing() {
    // Canvas posts count against the login rate limit; this test sends two dozen.
    let (app, echo) = canvas_gateway(&[
        ("SF_ALLOWED_USERS", "0055j00000AlIcE"),
        ("RATE_LIMIT_BURST", "100"),
    ])
    .await;
    let instance = app.emulator.base_url();
    let good = alice_context(&app);
    let secret = CLIENT_SECRET.as_bytes();
    let signed_good = sign(&good, secret);
    let (signature, body) = signed_good.split_once('.').expect("dot");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        sign(&c, secret)
    };
    // A body signed for one context, sent with another's: the signature no longer matches.
    let other_body = with(&|c| c["client"]["instanceUrl"] = json!("https://evil.example"));
    let tampered_body = format!("{signature}.{}", other_body.split_once('.').expect("dot").1);
    let carol = app.tokens(CAROL.0).access_token;
    let bob = app.tokens(BOB).access_token;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "tampered body",
            tampered_body,
            401,
            "invalid_signed_request",
        ),
        (
            "tampered signature",
            format!(
                "{}.{body}",
                sign(&good, b"not-the-consumer-secret")
                    .split('.')
                    .next()
                    .expect("sig")
            ),
            401,
            "invalid_signed_request",
        ),
        (
            "HMACSHA1",
            with(&|c| c["algorithm"] = json!("HMACSHA1")),
            400,
            "unsupported_algorithm",
        ),
        (
            "missing token",
            with(&|c| c["client"]["oauthToken"] = json!(null)),
            400,
            "invalid_request",
        ),
        ("not base64", "%%%.%%%".into(), 400, "invalid_request"),
        (
            "token Salesforce refuses",
            with(&|c| c["client"]["oauthToken"] = json!("00D5j00000AcMe1!forged")),
            401,
            "invalid_token",
        ),
        (
            "instance not allowed",
            with(&|c| c["client"]["instanceUrl"] = json!("https://evil.example")),
            401,
            "invalid_request",
        ),
        (
            "org not allowed",
            sign(
                &context(&carol, &instance, &long("0055j00000CaRoL"), &long(GLOBEX)),
                secret,
            ),
            403,
            "org_not_allowed",
        ),
        (
            "user not allowed",
            sign(
                &context(&bob, &instance, &long("0055j00000BoB01"), &long(ACME)),
                secret,
            ),
            403,
            "access_denied",
        ),
        (
            "token of another user than the context names",
            with(&|c| c["client"]["oauthToken"] = json!(bob.clone())),
            401,
            "invalid_token",
        ),
    ];
    for (what, signed, status, code) in cases {
        let answer = post_signed(&app, &signed, "application/json").await;
        assert_eq!(answer.status().as_u16(), status, "{what}");
        assert!(
            set_cookies(answer.headers()).is_empty(),
            "{what}: no cookie"
        );
        let body: Value = answer.json().await.expect("json");
        assert_eq!(body["error"], code, "{what}: {body}");
        let page = post_signed(&app, &signed, "text/html").await;
        assert_eq!(page.status().as_u16(), status, "{what} (browser)");
        assert!(set_cookies(page.headers()).is_empty(), "{what}: no cookie");
        let content_type = page.headers()["content-type"]
            .to_str()
            .expect("type")
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{what}: {content_type}"
        );
    }
    let missing = post_form(&app, "other=1", "application/json").await;
    assert_eq!(missing.status(), 400);
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn a_same_origin_rd_overrides_the_landing_and_others_are_refused() {
    let (app, _echo) = canvas_gateway(&[]).await;
    let signed = sign(&alice_context(&app), CLIENT_SECRET.as_bytes());
    let form = format!(
        "signed_request={}&rd=%2Freports%3Fq%3D1",
        urlencode(&signed)
    );
    let answer = expect_status(post_form(&app, &form, "text/html").await, 303).await;
    assert_eq!(location(answer.headers()), "/reports?q=1");
    for rd in ["//evil.example", "https://evil.example/", "/\\evil.example"] {
        let form = format!("signed_request={}&rd={}", urlencode(&signed), urlencode(rd));
        let answer = post_form(&app, &form, "application/json").await;
        assert_eq!(answer.status(), 400, "{rd}");
        assert!(set_cookies(answer.headers()).is_empty(), "{rd}");
    }
}

#[tokio::test]
async fn canvas_pages_may_be_framed_by_salesforce_only_and_other_pages_not_at_all() {
    let app = TestApp::builder()
        .env("CANVAS_ENABLED", "true")
        .spawn()
        .await;
    let signed = sign(&alice_context(&app), CLIENT_SECRET.as_bytes());
    let canvas = post_signed(&app, &signed, "text/html").await;
    let landing = app.http.get(app.url("/")).send().await.expect("home");
    for answer in [&canvas, &landing] {
        let csp = answer.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        let ancestors = csp
            .split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix("frame-ancestors "))
            .expect("frame-ancestors");
        assert!(ancestors.contains("https://*.force.com"), "{ancestors}");
        assert!(ancestors.contains(&app.emulator.base_url()), "{ancestors}");
        assert!(!ancestors.contains("'none'") && !ancestors.contains(" * "));
        assert!(answer.headers().get("x-frame-options").is_none());
    }
    for path in ["/oauth2/welcome", "/api/me", "/healthz"] {
        let answer = app.http.get(app.url(path)).send().await.expect("page");
        let csp = answer.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(answer.headers()["x-frame-options"], "DENY", "{path}");
    }
}
