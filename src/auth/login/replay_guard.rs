//! Login `state` values are single-use: a callback replayed with a state already used is
//! refused before it reaches Salesforce (the login cookie itself stays valid for
//! [`LOGIN_TTL`]). Within a replica an atomic insert into the local set decides; with Redis,
//! an atomic `SET NX PX` under the state's digest decides across replicas
//! ([`SharedStore::claim_login_state`]). If Redis fails, the local decision stands (the
//! guarantee of one replica).

use crate::auth::session::LOGIN_TTL;
use crate::store::{Digest, SharedStore};

/// How many used states one replica remembers (each for [`LOGIN_TTL`]).
const USED_STATES_MAX: u64 = 1_000_000;

/// The one place that decides whether a login `state` was used before.
pub struct ReplayGuard {
    /// Digests of states already used on this replica.
    used: moka::sync::Cache<Digest, ()>,
    /// What replicas share (`REDIS_URL`); `Local` keeps the guarantee in-process.
    store: SharedStore,
}

impl ReplayGuard {
    pub fn new(store: SharedStore) -> Self {
        Self {
            used: moka::sync::Cache::builder()
                .max_capacity(USED_STATES_MAX)
                .time_to_live(LOGIN_TTL)
                .build(),
            store,
        }
    }

    /// Marks `state` as used, atomically: of concurrent callbacks with the same state, exactly
    /// one gets `true`, here and (with Redis) on every replica.
    pub async fn claim(&self, state: &str) -> bool {
        let digest: Digest = crate::crypto::sha256(&[state.as_bytes()]);
        // `or_insert_with`, not `or_insert`: only the former coalesces concurrent callers
        // (moka's `or_insert` is a get followed by an insert, so two callers could both win).
        if !self.used.entry(digest).or_insert_with(|| ()).is_fresh() {
            return false;
        }
        // No other replica, or Redis unreachable: this replica's own check above is all there is.
        self.store
            .claim_login_state(digest, LOGIN_TTL)
            .await
            .unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_state_is_claimed_once_and_a_replay_is_refused() {
        let guard = ReplayGuard::new(SharedStore::Local);
        assert!(guard.claim("state-1").await);
        assert!(!guard.claim("state-1").await);
        assert!(
            guard.claim("state-2").await,
            "another state is not affected"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_concurrent_claims_of_one_state_exactly_one_wins() {
        let guard = Arc::new(ReplayGuard::new(SharedStore::Local));
        let claims: Vec<_> = (0..32)
            .map(|_| {
                let guard = guard.clone();
                tokio::spawn(async move { guard.claim("raced").await })
            })
            .collect();
        let mut won = 0;
        for claim in claims {
            won += usize::from(claim.await.expect("claim task"));
        }
        assert_eq!(won, 1);
    }
}
