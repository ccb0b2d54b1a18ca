//! The emulator alone, spoken to as sfgate and a browser would: a client for its endpoints,
//! for the tests that pin its behaviour down.

use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use sfgate_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use std::collections::HashMap;
use std::time::Duration;

pub const CLIENT_ID: &str = "emu-client";
pub const CLIENT_SECRET: &str = "emu-secret";
pub const CALLBACK: &str = "http://127.0.0.1:9/oauth2/callback";
/// A PKCE pair from RFC 7636, appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub struct Emu {
    pub handle: EmulatorHandle,
    pub http: reqwest::Client,
}

pub async fn start(configure: impl FnOnce(&mut EmulatorConfig)) -> Emu {
    let mut config = EmulatorConfig::new(CLIENT_ID, CLIENT_SECRET);
    config.redirect_uris = vec![CALLBACK.to_string()];
    configure(&mut config);
    let handle = Emulator::start(config, 0).await.expect("emulator starts");
    sfgate::crypto::install_tls_provider();
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    Emu { handle, http }
}

impl Emu {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    pub fn authorize_params(&self, challenge: Option<&str>) -> Vec<(&'static str, String)> {
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
    pub async fn login(
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

    pub async fn code_for(&self, challenge: Option<&str>) -> String {
        let (status, q) = self
            .login(challenge, "alice@acme.example", "alice-demo-1", "allow")
            .await;
        assert_eq!(status, StatusCode::FOUND);
        q.get("code").cloned().expect("a code")
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
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

    pub async fn exchange(&self, code: &str, verifier: Option<&str>) -> (StatusCode, Value) {
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

    pub async fn userinfo(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/services/oauth2/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .expect("userinfo")
    }
}

pub fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("<none>")
}
