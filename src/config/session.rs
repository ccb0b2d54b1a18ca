//! Browser sessions: the cookie key and how long a session lives.

use super::reader::Reader;
use crate::domain::SessionSecret;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `SESSION_SECRET`: keys the session and login cookies, and authenticates what sfgate
    /// keeps in Redis.
    pub secret: SessionSecret,
    /// `SESSION_SECRET_PREVIOUS`: the secret being rotated out. Cookies and Redis values
    /// sealed under it are still read; nothing new is sealed under it (except revocations,
    /// which every replica of a rolling rotation must hear).
    pub previous_secret: Option<SessionSecret>,
    /// `SESSION_TTL`: the session cookie's lifetime.
    pub ttl: Duration,
    /// Absolute lifetime of a browser session from its login (`SESSION_MAX_AGE`): renewal
    /// never extends a session past it.
    pub max_age: Duration,
    /// How long a session renewal's result is reused for requests that still carry the cookie
    /// from before it (`SESSION_RENEWAL_GRACE`).
    pub renewal_grace: Duration,
}

/// `SESSION_SECRET`, `SESSION_SECRET_PREVIOUS`, `SESSION_TTL`, `SESSION_MAX_AGE`,
/// `SESSION_RENEWAL_GRACE`; `None` when the secret is missing or too short (the problem is in
/// `r`).
pub(super) fn parse(r: &mut Reader<'_>) -> Option<SessionConfig> {
    let secret =
        r.required("SESSION_SECRET", None)
            .and_then(|raw| match SessionSecret::parse(raw) {
                Ok(s) => Some(s),
                Err(m) => {
                    r.problem("SESSION_SECRET", m);
                    None
                }
            });
    let previous_secret = r
        .get("SESSION_SECRET_PREVIOUS")
        .filter(|raw| !raw.is_empty())
        .and_then(|raw| match SessionSecret::parse(raw) {
            Ok(s) => Some(s),
            Err(m) => {
                r.problem("SESSION_SECRET_PREVIOUS", m);
                None
            }
        });
    let ttl = r.seconds("SESSION_TTL", 8 * 3600);
    if ttl.is_zero() {
        r.problem("SESSION_TTL", "must be at least 1 second");
    }
    let max_age = r.seconds("SESSION_MAX_AGE", 7 * 24 * 3600);
    if max_age.is_zero() {
        r.problem("SESSION_MAX_AGE", "must be at least 1 second");
    }
    let renewal_grace = r.seconds("SESSION_RENEWAL_GRACE", 30);
    if renewal_grace.is_zero() || renewal_grace > Duration::from_secs(300) {
        r.problem("SESSION_RENEWAL_GRACE", "must be 1 to 300 seconds");
    }
    Some(SessionConfig {
        secret: secret?,
        previous_secret,
        ttl,
        max_age,
        renewal_grace,
    })
}
