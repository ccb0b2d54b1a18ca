//! What this replica knows was revoked, on any replica: held in memory, so the check on every
//! request stays a local lookup. Filled by `revocation.rs` (from the channel, the log, and
//! revocations made here); each entry is forgotten when its revocation may be.

use super::{Digest, Tombstones};
use crate::domain::SalesforceId;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HearingHook = Box<dyn Fn(bool) + Send + Sync>;
/// Given the digest of a token revoked on any replica, forgets what this replica cached for it.
type TokenHook = Box<dyn Fn(Digest) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;
/// Given a revoked user and the revocation time, forgets what this replica cached for that
/// user and answers the digests of that user's tokens it knows (to revoke as tokens).
type UserHook = Box<dyn Fn(&SalesforceId, u64) -> Vec<Digest> + Send + Sync>;

/// The revocations in force, and the validator's hooks to hear of new ones.
pub(super) struct Revocations {
    /// Digests revoked anywhere, each until its revocation may be forgotten.
    pub(super) marked: Tombstones,
    /// Revocations made here while Redis was unreachable, to write when it returns.
    pub(super) pending: moka::sync::Cache<Digest, u64>,
    /// Tells the validator when this replica stops or starts hearing revocations.
    pub(super) on_hearing: OnceLock<HearingHook>,
    /// Users revoked anywhere: when (`at_ms`), each until its revocation may be forgotten.
    pub(super) users: moka::sync::Cache<SalesforceId, (u64, u64)>,
    /// Tells the validator that a user was revoked.
    pub(super) on_user: OnceLock<UserHook>,
    /// Tells the validator that a token was revoked on some replica.
    pub(super) on_token: OnceLock<TokenHook>,
    /// `REDIS_REVOCATIONS_MAX`: bounds memory (and the log) under a flood of logouts; beyond
    /// it the ones nearest their end go first.
    pub(super) max: u64,
    /// How long any revocation is kept at least: a verdict read from the shared level lives
    /// up to one identity TTL there and one locally.
    pub(super) min_keep: Duration,
    /// The revocation log's generation this replica last read (`None` before its first
    /// catch-up): another one, or none, means Redis lost the log meanwhile.
    pub(super) generation: std::sync::Mutex<Option<String>>,
}

/// Each entry lives until its own `until_ms`.
struct UntilMs;

impl moka::Expiry<Digest, u64> for UntilMs {
    fn expire_after_create(
        &self,
        _key: &Digest,
        until_ms: &u64,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_millis(until_ms.saturating_sub(now_ms())))
    }
}

/// A user's entry lives until its own `until_ms`.
struct UserUntilMs;

impl moka::Expiry<SalesforceId, (u64, u64)> for UserUntilMs {
    fn expire_after_create(
        &self,
        _key: &SalesforceId,
        (_, until_ms): &(u64, u64),
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_millis(until_ms.saturating_sub(now_ms())))
    }
}

impl Revocations {
    pub(super) fn new(identity_ttl: Duration, max: u64) -> Self {
        Self {
            marked: Tombstones::new(max, "revoked_anywhere"),
            pending: moka::sync::Cache::builder()
                .max_capacity(max)
                .expire_after(UntilMs)
                .build(),
            on_hearing: OnceLock::new(),
            users: moka::sync::Cache::builder()
                .max_capacity(max)
                .expire_after(UserUntilMs)
                .build(),
            on_user: OnceLock::new(),
            on_token: OnceLock::new(),
            max,
            min_keep: (identity_ttl * 2).max(Duration::from_secs(1)),
            generation: std::sync::Mutex::new(None),
        }
    }

    pub(super) fn mark(&self, digest: Digest, until_ms: u64) {
        let keep = Duration::from_millis(until_ms.saturating_sub(now_ms()));
        self.marked.insert(digest, keep);
    }

    /// Tells the validator that this replica stopped (`false`) or started again (`true`) to
    /// hear revocations.
    pub(super) fn hearing_changed(&self, hearing: bool) {
        if let Some(hook) = self.on_hearing.get() {
            hook(hearing);
        }
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
