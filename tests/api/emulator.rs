//! The Salesforce emulator, spoken to over HTTP exactly as sfgate and a browser would: its
//! behaviour is what every other test relies on, so it is pinned down here against Salesforce's
//! documented behaviour (shared/salesforce.md).

use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use sfgate::salesforce::emulator::{Emulator, EmulatorConfig, EmulatorHandle, Endpoint, Fault};
use sfgate::salesforce::verify_signature;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "emu-client";
const CLIENT_SECRET: &str = "emu-secret";
const CALLBACK: &str = "http://127.0.0.1:9/oauth2/callback";
/// A PKCE pair from RFC 7636, appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Emu {
    handle: EmulatorHandle,
    http: reqwest::Client,
}

async fn start(configure: impl FnOnce(&mut EmulatorConfig)) -> Emu {
    let mut config = EmulatorConfig::new(CLIENT_ID, CLIENT_SECRET);
    config.redirect_uris = vec![CALLBACK.to_string()];
    configure(&mut config);
    let handle = Emulator::start(config, 0).await.expect("emulator starts");
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    Emu { handle, http }
}

impl Emu {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    fn authorize_params(&self, challenge: Option<&str>) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("response_type", "code".to_string()),
            ("client_id", CLIENT_ID.to_string()),
            ("redirect_uri", CALLBACK.to_string()),
            ("scope", "api refresh_token".to_string()),
            ("state", "st4te".to_string()),
        ];
        if let Some(c) = challenge {
            p.push(("code_challenge", c.to_string()));
            p.push(("code_challenge_method", "S256".to_string()));
        }
        p
    }

    /// Submits the login form; returns the redirect's query parameters.
    async fn login(
        &self,
        challenge: Option<&str>,
        user: &str,
        password: &str,
        action: &str,
    ) -> (StatusCode, HashMap<String, String>) {
        let mut form = self.authorize_params(challenge);
        form.push(("username", user.to_string()));
        form.push(("password", password.to_string()));
        form.push(("action", action.to_string()));
        let r = self
            .http
            .post(self.url("/services/oauth2/authorize"))
            .form(&form)
            .send()
            .await
            .expect("submit");
        let status = r.status();
        let query = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url::Url::parse(l).ok())
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        (status, query)
    }

    async fn code_for(&self, challenge: Option<&str>) -> String {
        let (status, q) = self
            .login(challenge, "alice@acme.example", "alice-demo-1", "allow")
            .await;
        assert_eq!(status, StatusCode::FOUND);
        q.get("code").cloned().expect("a code")
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/services/oauth2/token"))
            .form(form)
            .send()
            .await
            .expect("token");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn exchange(&self, code: &str, verifier: Option<&str>) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", CALLBACK),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(&form).await
    }

    async fn userinfo(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/services/oauth2/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .expect("userinfo")
    }
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn it_binds_loopback_only() {
    let emu = start(|_| {}).await;
    assert!(emu.handle.addr().ip().is_loopback());
}

#[tokio::test]
async fn the_login_page_is_a_form_that_keeps_state_and_challenge() {
    let emu = start(|_| {}).await;
    let r = emu
        .http
        .get(emu.url("/services/oauth2/authorize"))
        .query(&emu.authorize_params(Some(CHALLENGE)))
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("html");
    for needle in [
        "id=\"username\"",
        "id=\"password\"",
        "id=\"allow\"",
        "id=\"deny\"",
        "value=\"st4te\"",
        CHALLENGE,
    ] {
        assert!(page.contains(needle), "missing {needle}");
    }
}

#[tokio::test]
async fn unknown_clients_and_redirect_uris_get_an_error_page_never_a_redirect() {
    let emu = start(|_| {}).await;
    for (key, value, error) in [
        ("client_id", "someone-else", "invalid_client_id"),
        (
            "redirect_uri",
            "https://evil.example/cb",
            "redirect_uri_mismatch",
        ),
        // Exact match only: a longer path or a query is a different URI.
        (
            "redirect_uri",
            "http://127.0.0.1:9/oauth2/callback/x",
            "redirect_uri_mismatch",
        ),
        (
            "redirect_uri",
            "http://127.0.0.1:9/oauth2/callback?x=1",
            "redirect_uri_mismatch",
        ),
    ] {
        let mut params = emu.authorize_params(None);
        for p in params.iter_mut().filter(|p| p.0 == key) {
            p.1 = value.to_string();
        }
        let r = emu
            .http
            .get(emu.url("/services/oauth2/authorize"))
            .query(&params)
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{key}={value}");
        assert!(r.headers().get("location").is_none(), "{key}={value}");
        assert!(r.text().await.expect("html").contains(error));
    }
}

#[tokio::test]
async fn request_errors_go_back_to_the_registered_redirect_uri_with_state() {
    let emu = start(|c| c.require_pkce = true).await;
    for (params, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (vec![], "invalid_request"), // the app requires PKCE and no challenge was sent
    ] {
        let mut query = emu.authorize_params(None);
        for (k, v) in params {
            query.retain(|p| p.0 != k);
            query.push((k, v.to_string()));
        }
        let r = emu
            .http
            .get(emu.url("/services/oauth2/authorize"))
            .query(&query)
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), StatusCode::FOUND);
        let location = r.headers()["location"].to_str().expect("ascii").to_string();
        assert!(location.starts_with(CALLBACK), "{location}");
        let q: HashMap<String, String> = url::Url::parse(&location)
            .expect("url")
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(q.get("error").map(String::as_str), Some(error));
        assert_eq!(q.get("state").map(String::as_str), Some("st4te"));
    }
}

#[tokio::test]
async fn allow_redirects_with_code_and_state_deny_with_access_denied() {
    let emu = start(|_| {}).await;
    let (status, q) = emu
        .login(None, "alice@acme.example", "alice-demo-1", "allow")
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(q.get("code").is_some_and(|c| c.len() >= 20));
    assert_eq!(q.get("state").map(String::as_str), Some("st4te"));

    let (status, q) = emu
        .login(None, "alice@acme.example", "alice-demo-1", "deny")
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(q.get("state").map(String::as_str), Some("st4te"));
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_without_a_code() {
    let emu = start(|_| {}).await;
    let (status, q) = emu
        .login(None, "alice@acme.example", "not-her-password", "allow")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(q.is_empty());
    let (status, _) = emu.login(None, "nobody@acme.example", "x", "allow").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_code_exchange_returns_a_signed_documented_token_response() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(Some(CHALLENGE)).await;
    let (status, body) = emu.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for field in [
        "access_token",
        "refresh_token",
        "instance_url",
        "id",
        "issued_at",
        "signature",
        "scope",
        "token_type",
    ] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], emu.handle.base_url());
    let id = body["id"].as_str().expect("id");
    assert!(
        id.starts_with(&format!("{}/id/00D", emu.handle.base_url())),
        "{id}"
    );
    let access = body["access_token"].as_str().expect("token");
    assert!(
        access.starts_with("00D5j00000AcMe1!"),
        "tokens carry the org prefix: {access}"
    );
    assert!(verify_signature(
        CLIENT_SECRET.as_bytes(),
        id,
        body["issued_at"].as_str().expect("issued_at"),
        body["signature"].as_str().expect("signature"),
    ));
    assert!(!verify_signature(
        b"another-secret",
        id,
        body["issued_at"].as_str().expect("issued_at"),
        body["signature"].as_str().expect("signature"),
    ));
}

#[tokio::test]
async fn pkce_is_verified() {
    let emu = start(|_| {}).await;
    for verifier in [
        Some("wrong-verifier-wrong-verifier-wrong-verifier-00"),
        None,
    ] {
        let code = emu.code_for(Some(CHALLENGE)).await;
        let (status, body) = emu.exchange(&code, verifier).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{verifier:?}");
        assert_eq!(error_of(&body), "invalid_grant");
    }
    // A verifier for a code that was issued without a challenge is refused too.
    let code = emu.code_for(None).await;
    let (status, body) = emu.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "invalid_grant");
}

#[tokio::test]
async fn codes_are_single_use_and_expire_after_fifteen_minutes() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(Some(CHALLENGE)).await;
    assert_eq!(emu.exchange(&code, Some(VERIFIER)).await.0, StatusCode::OK);
    let (status, body) = emu.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "invalid_grant");

    let code = emu.code_for(Some(CHALLENGE)).await;
    emu.handle.advance_time(Duration::from_secs(15 * 60 + 1));
    let (status, body) = emu.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_description"], "expired authorization code");

    // A failed attempt with the wrong verifier still uses the code up.
    let code = emu.code_for(Some(CHALLENGE)).await;
    assert_eq!(
        emu.exchange(&code, Some("x".repeat(43).as_str())).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        emu.exchange(&code, Some(VERIFIER)).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_redirect_uri_must_match_the_one_the_code_was_issued_for() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(None).await;
    let (status, body) = emu
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "redirect_uri_mismatch");
}

#[tokio::test]
async fn clients_must_authenticate_in_the_body_or_with_basic() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(None).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    let with = |id: &'static str, secret: &'static str| {
        let mut f = base.to_vec();
        f.push(("client_id", id));
        f.push(("client_secret", secret));
        f
    };
    let (status, body) = emu.token(&with("nobody", CLIENT_SECRET)).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_client_id")
    );
    let (status, body) = emu.token(&with(CLIENT_ID, "wrong")).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_client")
    );
    // Failed client authentication does not consume the code.
    let r = emu
        .http
        .post(emu.url("/services/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&base)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_or_missing_grant_types_are_refused() {
    let emu = start(|_| {}).await;
    let auth = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    let (status, body) = emu
        .token(&[auth[0], auth[1], ("grant_type", "client_magic")])
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    let (status, body) = emu.token(&auth).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn refresh_and_password_grants() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(None).await;
    let (_, first) = emu.exchange(&code, None).await;
    let refresh = first["refresh_token"].as_str().expect("refresh token");
    let (status, renewed) = emu
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_ne!(renewed["access_token"], first["access_token"]);
    assert!(
        renewed.get("refresh_token").is_none(),
        "Salesforce does not rotate refresh tokens"
    );
    assert!(verify_signature(
        CLIENT_SECRET.as_bytes(),
        renewed["id"].as_str().expect("id"),
        renewed["issued_at"].as_str().expect("issued_at"),
        renewed["signature"].as_str().expect("signature"),
    ));
    let (status, body) = emu
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "not-a-refresh-token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let password = |p: &'static str| {
        [
            ("grant_type", "password"),
            ("username", "bob@acme.example"),
            ("password", p),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]
    };
    let (status, body) = emu.token(&password("bob-demo-2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none());
    let r = emu
        .userinfo(body["access_token"].as_str().expect("token"))
        .await;
    assert_eq!(
        r.json::<Value>().await.expect("json")["preferred_username"],
        "bob@acme.example"
    );
    let (status, body) = emu.token(&password("wrong")).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn userinfo_and_the_identity_url_describe_the_tokens_user() {
    let emu = start(|_| {}).await;
    let carol = emu
        .handle
        .issue_tokens("carol@globex.example")
        .expect("carol");
    let r = emu.userinfo(&carol.access_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.expect("json");
    assert_eq!(info["preferred_username"], "carol@globex.example");
    assert_eq!(info["organization_id"].as_str().map(str::len), Some(18));
    assert!(info["organization_id"]
        .as_str()
        .is_some_and(|o| o.starts_with("00D5j00000GlBx2")));
    assert_eq!(info["sub"], carol.id);

    let r = emu
        .http
        .get(&carol.id)
        .bearer_auth(&carol.access_token)
        .send()
        .await
        .expect("identity");
    assert_eq!(r.status(), StatusCode::OK);
    let identity: Value = r.json().await.expect("json");
    assert_eq!(identity["username"], "carol@globex.example");

    // Another user's identity URL with carol's token is refused.
    let alice = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    let r = emu
        .http
        .get(&alice.id)
        .bearer_auth(&carol.access_token)
        .send()
        .await
        .expect("identity");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_expired_and_revoked_tokens_get_bad_oauth_token() {
    let emu = start(|_| {}).await;
    let r = emu.userinfo("00D5j00000AcMe1!made-up").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.text().await.expect("body"), "Bad_OAuth_Token");
    let r = emu
        .http
        .get(emu.url("/services/oauth2/userinfo"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    assert_eq!(
        emu.userinfo(&grant.access_token).await.status(),
        StatusCode::OK
    );
    emu.handle.advance_time(Duration::from_secs(3 * 3600));
    assert_eq!(
        emu.userinfo(&grant.access_token).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn revocation_of_access_and_refresh_tokens() {
    let emu = start(|_| {}).await;
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    let r = emu
        .http
        .post(emu.url("/services/oauth2/revoke"))
        .form(&[("token", grant.access_token.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        emu.userinfo(&grant.access_token).await.status(),
        StatusCode::FORBIDDEN
    );

    // Revoking a refresh token takes the access tokens issued from it along.
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    let refresh = grant.refresh_token.clone().expect("refresh");
    let r = emu
        .http
        .get(emu.url("/services/oauth2/revoke"))
        .query(&[("token", refresh.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(emu.handle.is_revoked(&grant.access_token));
    assert_eq!(
        emu.userinfo(&grant.access_token).await.status(),
        StatusCode::FORBIDDEN
    );

    let r = emu
        .http
        .post(emu.url("/services/oauth2/revoke"))
        .form(&[("token", "unknown")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(&r.json().await.expect("json")),
        "unsupported_token_type"
    );
}

#[tokio::test]
async fn calls_are_counted_per_endpoint() {
    let emu = start(|_| {}).await;
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    for _ in 0..3 {
        emu.userinfo(&grant.access_token).await;
    }
    assert_eq!(emu.handle.calls(Endpoint::UserInfo), 3);
    assert_eq!(emu.handle.calls(Endpoint::Token), 0);
    let stats: Value = emu
        .http
        .get(emu.url("/__emulator/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["userinfo"], 3, "{stats}");
    assert_eq!(stats["token"], 0, "{stats}");
    emu.handle.reset_stats();
    assert_eq!(emu.handle.calls(Endpoint::UserInfo), 0);
}

#[tokio::test]
async fn fault_slow_delays_then_answers() {
    let emu = start(|_| {}).await;
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    emu.handle
        .set_fault(Fault::Slow(Duration::from_millis(400)));
    let started = Instant::now();
    let r = emu.userinfo(&grant.access_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn fault_server_error_answers_503_html() {
    let emu = start(|_| {}).await;
    emu.handle
        .set_fault_for(Endpoint::Token, Fault::ServerError);
    let (status, body) = emu.token(&[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, Value::Null, "the body is HTML, not JSON");
    // Only the token endpoint was switched.
    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    assert_eq!(
        emu.userinfo(&grant.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn fault_garbage_answers_200_with_a_body_that_is_not_json() {
    let emu = start(|_| {}).await;
    emu.handle.set_fault(Fault::Garbage);
    let r = emu.userinfo("anything").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.expect("body");
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
}

#[tokio::test]
async fn fault_hang_never_answers_until_shutdown() {
    let emu = start(|_| {}).await;
    emu.handle.set_fault(Fault::Hang);
    let r = emu
        .http
        .get(emu.url("/services/oauth2/userinfo"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(r.as_ref().is_err_and(|e| e.is_timeout()), "{r:?}");
    // Shutting down releases hanging requests instead of waiting for them forever.
    let pending = tokio::spawn({
        let http = emu.http.clone();
        let url = emu.url("/services/oauth2/userinfo");
        async move { http.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), emu.handle.shutdown())
        .await
        .expect("shutdown does not wait for hanging requests");
    let _ = pending.await;
}

#[tokio::test]
async fn fault_close_breaks_the_connection() {
    let emu = start(|_| {}).await;
    emu.handle.set_fault(Fault::CloseConnection);
    let result = match emu
        .http
        .get(emu.url("/services/oauth2/userinfo"))
        .send()
        .await
    {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(result.is_err(), "the response must not complete");
}

#[tokio::test]
async fn faults_can_be_switched_over_http_and_bad_switches_are_refused() {
    let emu = start(|_| {}).await;
    let post = |body: Value| {
        emu.http
            .post(emu.url("/__emulator/fault"))
            .json(&body)
            .send()
    };
    let r = post(serde_json::json!({"fault": "server_error", "endpoint": "userinfo"}))
        .await
        .expect("fault");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        emu.userinfo("x").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = post(serde_json::json!({"fault": "none"}))
        .await
        .expect("fault");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(emu.userinfo("x").await.status(), StatusCode::FORBIDDEN);

    for bad in [
        serde_json::json!({"fault": "explode"}),
        serde_json::json!({"fault": "hang", "endpoint": "nowhere"}),
        serde_json::json!({"nothing": true}),
    ] {
        let r = post(bad.clone()).await.expect("fault");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    let r = emu
        .http
        .post(emu.url("/__emulator/tokens"))
        .json(&serde_json::json!({"username": "alice@acme.example", "count": 2}))
        .send()
        .await
        .expect("tokens");
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.expect("json");
    let first = tokens
        .as_array()
        .and_then(|a| a.first())
        .and_then(|t| t["access_token"].as_str())
        .expect("an access token")
        .to_string();
    assert_eq!(emu.userinfo(&first).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn rotation_answers_a_new_refresh_token_and_spends_the_old_one() {
    let emu = start(|c| c.rotate_refresh_tokens = true).await;
    let code = emu.code_for(None).await;
    let (_, first) = emu.exchange(&code, None).await;
    let old = first["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let refresh = |token: String| {
        let emu = &emu;
        async move {
            emu.token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ])
            .await
        }
    };
    let (status, renewed) = refresh(old.clone()).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let new = renewed["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_string();
    assert_ne!(new, old);
    let (status, body) = refresh(old.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the old one is spent");
    assert_eq!(body["error"], "invalid_grant");
    // The access token issued before the rotation keeps working until it expires.
    assert_eq!(
        emu.userinfo(first["access_token"].as_str().expect("at"))
            .await
            .status(),
        StatusCode::OK
    );
    let (status, _) = refresh(new).await;
    assert_eq!(status, StatusCode::OK, "the new one works");
    assert_eq!(emu.handle.refresh_calls(), 3);

    // The control endpoint switches it off (and refuses a bad body).
    let switch = |body: &'static str| {
        emu.http
            .post(emu.url("/__emulator/rotation"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        switch(r#"{"enabled":"maybe"}"#).await.expect("r").status(),
        400
    );
    assert_eq!(
        switch(r#"{"enabled":false}"#).await.expect("r").status(),
        204
    );
    let code = emu.code_for(None).await;
    let (_, first) = emu.exchange(&code, None).await;
    let rt = first["refresh_token"].as_str().expect("rt").to_string();
    let (_, renewed) = refresh(rt.clone()).await;
    assert!(
        renewed.get("refresh_token").is_none(),
        "no rotation: {renewed}"
    );
    let (status, _) = refresh(rt).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "without rotation a refresh token is reusable"
    );
    let stats: Value = emu
        .http
        .get(emu.url("/__emulator/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["refresh"], 5, "{stats}");
}

#[tokio::test]
async fn in_demo_mode_the_password_grant_also_issues_a_working_refresh_token() {
    let emu = start(|c| c.password_grant_refresh_token = true).await;
    let (status, body) = emu
        .token(&[
            ("grant_type", "password"),
            ("username", "alice@acme.example"),
            ("password", "alice-demo-1"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "api refresh_token");
    let refresh = body["refresh_token"].as_str().expect("a refresh token");
    let (status, body) = emu
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}
