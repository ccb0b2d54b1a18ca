//! JWT-based access tokens in the emulator: minting them like Salesforce (header `kid`, `tty`,
//! `tnk`; payload `iss`/`aud` = the instance, `sub` = `uid:<user id>`, `client_id`, `scp`,
//! `nbf`/`iat`/`exp`), the discovery document and JWKS that publish the keys, key rotation,
//! and the second demo Connected App whose tokens are always JWTs.

use crate::grants::random;
use crate::oauth_error::oauth_error;
use crate::state::{EmulatorState, Endpoint};
use crate::users::{self, long_id};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

impl EmulatorState {
    /// The claims of an access token for `user`, issued now to `client_id`.
    pub(crate) fn jwt_claims(&self, user: usize, scope: &str, client_id: &str) -> Value {
        let u = users::user(user);
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
    pub(crate) fn mint_jwt(&self, user: usize, scope: &str, client_id: &str) -> String {
        let claims = self.jwt_claims(user, scope, client_id);
        self.jwt
            .sign(users::user(user).org_id, &claims, &Value::Null)
    }
}

/// `GET /.well-known/openid-configuration`: the parts sfgate reads.
pub(crate) async fn discovery(State(state): State<Arc<EmulatorState>>) -> Response {
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
pub(crate) async fn jwks(State(state): State<Arc<EmulatorState>>) -> Response {
    if let Some(fault) = state.enter(Endpoint::Jwks).await {
        return fault;
    }
    Json(state.jwt.jwks()).into_response()
}

/// `POST /__emulator/rotate-key`: a new signing key; answers its `kid`.
pub(crate) async fn rotate(State(state): State<Arc<EmulatorState>>) -> Response {
    Json(json!({ "kid": state.jwt.rotate() })).into_response()
}

/// The token endpoint for the second Connected App (JWT tokens): the password grant with its
/// client credentials in the body. `None` when the request is not for that app.
pub(crate) fn second_app_token(
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
    let user = form.get("username").and_then(|u| users::user_index(u));
    let password = form.get("password").map(String::as_str);
    match user.filter(|&u| Some(users::user(u).password) == password) {
        Some(u) => {
            let grant = state.issue_access_as(u, "api", None, &app.client_id, true);
            Some(Json(grant).into_response())
        }
        None => Some(oauth_error("invalid_grant", "authentication failure")),
    }
}
