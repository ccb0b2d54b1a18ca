//! Revocation survives a Redis outage: while a replica cannot hear revocations it trusts
//! nothing it cached before, caches for at most `REDIS_OUTAGE_CACHE_TTL` and checks JWTs at
//! Salesforce; logouts made meanwhile are written when Redis returns, and read back by every
//! replica that (re)subscribes.

use super::*;

/// The outage bound (1 s by default) plus time for a request on a loaded machine.
const BOUND: Duration = Duration::from_millis(2500);

async fn refused_within(replicas: &Replicas, replica: usize, token: &str, instance: &str) {
    let started = Instant::now();
    while replicas.me(replica, token, instance).await != 401 {
        assert!(
            started.elapsed() < BOUND,
            "replica {replica} still admits a logged-out token: {}",
            &token[..20.min(token.len())]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_logout_during_a_redis_outage_holds_on_every_replica_within_the_bound_and_after() {
    let Some(mut redis) = RedisServer::start("outage_revocation") else {
        return;
    };
    let mut replicas = Replicas::start(&redis, 2).await;
    // Replica 1 has the issuer's keys cached, so before the outage it checks JWTs locally.
    let warm = replicas.emulator.issue_jwt(ALICE.0).expect("jwt");
    assert_eq!(
        replicas.me(1, &warm.access_token, &warm.instance_url).await,
        200
    );
    let opaque = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    let jwt = replicas.emulator.issue_jwt(ALICE.0).expect("jwt");
    for replica in 0..2 {
        for t in [&opaque, &jwt] {
            assert_eq!(
                replicas.me(replica, &t.access_token, &t.instance_url).await,
                200
            );
        }
    }

    redis.kill();
    replicas.wait_for_redis("down").await;
    // What replica 1 cached before the outage is not served: both tokens go to Salesforce.
    replicas.emulator.reset_stats();
    for t in [&opaque, &jwt] {
        assert_eq!(replicas.me(1, &t.access_token, &t.instance_url).await, 200);
    }
    assert_eq!(
        replicas.emulator.calls(Endpoint::UserInfo),
        2,
        "a verdict cached before the outage was served, or the JWT was checked locally"
    );

    // Logouts on replica 0 cannot be published; they are queued, and say so.
    for t in [&opaque, &jwt] {
        let answer = replicas
            .logout_answer(0, &t.access_token, &t.instance_url)
            .await;
        assert_eq!(answer["logged_out"], true, "{answer}");
        assert_eq!(answer["replicas"], "queued", "{answer}");
        assert!(
            answer["revoked"]
                .as_array()
                .is_some_and(|r| r.iter().any(|k| k == "access_token")),
            "revoked at Salesforce: {answer}"
        );
    }
    for t in [&opaque, &jwt] {
        refused_within(&replicas, 1, &t.access_token, &t.instance_url).await;
    }
    // Still degraded for as long as the outage lasts.
    for replica in 0..2 {
        let ready = replicas.readyz(replica).await;
        assert_eq!(ready["status"], "degraded", "{ready}");
        assert_eq!(ready["redis"]["status"], "down", "{ready}");
    }

    redis.restart();
    replicas.wait_for_redis("up").await;
    // Replica 1 checks JWTs locally again, yet refuses the one logged out during the outage:
    // replica 0 wrote it when Redis returned and replica 1 read the log on catching up.
    for t in [&opaque, &jwt] {
        assert_eq!(replicas.me(1, &t.access_token, &t.instance_url).await, 401);
    }
    // So does a replica started after the outage, which never saw either token.
    let late = replicas.add_replica().await;
    replicas.wait_for_redis("up").await;
    replicas.emulator.reset_stats();
    for t in [&opaque, &jwt] {
        assert_eq!(
            replicas.me(late, &t.access_token, &t.instance_url).await,
            401
        );
    }
    assert_eq!(
        replicas.emulator.calls(Endpoint::UserInfo),
        0,
        "refused from the revocation log, without asking Salesforce"
    );
}

/// A Redis that comes back empty (restarted without persistence, flushed, replaced) has lost
/// the revocation log. The replicas that held the revocations write them back when they
/// reconnect, so a replica started afterwards still refuses a JWT logged out before, which
/// its own local check would otherwise admit until the token's `exp`.
#[tokio::test]
async fn revocations_survive_a_redis_that_comes_back_empty() {
    let Some(mut redis) = RedisServer::start("revocation_log_lost") else {
        return;
    };
    let mut replicas = Replicas::start(&redis, 2).await;
    let jwt = replicas.emulator.issue_jwt(ALICE.0).expect("jwt");
    let kept = replicas.emulator.issue_jwt(ALICE.0).expect("jwt");
    for replica in 0..2 {
        assert_eq!(
            replicas
                .me(replica, &jwt.access_token, &jwt.instance_url)
                .await,
            200
        );
    }
    let answer = replicas
        .logout_answer(0, &jwt.access_token, &jwt.instance_url)
        .await;
    assert_eq!(answer["replicas"], "published", "{answer}");
    refused_within(&replicas, 1, &jwt.access_token, &jwt.instance_url).await;

    // Redis comes back with nothing: no log, no tombstones.
    redis.restart();
    replicas.wait_for_redis("up").await;
    let log_entries: u64 = redis::cmd("ZCARD")
        .arg("sfgate:revocation-log")
        .query(&mut redis.connection())
        .expect("ZCARD");
    assert!(log_entries >= 1, "the revocation log was not written back");

    // A replica started now reads the log. Once it has the issuer's keys and the user's
    // profile (from a token never logged out), it checks JWTs locally: only the log tells it
    // of the logout.
    let late = replicas.add_replica().await;
    replicas.wait_for_redis("up").await;
    assert_eq!(
        replicas
            .me(late, &kept.access_token, &kept.instance_url)
            .await,
        200,
        "a token never logged out passes"
    );
    replicas.emulator.reset_stats();
    assert_eq!(
        replicas
            .me(late, &jwt.access_token, &jwt.instance_url)
            .await,
        401,
        "a replica started after Redis lost its data admits a JWT logged out before"
    );
    assert_eq!(
        replicas.emulator.calls(Endpoint::UserInfo),
        0,
        "refused from the written-back log, not by asking Salesforce"
    );
}
