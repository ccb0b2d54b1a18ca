//! Every way the login can fail, and the response each gets: the one error type of the login
//! boundary (the routes under `/oauth2`).

use crate::auth::{AuthError, CookieError};
use crate::error::{ErrorResponse, Fix};
use crate::salesforce::SalesforceError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Salesforce did not grant access ({error}): {description}")]
    Denied { error: String, description: String },
    #[error("the callback carries both a code and an error; start the login again")]
    CodeAndError,
    /// The callback came without the cookie `/oauth2/authorize` set: that was another host name
    /// (or cookies are off). `origin` is `SF_REDIRECT_URI`'s, where logins must start.
    #[error("the login cookie is missing: this browser did not start its login on {origin} (the host of the redirect URI) or does not accept cookies; open {origin}/ and log in from there")]
    MissingLoginCookie { origin: String },
    /// Salesforce refused the redirect URI sfgate sent (`sent`, from `SF_REDIRECT_URI`).
    #[error("Salesforce refused the redirect URI {sent}: it must be one of the Callback URLs of the Connected App (or External Client App), exactly")]
    RedirectUriMismatch { sent: String },
    #[error("the login cookie is invalid ({0}); start the login again")]
    BadLoginCookie(CookieError),
    #[error("the state parameter is missing; start the login again")]
    MissingState,
    #[error("the state parameter does not match this browser's login; start the login again")]
    StateMismatch,
    #[error("this login was already completed; start a new one")]
    StateReplayed,
    #[error("the callback carries no authorization code")]
    MissingCode,
    #[error("Salesforce refused the grant ({error}): {description}")]
    GrantRejected { error: String, description: String },
    /// A client's own refresh token, refused: its tokens are gone, not a login that failed.
    #[error("Salesforce refused the refresh token ({error}): {description}")]
    RefreshRejected { error: String, description: String },
    #[error("{0}")]
    Salesforce(SalesforceError),
    #[error(
        "Salesforce's token response names a different organization than its identity service"
    )]
    IdentityMismatch,
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}")]
    CrossSite(#[from] crate::auth::origin::CrossSiteRequest),
    #[error("{0}")]
    SignedRequest(#[from] crate::salesforce::canvas::SignedRequestError),
    #[error(
        "the signed request's OAuth token belongs to another user or org than its context names"
    )]
    CanvasMismatch,
    #[error("the username-password flow is disabled (set SF_ENABLE_PASSWORD_FLOW=true to enable it for testing)")]
    PasswordFlowDisabled,
}

impl From<SalesforceError> for LoginError {
    fn from(e: SalesforceError) -> Self {
        match e {
            SalesforceError::Rejected { error, description } => {
                Self::GrantRejected { error, description }
            }
            other => Self::Salesforce(other),
        }
    }
}

impl LoginError {
    /// A refresh grant's failure: a refused refresh token is the client's (401, so it logs in
    /// again), anything else is Salesforce's.
    pub fn refresh_failed(e: SalesforceError) -> Self {
        match e {
            SalesforceError::Rejected { error, description } => {
                Self::RefreshRejected { error, description }
            }
            other => other.into(),
        }
    }

    /// A refusal Salesforce gave for the redirect URI becomes [`Self::RedirectUriMismatch`],
    /// whose page says where to register `sent`.
    pub fn explain_redirect_uri(self, sent: &str) -> Self {
        match &self {
            Self::Denied { error, .. } | Self::GrantRejected { error, .. }
                if error == "redirect_uri_mismatch" =>
            {
                Self::RedirectUriMismatch {
                    sent: sent.to_string(),
                }
            }
            _ => self,
        }
    }

    pub fn to_error_response(&self) -> ErrorResponse {
        let description = self.to_string();
        match self {
            Self::MissingLoginCookie { origin } => ErrorResponse::bad_request(description)
                .with_login_link()
                .with_fix(Fix::StartOn {
                    origin: origin.clone(),
                }),
            Self::RedirectUriMismatch { sent } => ErrorResponse::new(
                StatusCode::BAD_REQUEST,
                "redirect_uri_mismatch",
                description,
            )
            .with_heading("Salesforce does not know this redirect URI")
            .with_fix(Fix::RegisterRedirectUri { sent: sent.clone() }),
            // The person pressed Deny: their own choice, not a failure, so the page says so
            // plainly and offers the way back in. API clients keep the 403 and its code.
            Self::Denied {
                error,
                description: said,
            } if error == "access_denied" || error == "access-denied" => {
                let description = format!(
                    "Salesforce shared nothing with sfgate and you are not logged in. \
                     You can log in again at any time. (Salesforce said: {said})"
                );
                ErrorResponse::new(StatusCode::FORBIDDEN, "access_denied", description)
                    .with_heading("You chose not to allow access")
                    .with_login_link()
            }
            Self::Denied { .. } => {
                ErrorResponse::new(StatusCode::BAD_REQUEST, "access_denied", description)
                    .with_login_link()
            }
            Self::BadRequest(_)
            | Self::CodeAndError
            | Self::BadLoginCookie(_)
            | Self::MissingState
            | Self::StateMismatch
            | Self::StateReplayed
            | Self::MissingCode => ErrorResponse::bad_request(description).with_login_link(),
            Self::GrantRejected { .. } => {
                ErrorResponse::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
                    .with_login_link()
            }
            Self::RefreshRejected { .. } => {
                ErrorResponse::new(StatusCode::UNAUTHORIZED, "invalid_grant", description)
                    .with_bearer_challenge(Some("invalid_token"))
            }
            Self::Salesforce(e) => ErrorResponse::from(e),
            Self::IdentityMismatch => {
                ErrorResponse::new(StatusCode::BAD_GATEWAY, "bad_gateway", description)
            }
            Self::Auth(e) => e.to_error_response(),
            Self::CrossSite(e) => e.to_error_response(),
            Self::SignedRequest(e) => {
                use crate::salesforce::canvas::SignedRequestError as E;
                let (status, code) = match e {
                    E::BadSignature => (StatusCode::UNAUTHORIZED, "invalid_signed_request"),
                    E::Algorithm(_) => (StatusCode::BAD_REQUEST, "unsupported_algorithm"),
                    _ => (StatusCode::BAD_REQUEST, "invalid_request"),
                };
                ErrorResponse::new(status, code, description)
            }
            Self::CanvasMismatch => {
                ErrorResponse::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
            }
            Self::PasswordFlowDisabled => {
                ErrorResponse::new(StatusCode::NOT_FOUND, "not_found", description)
            }
        }
    }
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        // A refused refresh token ends an API client's tokens; no login was attempted.
        if !matches!(self, Self::RefreshRejected { .. }) {
            metrics::counter!("sfgate_logins_total", "result" => "failed").increment(1);
        }
        self.to_error_response().into_response()
    }
}

/// Client-supplied text for an error message, which is also logged: control characters
/// (newlines above all) are dropped so a client cannot forge log lines, and it is cut to `max`
/// characters.
pub fn printable(raw: &str, max: usize) -> String {
    raw.chars().filter(|c| !c.is_control()).take(max).collect()
}
