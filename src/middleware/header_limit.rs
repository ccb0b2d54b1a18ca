//! A cap on the total size of request headers.
//!
//! hyper refuses a header section larger than its read buffer (about 400 KB) with 431, but
//! accepts anything below that. Nothing legitimate sent to sfgate comes near [`MAX_HEADER_BYTES`]
//! (the session cookie is a few KB), while huge headers cost memory on every hop, and would be
//! passed on to the upstream application by the proxy. So anything larger is refused here with
//! 431 Request Header Fields Too Large, before any handler or the proxy sees it.

use crate::error::ErrorResponse;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Total bytes of header names and values (plus ": " and CRLF per line) sfgate accepts.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Middleware: 431 for requests whose headers exceed [`MAX_HEADER_BYTES`].
pub async fn enforce(request: Request, next: Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        tracing::warn!(size, "request headers too large");
        return ErrorResponse::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_fields_too_large",
            format!("request headers may total at most {MAX_HEADER_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}
