//! `/__emulator/*`: control for scripts that run the emulator as a separate process
//! (benchmarks, browser tests). Tests in-process use `EmulatorHandle` instead.

use crate::faults::Fault;
use crate::records::TokenGrant;
use crate::state::{EmulatorState, Endpoint};
use crate::users;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn router() -> Router<Arc<EmulatorState>> {
    Router::new()
        .route("/__emulator/stats", get(stats))
        .route("/__emulator/reset-stats", post(reset_stats))
        .route("/__emulator/fault", post(fault))
        .route("/__emulator/latency", post(latency))
        .route("/__emulator/tokens", post(tokens))
        .route("/__emulator/expire", post(expire))
        .route("/__emulator/rotation", post(rotation))
}

fn bad(description: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": "invalid_request", "error_description": description.into() })),
    )
        .into_response()
}

async fn stats(State(state): State<Arc<EmulatorState>>) -> Response {
    Json(state.stats()).into_response()
}

async fn reset_stats(State(state): State<Arc<EmulatorState>>) -> StatusCode {
    state.reset_stats();
    StatusCode::NO_CONTENT
}

async fn expire(State(state): State<Arc<EmulatorState>>) -> StatusCode {
    state.expire_access_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct RotationRequest {
    enabled: bool,
}

/// `{"enabled": true}` switches refresh-token rotation on, as the Connected App setting does.
async fn rotation(
    State(state): State<Arc<EmulatorState>>,
    body: Result<Json<RotationRequest>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(req)) => {
            state.set_rotation(req.enabled);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad(e.body_text()),
    }
}

#[derive(Deserialize)]
struct FaultRequest {
    fault: String,
    #[serde(default)]
    delay_ms: u64,
    endpoint: Option<String>,
}

async fn fault(
    State(state): State<Arc<EmulatorState>>,
    body: Result<Json<FaultRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad(e.body_text()),
    };
    let Some(fault) = Fault::from_name(&req.fault, Duration::from_millis(req.delay_ms)) else {
        return bad("fault must be none, slow, server_error, garbage, hang or close");
    };
    let endpoints: Vec<Endpoint> = match req.endpoint.as_deref() {
        None => Endpoint::API.to_vec(),
        Some(name) => match Endpoint::from_name(name) {
            Some(e) => vec![e],
            None => return bad(
                "endpoint must be token, userinfo, identity, revoke, discovery, jwks or introspect",
            ),
        },
    };
    for e in endpoints {
        state.set_fault(e, fault.clone());
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct LatencyRequest {
    ms: u64,
}

async fn latency(
    State(state): State<Arc<EmulatorState>>,
    body: Result<Json<LatencyRequest>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(req)) => {
            state.set_latency(Duration::from_millis(req.ms));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad(e.body_text()),
    }
}

#[derive(Deserialize)]
struct TokensRequest {
    username: String,
    count: Option<usize>,
    /// `jwt` for JWT-based access tokens (no refresh token), whatever the emulator's switch.
    #[serde(default)]
    format: Option<String>,
}

const MAX_TOKENS: usize = 100_000;

async fn tokens(
    State(state): State<Arc<EmulatorState>>,
    body: Result<Json<TokensRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad(e.body_text()),
    };
    let Some(user) = users::user_index(&req.username) else {
        return bad("unknown username");
    };
    let count = req.count.unwrap_or(1);
    if count == 0 || count > MAX_TOKENS {
        return bad(format!("count must be 1 to {MAX_TOKENS}"));
    }
    let jwt = match req.format.as_deref() {
        None | Some("opaque") => false,
        Some("jwt") => true,
        Some(_) => return bad("format must be opaque or jwt"),
    };
    let client_id = state.client_id.clone();
    let grants: Vec<TokenGrant> = (0..count)
        .map(|_| match jwt {
            true => state.issue_access_as(user, "api", None, &client_id, true),
            false => state.issue(user, "api refresh_token", true),
        })
        .collect();
    Json(grants).into_response()
}
