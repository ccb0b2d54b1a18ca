//! JWT-based access tokens in the emulator: minting them like Salesforce (header `kid`, `tty`,
//! `tnk`; payload `iss`/`aud` = the instance, `sub` = `uid:<user id>`, `client_id`, `scp`,
//! `nbf`/`iat`/`exp`), the discovery document and JWKS that publish the keys, key rotation,
//! and the second demo Connected App whose tokens are always JWTs.

use super::state::{self, long_id, random, EmulatorState, Endpoint};
use super::test_keys::SIGNING_KEYS;
use super::token::oauth_error;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A Connected App of the emulated org, besides the main one.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub client_id: String,
    pub client_secret: String,
}

struct SigningKey {
    kid: String,
    key: Arc<EncodingKey>,
    /// The public half as a JWK, as the JWKS publishes it.
    jwk: Value,
}

/// The emulator's signing keys: the current one and the one before (still published, as
/// Salesforce keeps an old key while its tokens live).
pub(super) struct JwtKeys {
    /// The main Connected App issues JWT access tokens instead of opaque ones.
    enabled: bool,
    app: Option<ConnectedApp>,
    keys: RwLock<(Arc<SigningKey>, Option<Arc<SigningKey>>)>,
    generation: std::sync::atomic::AtomicUsize,
}

fn signing_key(generation: usize) -> Arc<SigningKey> {
    let kid = format!("SFGATE_EMULATOR.k{generation}");
    let pem = SIGNING_KEYS[generation % SIGNING_KEYS.len()];
    // The shipped keys are valid PEM (a unit test parses both).
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())
        .unwrap_or_else(|_| EncodingKey::from_secret(b"invalid"));
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256)
        .ok()
        .and_then(|j| serde_json::to_value(j).ok())
        .unwrap_or(Value::Null);
    if let Some(map) = jwk.as_object_mut() {
        map.insert("kid".into(), json!(kid));
        map.insert("use".into(), json!("sig"));
        map.insert("alg".into(), json!("RS256"));
    }
    Arc::new(SigningKey {
        kid,
        key: Arc::new(key),
        jwk,
    })
}

impl JwtKeys {
    pub(super) fn new(enabled: bool, app: Option<ConnectedApp>) -> Self {
        Self {
            enabled,
            app,
            keys: RwLock::new((signing_key(0), None)),
            generation: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    fn current(&self) -> Option<Arc<SigningKey>> {
        self.keys.read().ok().map(|k| k.0.clone())
    }

    pub(super) fn kid(&self) -> String {
        self.current().map(|k| k.kid.clone()).unwrap_or_default()
    }

    /// A new current key; the previous one stays published.
    pub(super) fn rotate(&self) -> String {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let next = signing_key(generation);
        let kid = next.kid.clone();
        if let Ok(mut keys) = self.keys.write() {
            let old = std::mem::replace(&mut keys.0, next);
            keys.1 = Some(old);
        }
        kid
    }

    fn jwks(&self) -> Value {
        let keys = match self.keys.read() {
            Ok(k) => k,
            Err(_) => return json!({"keys": []}),
        };
        let mut list = vec![keys.0.jwk.clone()];
        if let Some(old) = &keys.1 {
            list.push(old.jwk.clone());
        }
        json!({ "keys": list })
    }

    /// Signs `claims` with the current key, with Salesforce's header fields for `org`.
    /// `header_extra` may override any of them (tests use it to forge bad tokens).
    pub(super) fn sign(&self, org: &str, claims: &Value, header_extra: &Value) -> String {
        let Some(key) = self.current() else {
            return String::new();
        };
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(key.kid.clone());
        header.extras.insert("tty", "sfdc-core-token");
        header
            .extras
            .insert("tnk", format!("core/sfgate-emulator/{}", long_id(org)));
        header.extras.insert("ver", "1.0");
        if let Some(extra) = header_extra.as_object() {
            for (k, v) in extra {
                match k.as_str() {
                    "kid" => header.kid = v.as_str().map(str::to_string),
                    "typ" => header.typ = v.as_str().map(str::to_string),
                    _ => header.extras.insert(k.clone(), v.clone()),
                }
            }
        }
        jsonwebtoken::encode(&header, claims, &key.key).unwrap_or_default()
    }
}

impl EmulatorState {
    /// The claims of an access token for `user`, issued now to `client_id`.
    pub(super) fn jwt_claims(&self, user: usize, scope: &str, client_id: &str) -> Value {
        let u = state::user(user);
        let now = self.now_ms() / 1000;
        let exp = now + self.lifetime().as_secs();
        json!({
            "iss": self.base_url,
            "aud": self.base_url,
            "sub": format!("uid:{}", long_id(u.user_id)),
            "scp": scope,
            "client_id": client_id,
            "mty": "oauth",
            "sfi": random(32),
            "roles": [],
            "hsc": false,
            "nbf": now,
            "iat": now,
            "exp": exp,
        })
    }

    /// A signed JWT access token for `user`.
    pub(super) fn mint_jwt(&self, user: usize, scope: &str, client_id: &str) -> String {
        let claims = self.jwt_claims(user, scope, client_id);
        self.jwt
            .sign(state::user(user).org_id, &claims, &Value::Null)
    }
}

/// `GET /.well-known/openid-configuration`: the parts sfgate reads.
pub(super) async fn discovery(State(state): State<Arc<EmulatorState>>) -> Response {
    if let Some(fault) = state.enter(Endpoint::Discovery).await {
        return fault;
    }
    let base = &state.base_url;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/services/oauth2/authorize"),
        "token_endpoint": format!("{base}/services/oauth2/token"),
        "revocation_endpoint": format!("{base}/services/oauth2/revoke"),
        "userinfo_endpoint": format!("{base}/services/oauth2/userinfo"),
        "introspection_endpoint": format!("{base}/services/oauth2/introspect"),
        "jwks_uri": format!("{base}/id/keys"),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

/// `GET /id/keys`: the JWKS.
pub(super) async fn jwks(State(state): State<Arc<EmulatorState>>) -> Response {
    if let Some(fault) = state.enter(Endpoint::Jwks).await {
        return fault;
    }
    Json(state.jwt.jwks()).into_response()
}

/// `POST /__emulator/rotate-key`: a new signing key; answers its `kid`.
pub(super) async fn rotate(State(state): State<Arc<EmulatorState>>) -> Response {
    Json(json!({ "kid": state.jwt.rotate() })).into_response()
}

/// The token endpoint for the second Connected App (JWT tokens): the password grant with its
/// client credentials in the body. `None` when the request is not for that app.
pub(super) fn second_app_token(
    state: &EmulatorState,
    _headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<Response> {
    let app = state.jwt.app.as_ref()?;
    if form.get("client_id") != Some(&app.client_id) {
        return None;
    }
    if form.get("client_secret") != Some(&app.client_secret) {
        return Some(oauth_error("invalid_client", "invalid client credentials"));
    }
    if form.get("grant_type").map(String::as_str) != Some("password") {
        return Some(oauth_error(
            "unsupported_grant_type",
            "this demo app supports the password grant only",
        ));
    }
    let user = form.get("username").and_then(|u| state::user_index(u));
    let password = form.get("password").map(String::as_str);
    match user.filter(|&u| Some(state::user(u).password) == password) {
        Some(u) => {
            let grant = state.issue_access_as(u, "api", None, &app.client_id, true);
            Some(Json(grant).into_response())
        }
        None => Some(oauth_error("invalid_grant", "authentication failure")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_keys_parse_and_publish_distinct_public_keys() {
        let a = signing_key(0);
        let b = signing_key(1);
        assert_ne!(a.jwk["n"], Value::Null);
        assert_ne!(a.jwk["n"], b.jwk["n"]);
        assert_eq!(a.jwk["kid"], "SFGATE_EMULATOR.k0");
        assert!(EncodingKey::from_rsa_pem(super::super::test_keys::FOREIGN_KEY.as_bytes()).is_ok());
    }
}
