//! Authenticated encryption of a named value, byte for byte the `cookie` crate's private
//! jar (0.18), so that cookies and Redis values sealed by earlier releases keep opening:
//!
//! - key: HKDF-SHA256 expansion of the secret used directly as the pseudo-random key (no
//!   extract step), info `COOKIE;SIGNED:HMAC-SHA256;PRIVATE:AEAD-AES-256-GCM`, 64 bytes of
//!   which the last 32 are the AES-256-GCM key (the first 32 were the signed jar's HMAC key,
//!   unused);
//! - sealed value: standard base64 (padded) of `nonce (12 random bytes) | ciphertext | tag`,
//!   with the value's name as associated data, so a value only opens under the name it was
//!   sealed for.
//!
//! The fixtures in `auth::session` and `store::sealed` tests were made by the `cookie` crate
//! itself and pin this format.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf::{KeyType, Prk, HKDF_SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::sync::Arc;

const KEYS_INFO: &[u8] = b"COOKIE;SIGNED:HMAC-SHA256;PRIVATE:AEAD-AES-256-GCM";
/// The signing and the encryption key, as the `cookie` crate expands them.
const COMBINED_KEY_LEN: usize = 64;
const ENCRYPTION_KEY_OFFSET: usize = 32;

/// A key that seals and opens named values (cheap to clone: the prepared key is shared).
#[derive(Clone)]
pub struct SealingKey {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

struct CombinedLen;

impl KeyType for CombinedLen {
    fn len(&self) -> usize {
        COMBINED_KEY_LEN
    }
}

impl SealingKey {
    /// The key for `secret` (callers guarantee at least 32 bytes: `SessionSecret`, or a key
    /// derived from it).
    pub fn derive_from(secret: &[u8]) -> Self {
        let mut both = [0u8; COMBINED_KEY_LEN];
        let expanded = Prk::new_less_safe(HKDF_SHA256, secret)
            .expand(&[KEYS_INFO], CombinedLen)
            .and_then(|okm| okm.fill(&mut both));
        if expanded.is_err() {
            // HKDF-SHA256 expands to up to 255 × 32 bytes: 64 cannot fail, and a key made of
            // zeros instead would be worse than stopping.
            unreachable!("HKDF-SHA256 refused a 64-byte expansion");
        }
        let mut encryption = [0u8; 32];
        encryption.copy_from_slice(&both[ENCRYPTION_KEY_OFFSET..]);
        Self::from_encryption_key(encryption)
    }

    fn from_encryption_key(bytes: [u8; 32]) -> Self {
        // AES-256-GCM takes any 32-byte key.
        let unbound = match UnboundKey::new(&AES_256_GCM, &bytes) {
            Ok(k) => k,
            Err(_) => unreachable!("a 32-byte AES-256 key is always accepted"),
        };
        Self {
            key: Arc::new(LessSafeKey::new(unbound)),
        }
    }

    /// `plaintext` sealed for `name`; `None` only if the system's random source fails.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut data = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(plaintext);
        let (_, in_out) = data.split_at_mut(NONCE_LEN);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                in_out,
            )
            .ok()?;
        data.extend_from_slice(tag.as_ref());
        Some(STANDARD.encode(data))
    }

    /// The text sealed for `name`; `None` for anything altered, truncated, not base64, sealed
    /// under another key or name, or not UTF-8.
    pub fn open(&self, name: &str, sealed: &str) -> Option<String> {
        let mut data = STANDARD.decode(sealed).ok()?;
        if data.len() <= NONCE_LEN {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&data[..NONCE_LEN]).ok()?;
        let plain = self
            .key
            .open_within(nonce, Aad::from(name.as_bytes()), &mut data, NONCE_LEN..)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}
