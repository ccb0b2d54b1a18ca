//! Every way the identity layer can refuse a request, and the response each one gets.

use super::session::CookieError;
use crate::domain::{InstanceUrlError, OrgId};
use crate::error::ErrorResponse;
use crate::salesforce::SalesforceError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: send Authorization: Bearer <token> with X-Instance-Url, or log in through sfgate's sign-in page")]
    NoCredentials,
    /// A credential header that cannot be read at all (repeated, not text): a bad request.
    #[error("{0}")]
    BadHeader(String),
    #[error("{0}")]
    Malformed(String),
    #[error("a token was sent without the {0} header naming its Salesforce instance")]
    MissingInstance(&'static str),
    #[error("{0}")]
    InstanceRefused(#[from] InstanceUrlError),
    #[error("the token is not valid: {0}")]
    InvalidToken(String),
    #[error("the session cookie cannot be used: {0}")]
    BadSession(CookieError),
    #[error("the session has expired and could not be renewed; log in again")]
    SessionExpired,
    #[error("your organization ({0}) is not allowed to use this service")]
    OrgNotAllowed(OrgId),
    #[error("{0}")]
    Upstream(Arc<SalesforceError>),
    /// Confirmed, from an allowed org, but the authorization policy refuses this user here.
    #[error("access denied: {0}")]
    AccessDenied(crate::access::Refusal),
    /// This client caused too many Salesforce validation calls (see `auth::miss_budget`).
    #[error("too many new tokens from this address; retry in {} s", .0.as_secs())]
    RateLimited(std::time::Duration),
    /// The session's token expired and Salesforce could not renew it just now; the session
    /// is kept and may be renewed on a later request.
    #[error("the session could not be renewed just now ({0}); try again shortly")]
    RenewalUnavailable(Arc<SalesforceError>),
    /// An operator revoked the user (`sfgate revoke-user`) after this credential was issued
    /// or first checked.
    #[error("this user's sessions and tokens were revoked by an administrator; log in again")]
    UserRevoked,
}

/// What a browser sees when its login is missing, ended or unreadable.
const LOGIN_AGAIN: (&str, &str) = (
    "Please log in again",
    "Your login has ended or could not be read. Log in with Salesforce again to continue.",
);

impl AuthError {
    /// Session problems clear the cookie, and browsers are sent to log in again.
    pub fn ends_session(&self) -> bool {
        matches!(
            self,
            Self::BadSession(_) | Self::SessionExpired | Self::UserRevoked
        )
    }

    pub fn to_error_response(&self) -> ErrorResponse {
        let description = self.to_string();
        let unauthorized = |code: &'static str| {
            ErrorResponse::new(StatusCode::UNAUTHORIZED, code, description.clone())
                .with_bearer_challenge(Some(code))
                .with_login_link()
                .with_page(LOGIN_AGAIN.0, LOGIN_AGAIN.1)
        };
        match self {
            Self::NoCredentials => {
                ErrorResponse::new(StatusCode::UNAUTHORIZED, "unauthorized", description)
                    .with_bearer_challenge(None)
                    .with_login_link()
                    .with_page(
                        "Please log in",
                        "This page is for people with a Salesforce account. \
                         Log in with Salesforce to continue.",
                    )
            }
            Self::BadHeader(_) => ErrorResponse::bad_request(description),
            Self::Malformed(_) | Self::MissingInstance(_) | Self::InstanceRefused(_) => {
                unauthorized("invalid_request")
            }
            Self::InvalidToken(_)
            | Self::BadSession(_)
            | Self::SessionExpired
            | Self::UserRevoked => unauthorized("invalid_token"),
            Self::OrgNotAllowed(_) => {
                ErrorResponse::new(StatusCode::FORBIDDEN, "org_not_allowed", description)
                    .with_login_link()
                    .with_page(
                        "Your organization is not allowed here",
                        "You are logged in to Salesforce, but accounts of your organization \
                         may not use this site. If you have an account in another organization, \
                         log in with it; otherwise ask the people who run this site.",
                    )
            }
            Self::Upstream(e) => ErrorResponse::from(e.as_ref()),
            // A login link: the user may have another Salesforce account that is allowed.
            // The reason stays on the page: it is what to tell the people who run the site.
            Self::AccessDenied(refusal) => {
                ErrorResponse::new(StatusCode::FORBIDDEN, "access_denied", description)
                    .with_login_link()
                    .with_page(
                        "You do not have access to this page",
                        format!(
                            "You are logged in, but this site's rules do not let your account \
                             in: {refusal}. Log in with another account, or ask the people who \
                             run this site for access."
                        ),
                    )
            }
            Self::RateLimited(wait) => {
                ErrorResponse::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", description)
                    .with_retry_after(*wait)
            }
            Self::RenewalUnavailable(_) => ErrorResponse::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                description,
            )
            .with_retry_after(std::time::Duration::from_secs(5)),
        }
    }
}

impl From<SalesforceError> for AuthError {
    fn from(e: SalesforceError) -> Self {
        match e {
            SalesforceError::Rejected { description, .. } => Self::InvalidToken(description),
            other => Self::Upstream(Arc::new(other)),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.to_error_response().into_response()
    }
}
