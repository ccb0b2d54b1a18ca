//! What can go wrong between sfgate and the upstream app, and the answer each gets.

use crate::error::ErrorResponse;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How long a client should wait before retrying a request the app could not take.
const RETRY_AFTER: Duration = Duration::from_secs(5);

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

    /// An app that cannot be reached or answers too slowly is usually restarting or
    /// overloaded: the answer says when to try again (`Retry-After`), as sfgate's answers to
    /// Salesforce trouble do, so clients and load balancers back off instead of hammering it.
    pub fn to_error_response(&self) -> ErrorResponse {
        let code = match self {
            Self::UnnormalizedPath | Self::AmbiguousPath(_) => "invalid_request",
            Self::Unreachable => "bad_gateway",
            Self::Timeout => "gateway_timeout",
        };
        let response = ErrorResponse::new(self.status(), code, self.to_string());
        match self {
            Self::Unreachable | Self::Timeout => response.with_retry_after(RETRY_AFTER),
            Self::UnnormalizedPath | Self::AmbiguousPath(_) => response,
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        self.to_error_response().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_or_slow_app_is_answered_with_retry_after_and_a_bad_path_is_not() {
        let retry = |e: ProxyError| {
            e.into_response()
                .headers()
                .get(axum::http::header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap_or_default().to_string())
        };
        assert_eq!(retry(ProxyError::Unreachable).as_deref(), Some("5"));
        assert_eq!(retry(ProxyError::Timeout).as_deref(), Some("5"));
        assert_eq!(retry(ProxyError::UnnormalizedPath), None);
    }
}
