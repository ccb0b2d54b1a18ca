//! What can go wrong between sfgate and the upstream app, and the answer each gets.

use crate::error::ErrorResponse;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A path a decoding or normalising upstream could read differently (see
    /// [`CanonicalPath`](crate::domain::CanonicalPath)); refused before any rule is matched.
    #[error("{0}")]
    AmbiguousPath(#[from] crate::domain::PathError),
    /// A path the URL parser would rewrite (dot segments, backslashes, ...). Refused so the
    /// upstream always receives exactly the path `SKIP_AUTH_ROUTES` was matched against.
    #[error("the request path is not in normal form (no `.` or `..` segments, no backslashes)")]
    UnnormalizedPath,
    #[error("the upstream application could not be reached")]
    Unreachable,
    #[error("the upstream application did not answer in time")]
    Timeout,
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnnormalizedPath | Self::AmbiguousPath(_) => StatusCode::BAD_REQUEST,
            Self::Unreachable => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn to_error_response(&self) -> ErrorResponse {
        let code = match self {
            Self::UnnormalizedPath | Self::AmbiguousPath(_) => "invalid_request",
            Self::Unreachable => "bad_gateway",
            Self::Timeout => "gateway_timeout",
        };
        ErrorResponse::new(self.status(), code, self.to_string())
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        self.to_error_response().into_response()
    }
}
