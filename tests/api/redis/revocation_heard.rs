//! What a replica does when it hears that a token was revoked on another: no verdict it cached
//! or is fetching for that token is served afterwards, however long it holds the revocation.
//!
//! A flood of revocations beyond what each replica holds (`REDIS_REVOCATIONS_MAX`) makes them
//! drop the ones nearest their end. A token whose revocation was dropped stays refused on a
//! replica that had cached it before hearing of the revocation: hearing it forgot the cached
//! verdict, and with a revocation still in force forgotten, JWTs are no longer checked locally.

use super::*;

#[tokio::test]
async fn a_token_revoked_elsewhere_stays_refused_when_a_flood_drops_its_revocation() {
    let Some(redis) = RedisServer::start("revocation_flood") else {
        return;
    };
    // One revocation per shard of each replica's set: the next one landing in a shard drops
    // the one before.
    let replicas = Replicas::start_with(&redis, 2, &[("REDIS_REVOCATIONS_MAX", "8")]).await;
    let emulator = &replicas.emulator;
    let opaque = emulator.issue_tokens(ALICE.0).expect("tokens");
    let jwt = emulator.issue_jwt(ALICE.0).expect("jwt");
    // Replica 1 caches both verdicts (the JWT checked locally, its issuer's keys fetched).
    for t in [&opaque, &jwt] {
        assert_eq!(replicas.me(1, &t.access_token, &t.instance_url).await, 200);
    }
    // Logged out on replica 0, revoked at Salesforce. Neither is presented to replica 1 again
    // until the end: a refusal there would drop its cached verdict by itself.
    for t in [&opaque, &jwt] {
        let answer = replicas
            .logout_answer(0, &t.access_token, &t.instance_url)
            .await;
        assert_eq!(answer["replicas"], "published", "{answer}");
        assert!(emulator.is_revoked(&t.access_token));
    }
    // Every later logout is remembered until after theirs (a day from its own logout).
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..128 {
        let other = emulator.issue_tokens(ALICE.0).expect("tokens");
        assert_eq!(
            replicas
                .logout(0, &other.access_token, &other.instance_url)
                .await,
            200
        );
    }
    // The channel is ordered: once replica 1 refuses a last logout that Salesforce did not
    // confirm (so only the revocation message can refuse it), it has heard the whole flood.
    emulator.set_fault_for(Endpoint::Revoke, Fault::ServerError);
    let last = emulator.issue_tokens(ALICE.0).expect("tokens");
    let answer = replicas
        .logout_answer(0, &last.access_token, &last.instance_url)
        .await;
    assert_eq!(answer["replicas"], "published", "{answer}");
    emulator.set_fault_for(Endpoint::Revoke, Fault::None);
    assert!(!emulator.is_revoked(&last.access_token));
    refused_once_heard(&replicas, &last).await;

    // With 130 revocations over 8 shards, one landed after each victim's in its shard (but
    // for a chance of 1 in 26 million each): replica 1 no longer holds their revocations in
    // memory. Neither is served from a verdict cached before its logout: both are checked
    // again, the JWT too (not locally while a dropped revocation would still be in force),
    // and refused by the revocation's own record in Redis, which no flood of others drops,
    // without asking Salesforce.
    let asked = emulator.calls(Endpoint::UserInfo);
    for t in [&opaque, &jwt] {
        assert_eq!(
            replicas.me(1, &t.access_token, &t.instance_url).await,
            401,
            "a verdict cached before the revocation was heard outlived its dropped mark"
        );
    }
    assert_eq!(emulator.calls(Endpoint::UserInfo), asked);
    // Tokens nobody logged out still pass.
    let fresh = emulator.issue_jwt(ALICE.0).expect("jwt");
    assert_eq!(
        replicas
            .me(1, &fresh.access_token, &fresh.instance_url)
            .await,
        200
    );
}

/// A check at Salesforce that started before the revocation was heard and answers after it
/// (the revocation failed at Salesforce, so Salesforce still says yes) neither admits the
/// request waiting for it nor leaves a verdict in the cache.
#[tokio::test]
async fn a_check_in_flight_when_the_revocation_is_heard_does_not_admit() {
    let Some(redis) = RedisServer::start("revocation_in_flight") else {
        return;
    };
    // Salesforce answers replica 1's check after 4 s, well within its timeout here and well
    // after replica 1 hears the revocation, however loaded the machine.
    let replicas = Arc::new(Replicas::start_with(&redis, 2, &[("SALESFORCE_TIMEOUT", "10")]).await);
    let emulator = &replicas.emulator;
    // Replica 1 has the issuer's keys, so the JWT below is checked there without a call.
    let warm = emulator.issue_jwt(ALICE.0).expect("jwt");
    assert_eq!(
        replicas.me(1, &warm.access_token, &warm.instance_url).await,
        200
    );
    let victim = emulator.issue_tokens(ALICE.0).expect("tokens");
    let sentinel = emulator.issue_jwt(ALICE.0).expect("jwt");
    emulator.reset_stats();
    emulator.set_fault_for(Endpoint::UserInfo, Fault::Slow(Duration::from_secs(4)));
    let in_flight = tokio::spawn({
        let replicas = replicas.clone();
        let victim = victim.clone();
        async move {
            replicas
                .me(1, &victim.access_token, &victim.instance_url)
                .await
        }
    });
    while emulator.calls(Endpoint::UserInfo) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Logged out on replica 0 while replica 1 waits for Salesforce; Salesforce fails the
    // revocation, so it will still say yes.
    emulator.set_fault_for(Endpoint::Revoke, Fault::ServerError);
    for t in [&victim, &sentinel] {
        let answer = replicas
            .logout_answer(0, &t.access_token, &t.instance_url)
            .await;
        assert_eq!(answer["replicas"], "published", "{answer}");
    }
    // The channel is ordered: once the sentinel (checked locally) is refused, replica 1 has
    // heard the victim's revocation too, before Salesforce answers.
    refused_once_heard(&replicas, &sentinel).await;
    assert!(
        !in_flight.is_finished(),
        "the check at Salesforce answered before the revocation was heard"
    );
    assert_eq!(
        in_flight.await.expect("request"),
        401,
        "admitted by a check that started before the revocation and answered after it"
    );
    emulator.set_fault_for(Endpoint::UserInfo, Fault::None);
    emulator.set_fault_for(Endpoint::Revoke, Fault::None);
    assert!(!emulator.is_revoked(&victim.access_token));
    assert_eq!(
        replicas
            .me(1, &victim.access_token, &victim.instance_url)
            .await,
        401
    );
}

/// Waits until replica 1 refuses `logged_out`, a token whose logout on replica 0 only the
/// revocation message can make it refuse (Salesforce did not confirm it, or it is checked
/// locally). The channel is ordered: every revocation published before it is heard too.
async fn refused_once_heard(replicas: &Replicas, logged_out: &sfgate_emulator::TokenGrant) {
    let started = Instant::now();
    while replicas
        .me(1, &logged_out.access_token, &logged_out.instance_url)
        .await
        != 401
    {
        assert!(started.elapsed() < PATIENCE, "replica 1 never heard");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
