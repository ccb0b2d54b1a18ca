//! `/healthz` (the process serves) and `/readyz` (config loaded, last Salesforce call outcome).

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn readyz(State(state): State<AppState>) -> Json<Value> {
    let last = state.readiness.last();
    let status = match &last {
        Some(call) if !call.ok => "degraded",
        _ => "ready",
    };
    Json(json!({
        "status": status,
        "config": "loaded",
        "salesforce": { "last_call": last },
        "identity_cache_entries": state.validator.cached_entries(),
    }))
}
