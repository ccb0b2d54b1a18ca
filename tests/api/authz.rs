//! Authorization over HTTP: who may pass (users, email domains, user types, inactive users,
//! custom permissions from the emulator), route rules in all three modes (sfgate's own routes,
//! gateway mode, forward auth), and the signed X-Sfgate-Assertion verified with the JWKS sfgate
//! serves. The real gateway, the emulator and an echo upstream, all on loopback.

use crate::common::*;
use crate::helpers::upstream::start_echo;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use sfgate_emulator::UserProfile;

const BOB: (&str, &str) = ("bob@acme.example", "bob-demo-2");
const ALICE_ID: &str = "0055j00000AlIcE";

/// The key sfgate signs with in these tests (made with the command docs/authorization.md gives).
const ASSERTION_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglJoEjNWt1k1k+/nI
PeHH8iws0KEoIeeORi7y4FPmh+2hRANCAAQRF7sxfLxTpsuv2WeEK0QJIyIlOdLd
Z9DA17T2CRw/b3Dx2b0TJBzpBOemeoUB7F23U+fQC/R2FVTHGt8Pt5ck
-----END PRIVATE KEY-----";
/// Another P-256 key: what someone without sfgate's key would sign with.
const FORGER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqwSx9eUDL/75nf4j
mCosnK2of/pf0KZu7o7Je9OFZuahRANCAATy3HHZ+csugazIC8TnoymAm8vTz0Td
zk0AFSrjep9mjjaF6kAuO8cy7DU/J3i5lGPAOEIAfQsiwNq+nbJbMqeu
-----END PRIVATE KEY-----";

/// A fresh token for `user` (so no cached verdict from an earlier profile is reused).
async fn get_as(app: &TestApp, user: &str, path: &str) -> reqwest::Response {
    let t = app.tokens(user);
    app.get_with_token(path, &t.access_token, &t.instance_url)
        .await
}

async fn get_as_with_scope(
    app: &TestApp,
    user: &str,
    scope: &str,
    path: &str,
) -> reqwest::Response {
    let t = app
        .emulator
        .issue_tokens_with_scope(user, scope)
        .expect("known user");
    app.get_with_token(path, &t.access_token, &t.instance_url)
        .await
}

/// Asserts a 403 `access_denied` whose description contains `names` and none of `hidden`.
async fn assert_denied(r: reqwest::Response, names: &str, hidden: &[&str]) {
    let r = expect_status(r, 403).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "access_denied", "{body}");
    let description = body["error_description"].as_str().expect("description");
    assert!(description.contains(names), "{description}");
    for h in hidden {
        assert!(!description.contains(h), "{description} reveals {h}");
    }
}

fn profile(app: &TestApp, user: &str) -> UserProfile {
    app.emulator.user_profile(user).expect("known user")
}

#[tokio::test]
async fn allowed_users_admit_listed_ids_in_either_form_and_usernames_without_case() {
    let app = TestApp::builder()
        .envs(&[("SF_ALLOWED_USERS", &format!("{ALICE_ID}, BOB@Acme.Example"))])
        .spawn()
        .await;
    expect_status(get_as(&app, ALICE.0, "/api/me").await, 200).await;
    expect_status(get_as(&app, BOB.0, "/api/me").await, 200).await;

    // The 18-character form of Alice's id admits Alice, and nobody else.
    let alice18 = sfgate::domain::SalesforceId::parse(ALICE_ID)
        .expect("id")
        .to_string();
    let app = TestApp::builder()
        .envs(&[("SF_ALLOWED_USERS", &alice18)])
        .spawn()
        .await;
    expect_status(get_as(&app, ALICE.0, "/api/me").await, 200).await;
    assert_denied(
        get_as(&app, BOB.0, "/api/me").await,
        "SF_ALLOWED_USERS",
        &[&alice18, ALICE_ID],
    )
    .await;
}

#[tokio::test]
async fn email_domains_admit_the_exact_domain_only() {
    let app = TestApp::builder()
        .envs(&[("SF_ALLOWED_EMAIL_DOMAINS", "acme.example")])
        .spawn()
        .await;
    expect_status(get_as(&app, ALICE.0, "/api/me").await, 200).await;
    for email in [
        Some("bob@evilacme.example"),
        Some("bob@sales.acme.example"),
        None,
    ] {
        let mut bob = profile(&app, BOB.0);
        bob.email = email.map(str::to_string);
        app.emulator.set_user_profile(BOB.0, bob);
        assert_denied(
            get_as(&app, BOB.0, "/api/me").await,
            "SF_ALLOWED_EMAIL_DOMAINS",
            &["acme.example"],
        )
        .await;
    }
}

#[tokio::test]
async fn portal_and_guest_users_are_refused_unless_their_type_is_listed() {
    let app = TestApp::builder().spawn().await;
    for user_type in ["CSP_LITE_PORTAL", "GUEST", "POWER_PARTNER"] {
        let mut bob = profile(&app, BOB.0);
        bob.user_type = user_type.into();
        app.emulator.set_user_profile(BOB.0, bob);
        assert_denied(get_as(&app, BOB.0, "/api/me").await, user_type, &[]).await;
    }
    expect_status(get_as(&app, ALICE.0, "/api/me").await, 200).await;

    let app = TestApp::builder()
        .envs(&[("SF_ALLOWED_USER_TYPES", "standard, CSP_LITE_PORTAL")])
        .spawn()
        .await;
    let mut bob = profile(&app, BOB.0);
    bob.user_type = "CSP_LITE_PORTAL".into();
    app.emulator.set_user_profile(BOB.0, bob);
    expect_status(get_as(&app, BOB.0, "/api/me").await, 200).await;
    let mut bob = profile(&app, BOB.0);
    bob.user_type = "GUEST".into();
    app.emulator.set_user_profile(BOB.0, bob);
    assert_denied(
        get_as(&app, BOB.0, "/api/me").await,
        "SF_ALLOWED_USER_TYPES",
        &["CSP_LITE_PORTAL"],
    )
    .await;
}

#[tokio::test]
async fn inactive_users_are_refused_even_when_listed_and_any_type_is_allowed() {
    let app = TestApp::builder()
        .envs(&[("SF_ALLOWED_USERS", BOB.0), ("SF_ALLOWED_USER_TYPES", "*")])
        .spawn()
        .await;
    expect_status(get_as(&app, BOB.0, "/api/me").await, 200).await;
    let mut bob = profile(&app, BOB.0);
    bob.active = false;
    app.emulator.set_user_profile(BOB.0, bob);
    assert_denied(get_as(&app, BOB.0, "/api/me").await, "inactive", &[]).await;
}

#[tokio::test]
async fn refusals_are_an_html_page_for_browsers() {
    let app = TestApp::builder()
        .envs(&[("SF_ALLOWED_USERS", ALICE_ID)])
        .spawn()
        .await;
    let t = app.tokens(BOB.0);
    let r = app
        .http
        .get(app.url("/secured"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 403).await;
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/html"));
    let page = r.text().await.expect("page");
    assert!(
        page.contains("access_denied") && page.contains("SF_ALLOWED_USERS"),
        "{page}"
    );
    assert!(!page.contains(ALICE_ID), "{page}");
}

/// The rules that need no path are applied at login: a refused user gets the refusal page at
/// the callback, no session cookie, and the grant Salesforce just issued is revoked.
#[tokio::test]
async fn a_refused_user_is_told_at_login_and_gets_no_session() {
    let app = TestApp::builder()
        .envs(&[("SF_ALLOWED_USERS", ALICE_ID)])
        .spawn()
        .await;
    let browser = browser_client();
    let revokes_before = app.emulator.stats().revoke;
    let r = app.login(&browser, BOB).await;
    let cookies = set_cookies(r.headers());
    let r = expect_status(r, 403).await;
    assert!(
        !cookies
            .iter()
            .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")),
        "a refused login set a session cookie: {cookies:?}"
    );
    let page = r.text().await.expect("page");
    assert!(
        page.contains("access_denied") && page.contains("SF_ALLOWED_USERS"),
        "{page}"
    );
    assert_eq!(
        app.emulator.stats().revoke,
        revokes_before + 1,
        "the refused login's grant is revoked"
    );
    // Nothing usable was left in the browser.
    let r = get_accepting(&browser, app.url("/api/me"), "application/json").await;
    expect_status(r, 401).await;

    // An allowed user logs in as before.
    let alice_browser = browser_client();
    let r = app.login(&alice_browser, ALICE).await;
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    let r = get_accepting(&alice_browser, app.url("/api/me"), "application/json").await;
    expect_status(r, 200).await;
}

#[tokio::test]
async fn required_custom_permissions_come_from_the_emulator_with_the_scope() {
    let scope = "api refresh_token custom_permissions";
    let app = TestApp::builder()
        .envs(&[
            ("SF_SCOPES", scope),
            ("SF_REQUIRED_PERMISSIONS", "Sfgate_Admin"),
        ])
        .spawn()
        .await;
    let r = get_as_with_scope(&app, ALICE.0, scope, "/api/me").await;
    let r = expect_status(r, 200).await;
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["custom_permissions"], json!(["Sfgate_Admin"]));
    // Bob has the permission set to false in the Connected App's map.
    assert_denied(
        get_as_with_scope(&app, BOB.0, scope, "/api/me").await,
        "Sfgate_Admin is not granted",
        &[],
    )
    .await;
    // A token without the scope carries no permissions: refused, and the reason says so.
    assert_denied(
        get_as(&app, ALICE.0, "/api/me").await,
        "custom_permissions scope",
        &[],
    )
    .await;
    // Granting the permission in "Setup" (the emulator's user table) admits Bob.
    let mut bob = profile(&app, BOB.0);
    bob.custom_permissions = vec![("Sfgate_Admin".into(), true)];
    app.emulator.set_user_profile(BOB.0, bob);
    expect_status(get_as_with_scope(&app, BOB.0, scope, "/api/me").await, 200).await;
}

#[tokio::test]
async fn route_rules_apply_to_sfgates_own_protected_routes() {
    let scope = "api custom_permissions";
    let app = TestApp::builder()
        .envs(&[
            ("SF_SCOPES", scope),
            ("ROUTE_RULES", "/api/me=perm:Sfgate_Admin"),
        ])
        .spawn()
        .await;
    expect_status(
        get_as_with_scope(&app, ALICE.0, scope, "/api/me").await,
        200,
    )
    .await;
    assert_denied(
        get_as_with_scope(&app, BOB.0, scope, "/api/me").await,
        "ROUTE_RULES rule 1",
        &["/api/me"],
    )
    .await;
    expect_status(get_as_with_scope(&app, BOB.0, scope, "/secured").await, 200).await;
}

#[tokio::test]
async fn route_rules_apply_in_gateway_mode_on_the_decoded_path_and_first_match_wins() {
    let echo = start_echo().await;
    let scope = "api custom_permissions";
    let app = TestApp::builder().envs(&[
        ("UPSTREAM_URL", &echo.url()),
        ("SF_SCOPES", scope),
        (
            "ROUTE_RULES",
            "/admin/open=user_type:STANDARD; /admin/=perm:Sfgate_Admin; ^/finance(/|$)=user:bob@acme.example",
        ),
    ]).spawn()
    .await;
    let as_user =
        |user: &'static str, path: &'static str| get_as_with_scope(&app, user, scope, path);
    expect_status(as_user(ALICE.0, "/admin/x").await, 200).await;
    expect_status_for(
        as_user(BOB.0, "/admin/open").await,
        200,
        "rule 1 matched first",
    )
    .await;
    expect_status(as_user(BOB.0, "/finance").await, 200).await;
    expect_status(as_user(BOB.0, "/elsewhere").await, 200).await;
    let before = echo.hits();
    assert_denied(as_user(BOB.0, "/admin/x").await, "ROUTE_RULES rule 2", &[]).await;
    assert_denied(as_user(BOB.0, "/admin").await, "ROUTE_RULES rule 2", &[]).await;
    assert_denied(
        as_user(BOB.0, "/adm%69n/x").await,
        "ROUTE_RULES rule 2",
        &[],
    )
    .await;
    assert_denied(
        as_user(ALICE.0, "/finance/q").await,
        "ROUTE_RULES rule 3",
        &["bob"],
    )
    .await;
    // Case-insensitive apps serve `/ADMIN/x` as `/admin/x`: the rule matches every case.
    for spelling in [
        "/ADMIN/x",
        "/aDmIn/",
        "/%41dmin/x",
        "/Adm%49N",
        "/FINANCE/q",
    ] {
        let r = as_user(
            if spelling == "/FINANCE/q" {
                ALICE.0
            } else {
                BOB.0
            },
            spelling,
        )
        .await;
        expect_status_for(r, 403, spelling).await;
    }
    // A spelling that a decoding upstream could read as another path is refused outright.
    expect_status(as_user(BOB.0, "/public%2f..%2fadmin/x").await, 400).await;
    assert_eq!(
        echo.hits(),
        before,
        "no refused request reached the upstream"
    );
}

/// Route rules read a path by the same rule the trust boundary accepted it with: with
/// `ALLOW_ENCODED_SLASHES`, a `%2F` path is proxied, not refused, and a rule applies when any
/// reading of the path (the `%2F` kept or decoded) falls under it.
#[tokio::test]
async fn with_encoded_slashes_allowed_route_rules_judge_every_reading_of_the_path() {
    let echo = start_echo().await;
    let scope = "api custom_permissions";
    let app = TestApp::builder()
        .envs(&[
            ("UPSTREAM_URL", &echo.url()),
            ("SF_SCOPES", scope),
            ("ALLOW_ENCODED_SLASHES", "true"),
            ("ROUTE_RULES", "/admin/=perm:Sfgate_Admin"),
        ])
        .spawn()
        .await;
    let as_user =
        |user: &'static str, path: &'static str| get_as_with_scope(&app, user, scope, path);
    let r = expect_status(as_user(BOB.0, "/docs/a%2Fb").await, 200).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["path"], "/docs/a%2Fb",
        "the upstream gets the path as sent"
    );
    expect_status(as_user(ALICE.0, "/admin%2Fx").await, 200).await;
    let before = echo.hits();
    assert_denied(
        as_user(BOB.0, "/admin%2Fx").await,
        "ROUTE_RULES rule 1",
        &[],
    )
    .await;
    assert_denied(
        as_user(BOB.0, "/%2Fadmin/x").await,
        "ROUTE_RULES rule 1",
        &[],
    )
    .await;
    assert_eq!(
        echo.hits(),
        before,
        "no refused request reached the upstream"
    );
}

async fn forward_auth(
    app: &TestApp,
    user: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let t = app
        .emulator
        .issue_tokens_with_scope(user, scope)
        .expect("known user");
    let mut request = app
        .http
        .get(app.url("/oauth2/auth"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url);
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.send().await.expect("forward auth")
}

#[tokio::test]
async fn forward_auth_applies_route_rules_to_the_original_uri_from_a_trusted_proxy() {
    let scope = "api custom_permissions";
    let app = TestApp::builder()
        .envs(&[
            ("SF_SCOPES", scope),
            ("TRUST_PROXY", "true"),
            ("ROUTE_RULES", "/admin/=perm:Sfgate_Admin"),
        ])
        .spawn()
        .await;
    let fa = |user, extra| forward_auth(&app, user, scope, extra);
    expect_status(
        fa(ALICE.0, &[("x-original-uri", "/admin/x?y=1")]).await,
        202,
    )
    .await;
    expect_status(fa(BOB.0, &[("x-original-uri", "/public/x")]).await, 202).await;
    assert_denied(
        fa(BOB.0, &[("x-original-uri", "/admin/x?q=/public/")]).await,
        "ROUTE_RULES rule 1",
        &[],
    )
    .await;
    assert_denied(
        fa(BOB.0, &[("x-forwarded-uri", "/admin/")]).await,
        "ROUTE_RULES rule 1",
        &[],
    )
    .await;
    assert_denied(
        fa(BOB.0, &[("x-original-uri", "/adm%69n/")]).await,
        "ROUTE_RULES rule 1",
        &[],
    )
    .await;
    // No original URI: the path is unknown, so nobody passes a gateway with route rules.
    assert_denied(fa(ALICE.0, &[]).await, "X-Original-URI", &[]).await;
    for bad in [
        "https://evil.example/public",
        "//evil.example/public",
        "/public/..%2fadmin/",
    ] {
        expect_status_for(
            forward_auth(&app, BOB.0, scope, &[("x-original-uri", bad)]).await,
            400,
            bad,
        )
        .await;
    }
}

#[tokio::test]
async fn forward_auth_ignores_the_original_uri_from_an_untrusted_peer() {
    let scope = "api custom_permissions";
    let app = TestApp::builder()
        .envs(&[
            ("SF_SCOPES", scope),
            ("ROUTE_RULES", "/admin/=perm:Sfgate_Admin"),
        ])
        .spawn()
        .await;
    // Without TRUST_PROXY, claiming a harmless path does not get Bob past the rules...
    assert_denied(
        forward_auth(&app, BOB.0, scope, &[("x-original-uri", "/public/x")]).await,
        "TRUST_PROXY",
        &[],
    )
    .await;
    // ...and claiming the admin path does not get Alice refused for Bob's reasons either:
    // the header is simply not read.
    assert_denied(
        forward_auth(&app, ALICE.0, scope, &[("x-original-uri", "/admin/x")]).await,
        "TRUST_PROXY",
        &[],
    )
    .await;
    // Without route rules, forward auth needs no original URI at all.
    let plain = TestApp::builder().spawn().await;
    expect_status(forward_auth(&plain, BOB.0, "api", &[]).await, 202).await;
}

/// The served JWKS, checked for caching headers.
async fn jwks(app: &TestApp) -> JwkSet {
    let r = app
        .http
        .get(app.url("/oauth2/jwks.json"))
        .send()
        .await
        .expect("jwks");
    let r = expect_status(r, 200).await;
    let cache = r.headers()["cache-control"]
        .to_str()
        .expect("cc")
        .to_string();
    assert!(
        cache.contains("public") && cache.contains("max-age="),
        "{cache}"
    );
    r.json().await.expect("jwks json")
}

/// Verifies an assertion as an app would: key by `kid` from the JWKS, ES256 only, issuer,
/// audience and expiry checked with no leeway.
fn verify(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.unwrap_or_default();
    let jwk = keys.find(&kid).ok_or_else(|| {
        jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)
    })?;
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|d| d.claims)
}

async fn assertion_gateway(echo: &StubServer) -> TestApp {
    TestApp::builder()
        .envs(&[
            ("UPSTREAM_URL", &echo.url()),
            ("ASSERTION_KEY", ASSERTION_KEY),
            ("SKIP_AUTH_ROUTES", "^/public/"),
        ])
        .spawn()
        .await
}

#[tokio::test]
async fn proxied_requests_carry_an_assertion_that_verifies_with_the_served_jwks() {
    let echo = start_echo().await;
    let app = assertion_gateway(&echo).await;
    let keys = jwks(&app).await;
    let t = app.tokens(ALICE.0);
    let echoed: Value = app
        .http
        .get(app.url("/app/page"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .header("x-sfgate-assertion", "forged.by.client")
        .header("x_sfgate_assertion", "forged.by.client")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let assertions = received(&echoed, "x-sfgate-assertion");
    assert_eq!(assertions.len(), 1, "{echoed}");
    assert!(
        received(&echoed, "x_sfgate_assertion").is_empty(),
        "{echoed}"
    );
    let token = &assertions[0];
    let claims = verify(token, &keys, &app.base, &echo.url()).expect("valid assertion verifies");
    let alice18 = sfgate::domain::SalesforceId::parse(ALICE_ID)
        .expect("id")
        .to_string();
    assert_eq!(claims["sub"], alice18.as_str());
    assert_eq!(
        claims["org"],
        sfgate::domain::OrgId::parse(ACME).expect("org").as_str()
    );
    assert_eq!(claims["username"], ALICE.0);
    assert_eq!(claims["email"], "alice@acme.example");
    let (iat, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert!(exp > iat && exp - iat <= 60, "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // The verifier rejects the wrong audience, an expired assertion and a forged signature.
    assert!(verify(token, &keys, &app.base, "https://other-app.example").is_err());
    assert!(verify(token, &keys, "https://not-sfgate.example", &echo.url()).is_err());
    let signer = app.gateway.state.assertion.as_ref().expect("signer");
    let identity = sfgate::domain::Identity::clone(
        &app.gateway
            .state
            .auth
            .validator()
            .validate(
                &app.gateway
                    .state
                    .config
                    .salesforce
                    .instance_policy
                    .check(&t.instance_url)
                    .expect("instance"),
                &secrecy::SecretString::from(t.access_token.clone()),
            )
            .await
            .expect("validates"),
    );
    let now = jsonwebtoken::get_current_timestamp();
    let expired = signer.sign(&identity, now - 120).expect("signed");
    assert!(verify(
        expired.to_str().expect("ascii"),
        &keys,
        &app.base,
        &echo.url()
    )
    .is_err());
    let fresh = signer.sign(&identity, now).expect("signed");
    assert!(verify(
        fresh.to_str().expect("ascii"),
        &keys,
        &app.base,
        &echo.url()
    )
    .is_ok());

    let forger = EncodingKey::from_ec_pem(FORGER_KEY.as_bytes()).expect("forger key");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = jsonwebtoken::decode_header(token).expect("header").kid;
    let forged = jsonwebtoken::encode(&header, &claims, &forger).expect("forged");
    assert!(verify(&forged, &keys, &app.base, &echo.url()).is_err());
    // Claims changed under sfgate's own signature fail too.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_payload =
        jsonwebtoken::encode(&header, &json!({"sub": "0055j00000BoB01"}), &forger).expect("enc");
    parts[1] = forged_payload.split('.').nth(1).expect("payload");
    assert!(verify(&parts.join("."), &keys, &app.base, &echo.url()).is_err());
}

#[tokio::test]
async fn skip_auth_routes_never_carry_an_assertion_not_even_the_clients() {
    let echo = start_echo().await;
    let app = assertion_gateway(&echo).await;
    let t = app.tokens(ALICE.0);
    for credentials in [false, true] {
        let mut request = app
            .http
            .get(app.url("/public/page"))
            .header("x-sfgate-assertion", "forged.by.client")
            .header("X_Sfgate_Assertion", "forged.by.client");
        if credentials {
            request = request
                .bearer_auth(&t.access_token)
                .header("x-instance-url", &t.instance_url);
        }
        let echoed: Value = request
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        assert_eq!(echoed["path"], "/public/page");
        assert!(
            received(&echoed, "x-sfgate-assertion").is_empty(),
            "{echoed}"
        );
        assert!(
            received(&echoed, "x_sfgate_assertion").is_empty(),
            "{echoed}"
        );
    }
}

#[tokio::test]
async fn forward_auth_202_carries_an_assertion_for_the_configured_audience() {
    let app = TestApp::builder()
        .envs(&[
            ("ASSERTION_KEY", ASSERTION_KEY),
            ("ASSERTION_AUDIENCE", "https://app.example"),
        ])
        .spawn()
        .await;
    let keys = jwks(&app).await;
    let r = forward_auth(&app, ALICE.0, "api", &[]).await;
    let r = expect_status(r, 202).await;
    let token = r.headers()["x-sfgate-assertion"]
        .to_str()
        .expect("ascii")
        .to_string();
    let claims = verify(&token, &keys, &app.base, "https://app.example").expect("verifies");
    assert_eq!(claims["username"], ALICE.0);
}

#[tokio::test]
async fn without_an_assertion_key_there_is_no_jwks_and_no_assertion() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .envs(&[("UPSTREAM_URL", &echo.url())])
        .spawn()
        .await;
    let r = app
        .http
        .get(app.url("/oauth2/jwks.json"))
        .send()
        .await
        .expect("jwks");
    expect_status(r, 404).await;
    let t = app.tokens(ALICE.0);
    let echoed: Value = app
        .get_with_token("/app", &t.access_token, &t.instance_url)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        received(&echoed, "x-sfgate-assertion").is_empty(),
        "{echoed}"
    );
    // Other well-known paths stay the app's.
    let r = app
        .http
        .get(app.url("/.well-known/security.txt"))
        .send()
        .await
        .expect("wk");
    assert_ne!(r.status(), 404);
}
