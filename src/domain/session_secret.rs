//! The secret that keys cookie encryption (`SESSION_SECRET`).

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// The key material for cookie encryption. At least 32 bytes, so it can key AES-256-GCM through
/// HKDF; shorter secrets are refused at start rather than weakening every session.
#[derive(Clone)]
pub struct SessionSecret(SecretString);

impl SessionSecret {
    pub const MIN_LEN: usize = 32;

    pub fn parse(raw: String) -> Result<Self, String> {
        if raw.len() < Self::MIN_LEN {
            return Err(format!(
                "must be at least {} bytes, got {} (generate one with `openssl rand -base64 48`)",
                Self::MIN_LEN,
                raw.len()
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret([REDACTED])")
    }
}
