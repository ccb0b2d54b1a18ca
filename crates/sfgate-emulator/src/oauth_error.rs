//! Salesforce's OAuth error answer: 400 with `{"error","error_description"}`, as every OAuth
//! endpoint of the emulator gives it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub(crate) fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response()
}
