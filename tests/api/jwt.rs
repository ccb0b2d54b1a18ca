//! JWT-based access tokens validated locally, and introspection: against the real gateway and
//! the emulator, counting every request the emulator receives.

use crate::common::*;
use crate::helpers::log_watch::{log_text, watch};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sfgate_emulator::{Endpoint, Fault, FOREIGN_KEY};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ALICE_USER: &str = "alice@acme.example";
const CAROL_USER: &str = "carol@globex.example";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.get_with_token("/api/me", token, &app.emulator.base_url())
        .await
}

async fn assert_refused(app: &TestApp, token: &str, status: u16, case: &str) {
    let r = me(app, token).await;
    let r = expect_status_for(r, status, case).await;
    let body: Value = r.json().await.expect("json error");
    let expected = if status == 401 {
        "invalid_token"
    } else {
        "org_not_allowed"
    };
    assert_eq!(body["error"], expected, "{case}: {body}");
}

/// One admitted JWT: the issuer's keys and alice's profile are then cached. Returns it, a
/// valid token to forge others from.
async fn warm_up(app: &TestApp) -> String {
    let grant = app.emulator.issue_jwt(ALICE_USER).expect("alice");
    assert_eq!(grant.token_format.as_deref(), Some("jwt"));
    let r = me(app, &grant.access_token).await;
    expect_status(r, 200).await;
    grant.access_token
}

fn part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `token` with its payload replaced by `claims`, header and signature kept as they were.
fn with_payload(token: &str, claims: &Value) -> String {
    let mut pieces = token.split('.');
    let (header, _, signature) = (
        pieces.next().expect("h"),
        pieces.next(),
        pieces.next().expect("s"),
    );
    format!("{header}.{}.{signature}", part(claims))
}

/// `POST /oauth2/logout` with `token` as the bearer.
async fn log_out(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/oauth2/logout"))
        .bearer_auth(token)
        .header("x-instance-url", app.emulator.base_url())
        .send()
        .await
        .expect("logout")
}

#[tokio::test]
async fn a_known_users_new_jwt_is_admitted_with_no_call_at_salesforce() {
    let app = TestApp::builder().spawn().await;
    let first = app.emulator.issue_jwt(ALICE_USER).expect("alice");
    let r = me(&app, &first.access_token).await;
    let r = expect_status(r, 200).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["username"], ALICE_USER);
    assert_eq!(body["organization_id"], "00D5j00000AcMe1EAF");
    let stats = app.emulator.stats();
    assert_eq!(
        (stats.discovery, stats.jwks, stats.userinfo),
        (1, 1, 1),
        "discovery, keys and alice's profile once: {stats:?}"
    );

    app.emulator.reset_stats();
    for _ in 0..3 {
        let token = app.emulator.issue_jwt(ALICE_USER).expect("alice");
        let r = me(&app, &token.access_token).await;
        let r = expect_status(r, 200).await;
        let body: Value = r.json().await.expect("json");
        assert_eq!(
            body["username"], ALICE_USER,
            "the profile comes from the cache"
        );
        assert_eq!(body["display_name"], "Alice Admin");
    }
    assert_eq!(app.emulator.stats().total(), 0, "no request at all");

    let scrape = scrape(&app).await;
    assert!(
        metric(
            &scrape,
            "sfgate_token_validations_total",
            &[("method", "jwt_local"), ("outcome", "valid")]
        ) >= 4.0
    );
    // The recorder is shared by the tests of this binary: the exact count is the emulator's.
    assert!(metric(&scrape, "sfgate_jwks_fetches_total", &[("outcome", "ok")]) >= 1.0);
}

#[tokio::test]
async fn forged_and_unacceptable_jwts_are_refused_locally() {
    let app = TestApp::builder().spawn().await;
    warm_up(&app).await;
    let emulator = &app.emulator;
    let kid = emulator.jwt_kid();
    let valid = emulator.issue_jwt(ALICE_USER).expect("alice").access_token;
    let claims = emulator.jwt_claims(ALICE_USER).expect("claims");
    let with = |changes: Value| {
        let mut c = claims.clone();
        for (k, v) in changes.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let sign = |c: &Value| emulator.sign_jwt(ACME, c, &Value::Null);
    let salesforce_header = |alg: &str| {
        json!({"alg": alg, "typ": "JWT", "kid": kid, "tty": "sfdc-core-token",
               "tnk": "core/sfgate-emulator/00D5j00000AcMe1EAF"})
    };

    // The signature no longer covers the payload: bob's id in alice's token.
    let bob = with(json!({"sub": "uid:0055j00000BoB01AAF"}));
    let tampered = with_payload(&valid, &bob);

    // Signed with a key the issuer never published, under the issuer's current kid.
    let mut foreign_header = Header::new(Algorithm::RS256);
    foreign_header.typ = Some("JWT".into());
    foreign_header.kid = Some(kid.clone());
    foreign_header.extras.insert("tty", "sfdc-core-token");
    foreign_header
        .extras
        .insert("tnk", "core/sfgate-emulator/00D5j00000AcMe1EAF");
    let wrong_key = jsonwebtoken::encode(
        &foreign_header,
        &claims,
        &EncodingKey::from_rsa_pem(FOREIGN_KEY.as_bytes()).expect("pem"),
    )
    .expect("sign");

    let alg_none = format!("{}.{}.", part(&salesforce_header("none")), part(&claims));

    // The classic confusion: HMAC with the published public key as the secret.
    let jwks: Value = app
        .http
        .get(format!("{}/id/keys", emulator.base_url()))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let public_n = jwks["keys"][0]["n"].as_str().expect("n").to_string();
    let mut hs_header = foreign_header.clone();
    hs_header.alg = Algorithm::HS256;
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &EncodingKey::from_secret(public_n.as_bytes()),
    )
    .expect("sign");

    let t = now();
    let expired = sign(&with(
        json!({"iat": t - 3600, "nbf": t - 3600, "exp": t - 120}),
    ));
    let not_yet = sign(&with(json!({"nbf": t + 600, "exp": t + 3600})));
    let foreign_client = sign(&with(json!({"client_id": "someone-elses-app"})));
    let no_client = {
        let mut c = claims.clone();
        c.as_object_mut().expect("object").remove("client_id");
        sign(&c)
    };
    let carol = emulator.jwt_claims(CAROL_USER).expect("carol");
    let other_org = emulator.sign_jwt(GLOBEX, &carol, &Value::Null);
    app.emulator.reset_stats();
    for (token, status, case) in [
        (&tampered, 401, "tampered payload"),
        (&wrong_key, 401, "wrong key"),
        (&alg_none, 401, "alg none"),
        (&hs256, 401, "HS256 with the public key as secret"),
        (&expired, 401, "expired"),
        (&not_yet, 401, "not yet valid"),
        (&foreign_client, 401, "foreign client_id"),
        (&no_client, 401, "no client_id"),
        (&other_org, 403, "org not allowed"),
    ] {
        assert_refused(&app, token, status, case).await;
    }
    assert_eq!(
        app.emulator.stats().total(),
        0,
        "every refusal is local: {:?}",
        app.emulator.stats()
    );
    let scrape = scrape(&app).await;
    assert!(
        metric(
            &scrape,
            "sfgate_token_validations_total",
            &[("method", "jwt_local"), ("outcome", "invalid")]
        ) >= 8.0
    );
}

#[tokio::test]
async fn sfgates_own_client_id_or_a_listed_one_is_accepted() {
    let app = TestApp::builder()
        .env("SF_ACCEPTED_CLIENT_IDS", "mobile-app, other-app")
        .spawn()
        .await;
    warm_up(&app).await;
    let mut claims = app.emulator.jwt_claims(ALICE_USER).expect("claims");
    claims["client_id"] = json!("other-app");
    let listed = app.emulator.sign_jwt(ACME, &claims, &Value::Null);
    expect_status(me(&app, &listed).await, 200).await;
    claims["client_id"] = json!("unlisted-app");
    let unlisted = app.emulator.sign_jwt(ACME, &claims, &Value::Null);
    assert_refused(&app, &unlisted, 401, "unlisted client").await;
}

#[tokio::test]
async fn an_issuer_outside_the_instance_policy_is_never_contacted() {
    let app = TestApp::builder().spawn().await;
    // A host that would happily serve keys; it is not an allowed instance.
    let elsewhere = StubServer::start(
        200,
        "application/json",
        r#"{"jwks_uri":"http://127.0.0.1:9/keys","keys":[]}"#.into(),
    )
    .await;
    let mut claims = app.emulator.jwt_claims(ALICE_USER).expect("claims");
    claims["iss"] = json!(elsewhere.url());
    claims["aud"] = json!(elsewhere.url());
    let token = app.emulator.sign_jwt(ACME, &claims, &Value::Null);

    // Named as the instance: refused by the policy before validation.
    let r = app
        .get_with_token("/api/me", &token, &elsewhere.url())
        .await;
    expect_status(r, 401).await;
    // With an allowed instance named: the token's own issuer is checked the same way.
    assert_refused(&app, &token, 401, "issuer outside the policy").await;
    let body: Value = me(&app, &token).await.json().await.expect("json");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("issuer")),
        "{body}"
    );
    assert_eq!(elsewhere.hits(), 0, "no request reached the foreign issuer");
    assert_eq!(app.emulator.stats().total(), 0);
}

#[tokio::test]
async fn a_rotated_key_costs_one_refetch() {
    let app = TestApp::builder().spawn().await;
    warm_up(&app).await;
    let old = app.emulator.jwt_kid();
    let new = app.emulator.rotate_jwt_key();
    assert_ne!(old, new);
    app.emulator.reset_stats();
    for _ in 0..3 {
        let token = app.emulator.issue_jwt(ALICE_USER).expect("alice");
        expect_status(me(&app, &token.access_token).await, 200).await;
    }
    let stats = app.emulator.stats();
    assert_eq!(stats.jwks, 1, "one refetch for the new kid: {stats:?}");
    assert_eq!(stats.total(), 1, "{stats:?}");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_refetches_at_most_once_a_minute() {
    let app = TestApp::builder().spawn().await;
    warm_up(&app).await;
    app.emulator.reset_stats();
    let claims = app.emulator.jwt_claims(ALICE_USER).expect("claims");
    for i in 0..25 {
        let token = app
            .emulator
            .sign_jwt(ACME, &claims, &json!({"kid": format!("made-up-{i}")}));
        assert_refused(&app, &token, 401, "unknown kid").await;
    }
    let stats = app.emulator.stats();
    assert_eq!(stats.jwks, 1, "{stats:?}");
    assert_eq!(stats.total(), 1, "{stats:?}");
    // Known keys keep working meanwhile.
    let token = app.emulator.issue_jwt(ALICE_USER).expect("alice");
    expect_status(me(&app, &token.access_token).await, 200).await;
    let scrape = scrape(&app).await;
    assert!(
        metric(
            &scrape,
            "sfgate_jwks_fetches_total",
            &[("outcome", "unknown_kid_limited")]
        ) >= 24.0
    );
}

/// The per-client Salesforce budget protects Salesforce: JWTs checked against cached keys call
/// nothing and spend none of it, while a JWT whose keys must be fetched does.
#[tokio::test]
async fn locally_checked_jwts_spend_no_salesforce_budget_but_key_fetches_do() {
    let app = TestApp::builder()
        .env("VALIDATION_MISSES_PER_MINUTE", "2")
        .spawn()
        .await;
    let valid = warm_up(&app).await;
    let (signed, signature) = valid.rsplit_once('.').expect("three parts");
    app.emulator.reset_stats();
    // Many more forged JWTs than the budget allows: each refused locally, none rate limited.
    for i in 0..6 {
        let mut forged_signature = signature.to_string();
        let replacement = if &signature[i..=i] == "A" { "B" } else { "A" };
        forged_signature.replace_range(i..=i, replacement);
        let forged = format!("{signed}.{forged_signature}");
        assert_refused(&app, &forged, 401, &format!("forged signature {i}")).await;
    }
    assert_eq!(
        app.emulator.stats().total(),
        0,
        "{:?}",
        app.emulator.stats()
    );
    // The whole budget is still there for calls at Salesforce: two invented opaque tokens...
    for i in 0..2 {
        let invented = format!("00D5j00000AcMe1!invented-{i}");
        assert_refused(&app, &invented, 401, "invented opaque token").await;
    }
    // ...and then it is spent: an opaque token and a JWT whose key must be fetched are refused
    // without a call.
    let r = me(&app, "00D5j00000AcMe1!invented-2").await;
    expect_status(r, 429).await;
    let claims = app.emulator.jwt_claims(ALICE_USER).expect("claims");
    let unknown_kid = app
        .emulator
        .sign_jwt(ACME, &claims, &json!({"kid": "made-up-kid"}));
    let r = me(&app, &unknown_kid).await;
    expect_status(r, 429).await;
    assert_eq!(app.emulator.stats().jwks, 0, "{:?}", app.emulator.stats());
    // A new valid JWT of a known issuer still gets in: it costs Salesforce nothing.
    let another = app
        .emulator
        .issue_jwt(ALICE_USER)
        .expect("alice")
        .access_token;
    expect_status(me(&app, &another).await, 200).await;
}

#[tokio::test]
async fn cached_keys_keep_admitting_while_the_jwks_endpoint_is_down() {
    let app = TestApp::builder().spawn().await;
    warm_up(&app).await;
    app.emulator
        .set_fault_for(Endpoint::Jwks, Fault::ServerError);
    app.emulator
        .set_fault_for(Endpoint::Discovery, Fault::ServerError);
    let token = app.emulator.issue_jwt(ALICE_USER).expect("alice");
    expect_status(me(&app, &token.access_token).await, 200).await;
}

#[tokio::test]
async fn without_any_key_a_jwks_outage_fails_closed_as_unavailable() {
    let app = TestApp::builder().spawn().await;
    app.emulator
        .set_fault_for(Endpoint::Jwks, Fault::ServerError);
    app.emulator
        .set_fault_for(Endpoint::Discovery, Fault::ServerError);
    let token = app.emulator.issue_jwt(ALICE_USER).expect("alice");
    let r = me(&app, &token.access_token).await;
    let r = expect_status_for(r, 502, "Salesforce's failure, not the token's").await;
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_failed_profile_fetch_admits_the_token_without_the_profile() {
    let app = TestApp::builder()
        .configure(|env| {
            // No rule needs the profile (the default user-type rule does: it would fetch it).
            env.insert("SF_ALLOWED_USER_TYPES".into(), "*".into());
        })
        .spawn()
        .await;
    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let token = app.emulator.issue_jwt(ALICE_USER).expect("alice");
    let r = me(&app, &token.access_token).await;
    let r = expect_status(r, 200).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["user_id"], "0055j00000AlIcEAAV");
    assert_eq!(body["username"], Value::Null, "missing, not empty: {body}");
    assert_eq!(body["email"], Value::Null);
}

#[tokio::test]
async fn userinfo_mode_sends_jwts_to_userinfo() {
    let app = TestApp::builder()
        .env("SF_TOKEN_VALIDATION", "userinfo")
        .spawn()
        .await;
    let token = app.emulator.issue_jwt(ALICE_USER).expect("alice");
    expect_status(me(&app, &token.access_token).await, 200).await;
    let stats = app.emulator.stats();
    assert_eq!((stats.userinfo, stats.jwks), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn introspection_refuses_inactive_tokens() {
    let app = TestApp::builder()
        .env("SF_TOKEN_VALIDATION", "introspect")
        .spawn()
        .await;
    let grant = app.tokens(ALICE_USER);
    let r = me(&app, &grant.access_token).await;
    let r = expect_status(r, 200).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["username"], ALICE_USER);
    assert_eq!(body["organization_id"], "00D5j00000AcMe1EAF");
    assert_eq!(app.emulator.calls(Endpoint::Introspect), 1);

    let other = app.tokens(ALICE_USER);
    // Revoked at Salesforce: introspection answers {"active": false}.
    let revoke = app
        .http
        .post(format!(
            "{}/services/oauth2/revoke",
            app.emulator.base_url()
        ))
        .form(&[("token", other.access_token.as_str())])
        .send()
        .await
        .expect("revoke");
    expect_status(revoke, 200).await;
    assert_refused(&app, &other.access_token, 401, "inactive").await;
    assert_refused(&app, "00D5j00000AcMe1!never-issued", 401, "unknown").await;
    let scrape = scrape(&app).await;
    assert!(
        metric(
            &scrape,
            "sfgate_token_validations_total",
            &[("method", "introspect"), ("outcome", "invalid")]
        ) >= 2.0
    );
}

#[tokio::test]
async fn introspections_exp_shortens_the_cache() {
    let app = TestApp::builder()
        .emulator(|emulator| emulator.access_token_lifetime = Duration::from_secs(3))
        .env("SF_TOKEN_VALIDATION", "introspect")
        .env("IDENTITY_CACHE_TTL", "600")
        .spawn()
        .await;
    let grant = app.tokens(ALICE_USER);
    expect_status(me(&app, &grant.access_token).await, 200).await;
    expect_status(me(&app, &grant.access_token).await, 200).await;
    assert_eq!(
        app.emulator.calls(Endpoint::Introspect),
        1,
        "cached while the token lives"
    );
    tokio::time::sleep(Duration::from_millis(4200)).await;
    assert_refused(&app, &grant.access_token, 401, "expired").await;
    assert_eq!(
        app.emulator.calls(Endpoint::Introspect),
        2,
        "asked again once exp passed, although IDENTITY_CACHE_TTL is 600 s"
    );
}

#[tokio::test]
async fn a_jwt_verdict_is_not_cached_past_the_tokens_exp() {
    let app = TestApp::builder()
        .configure(|env| {
            env.insert("IDENTITY_CACHE_TTL".into(), "600".into());
            // No rule needs the profile (the default user-type rule does: it would fetch it).
            env.insert("SF_ALLOWED_USER_TYPES".into(), "*".into());
        })
        .spawn()
        .await;
    warm_up(&app).await;
    // Tokens the emulator signed but never registered: its userinfo refuses them, so each
    // validation that is not answered from the cache shows as one (failed) profile fetch.
    let mut claims = app.emulator.jwt_claims("bob@acme.example").expect("bob");
    claims["exp"] = json!(now() + 600);
    let lives = app.emulator.sign_jwt(ACME, &claims, &Value::Null);
    // Past its exp but within the 30 s leeway: admitted, and never from the cache.
    claims["exp"] = json!(now() - 1);
    let expiring = app.emulator.sign_jwt(ACME, &claims, &Value::Null);

    app.emulator.reset_stats();
    expect_status(me(&app, &lives).await, 200).await;
    expect_status(me(&app, &lives).await, 200).await;
    assert_eq!(
        app.emulator.calls(Endpoint::UserInfo),
        1,
        "a living token's verdict is cached"
    );
    app.emulator.reset_stats();
    expect_status_for(me(&app, &expiring).await, 200, "within the leeway").await;
    expect_status(me(&app, &expiring).await, 200).await;
    assert_eq!(
        app.emulator.calls(Endpoint::UserInfo),
        2,
        "validated again: the verdict was not cached past exp"
    );
}

#[tokio::test]
async fn the_second_demo_app_issues_jwts_the_gateway_accepts() {
    let app = TestApp::builder()
        .emulator(|emulator| {
            emulator.jwt_app = Some(sfgate_emulator::ConnectedApp {
                client_id: "jwt-app".into(),
                client_secret: "jwt-app-secret".into(),
            })
        })
        .env("SF_ACCEPTED_CLIENT_IDS", "jwt-app")
        .spawn()
        .await;
    let grant: Value = app
        .http
        .post(format!("{}/services/oauth2/token", app.emulator.base_url()))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "jwt-app"),
            ("client_secret", "jwt-app-secret"),
            ("username", ALICE.0),
            ("password", ALICE.1),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    assert_eq!(grant["token_format"], "jwt");
    let token = grant["access_token"].as_str().expect("token");
    assert!(token.starts_with("eyJ"));
    let r = me(&app, token).await;
    let r = expect_status(r, 200).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["username"], ALICE_USER);
}

#[tokio::test]
async fn an_emulator_with_the_switch_on_issues_jwts_through_every_flow() {
    let app = TestApp::builder()
        .emulator(|emulator| emulator.jwt_access_tokens = true)
        .env("SF_ENABLE_PASSWORD_FLOW", "true")
        .spawn()
        .await;
    let r = password_grant(&app, ALICE).await;
    let r = expect_status(r, 200).await;
    let body: Value = r.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(token.split('.').count(), 3, "a JWT");
    expect_status(me(&app, token).await, 200).await;
}

#[tokio::test]
async fn a_jwt_logged_out_through_sfgate_stops_working_at_once() {
    let app = TestApp::builder().spawn().await;
    let token = app
        .emulator
        .issue_jwt(ALICE_USER)
        .expect("alice")
        .access_token;
    expect_status(me(&app, &token).await, 200).await;
    let logout = log_out(&app, &token).await;
    assert!(logout.status().is_success(), "{}", logout.status());
    assert!(app.emulator.is_revoked(&token));
    // Its signature and exp are still fine: only sfgate's memory of the logout refuses it.
    assert_refused(&app, &token, 401, "logged out").await;
    // Other tokens of the same user are unaffected.
    let other = app
        .emulator
        .issue_jwt(ALICE_USER)
        .expect("alice")
        .access_token;
    expect_status(me(&app, &other).await, 200).await;
}

/// Logouts are remembered in a bounded set (sized by IDENTITY_CACHE_MAX); a flood of them
/// drops the memories nearest their end. A JWT whose logout memory was dropped must stay
/// refused: checked at Salesforce, which the logout revoked it at, never admitted again by
/// local validation (a revocation lost is not a revocation undone).
#[tokio::test]
async fn a_jwt_whose_logout_a_flood_of_logouts_pushed_out_stays_refused() {
    watch();
    // The logouts' memory holds one per shard at this size, so the next logout landing in the
    // victim's shard drops the victim's, whose end is nearest.
    let app = TestApp::builder()
        .env("IDENTITY_CACHE_MAX", "8")
        .spawn()
        .await;
    let victim = app
        .emulator
        .issue_jwt(ALICE_USER)
        .expect("alice")
        .access_token;
    expect_status(me(&app, &victim).await, 200).await;
    let logout = log_out(&app, &victim).await;
    assert!(logout.status().is_success(), "{}", logout.status());
    assert_refused(&app, &victim, 401, "logged out").await;
    // Issued a second later, so every other token's memory ends after the victim's.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let forgotten = |scrape: &str| metric(scrape, "sfgate_tombstones_forgotten_early_total", &[]);
    let before = forgotten(&scrape(&app).await);
    for _ in 0..128 {
        let other = app
            .emulator
            .issue_jwt(ALICE_USER)
            .expect("alice")
            .access_token;
        let logout = log_out(&app, &other).await;
        assert!(logout.status().is_success(), "{}", logout.status());
    }
    // The recorder is the test process's, shared with tests running beside this one: this
    // says the counter moved, the refusal below is what this test is for.
    assert!(
        forgotten(&scrape(&app).await) > before,
        "the flood dropped no memory of a logout"
    );
    // Operators are told: how much longer a dropped logout matters (set from this gateway's
    // state at its own scrape; a test beside it may set it from its own in between, so a few
    // scrapes are allowed), and a warning when the set starts to forget.
    let mut in_force = 0.0;
    for _ in 0..5 {
        in_force = metric(
            &scrape(&app).await,
            "sfgate_logouts_forgotten_in_force_seconds",
            &[("set", "access_tokens")],
        );
        if in_force > 0.0 {
            break;
        }
    }
    assert!(
        in_force > 0.0,
        "no figure says a dropped logout still matters"
    );
    assert!(
        log_text().lines().any(|line| line.contains("WARN")
            && line.contains("dropped some that are still in force")
            && line.contains("access_tokens")
            && line.contains("capacity=8")),
        "no warning that the logouts' memory started to forget"
    );
    // Its signature and exp are still fine; the memory of its logout is gone (with 128 logouts
    // over 8 shards, one landed in its shard but for a chance of 1 in 26 million). Salesforce
    // says no.
    let asked = app.emulator.calls(Endpoint::UserInfo);
    assert_refused(&app, &victim, 401, "logout memory dropped by a flood").await;
    assert!(app.emulator.is_revoked(&victim));
    assert_eq!(
        app.emulator.calls(Endpoint::UserInfo),
        asked + 1,
        "the JWT is checked at Salesforce while a dropped logout would still be in force"
    );
    // Valid JWTs are still admitted, checked there too until the dropped memories lapse.
    let fresh = app
        .emulator
        .issue_jwt(ALICE_USER)
        .expect("alice")
        .access_token;
    expect_status(me(&app, &fresh).await, 200).await;
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), asked + 2);
}

/// Refusals are what anyone can add to the cache (a JWT refused by its signature costs
/// nothing to send and spends no budget), so they never take an admission's room: a flood of
/// made-up tokens, each sent again and again, leaves a valid token's cached verdict in place.
#[tokio::test]
async fn a_flood_of_refused_tokens_never_pushes_an_admission_out_of_the_cache() {
    let app = TestApp::builder()
        .env("IDENTITY_CACHE_MAX", "16")
        .spawn()
        .await;
    let valid = warm_up(&app).await;
    let claims = app.emulator.jwt_claims(ALICE_USER).expect("claims");
    let opaque = app.emulator.issue_tokens(ALICE_USER).expect("alice");
    let opaque_me = || app.get_with_token("/api/me", &opaque.access_token, &opaque.instance_url);
    expect_status(opaque_me().await, 200).await;
    let asked = app.emulator.calls(Endpoint::UserInfo);
    // Four times the cache's size in distinct forgeries, each asked for often enough that a
    // frequency-based policy would rank it above the valid token.
    let forged: Vec<String> = (0..64)
        .map(|n| {
            let mut c = claims.clone();
            c["n"] = json!(n);
            with_payload(&valid, &c)
        })
        .collect();
    for _ in 0..20 {
        for token in &forged {
            expect_status(me(&app, token).await, 401).await;
        }
        // Time for the cache's upkeep (eviction and admission) to run.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    expect_status(opaque_me().await, 200).await;
    assert_eq!(
        app.emulator.calls(Endpoint::UserInfo),
        asked,
        "the valid token's verdict was pushed out by refusals and checked at Salesforce again"
    );
}

/// An upstream that answers with the headers it received, as JSON `{name: [values]}`.
async fn header_echo() -> String {
    let app = axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
        let mut map = serde_json::Map::new();
        for (name, value) in &headers {
            let entry = map
                .entry(name.as_str().to_string())
                .or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!(value.to_str().unwrap_or("<binary>")));
            }
        }
        axum::Json(Value::Object(map))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test]
async fn without_a_profile_the_upstream_gets_the_ids_and_no_username_not_even_a_spoofed_one() {
    let upstream = header_echo().await;
    let app = TestApp::builder()
        .configure(move |env| {
            env.insert("UPSTREAM_URL".into(), upstream);
            // No rule needs the profile (the default user-type rule does: it would fetch it).
            env.insert("SF_ALLOWED_USER_TYPES".into(), "*".into());
        })
        .spawn()
        .await;
    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let token = app
        .emulator
        .issue_jwt(ALICE_USER)
        .expect("alice")
        .access_token;
    let r = app
        .http
        .get(app.url("/app/hello"))
        .bearer_auth(&token)
        .header("x-instance-url", app.emulator.base_url())
        .header("x-salesforce-username", "mallory@evil.example")
        .header("x-forwarded-preferred-username", "mallory@evil.example")
        .header("x-forwarded-email", "mallory@evil.example")
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(
        echoed["x-salesforce-user-id"],
        json!(["0055j00000AlIcEAAV"])
    );
    assert_eq!(echoed["x-salesforce-org-id"], json!(["00D5j00000AcMe1EAF"]));
    for absent in [
        "x-salesforce-username",
        "x-forwarded-preferred-username",
        "x-forwarded-email",
        "authorization",
    ] {
        assert_eq!(echoed[absent], Value::Null, "{absent} in {echoed}");
    }
}

#[tokio::test]
async fn a_decision_that_needs_the_profile_gets_it_once_per_user_or_fails_closed() {
    let app = TestApp::builder().spawn().await;
    let validator = app.gateway.state.auth.validator();
    let instance = app
        .gateway
        .state
        .config
        .salesforce
        .instance_policy
        .check(&app.emulator.base_url())
        .expect("allowed");
    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let token = secrecy::SecretString::from(
        app.emulator
            .issue_jwt(ALICE_USER)
            .expect("alice")
            .access_token,
    );
    let admitted = validator.validate(&instance, &token).await.expect("valid");
    assert!(!admitted.has_profile());
    let refused = validator.require_profile(&admitted, &token).await;
    assert!(
        matches!(refused, Err(sfgate::auth::AuthError::Upstream(_))),
        "fails closed while userinfo is down"
    );

    app.emulator.set_fault_for(Endpoint::UserInfo, Fault::None);
    app.emulator.reset_stats();
    let full = validator
        .require_profile(&admitted, &token)
        .await
        .expect("profile");
    assert_eq!(full.username.as_deref(), Some(ALICE_USER));
    assert_eq!(full.display_name.as_deref(), Some("Alice Admin"));
    let again = validator
        .require_profile(&admitted, &token)
        .await
        .expect("profile");
    assert_eq!(again, full);
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 1, "cached per user");
}

/// Logging out with a forged JWT whose `exp` is the largest number a claim can hold is the
/// caller's mistake: it gets an answer, never a server error (how long the logout is
/// remembered is computed from that unchecked `exp`).
#[tokio::test]
async fn a_logout_with_a_forged_jwt_of_the_largest_exp_is_answered() {
    let app = TestApp::builder().spawn().await;
    let valid = warm_up(&app).await;
    let mut claims = app.emulator.jwt_claims(ALICE_USER).expect("claims");
    claims["exp"] = json!(u64::MAX);
    let r = log_out(&app, &with_payload(&valid, &claims)).await;
    assert!(
        r.status().is_success() || r.status().is_client_error(),
        "logout answered {}",
        r.status()
    );
    let body: Value = r.json().await.expect("a JSON answer");
    assert!(body.is_object(), "{body}");
}
