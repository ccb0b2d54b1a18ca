//! A Redis that may delete sfgate's keys when full (a memory limit and an evicting
//! `maxmemory-policy`) is reported when a replica subscribes.

use super::*;
use crate::helpers::log_watch::{log_text, watch};

#[tokio::test]
async fn a_redis_that_may_evict_keys_is_reported() {
    watch();
    let Some(redis) = RedisServer::start("eviction_policy") else {
        return;
    };
    // A policy no other test sets, so the line below can only be this test's.
    let mut conn = redis.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("64mb")
        .query(&mut conn)
        .expect("maxmemory");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("volatile-random")
        .query(&mut conn)
        .expect("maxmemory-policy");
    let replicas = Replicas::start(&redis, 1).await;
    replicas.wait_for_redis("up").await;
    let started = Instant::now();
    while !log_text().lines().any(|line| {
        line.contains("WARN")
            && line.contains("maxmemory-policy volatile-random")
            && line.contains("set maxmemory-policy to noeviction")
    }) {
        assert!(
            started.elapsed() < PATIENCE,
            "no warning that Redis may evict sfgate's keys"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reported, not refused: the replica serves as usual.
    let t = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    assert_eq!(replicas.me(0, &t.access_token, &t.instance_url).await, 200);
}
