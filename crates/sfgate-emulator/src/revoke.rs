//! The emulated revocation endpoint.

use crate::oauth_error::oauth_error;
use crate::state::{EmulatorState, Endpoint};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub(crate) async fn revoke_form(State(state): State<Arc<EmulatorState>>, body: Bytes) -> Response {
    revoke(&state, &body).await
}

pub(crate) async fn revoke_query(
    State(state): State<Arc<EmulatorState>>,
    RawQuery(query): RawQuery,
) -> Response {
    revoke(&state, query.unwrap_or_default().as_bytes()).await
}

async fn revoke(state: &EmulatorState, params: &[u8]) -> Response {
    if let Some(fault) = state.enter(Endpoint::Revoke).await {
        return fault;
    }
    let token = url::form_urlencoded::parse(params)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    match token {
        Some(token) if state.revoke(&token) => StatusCode::OK.into_response(),
        _ => oauth_error("unsupported_token_type", "this token type is not supported"),
    }
}
