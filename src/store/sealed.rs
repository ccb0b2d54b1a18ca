//! Sealing token-bearing values before they go to Redis: AES-256-GCM in the cookie crate's
//! private-cookie format (`crate::crypto::SealingKey`, key derived from `SESSION_SECRET` by
//! HKDF, as the session cookie is), with the Redis key's name as the cookie name, so a sealed
//! value only opens under the key it was written to. Replicas share `SESSION_SECRET`, so any
//! of them can open it.

use crate::crypto::SealingKey;

pub(super) struct Sealer {
    key: SealingKey,
}

impl Sealer {
    pub(super) fn new(session_secret: &[u8]) -> Self {
        Self {
            key: SealingKey::derive_from(session_secret),
        }
    }

    pub(super) fn seal(&self, name: &str, plaintext: String) -> Option<String> {
        self.key.seal(name, plaintext.as_bytes())
    }

    /// `None` for anything altered, truncated, sealed with another key or under another name.
    pub(super) fn open(&self, name: &str, sealed: String) -> Option<String> {
        self.key.open(name, &sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_name_and_key() {
        let sealer = Sealer::new(b"0123456789abcdef0123456789abcdef-secret");
        let sealed = sealer.seal("k1", "refresh-me".into()).expect("sealed");
        assert!(!sealed.contains("refresh-me"));
        assert_eq!(
            sealer.open("k1", sealed.clone()).as_deref(),
            Some("refresh-me")
        );
        assert_eq!(sealer.open("k2", sealed.clone()), None);
        let other = Sealer::new(b"another-secret-of-at-least-32-bytes!!");
        assert_eq!(other.open("k1", sealed), None);
    }

    /// A value sealed by an earlier release: values already in Redis must keep opening.
    #[test]
    fn values_sealed_by_earlier_releases_still_open() {
        const SEALED: &str =
            "+DbZ6K5+cfB/aoEZXQ2rPb7GkubF2Gh1M8XrzvSXtVzGSbySTd1y5IoEPBAIBHl1f6NZ/g==";
        let sealer = Sealer::new(b"0123456789abcdef0123456789abcdef-secret");
        assert_eq!(
            sealer
                .open("sfgate:v1:verdict:abc", SEALED.to_string())
                .as_deref(),
            Some("{\"refresh\":\"5Aep861+/=\"}")
        );
        assert_eq!(
            sealer.open("sfgate:v1:verdict:abd", SEALED.to_string()),
            None
        );
    }
}
