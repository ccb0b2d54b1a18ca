//! Refreshing (`POST /oauth2/refresh`): an API client's own refresh token for new tokens, or
//! a browser's session renewed on request, with the same shared renewal as the identity
//! layer's.

use super::{Login, LoginError};
use crate::auth::origin::require_same_origin;
use crate::auth::session::Session;
use crate::auth::{record_identity, AuthError, Authenticated};
use crate::salesforce::TokenSet;
use axum::http::HeaderMap;
use secrecy::SecretString;

/// How a session's renewal on request ended.
pub enum SessionRenewal {
    /// Renewed: the new cookie and its expiry are in the [`Authenticated`].
    Renewed(Authenticated),
    /// The renewal was refused or could not be made; [`AuthError::ends_session`] says whether
    /// the session is over.
    Refused(AuthError),
}

impl Login {
    /// New tokens for an API client's `refresh_token`, confirmed as a login's are.
    pub async fn refresh_tokens(
        &self,
        refresh_token: SecretString,
    ) -> Result<TokenSet, LoginError> {
        // Logged out through sfgate: refused whatever Salesforce would say (see `Renewals::log_out`).
        if self.auth().renewals().is_logged_out(&refresh_token) {
            return Err(LoginError::RefreshRejected {
                error: "invalid_grant".into(),
                description: "this refresh token was logged out".into(),
            });
        }
        let tokens = self.auth().oauth().refresh(&refresh_token).await;
        let tokens = tokens.map_err(LoginError::refresh_failed)?;
        let identity = self.confirm_identity(&tokens).await?;
        crate::auth::record_caller(&identity);
        Ok(tokens)
    }

    /// Renews the session cookie the request carries. Refused when the browser says it comes
    /// from another site, or when there is no session or it has no refresh token.
    pub async fn renew_session(&self, headers: &HeaderMap) -> Result<SessionRenewal, LoginError> {
        require_same_origin(headers, &self.settings().public_origin)?;
        let session: Session = self
            .auth()
            .session(headers)
            .map_err(|e| LoginError::Auth(AuthError::BadSession(e)))?
            .ok_or_else(|| {
                LoginError::BadRequest(
                    "send `refresh_token` in the body, or call with a session cookie".into(),
                )
            })?;
        if session.refresh_token.is_none() {
            return Err(LoginError::BadRequest(
                "this session has no refresh token (the refresh_token scope was not granted)"
                    .into(),
            ));
        }
        match self.auth().renew_session(&session).await {
            Ok(auth) => {
                record_identity(&auth);
                Ok(SessionRenewal::Renewed(auth))
            }
            Err(e) => Ok(SessionRenewal::Refused(e)),
        }
    }
}
