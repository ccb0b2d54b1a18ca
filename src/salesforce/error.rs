//! What can go wrong when sfgate calls Salesforce, and the one answer a caller gets for each
//! (in the shape of `src/error.rs`, which knows nothing of Salesforce).

use crate::error::ErrorResponse;
use axum::http::StatusCode;
use std::time::Duration;

/// Kept apart so callers can fail closed precisely: a token Salesforce *rejected* is the
/// client's problem (401); Salesforce being slow or broken is not (502/503/504, retry later).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SalesforceError {
    /// Salesforce refused the token or grant (`Bad_OAuth_Token`, `invalid_grant`, ...).
    #[error("Salesforce rejected the request: {error}: {description}")]
    Rejected { error: String, description: String },
    #[error("Salesforce did not answer in time")]
    Timeout,
    #[error("could not connect to Salesforce")]
    Unreachable,
    #[error("Salesforce answered with HTTP {0}")]
    Status(u16),
    #[error("Salesforce answered with a body sfgate cannot read")]
    Unparsable,
    /// The token response's signature does not match: the response was altered in transit or
    /// did not come from Salesforce, so its tokens are discarded.
    #[error("the token response signature from Salesforce is invalid")]
    BadSignature,
    /// Salesforce named an instance URL sfgate may not call.
    #[error("Salesforce returned an instance URL that is not allowed: {0}")]
    InstanceRefused(String),
}

impl SalesforceError {
    /// Whether Salesforce answered that it does not know the token (`invalid_token`, or the
    /// revocation endpoint's `unsupported_token_type`): already revoked, expired or never
    /// issued. Any other error leaves open whether the token is still honoured there.
    pub fn is_unknown_token(&self) -> bool {
        matches!(self, Self::Rejected { error, .. }
            if error == "invalid_token" || error == "unsupported_token_type")
    }

    pub fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Unreachable
        } else if e.is_decode() || e.is_body() {
            Self::Unparsable
        } else {
            Self::Unreachable
        }
    }

    /// Whether retrying later may help; such failures are never cached as verdicts.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Unreachable | Self::Status(_) | Self::Unparsable
        )
    }
}

/// What readiness records for a call: only failures retrying may cure say Salesforce is unwell.
pub fn transient_failure<T>(result: &Result<T, SalesforceError>) -> Option<String> {
    match result {
        Err(e) if e.is_transient() => Some(e.to_string()),
        _ => None,
    }
}

/// The fail-closed answer when a call to Salesforce failed: 502/503/504, with `Retry-After` when
/// retrying later may help. A request Salesforce did not confirm never gets through.
impl From<&SalesforceError> for ErrorResponse {
    fn from(e: &SalesforceError) -> Self {
        let (status, description) = match e {
            SalesforceError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "Salesforce did not answer in time; try again shortly"),
            SalesforceError::Unreachable => (StatusCode::SERVICE_UNAVAILABLE, "Salesforce could not be reached; try again shortly"),
            SalesforceError::Status(_) | SalesforceError::Unparsable => (StatusCode::BAD_GATEWAY, "Salesforce answered with an error or an unreadable response; try again shortly"),
            SalesforceError::BadSignature => (StatusCode::BAD_GATEWAY, "the token response from Salesforce failed its signature check, so its tokens were discarded"),
            SalesforceError::InstanceRefused(_) => (StatusCode::BAD_GATEWAY, "Salesforce returned an instance URL that this gateway is not allowed to call"),
            SalesforceError::Rejected { .. } => (StatusCode::BAD_GATEWAY, "Salesforce rejected the request"),
        };
        let response = ErrorResponse::new(status, "temporarily_unavailable", description);
        if e.is_transient() {
            response.with_retry_after(Duration::from_secs(5))
        } else {
            ErrorResponse {
                error: "bad_gateway",
                ..response
            }
        }
    }
}
