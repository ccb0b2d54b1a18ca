//! Redis is storage, not authority: what sfgate keeps there is named and sealed with keys
//! derived from `SESSION_SECRET`. Every key name sfgate uses in Redis is made here (all start
//! with `sfgate:`), and this module uses nothing else of the store but the sealing.
//!
//! - **Names.** A key that derives from a token (identity verdict, tombstone, login `state`,
//!   renewal lock and result) is named by HMAC-SHA256 of the token's digest under a key for
//!   that purpose, never by the digest itself: someone who can read Redis has nothing to test
//!   token guesses against, and someone who can write it cannot compute the name a made-up
//!   token would be looked up under.
//! - **Values.** Every value sfgate reads back is sealed (AES-256-GCM, the cookie crate's
//!   private jar, see `sealed.rs`) under its own key name, so a planted value does not open,
//!   and a real one moved to another key does not open there either. A value that does not
//!   open is a miss, counted in `sfgate_store_rejected_values_total` and logged once.
//!
//! Rotation: with `SESSION_SECRET_PREVIOUS`, names and seals are made for both secrets. Reads
//! look under the current then the previous name; writes go under the current one, except
//! revocations, which go under both so that replicas not yet rotated hear them too.

use super::sealed::Sealer;
use super::Digest;
use crate::crypto::{hmac_key, hmac_sha256, HmacKey};
use std::sync::atomic::{AtomicBool, Ordering};

/// Every key sfgate writes starts with this, so a shared Redis shows whose keys they are.
const PREFIX: &str = "sfgate:";
/// The channel revocations are published on.
pub(super) const REVOCATION_CHANNEL: &str = "sfgate:revocations";
/// The sorted set of sealed revocations still in force, read back when catching up.
pub(super) const REVOCATION_LOG: &str = "sfgate:revocation-log";
/// Names the revocation log's generation: set by the first replica to find it missing, so a
/// replica that finds another value (or none) knows Redis lost the log since it last looked.
pub(super) const REVOCATION_GENERATION: &str = "sfgate:revocation-log:generation";
/// The name revocation messages are sealed under (on the channel and in the log alike).
pub(super) const REVOCATION_SEALED_AS: &str = "sfgate:revocation";

/// What a token-derived key name is for; each has its own derived key, so one kind of name
/// says nothing about another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Identity,
    Tombstone,
    LoginState,
    RenewalLock,
    RenewalResult,
}

impl Purpose {
    const ALL: [Purpose; 5] = [
        Purpose::Identity,
        Purpose::Tombstone,
        Purpose::LoginState,
        Purpose::RenewalLock,
        Purpose::RenewalResult,
    ];

    /// The part of the key name after `sfgate:` (kept from the unkeyed names, so a shared
    /// Redis still shows what each key is).
    fn segment(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Tombstone => "revoked",
            Self::LoginState => "state",
            Self::RenewalLock => "renewal-lock",
            Self::RenewalResult => "renewal-result",
        }
    }

    /// The HMAC label the purpose's key is derived with.
    fn label(self) -> &'static [u8] {
        match self {
            Self::Identity => b"sfgate redis name v1: identity verdict",
            Self::Tombstone => b"sfgate redis name v1: tombstone",
            Self::LoginState => b"sfgate redis name v1: login state",
            Self::RenewalLock => b"sfgate redis name v1: renewal lock",
            Self::RenewalResult => b"sfgate redis name v1: renewal result",
        }
    }
}

/// The keys one secret gives: one HMAC key per [`Purpose`] and the sealing key.
pub(super) struct SecretKeys {
    names: [HmacKey; 5],
    pub(super) sealer: Sealer,
}

impl SecretKeys {
    fn new(secret: &[u8]) -> Self {
        let names = Purpose::ALL.map(|p| hmac_key(&derive(secret, p.label())));
        Self {
            names,
            // Not the cookies' key: a value sealed for Redis is never a valid cookie.
            sealer: Sealer::new(&derive(secret, b"sfgate redis values v1")),
        }
    }

    /// `sfgate:<purpose>:<hex HMAC of the digest>`.
    pub(super) fn name(&self, purpose: Purpose, digest: &Digest) -> String {
        let index = Purpose::ALL
            .iter()
            .position(|p| *p == purpose)
            .unwrap_or_default();
        let keyed: Digest = hmac_sha256(&self.names[index], digest);
        format!("{}{}:{}", PREFIX, purpose.segment(), hex(&keyed))
    }
}

/// HMAC-SHA256 as a PRF keyed by the secret: a separate key per label.
fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    hmac_sha256(&hmac_key(secret), label)
}

/// The current secret's keys, and the previous one's during a rotation.
pub(super) struct KeyRing {
    pub(super) current: SecretKeys,
    pub(super) previous: Option<SecretKeys>,
}

impl KeyRing {
    pub(super) fn new(current: &[u8], previous: Option<&[u8]>) -> Self {
        Self {
            current: SecretKeys::new(current),
            previous: previous.map(SecretKeys::new),
        }
    }

    /// The current keys, then the previous ones: the order reads look in.
    pub(super) fn all(&self) -> impl Iterator<Item = &SecretKeys> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    /// The value sealed under `name` by any of the secrets, or `None` (counted as rejected).
    pub(super) fn open(&self, kind: &'static str, name: &str, sealed: String) -> Option<String> {
        let opened = self
            .all()
            .find_map(|keys| keys.sealer.open(name, sealed.clone()));
        if opened.is_none() {
            rejected(kind);
        }
        opened
    }
}

/// Counts a value read from Redis that did not open, and says so in the log once per process
/// (never the value: it may be someone's probe, and it is not ours).
pub(super) fn rejected(kind: &'static str) {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    metrics::counter!("sfgate_store_rejected_values_total", "kind" => kind).increment(1);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            kind,
            "a value read from Redis is not sealed with this deployment's SESSION_SECRET: \
             ignored (altered, moved between keys, or written by something else; further ones \
             are only counted in sfgate_store_rejected_values_total)"
        );
    }
}

/// Lower-case hex, for key names.
pub(super) fn hex(digest: &Digest) -> String {
    use std::fmt::Write;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"0123456789abcdef0123456789abcdef-secret-a";
    const B: &[u8] = b"0123456789abcdef0123456789abcdef-secret-b";

    #[test]
    fn names_are_keyed_per_secret_and_per_purpose_and_hide_the_digest() {
        let digest: Digest = crate::crypto::sha256(&[b"00D5j00000AcMe1!token"]);
        let a = SecretKeys::new(A);
        let b = SecretKeys::new(B);
        let names: Vec<String> = Purpose::ALL.iter().map(|p| a.name(*p, &digest)).collect();
        for (name, purpose) in names.iter().zip(Purpose::ALL) {
            assert!(name.starts_with(&format!("sfgate:{}:", purpose.segment())));
            assert!(!name.contains(&hex(&digest)), "{name}");
            assert_ne!(
                *name,
                b.name(purpose, &digest),
                "another secret, another name"
            );
            assert_eq!(*name, a.name(purpose, &digest), "stable");
        }
        let tails: std::collections::HashSet<&str> =
            names.iter().filter_map(|n| n.rsplit(':').next()).collect();
        assert_eq!(tails.len(), Purpose::ALL.len(), "one key per purpose");
    }

    /// Replicas of different releases share Redis during a rolling upgrade, and a restart must
    /// find what it wrote before: the names and the values' key are the bytes earlier releases
    /// derived from the same secret.
    #[test]
    fn names_and_the_values_key_are_those_of_earlier_releases() {
        let digest: Digest = crate::crypto::sha256(&[b"00D5j00000AcMe1!token"]);
        let keys = SecretKeys::new(A);
        let pinned = [
            (
                Purpose::Identity,
                "4afbc34985f8e7790a1c0ddaab1623071f96436d822cd54c093feac36fcc2a87",
            ),
            (
                Purpose::Tombstone,
                "93daf20c1803f4fab2afe555ba79cc2357998d7d52fff50f25234778c043c8b6",
            ),
            (
                Purpose::LoginState,
                "c3b2894d7f9e30724469aadc5d367f5feb7b3df32e756c65f340ab19082deffa",
            ),
            (
                Purpose::RenewalLock,
                "2aa525c11e8e4b682e548d047819504363612a77a92496e010b176ba5ac6f5bc",
            ),
            (
                Purpose::RenewalResult,
                "620aef5362d7628f1aa4c416269d10ff6caf09eeb13723da07d01fd3bd3eb797",
            ),
        ];
        for (purpose, tail) in pinned {
            assert_eq!(
                keys.name(purpose, &digest),
                format!("sfgate:{}:{tail}", purpose.segment())
            );
        }
        assert_eq!(
            hex(&derive(A, b"sfgate redis values v1")),
            "2333d1a38e6cd66770f8ae4df42572e3c6fcd3966a85bc998eb337b86d4c98a0"
        );
    }

    #[test]
    fn values_open_under_either_secret_of_a_rotation_and_only_under_their_name() {
        let old = KeyRing::new(A, None);
        let rotated = KeyRing::new(B, Some(A));
        let sealed = old
            .current
            .sealer
            .seal("sfgate:identity:x", "{}".into())
            .expect("sealed");
        assert_eq!(
            rotated
                .open("identity", "sfgate:identity:x", sealed.clone())
                .as_deref(),
            Some("{}")
        );
        assert_eq!(rotated.open("identity", "sfgate:identity:y", sealed), None);
        let new = rotated
            .current
            .sealer
            .seal("sfgate:identity:x", "{}".into())
            .expect("sealed");
        assert_eq!(old.open("identity", "sfgate:identity:x", new), None);
    }
}
