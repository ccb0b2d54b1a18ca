//! `/healthz` (the process serves) and `/readyz` (config loaded, last Salesforce call outcome).

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn readyz(State(state): State<AppState>) -> Json<Value> {
    let last = state.auth.last_salesforce_call();
    // [store] Redis down means local guarantees only: degraded, still serving.
    let redis = state.store.status();
    let status = match (&last, &redis) {
        (Some(call), _) if !call.ok => "degraded",
        (_, Some(redis)) if !redis.is_up() => "degraded",
        _ => "ready",
    };
    let mut body = json!({
        "status": status,
        "config": "loaded",
        "salesforce": { "last_call": last },
        "identity_cache_entries": state.auth.cached_identities(),
    });
    if let Some(redis) = redis {
        body["redis"] = json!(redis);
    }
    Json(body)
}
