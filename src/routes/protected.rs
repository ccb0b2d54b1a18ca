//! The protected routes the Node.js app's users know. Both sit behind `require_identity`.

use super::OwnRoutes;
use crate::auth::SharedIdentity;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;

pub(super) fn router() -> OwnRoutes {
    OwnRoutes::new()
        .route("/secured", get(secured))
        .route("/api/me", get(me))
}

/// The Node.js app's answer, unchanged, so its clients keep working.
async fn secured(_caller: SharedIdentity) -> &'static str {
    "Accessing secured resource"
}

/// The caller's identity as JSON, rendered once per cached identity rather than per request.
async fn me(SharedIdentity(confirmed): SharedIdentity) -> Response {
    let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match confirmed.json() {
        Ok(json) => (
            [
                no_store,
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
            ],
            json,
        )
            .into_response(),
        // Strings only: serialising cannot fail, but if it ever did, axum's Json says so.
        Err(_) => ([no_store], Json(confirmed.identity())).into_response(),
    }
}
