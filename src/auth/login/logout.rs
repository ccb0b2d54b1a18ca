//! Logging out (`POST /oauth2/logout`, and oauth2-proxy's `GET|POST /oauth2/sign_out?rd=`):
//! revokes what it can at Salesforce, evicts the token from the identity cache, and ends the
//! credentials for sfgate itself. Local state is cleared even when revocation fails, and the
//! outcome says which tokens were revoked (the route clears the session cookie).
//!
//! - A browser session: its refresh token is revoked (Salesforce then revokes the access tokens
//!   issued from it); if that fails, its access token.
//! - An API client (`Authorization: Bearer` or the legacy headers): its access token, and the
//!   `refresh_token` it may send in the body (form or JSON).
//!
//! The token is also refused by every replica: at once through Redis when it is reachable,
//! otherwise once Redis returns (kept meanwhile), and in the meantime because the other
//! replicas, unable to hear revocations, check tokens with Salesforce, where it was revoked.
//! The JSON answer says which (`replicas`: `published`, `queued` or `not_shared`).
//!
//! A logout that rides on the session cookie is refused (403, the session kept) when the
//! browser says it comes from another site (see [`crate::auth::origin`]).

use super::{Login, LoginError};
use crate::auth::origin::require_same_origin;
use crate::auth::session::{now_secs, Session};
use crate::auth::{extract_credentials, CredentialSource, Credentials, MAX_LOGOUT_MEMORY};
use crate::domain::ReturnTo;
use crate::salesforce::SalesforceError;
use crate::store::Shared;
use axum::http::HeaderMap;
use secrecy::SecretString;
use serde::Serialize;
use std::time::Duration;

/// Which token a revocation was for; the answer lists those Salesforce confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    AccessToken,
    RefreshToken,
}

/// What the logout achieved at Salesforce.
#[derive(Debug, Default)]
pub struct Revocation {
    pub revoked: Vec<TokenKind>,
    /// Why a revocation that was attempted did not succeed.
    pub failure: Option<String>,
    /// What the other replicas were told.
    pub replicas: Option<Shared>,
}

/// The caller a logout is for, accepted (a cross-site logout riding on the session cookie
/// is refused before anything is read or revoked).
pub struct LogoutCaller {
    /// What the request carries, `None` when nothing (or nothing readable).
    credentials: Option<Credentials>,
}

impl Revocation {
    /// Where a sign-out lands: a same-origin `rd` as given, otherwise `home` with the notice
    /// the logout earned. Anything else (`//evil`, `/\evil`, absolute URLs, control characters,
    /// and their encoded forms once the query is decoded) is dropped, never followed.
    pub fn sign_out_location(&self, rd: Option<&str>, home: &str) -> String {
        match rd.and_then(ReturnTo::parse) {
            Some(rd) => rd.as_str().to_owned(),
            None => format!("{home}?logout={}", self.notice()),
        }
    }

    /// The home page's notice: `done`, or `revocation_failed` when Salesforce did not confirm.
    pub fn notice(&self) -> &'static str {
        if self.failure.is_some() {
            "revocation_failed"
        } else {
            "done"
        }
    }
}

impl Login {
    /// Who is logging out. Before anything is revoked or cleared: a cross-site logout changes
    /// nothing.
    pub fn logout_caller(&self, headers: &HeaderMap) -> Result<LogoutCaller, LoginError> {
        let credentials = extract_credentials(headers, self.auth().cookies())
            .ok()
            .flatten();
        let cookie_authenticated = credentials
            .as_ref()
            .is_none_or(|c| c.source == CredentialSource::Session);
        if cookie_authenticated {
            require_same_origin(headers, &self.settings().public_origin)?;
        }
        Ok(LogoutCaller { credentials })
    }

    /// The logout itself, shared by `/oauth2/logout` and `/oauth2/sign_out`: what the caller
    /// holds, and a refresh token it sent in the body, is revoked at Salesforce and evicted
    /// from the cache. The caller clears the cookie.
    pub async fn log_out(
        &self,
        caller: LogoutCaller,
        body_refresh: Option<SecretString>,
    ) -> Revocation {
        self.revoke_and_evict(caller.credentials, body_refresh)
            .await
    }

    async fn revoke_and_evict(
        &self,
        credentials: Option<Credentials>,
        body_refresh: Option<SecretString>,
    ) -> Revocation {
        let mut outcome = Revocation {
            replicas: self
                .end_locally(credentials.as_ref(), body_refresh.as_ref())
                .await,
            ..Revocation::default()
        };
        let Some(credentials) = credentials else {
            // No session and no token (or none we can read): nothing of ours to revoke, except a
            // refresh token sent alone.
            if let Some(rt) = body_refresh {
                // Recorded in `outcome` either way.
                let _ = self
                    .revoke(&rt, TokenKind::RefreshToken, &mut outcome)
                    .await;
            }
            return outcome;
        };
        match (&credentials.source, &credentials.session) {
            (
                CredentialSource::Session,
                Some(Session {
                    refresh_token: Some(rt),
                    ..
                }),
            ) => {
                self.revoke_session(rt, &credentials.token, &mut outcome)
                    .await
            }
            _ => {
                // Each recorded in `outcome` either way.
                let _ = self
                    .revoke(&credentials.token, TokenKind::AccessToken, &mut outcome)
                    .await;
                if let Some(rt) = body_refresh {
                    let _ = self
                        .revoke(&rt, TokenKind::RefreshToken, &mut outcome)
                        .await;
                }
            }
        }
        outcome
    }

    /// Ends, for sfgate itself and before Salesforce is asked anything, every credential the
    /// logout covers: the access token (evicted and tombstoned), the session's refresh token and a
    /// refresh token sent in the body (never renewed with again). Salesforce's revocation may time
    /// out or fail while Salesforce still honours the tokens, so a logged-out session must not
    /// depend on it to stay logged out. Says what the other replicas were told (`None` when there
    /// was nothing to tell them).
    async fn end_locally(
        &self,
        credentials: Option<&Credentials>,
        body_refresh: Option<&SecretString>,
    ) -> Option<Shared> {
        let mut replicas = None;
        // However long the access token could still be presented: a session's cookie until the
        // session's maximum age; a token the client holds for as long as Salesforce may accept
        // it.
        let session = credentials.and_then(|c| c.session.as_ref());
        let access_keep = session.map_or(MAX_LOGOUT_MEMORY, |session| {
            let ends_at = self.auth().cookies().session_ends_at(session);
            Duration::from_secs(ends_at.saturating_sub(now_secs()).max(1))
        });
        // Refresh tokens first: a replica that hears the access token's tombstone has then heard
        // these too (one ordered channel), so it never renews the session in between.
        if let Some(rt) = session.and_then(|s| s.refresh_token.as_ref()) {
            // The cookie can be replayed until the session's maximum age, no longer.
            replicas = Some(self.auth().renewals().log_out(rt, access_keep).await);
        }
        if let Some(rt) = body_refresh {
            // An API client's refresh token: its age is unknown, so the longest a session lives.
            let keep = self.settings().session_max_age;
            replicas = Some(self.auth().renewals().log_out(rt, keep).await);
        }
        if let Some(credentials) = credentials {
            if let Ok(instance) = self.auth().instance_policy().check(&credentials.instance) {
                replicas = Some(
                    self.auth()
                        .validator()
                        .evict_for(&instance, &credentials.token, access_keep)
                        .await,
                );
            }
        }
        replicas
    }

    /// A browser session's logout: its refresh token, which revokes every access token issued from
    /// it. If Salesforce says it does not know the refresh token (already revoked or expired),
    /// its access token instead, and the logout is complete if that is confirmed. If Salesforce
    /// could not answer (a timeout, a 5xx, a refused connection) or refused for another reason,
    /// the refresh token may still be honoured there: the access token is revoked all the same,
    /// but the logout says the revocation failed, whatever became of the access token.
    async fn revoke_session(
        &self,
        refresh_token: &SecretString,
        access_token: &SecretString,
        outcome: &mut Revocation,
    ) {
        let gone = match self
            .revoke(refresh_token, TokenKind::RefreshToken, outcome)
            .await
        {
            Ok(()) => {
                outcome.revoked.push(TokenKind::AccessToken);
                return;
            }
            Err(e) => e.is_unknown_token(),
        };
        let failure = outcome.failure.take();
        let access = self
            .revoke(access_token, TokenKind::AccessToken, outcome)
            .await;
        if !gone || access.is_err() {
            outcome.failure = failure.or(outcome.failure.take());
        }
    }

    /// One revocation at Salesforce, recorded in `outcome`; `Err` with Salesforce's refusal or
    /// failure when it was not confirmed.
    async fn revoke(
        &self,
        token: &SecretString,
        kind: TokenKind,
        outcome: &mut Revocation,
    ) -> Result<(), SalesforceError> {
        match self.auth().oauth().revoke(token).await {
            Ok(()) => {
                tracing::info!(token = ?kind, "logout revoked the token at Salesforce");
                outcome.revoked.push(kind);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(token = ?kind, error = %e, "logout could not revoke the token at Salesforce");
                outcome.failure.get_or_insert_with(|| e.to_string());
                Err(e)
            }
        }
    }
}
