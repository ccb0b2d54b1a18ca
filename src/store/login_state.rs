//! Storage for used login `state` values across replicas: an atomic `SET NX PX` under the
//! state's digest. The rule that makes a state single-use (this replica first, then the
//! others) is [`crate::auth::login::ReplayGuard`]'s; this file only asks Redis.
//!
//! The key is a keyed hash of the state's digest (see `keys.rs`); during a rotation of
//! `SESSION_SECRET` the state is claimed under both secrets' names, so replicas on either
//! secret see each other's claims.

use super::keys::Purpose;
use super::{Digest, SharedStore};
use std::time::Duration;

impl SharedStore {
    /// Claims the state with this digest on every replica for `ttl`: `Some(true)` when no
    /// replica had claimed it, `Some(false)` when one had, `None` when there are no other
    /// replicas to ask (no `REDIS_URL`) or Redis could not be reached.
    pub async fn claim_login_state(&self, digest: Digest, ttl: Duration) -> Option<bool> {
        let Self::Redis(store) = self else {
            return None;
        };
        let mut conn = store.conn();
        let mut pipe = redis::pipe();
        for keys in store.keys.all() {
            pipe.cmd("SET")
                .arg(keys.name(Purpose::LoginState, &digest))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64);
        }
        let claimed: Option<Vec<Option<String>>> =
            store.run("login_state", pipe.query_async(&mut conn)).await;
        let first = claimed?.iter().all(Option::is_some);
        if !first {
            metrics::counter!("sfgate_redis_state_replays_total").increment(1);
        }
        Some(first)
    }
}
