//! Whether Redis may drop sfgate's keys to make room.
//!
//! A Redis with a memory limit and an evicting `maxmemory-policy` deletes keys when it is full,
//! and sfgate's include what must not vanish before its time: the tombstone of a logged-out
//! token (what refuses it once a replica's in-memory mark of the logout was dropped to make
//! room), used login states (a replayed callback) and renewal locks. The `volatile-*` policies
//! pick exactly those, since they carry expiry times. Many managed Redis services default to
//! `volatile-lru`; Heroku Key-Value Store defaults to `noeviction`. sfgate cannot change the
//! setting (managed services often refuse `CONFIG`), so it reads it (`INFO memory`) each time it
//! subscribes and says so: a warning, and `sfgate_redis_may_evict`.

use super::redis_store::RedisStore;

/// The policy, when Redis may evict: a memory limit is set (0 is none) and the policy is not
/// `noeviction`. `None` when it may not, or when `info` does not say.
pub(super) fn evicting_policy(info: &str) -> Option<&str> {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let limit: u64 = field("maxmemory")?.parse().ok()?;
    let policy = field("maxmemory_policy")?;
    (limit > 0 && policy != "noeviction").then_some(policy)
}

/// Reads the policy and reports it. A Redis that refuses `INFO` (renamed or disabled on some
/// managed services) or fails to answer is not a Redis failure here: nothing is reported, and
/// the replica's health is left as it was.
pub(super) async fn report(store: &RedisStore) {
    let mut conn = store.conn();
    let info = tokio::time::timeout(
        store.timeout,
        redis::cmd("INFO")
            .arg("memory")
            .query_async::<String>(&mut conn),
    )
    .await;
    let Ok(Ok(info)) = info else {
        tracing::debug!("could not read Redis's maxmemory-policy (INFO memory refused or late)");
        return;
    };
    let evicting = evicting_policy(&info);
    metrics::gauge!("sfgate_redis_may_evict").set(if evicting.is_some() { 1.0 } else { 0.0 });
    if let Some(policy) = evicting {
        tracing::warn!(
            maxmemory_policy = policy,
            "Redis may delete sfgate's keys when it is full (a memory limit with maxmemory-policy \
             {policy}): logged-out tokens' tombstones, used login states and renewal locks could \
             vanish before their time; set maxmemory-policy to noeviction (docs/scaling-out.md)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::evicting_policy;

    const INFO: &str = "# Memory\r\nused_memory:1034712\r\nmaxmemory:{limit}\r\n\
                        maxmemory_human:64.00M\r\nmaxmemory_policy:{policy}\r\n";

    fn info(limit: u64, policy: &str) -> String {
        INFO.replace("{limit}", &limit.to_string())
            .replace("{policy}", policy)
    }

    #[test]
    fn only_a_limit_with_an_evicting_policy_may_evict() {
        assert_eq!(
            evicting_policy(&info(67_108_864, "allkeys-lru")),
            Some("allkeys-lru")
        );
        assert_eq!(
            evicting_policy(&info(67_108_864, "volatile-lru")),
            Some("volatile-lru")
        );
        assert_eq!(evicting_policy(&info(67_108_864, "noeviction")), None);
        // No limit: nothing is ever evicted, whatever the policy says.
        assert_eq!(evicting_policy(&info(0, "allkeys-lru")), None);
        // `maxmemory_human` and `maxmemory_policy` share the prefix `maxmemory`.
        assert_eq!(evicting_policy("maxmemory_policy:allkeys-lru\r\n"), None);
        assert_eq!(evicting_policy(""), None);
    }
}
