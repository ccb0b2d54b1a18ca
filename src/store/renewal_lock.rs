//! Cross-replica single-flight for session renewals (rotation-safe).
//!
//! With refresh-token rotation, the first use of a refresh token spends it; a second replica
//! renewing the same session at the same moment gets `invalid_grant` and logs the user out.
//! So one replica renews and the others pick its result up:
//!
//! 1. [`SharedStore::renewal_result`]: a result another replica left (sealed, seconds-lived)?
//! 2. [`SharedStore::try_lock_renewal`]: `SET lock NX PX` under the refresh token's digest.
//!    The winner renews, then [`RenewalLease::complete`] seals the result into the slot and
//!    releases the lock (only if still its own: compare-and-delete).
//! 3. The others [`SharedStore::wait_for_renewal`]: a bounded poll of the slot that ends early
//!    when the lock disappears without a result (the winner failed: try again).
//!
//! [`SharedStore::renew_single_flight`] composes the three. Results hold tokens, so they are
//! sealed with the session key (see `sealed.rs`) under the slot's name and expire in
//! [`RENEWAL_RESULT_TTL`]. Keys are digests of the refresh token (the `sessions` renewal
//! module's `renewal_key`). Whenever Redis fails, the caller renews itself: the guarantee of
//! one replica, never a refused session because Redis was away.

use super::keys::Purpose;
use super::redis_store::RedisStore;
use super::{Digest, SharedStore};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a renewal may hold the lock: longer than a token call (`SALESFORCE_TIMEOUT`,
/// 5 s by default), short enough that a crashed replica does not stall the session long.
pub const RENEWAL_LOCK_TTL: Duration = Duration::from_secs(10);
/// How long a renewal's sealed result answers the other replicas.
pub const RENEWAL_RESULT_TTL: Duration = Duration::from_secs(10);
/// How often a waiting replica looks for the result.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// Deletes the lock only if it still holds this lease's token (it may have expired and been
/// taken by another replica meanwhile).
const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// The lock and the result slot are named under the current secret only: during a rotation,
/// replicas on different secrets do not coordinate renewals (each renews for itself, as
/// without Redis), and a result is looked for under the previous secret's name too.
fn lock_key(store: &RedisStore, key: &Digest) -> String {
    store.keys.current.name(Purpose::RenewalLock, key)
}

fn result_key(store: &RedisStore, key: &Digest) -> String {
    store.keys.current.name(Purpose::RenewalResult, key)
}

fn previous_result_key(store: &RedisStore, key: &Digest) -> Option<String> {
    let previous = store.keys.previous.as_ref()?;
    Some(previous.name(Purpose::RenewalResult, key))
}

/// The answer of [`SharedStore::try_lock_renewal`].
pub enum RenewalTurn {
    /// This replica renews; complete or release the lease.
    Renew(RenewalLease),
    /// Another replica holds the lock: wait for its result.
    Wait,
    /// No shared store, or Redis failed: renew locally.
    Unavailable,
}

/// The right to renew one session, held in Redis until completed, released or expired.
#[must_use = "complete or release the lease, or the other replicas wait for it to expire"]
pub struct RenewalLease {
    store: Arc<RedisStore>,
    key: Digest,
    token: String,
}

impl RenewalLease {
    /// Seals `result` into the slot for `keep` (see [`RENEWAL_RESULT_TTL`]) and releases the
    /// lock. `false` if Redis did not take it (the waiting replicas will renew themselves).
    pub async fn complete<T: Serialize>(self, result: &T, keep: Duration) -> bool {
        let name = result_key(&self.store, &self.key);
        let sealed = serde_json::to_string(result)
            .ok()
            .and_then(|json| self.store.keys.current.sealer.seal(&name, json));
        let Some(sealed) = sealed else {
            self.release().await;
            return false;
        };
        let mut conn = self.store.conn();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&name)
            .arg(sealed)
            .arg("PX")
            .arg(keep.as_millis().max(1) as u64)
            .ignore()
            .cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(lock_key(&self.store, &self.key))
            .arg(&self.token)
            .ignore();
        self.store
            .run("renewal_complete", pipe.query_async::<()>(&mut conn))
            .await
            .is_some()
    }

    /// Gives the lock up without a result (the renewal failed): a waiting replica tries.
    pub async fn release(self) {
        let mut conn = self.store.conn();
        self.store
            .run(
                "renewal_release",
                redis::cmd("EVAL")
                    .arg(RELEASE)
                    .arg(1)
                    .arg(lock_key(&self.store, &self.key))
                    .arg(&self.token)
                    .query_async::<i64>(&mut conn),
            )
            .await;
    }
}

impl SharedStore {
    /// A result another replica sealed for this refresh-token digest, if one is there and
    /// opens. `None` without Redis, on a miss, or when Redis fails.
    pub async fn renewal_result<T: DeserializeOwned>(&self, key: &Digest) -> Option<T> {
        let Self::Redis(store) = self else {
            return None;
        };
        read_result(store, key).await.flatten()
    }

    /// Takes the renewal lock for `lock_ttl` (see [`RENEWAL_LOCK_TTL`]) if no replica holds it.
    pub async fn try_lock_renewal(&self, key: &Digest, lock_ttl: Duration) -> RenewalTurn {
        let Self::Redis(store) = self else {
            return RenewalTurn::Unavailable;
        };
        let token = uuid::Uuid::new_v4().to_string();
        let mut conn = store.conn();
        let taken: Option<Option<String>> = store
            .run(
                "renewal_lock",
                redis::cmd("SET")
                    .arg(lock_key(store, key))
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(lock_ttl.as_millis().max(1) as u64)
                    .query_async(&mut conn),
            )
            .await;
        match taken {
            Some(Some(_)) => RenewalTurn::Renew(RenewalLease {
                store: store.clone(),
                key: *key,
                token,
            }),
            Some(None) => RenewalTurn::Wait,
            None => RenewalTurn::Unavailable,
        }
    }

    /// Waits up to `max_wait` for another replica's result. `None` when the time is up, the
    /// lock disappeared without a result (that renewal failed), or Redis failed.
    pub async fn wait_for_renewal<T: DeserializeOwned>(
        &self,
        key: &Digest,
        max_wait: Duration,
    ) -> Option<T> {
        let Self::Redis(store) = self else {
            return None;
        };
        let deadline = Instant::now() + max_wait;
        let mut conn = store.conn();
        loop {
            let (sealed, locked): (Option<String>, Option<String>) = store
                .run(
                    "renewal_wait",
                    redis::cmd("MGET")
                        .arg(result_key(store, key))
                        .arg(lock_key(store, key))
                        .query_async(&mut conn),
                )
                .await?;
            if let Some(sealed) = sealed {
                return open(store, &result_key(store, key), sealed);
            }
            if locked.is_none() || Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Runs `renew` once across replicas for this refresh-token digest: returns a result
    /// another replica left or is producing, or else runs `renew` under the lock and leaves
    /// its success for the others. Failures are not shared (the next replica tries itself).
    /// Without Redis, or when it fails, simply runs `renew`.
    ///
    /// Returns how the result was reached ([`RenewalRun`]).
    pub async fn renew_single_flight<T, E, Fut>(
        &self,
        key: &Digest,
        renew: impl FnOnce() -> Fut,
    ) -> (Result<T, E>, RenewalRun)
    where
        T: Serialize + DeserializeOwned,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        // A failed holder releases early; one that crashed holds until the lock expires.
        while started.elapsed() < RENEWAL_LOCK_TTL * 2 {
            if let Some(found) = self.renewal_result(key).await {
                return (Ok(found), RenewalRun::PickedUp);
            }
            match self.try_lock_renewal(key, RENEWAL_LOCK_TTL).await {
                RenewalTurn::Renew(lease) => {
                    // The holder before us may have finished between the look and the lock.
                    if let Some(found) = self.renewal_result(key).await {
                        lease.release().await;
                        return (Ok(found), RenewalRun::PickedUp);
                    }
                    let result = renew().await;
                    match &result {
                        Ok(tokens) => {
                            lease.complete(tokens, RENEWAL_RESULT_TTL).await;
                        }
                        Err(_) => lease.release().await,
                    }
                    return (result, RenewalRun::UnderLock);
                }
                RenewalTurn::Wait => {
                    if let Some(found) = self.wait_for_renewal(key, RENEWAL_LOCK_TTL).await {
                        return (Ok(found), RenewalRun::PickedUp);
                    }
                }
                RenewalTurn::Unavailable => break,
            }
        }
        (renew().await, RenewalRun::Alone)
    }
}

/// How [`SharedStore::renew_single_flight`] reached its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalRun {
    /// Another replica's result, left in the store or awaited there.
    PickedUp,
    /// This replica renewed while holding the lock: no other replica renewed at the same time.
    UnderLock,
    /// This replica renewed without the store (Redis unreachable, or the wait ran out):
    /// another replica may have renewed the same session meanwhile, unseen.
    Alone,
}

/// `Some(None)` for a miss or a value that does not open; `None` when Redis failed.
async fn read_result<T: DeserializeOwned>(store: &RedisStore, key: &Digest) -> Option<Option<T>> {
    let mut conn = store.conn();
    let names: Vec<String> = std::iter::once(result_key(store, key))
        .chain(previous_result_key(store, key))
        .collect();
    let sealed: Vec<Option<String>> = store
        .run(
            "renewal_result",
            redis::cmd("MGET").arg(&names).query_async(&mut conn),
        )
        .await?;
    Some(
        names
            .iter()
            .zip(sealed)
            .find_map(|(name, sealed)| open(store, name, sealed?)),
    )
}

/// The result in the slot called `name`; `None` (counted) when it does not open there.
fn open<T: DeserializeOwned>(store: &RedisStore, name: &str, sealed: String) -> Option<T> {
    let json = store.keys.open("renewal_result", name, sealed)?;
    serde_json::from_str(&json).ok()
}
