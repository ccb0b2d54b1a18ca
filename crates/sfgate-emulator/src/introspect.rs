//! The emulated introspection endpoint (RFC 7662, as Salesforce documents it): client
//! credentials in the body, `{"active": false}` for a token that is not valid, and for an
//! active one `scope`, `client_id`, `username`, `sub` (the identity URL), `token_type`,
//! `exp`, `iat`, `nbf` in seconds.

use crate::oauth_error::oauth_error;
use crate::state::{EmulatorState, Endpoint};
use crate::users;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) async fn introspect(State(state): State<Arc<EmulatorState>>, body: Bytes) -> Response {
    if let Some(fault) = state.enter(Endpoint::Introspect).await {
        return fault;
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let id = form
        .get("client_id")
        .map(String::as_str)
        .unwrap_or_default();
    let secret = form
        .get("client_secret")
        .map(String::as_str)
        .unwrap_or_default();
    if id != state.client_id {
        return oauth_error("invalid_client_id", "client identifier invalid");
    }
    if secret != state.client_secret {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let Some((user, expires_ms)) = state.live_access(token) else {
        return Json(json!({ "active": false })).into_response();
    };
    let u = users::user(user);
    let exp = expires_ms / 1000;
    let iat = exp.saturating_sub(state.lifetime().as_secs());
    Json(json!({
        "active": true,
        "scope": "api",
        "client_id": state.client_id,
        "username": u.username,
        "sub": state.identity_url(user),
        "token_type": "access_token",
        "exp": exp,
        "iat": iat,
        "nbf": iat,
    }))
    .into_response()
}
