//! Encrypted, authenticated cookies: the short-lived login cookie and the session cookie.
//!
//! Both carry everything needed to continue, so any replica can finish a login or serve a
//! session and the server keeps no per-user state. They are sealed with AES-256-GCM (in the
//! `cookie` crate's private-jar format, see `crate::crypto::SealingKey`; key derived from
//! `SESSION_SECRET` by HKDF), bound to their name, and carry their own expiry, so a cookie replayed after its `Max-Age` is refused even if
//! a browser kept it.
//!
//! A session also carries its login time. `SESSION_MAX_AGE` counts from it: every sealing caps
//! the cookie's expiry at login + max age, and opening refuses a session past it, so renewals
//! (which re-seal with a fresh `SESSION_TTL`) can never keep a stolen cookie alive for ever.

use super::secret_serde;
use crate::crypto::SealingKey;
use crate::domain::Identity;
use crate::domain::{ReturnTo, SiteUrl};
use crate::salesforce::TokenSet;
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::headers::cookies::{
    find_cookie, is_own_cookie_pair, read_cookie_pair, CookieNames, LOGIN_COOKIE, SESSION_COOKIE,
};
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// `SESSION_MAX_AGE`'s default.
pub const DEFAULT_SESSION_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a cookie that was present could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("the cookie was altered, truncated or sealed with another key")]
    Tampered,
    #[error("the cookie has expired")]
    Expired,
    /// Sealing failed: the value would not serialize or make a header. Never expected; the
    /// caller answers as if the cookie were refused rather than go on without it.
    #[error("the cookie could not be sealed")]
    Unsealable,
}

/// What the login cookie carries between `/oauth2/authorize` and the callback.
#[derive(Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub pkce_verifier: String,
    pub return_to: Option<ReturnTo>,
}

impl fmt::Debug for LoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginState")
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// The identity summary kept in the session for pages (no call to Salesforce needed to say
/// who is logged in on the home page).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionUser {
    pub user_id: String,
    pub org_id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
}

/// A browser session: the tokens and where they are valid.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(with = "secret_serde")]
    pub access_token: SecretString,
    #[serde(default, with = "secret_serde::option")]
    pub refresh_token: Option<SecretString>,
    pub instance_url: String,
    pub user: SessionUser,
    /// When the user logged in (seconds since the epoch); renewals keep it.
    pub login_at: u64,
    /// The same, in milliseconds (cookies sealed before it existed lack it): a user revoked
    /// a moment before logging in again must not lose the new session to the rounding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_ms: Option<u64>,
    /// Started by a Canvas signed request: the session lives in an iframe on Salesforce's
    /// domains, so its cookie is a third-party one (see [`CookieSealer::seal_session`]).
    /// Renewals keep it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub embedded: bool,
    /// The Experience Cloud site the tokens were issued through, whose `userinfo` checks
    /// them; read back through the instance policy ([`crate::domain::SiteUrl::check`]).
    /// Cookies sealed before it existed, and logins not through a site, lack it: their
    /// tokens are checked at the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_url: Option<String>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("instance_url", &self.instance_url)
            .field("user", &self.user)
            .field("login_at", &self.login_at)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that starts now, at login.
    pub fn new(tokens: &TokenSet, identity: &Identity) -> Self {
        let now = now_ms();
        Self {
            login_ms: Some(now),
            ..Self::started_at(tokens, identity, now / 1000)
        }
    }

    /// When the session began, in milliseconds: for a cookie without `login_ms`, the start
    /// of its login second (the earliest it may have been, so a revocation in that second
    /// refuses it).
    pub fn login_ms(&self) -> u64 {
        self.login_ms
            .unwrap_or_else(|| self.login_at.saturating_mul(1000))
    }

    /// The session `self` continues with renewed tokens: same login time, and the refresh
    /// token the renewal names (a new one when Salesforce rotated it).
    pub fn renewed(
        &self,
        access_token: SecretString,
        refresh_token: SecretString,
        instance_url: &str,
        identity: &Identity,
    ) -> Self {
        Self {
            access_token,
            refresh_token: Some(refresh_token),
            instance_url: instance_url.to_string(),
            user: SessionUser::from(identity),
            login_at: self.login_at,
            login_ms: self.login_ms,
            embedded: self.embedded,
            site_url: self.site_url.clone(),
        }
    }

    /// The session with the site its renewed tokens were issued through (kept when the
    /// renewal named none).
    pub fn with_site(mut self, site: Option<&SiteUrl>) -> Self {
        if let Some(site) = site {
            self.site_url = Some(site.as_string());
        }
        self
    }

    fn started_at(tokens: &TokenSet, identity: &Identity, login_at: u64) -> Self {
        Self {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            instance_url: tokens.instance_url.as_str().to_string(),
            user: SessionUser::from(identity),
            login_at,
            login_ms: None,
            embedded: false,
            site_url: tokens.site.as_ref().map(SiteUrl::as_string),
        }
    }
}

impl From<&Identity> for SessionUser {
    fn from(identity: &Identity) -> Self {
        Self {
            user_id: identity.user_id.to_string(),
            org_id: identity.organization_id.to_string(),
            // A JWT's identity may lack its profile (`userinfo` failed): the page shows the id.
            username: identity.username.as_deref().unwrap_or_default().to_owned(),
            display_name: identity.label().to_string(),
            email: identity.email.as_deref().map(str::to_owned),
        }
    }
}

/// Where a cookie is used: on sfgate's own pages, or inside Salesforce's (Canvas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieSite {
    FirstParty,
    Embedded,
}

/// A sealed session cookie and when it expires (seconds since the epoch).
#[derive(Debug, Clone)]
pub struct SealedSession {
    pub cookie: HeaderValue,
    pub expires_at: u64,
}

#[derive(Serialize, Deserialize)]
struct Sealed<T> {
    /// Expiry, seconds since the epoch.
    exp: u64,
    v: T,
}

/// Seals and opens sfgate's cookies.
#[derive(Clone)]
pub struct CookieSealer {
    key: SealingKey,
    /// `SESSION_SECRET_PREVIOUS`: cookies sealed under it still open, so rotating the secret
    /// logs nobody out; new cookies are sealed under `key` only.
    previous: Option<SealingKey>,
    secure: bool,
    /// The names the cookies are served under: `__Host-` prefixed when `secure`.
    names: CookieNames,
    session_ttl: Duration,
    session_max_age: Duration,
}

impl CookieSealer {
    /// `secret` must be at least 32 bytes (guaranteed by `SessionSecret`). Sessions get the
    /// default maximum age; see [`Self::with_session_max_age`]. `secure` (sfgate is reached
    /// over HTTPS): the cookies are `Secure` and their names carry the `__Host-` prefix
    /// ([`CookieNames`]), so that no other host of the site can plant one.
    pub fn new(secret: &[u8], secure: bool, session_ttl: Duration) -> Self {
        Self {
            key: SealingKey::derive_from(secret),
            previous: None,
            secure,
            names: CookieNames::for_https(secure),
            session_ttl,
            session_max_age: DEFAULT_SESSION_MAX_AGE,
        }
    }

    /// `SESSION_SECRET_PREVIOUS` (at least 32 bytes, guaranteed by `SessionSecret`).
    pub fn with_previous_secret(mut self, previous: Option<&[u8]>) -> Self {
        self.previous = previous.map(SealingKey::derive_from);
        self
    }

    /// `SESSION_MAX_AGE`: how long a session may last from its login, renewals included.
    pub fn with_session_max_age(mut self, max_age: Duration) -> Self {
        self.session_max_age = max_age;
        self
    }

    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// The session cookie for `session`: valid for `SESSION_TTL`, but never past the session's
    /// maximum age. [`CookieError::Expired`] when the session has reached its maximum age.
    ///
    /// An embedded (Canvas) session's cookie is `SameSite=None; Secure; Partitioned`: the
    /// browser sends it only from inside the iframe on Salesforce's pages (a cross-site
    /// context, where `Lax` cookies are never sent), keeps it in a jar of that top-level site
    /// only (CHIPS), and only over https (browsers treat `localhost` as https for this).
    pub fn seal_session(&self, session: &Session) -> Result<SealedSession, CookieError> {
        let left = self.remaining_life(session).ok_or(CookieError::Expired)?;
        let ttl = self.session_ttl.min(left);
        let site = if session.embedded {
            CookieSite::Embedded
        } else {
            CookieSite::FirstParty
        };
        let cookie = self.seal_for(SESSION_COOKIE, session, ttl, site)?;
        Ok(SealedSession {
            cookie,
            expires_at: now_secs() + ttl.as_secs(),
        })
    }

    /// The session cookie, if present, sealed by us, not expired and within its maximum age.
    pub fn open_session(&self, headers: &HeaderMap) -> Result<Option<Session>, CookieError> {
        match self.open::<Session>(headers, SESSION_COOKIE)? {
            Some(session) if self.remaining_life(&session).is_none() => Err(CookieError::Expired),
            other => Ok(other),
        }
    }

    /// The login cookie, valid for [`LOGIN_TTL`].
    pub fn seal_login(&self, login: &LoginState) -> Result<HeaderValue, CookieError> {
        self.seal(LOGIN_COOKIE, login, LOGIN_TTL)
    }

    /// The login cookie, if present, sealed by us and not expired.
    pub fn open_login(&self, headers: &HeaderMap) -> Result<Option<LoginState>, CookieError> {
        self.open(headers, LOGIN_COOKIE)
    }

    /// When `session` reaches its maximum age (seconds since the epoch).
    pub fn session_ends_at(&self, session: &Session) -> u64 {
        session
            .login_at
            .saturating_add(self.session_max_age.as_secs())
    }

    /// Time left before the session's maximum age; `None` once it is reached.
    fn remaining_life(&self, session: &Session) -> Option<Duration> {
        let ends = session
            .login_at
            .saturating_add(self.session_max_age.as_secs());
        let left = ends.saturating_sub(now_secs());
        (left > 0).then(|| Duration::from_secs(left))
    }

    /// A `Set-Cookie` value carrying `value`, valid for `ttl`.
    pub fn seal<T: Serialize>(
        &self,
        name: &'static str,
        value: &T,
        ttl: Duration,
    ) -> Result<HeaderValue, CookieError> {
        self.seal_for(name, value, ttl, CookieSite::FirstParty)
    }

    fn seal_for<T: Serialize>(
        &self,
        name: &'static str,
        value: &T,
        ttl: Duration,
        site: CookieSite,
    ) -> Result<HeaderValue, CookieError> {
        let sealed = Sealed {
            exp: now_secs() + ttl.as_secs(),
            v: value,
        };
        let json = serde_json::to_string(&sealed).map_err(|_| CookieError::Unsealable)?;
        let name = self.names.of(name);
        let sealed = self
            .key
            .seal(name, json.as_bytes())
            .ok_or(CookieError::Unsealable)?;
        let mut cookie = Cookie::new(name, sealed);
        cookie.set_http_only(true);
        match site {
            CookieSite::FirstParty => {
                cookie.set_same_site(SameSite::Lax);
                cookie.set_secure(self.secure);
            }
            CookieSite::Embedded => {
                cookie.set_same_site(SameSite::None);
                cookie.set_secure(true);
                cookie.set_partitioned(true);
            }
        }
        cookie.set_path("/");
        cookie.set_max_age(cookie::time::Duration::seconds(ttl.as_secs() as i64));
        HeaderValue::from_str(&cookie.encoded().to_string()).map_err(|_| CookieError::Unsealable)
    }

    /// A `Set-Cookie` value that deletes the cookie.
    pub fn removal(&self, name: &'static str) -> HeaderValue {
        let name = self.names.of(name);
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("sfgate_session=; Path=/; Max-Age=0"))
    }

    /// `Ok(None)` when the cookie is absent; an error when it is present but unusable, so that
    /// "no session" and "a bad session" stay distinct.
    pub fn open<T: DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        name: &'static str,
    ) -> Result<Option<T>, CookieError> {
        let name = self.names.of(name);
        let Some(raw) = find_cookie(headers, name) else {
            return Ok(None);
        };
        let plain = self
            .key
            .open(name, &raw)
            .or_else(|| self.previous.as_ref()?.open(name, &raw))
            .ok_or(CookieError::Tampered)?;
        let sealed: Sealed<T> = serde_json::from_str(&plain).map_err(|_| CookieError::Tampered)?;
        if sealed.exp <= now_secs() {
            return Err(CookieError::Expired);
        }
        Ok(Some(sealed.v))
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
