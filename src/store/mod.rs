//! State the replicas share: in-process by default, Redis when `REDIS_URL` is set.
//!
//! sessions live in encrypted cookies, so any replica can serve any request; what one process
//! cannot know alone is what the others did: a logout, a login `state` already used, a token
//! already checked at Salesforce, a session renewal in flight. With Redis:
//!
//! - revocations reach every replica through pub/sub ([`revocation`]), marking the token's
//!   digest locally, so the cached hot path stays a local lookup;
//! - identity verdicts are a second cache level behind each replica's own ([`identity_cache`]);
//! - a login `state` is claimed with an atomic `SET NX PX` ([`login_state`]);
//! - session renewals take a short lock and leave an encrypted result for the others
//!   ([`renewal_lock`]).
//!
//! The rule every function here follows: **Redis trouble never lets a request through that
//! should be refused, and never takes sfgate down.** Every call is bounded by
//! `REDIS_TIMEOUT_MS`; a call that fails answers as if Redis had nothing to add, so the
//! caller falls back to its local guarantee, and the outage is logged once and shown on
//! `/readyz` ([`redis_health`]).
//!
//! And Redis is storage, not authority ([`keys`]): token-derived key names are keyed hashes
//! (HMAC-SHA256 under keys derived from `SESSION_SECRET`), and every value read back is sealed
//! with a key derived from it, bound to its key name. A value that does not open is a miss.
//! Nothing secret is stored in clear, and nothing planted in Redis is believed.

mod eviction_policy;
pub mod identity_cache;
mod keys;
pub mod login_state;
mod redis_health;
mod redis_store;
pub mod renewal_lock;
pub mod revocation;
mod revocation_cache;
mod sealed;
pub mod tombstones;

pub use identity_cache::SharedVerdict;
pub use redis_health::StoreStatus;
pub use redis_store::RedisStore;
pub use renewal_lock::{
    RenewalLease, RenewalRun, RenewalTurn, RENEWAL_LOCK_TTL, RENEWAL_RESULT_TTL,
};
pub use revocation::Shared;
pub use tombstones::{TombstoneFigures, Tombstones};

use crate::config::Config;
use std::sync::Arc;

/// A SHA-256 digest of a token, a login `state` or a refresh token. It never reaches Redis
/// as such: key names are keyed hashes of it, and revocations carry it sealed.
pub type Digest = [u8; 32];

/// Where shared state lives. Cheap to clone.
#[derive(Clone, Default)]
pub enum SharedStore {
    /// One process: every guarantee holds within this replica (sfgate without `REDIS_URL`).
    #[default]
    Local,
    /// Replicas share Redis; each call falls back to the local guarantee when Redis fails.
    Redis(Arc<RedisStore>),
}

/// Why the shared store could not be set up from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot set up the Redis client: {0}")]
    Client(String),
}

impl SharedStore {
    /// `Local` without `REDIS_URL`. With it, the client connects lazily and the revocation
    /// subscriber starts: an unreachable Redis at start-up is an outage like any other, not a
    /// reason to refuse to start. Must run inside the Tokio runtime.
    pub fn from_config(config: &Config) -> Result<Self, StoreError> {
        match &config.redis {
            None => Ok(Self::Local),
            Some(redis) => {
                let previous = config.session.previous_secret.as_ref().map(|s| s.expose());
                let store = RedisStore::connect(
                    redis,
                    config.session.secret.expose(),
                    previous,
                    config.cache.ttl,
                )?;
                revocation::spawn_subscriber(&store);
                Ok(Self::Redis(store))
            }
        }
    }

    /// How Redis is doing, for `/readyz`; `None` without Redis.
    pub fn status(&self) -> Option<StoreStatus> {
        match self {
            Self::Local => None,
            Self::Redis(store) => Some(store.health.status()),
        }
    }
}
