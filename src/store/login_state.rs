//! Login `state` values are single-use: a callback replayed with a state already used is
//! refused before it reaches Salesforce. Within a replica an atomic insert into the local
//! set decides; with Redis, an atomic `SET NX PX` under the state's digest decides across
//! replicas. If Redis fails, the local decision stands (the guarantee of one replica).
//!
//! The key is a keyed hash of the state's digest (see `keys.rs`); during a rotation of
//! `SESSION_SECRET` the state is claimed under both secrets' names, so replicas on either
//! secret see each other's claims.

use super::keys::Purpose;
use super::{Digest, SharedStore};
use std::time::Duration;

impl SharedStore {
    /// `true` if this is the first use of the state with this digest, here and (with Redis)
    /// on every replica. `ttl` is how long the login it belongs to can last.
    pub async fn claim_login_state(
        &self,
        local: &moka::sync::Cache<Digest, ()>,
        digest: Digest,
        ttl: Duration,
    ) -> bool {
        // `or_insert_with`, not `or_insert`: only the former coalesces concurrent callers
        // (moka's `or_insert` is a get followed by an insert, so two callers could both win).
        if !local.entry(digest).or_insert_with(|| ()).is_fresh() {
            return false;
        }
        let Self::Redis(store) = self else {
            return true;
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
        match claimed {
            Some(names) if names.iter().all(Option::is_some) => true,
            Some(_) => {
                metrics::counter!("sfgate_redis_state_replays_total").increment(1);
                false
            }
            // Redis unreachable: this replica's own check above is all there is.
            None => true,
        }
    }
}
