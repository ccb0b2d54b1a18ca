//! When a tunnel must end with the credential that opened it.
//!
//! A WebSocket outlives the request that authenticated it, so a logout, a revocation or the
//! session's maximum age would otherwise leave it flowing (Pomerium's users reported exactly
//! that). Each tunnel watches its credential: the logout and revocation marks the validator
//! keeps in memory (fed by every replica through the shared store), its user's revocation
//! (`sfgate revoke-user`) and the session's
//! `SESSION_MAX_AGE`. Polling an in-memory set a few times a second costs nothing and needs no
//! registry of sockets to keep consistent.

use crate::auth::{Authenticated, Authenticator};
use crate::domain::{InstanceUrl, SalesforceId};
use secrecy::SecretString;
use std::time::Duration;

/// How often a tunnel looks at its credential: well inside the two seconds a logout may take
/// to close it.
const POLL: Duration = Duration::from_millis(250);

/// What a tunnel watches (a request extension from the proxy to the forwarder).
#[derive(Clone)]
pub struct TunnelEnd {
    auth: Authenticator,
    instance: InstanceUrl,
    token: SecretString,
    /// `SESSION_MAX_AGE`'s moment for a session, seconds since the epoch.
    session_ends_at: Option<u64>,
    /// Whose credential it is, and when the tunnel opened (ms since the epoch): a revocation
    /// of the user after that ends it.
    user: SalesforceId,
    opened_ms: u64,
}

impl TunnelEnd {
    pub fn of(auth: &Authenticator, caller: &Authenticated) -> Self {
        Self {
            auth: auth.clone(),
            instance: caller.instance.clone(),
            token: caller.token.clone(),
            session_ends_at: caller.session_ends_at,
            user: caller.identity.user_id.clone(),
            opened_ms: crate::auth::session::now_ms(),
        }
    }

    /// Resolves with the reason (sent in the WebSocket Close frame) when the credential ends.
    pub async fn ended(self) -> &'static str {
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            if self
                .auth
                .validator()
                .user_revoked_at(&self.user)
                .is_some_and(|at| at > self.opened_ms)
            {
                crate::auth::revoked_user_refusal("tunnel");
                return "user revoked";
            }
            if self.auth.validator().has_ended(&self.instance, &self.token) {
                return "credentials logged out or revoked";
            }
            if self
                .session_ends_at
                .is_some_and(|end| crate::auth::session::now_secs() >= end)
            {
                return "session reached its maximum age";
            }
        }
    }
}
