//! What the emulator hands out: codes, access and refresh tokens, and their lifecycle.

use crate::records::{AccessGrant, CodeGrant, RefreshGrant, TokenGrant};
use crate::state::EmulatorState;
use crate::users::{long_id, user, UserProfile};
use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::distr::{Alphanumeric, SampleString};
use std::sync::atomic::Ordering;
use std::time::Duration;

impl EmulatorState {
    pub(crate) fn store_code(&self, grant: CodeGrant) -> String {
        let code = format!("aPrx{}", random(48));
        if let Ok(mut codes) = self.codes.lock() {
            codes.insert(code.clone(), grant);
        }
        code
    }

    /// Removes the code: a code is consumed by its first use, even a failed one.
    pub(crate) fn take_code(&self, code: &str) -> Option<CodeGrant> {
        self.codes.lock().ok()?.remove(code)
    }

    pub(crate) fn identity_url(&self, user: usize) -> String {
        let u = self::user(user);
        format!(
            "{}/id/{}/{}",
            self.base_url,
            long_id(u.org_id),
            long_id(u.user_id)
        )
    }

    /// Issues an access token (and a refresh token when asked), signed like Salesforce's.
    pub(crate) fn issue(&self, user: usize, scope: &str, with_refresh: bool) -> TokenGrant {
        let refresh = with_refresh.then(|| format!("5Aep861{}", random(80)));
        if let (Some(rt), Ok(mut map)) = (&refresh, self.refresh.lock()) {
            map.insert(
                rt.clone(),
                RefreshGrant {
                    user,
                    scope: scope.to_string(),
                    revoked: false,
                },
            );
        }
        self.issue_access(user, scope, refresh)
    }

    fn issue_access(&self, user: usize, scope: &str, refresh: Option<String>) -> TokenGrant {
        let client_id = self.client_id.clone();
        self.issue_access_as(user, scope, refresh, &client_id, self.jwt.enabled())
    }

    /// An access token issued to `client_id`: a JWT-based one when `jwt`, else opaque.
    pub(crate) fn issue_access_as(
        &self,
        user: usize,
        scope: &str,
        refresh: Option<String>,
        client_id: &str,
        jwt: bool,
    ) -> TokenGrant {
        let now = self.now_ms();
        let access_token = if jwt {
            self.mint_jwt(user, scope, client_id)
        } else {
            format!("{}!{}", self::user(user).org_id, random(96))
        };
        if let Ok(mut map) = self.access.lock() {
            map.insert(
                access_token.clone(),
                AccessGrant {
                    user,
                    scope: scope.to_string(),
                    expires_ms: now + self.lifetime.as_millis() as u64,
                    revoked: false,
                    refresh: refresh.clone(),
                },
            );
        }
        let id = self.identity_url(user);
        let issued_at = now.to_string();
        TokenGrant {
            signature: sign(&self.client_secret, &id, &issued_at),
            access_token,
            refresh_token: refresh,
            instance_url: self.base_url.clone(),
            id,
            issued_at,
            scope: scope.to_string(),
            token_type: "Bearer".to_string(),
            token_format: jwt.then(|| "jwt".to_string()),
            sfdc_community_url: None,
            sfdc_community_id: None,
        }
    }

    /// A new access token for a valid refresh token. Without rotation no new refresh token
    /// comes back, as at Salesforce; with rotation a new one does, and the one used is spent
    /// (checked and spent under one lock, so two concurrent uses cannot both succeed).
    pub(crate) fn refresh(&self, refresh_token: &str) -> Option<TokenGrant> {
        let rotate = self.rotate_refresh_tokens.load(Ordering::SeqCst);
        let (user, scope, next) = {
            let mut map = self.refresh.lock().ok()?;
            let grant = map.get_mut(refresh_token).filter(|g| !g.revoked)?;
            let (user, scope) = (grant.user, grant.scope.clone());
            let next = rotate.then(|| {
                grant.revoked = true;
                format!("5Aep861{}", random(80))
            });
            if let Some(next) = &next {
                map.insert(
                    next.clone(),
                    RefreshGrant {
                        user,
                        scope: scope.clone(),
                        revoked: false,
                    },
                );
            }
            (user, scope, next)
        };
        match next {
            Some(next) => Some(self.issue_access(user, &scope, Some(next))),
            None => {
                let mut grant = self.issue_access(user, &scope, Some(refresh_token.to_string()));
                grant.refresh_token = None;
                Some(grant)
            }
        }
    }

    /// The user of a live access token and the scopes it was granted.
    pub(crate) fn access_grant(&self, token: &str) -> Option<(usize, String)> {
        let now = self.now_ms();
        let map = self.access.lock().ok()?;
        map.get(token)
            .filter(|g| !g.revoked && g.expires_ms > now)
            .map(|g| (g.user, g.scope.clone()))
    }

    pub(crate) fn profile(&self, user: usize) -> UserProfile {
        self.profiles
            .lock()
            .ok()
            .and_then(|p| p.get(&user).cloned())
            .unwrap_or_else(|| UserProfile::from(self::user(user)))
    }

    pub(crate) fn set_profile(&self, user: usize, profile: UserProfile) {
        if let Ok(mut p) = self.profiles.lock() {
            p.insert(user, profile);
        }
    }

    /// The user of a live access token.
    pub(crate) fn access_user(&self, token: &str) -> Option<usize> {
        let now = self.now_ms();
        let map = self.access.lock().ok()?;
        map.get(token)
            .filter(|g| !g.revoked && g.expires_ms > now)
            .map(|g| g.user)
    }

    /// The user and expiry (ms) of a live access token.
    pub(crate) fn live_access(&self, token: &str) -> Option<(usize, u64)> {
        let now = self.now_ms();
        let map = self.access.lock().ok()?;
        map.get(token)
            .filter(|g| !g.revoked && g.expires_ms > now)
            .map(|g| (g.user, g.expires_ms))
    }

    /// How long access tokens live (the org's session timeout).
    pub(crate) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub(crate) fn expire_access_tokens(&self) {
        let now = self.now_ms();
        if let Ok(mut map) = self.access.lock() {
            for grant in map.values_mut() {
                grant.expires_ms = grant.expires_ms.min(now);
            }
        }
    }

    /// Revokes an access or refresh token; a refresh token takes its access tokens with it.
    pub(crate) fn revoke(&self, token: &str) -> bool {
        if let Ok(mut map) = self.access.lock() {
            if let Some(grant) = map.get_mut(token) {
                grant.revoked = true;
                return true;
            }
        }
        let found = match self.refresh.lock() {
            Ok(mut map) => match map.get_mut(token) {
                Some(grant) => {
                    grant.revoked = true;
                    true
                }
                None => false,
            },
            Err(_) => false,
        };
        if found {
            if let Ok(mut map) = self.access.lock() {
                for grant in map
                    .values_mut()
                    .filter(|g| g.refresh.as_deref() == Some(token))
                {
                    grant.revoked = true;
                }
            }
        }
        found
    }

    pub(crate) fn is_revoked(&self, token: &str) -> bool {
        if let Some(g) = self
            .access
            .lock()
            .ok()
            .and_then(|m| m.get(token).map(|g| g.revoked))
        {
            return g;
        }
        self.refresh
            .lock()
            .ok()
            .and_then(|m| m.get(token).map(|g| g.revoked))
            .unwrap_or(false)
    }
}

pub(crate) fn random(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// Base64(HMAC-SHA256(client_secret, id + issued_at)), the token response's `signature`.
pub(crate) fn sign(secret: &str, id: &str, issued_at: &str) -> String {
    let mut mac = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()));
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    STANDARD.encode(mac.sign())
}

/// base64url(SHA-256(verifier)) without padding, as RFC 7636 S256.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values Salesforce (and earlier emulators) compute: RFC 7636 appendix B's S256
    /// example, and a token response signature made with a standard HMAC-SHA256.
    #[test]
    fn signatures_and_challenges_are_the_standard_ones() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(
            sign(
                "s3cret",
                "https://login.salesforce.com/id/00DB0000000TfcRMAS/005B0000005Bk90IAC",
                "1558553873237"
            ),
            "0/vF7aLTSBBv71u2JxbcLPRLn2xHXi0kmqFQiQ5kGg8="
        );
    }
}
