//! The protected routes the Node.js app's users know. Both sit behind `require_identity`.

use crate::salesforce::Identity;
use crate::state::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/secured", get(secured))
        .route("/api/me", get(me))
}

/// The Node.js app's answer, unchanged, so its clients keep working.
async fn secured(_identity: Identity) -> &'static str {
    "Accessing secured resource"
}

async fn me(identity: Identity) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Json(identity))
}
