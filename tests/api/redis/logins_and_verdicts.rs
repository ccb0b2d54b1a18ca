//! Logins, logouts and identity verdicts shared across replicas, and what Redis holds.

use super::*;

#[tokio::test]
async fn a_login_started_on_one_replica_finishes_on_another_and_cannot_be_replayed_on_a_third() {
    let Some(redis) = RedisServer::start("login_across_replicas") else {
        return;
    };
    let replicas = Replicas::start(&redis, 3).await;
    let browser = browser_client();
    let (callback, login_cookie) = replicas.start_login(0, &browser).await;

    let finished = get_accepting(
        &browser,
        replicas.on_replica(&callback, 1),
        "application/json",
    )
    .await;
    let finished = expect_status_for(finished, 200, "replica B finishes A's login").await;
    assert!(set_cookies(finished.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
    let tokens_before = replicas.emulator.calls(Endpoint::Token);

    // The same state (and cookie) replayed on C, which has never seen it: Redis says used.
    let replayed = replicas
        .http
        .get(replicas.on_replica(&callback, 2))
        .header(COOKIE, &login_cookie)
        .header("accept", "application/json")
        .send()
        .await
        .expect("replay on C");
    let replayed = expect_status(replayed, 400).await;
    let body: serde_json::Value = replayed.json().await.expect("json");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("already completed")),
        "refused as a replay, not by Salesforce: {body}"
    );
    assert_eq!(
        replicas.emulator.calls(Endpoint::Token),
        tokens_before,
        "the replay never reached Salesforce"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_callbacks_with_one_state_on_two_replicas_let_exactly_one_through() {
    let Some(redis) = RedisServer::start("concurrent_callbacks_across_replicas") else {
        return;
    };
    let replicas = Replicas::start(&redis, 2).await;
    for round in 0..3 {
        let (callback, login_cookie) = replicas.start_login(0, &browser_client()).await;
        // A slow token endpoint would let the second callback reach Salesforce too, if both
        // passed the state check.
        replicas
            .emulator
            .set_fault_for(Endpoint::Token, Fault::Slow(Duration::from_millis(200)));
        let token_calls = replicas.emulator.calls(Endpoint::Token);
        let send = |replica: usize| {
            let url = replicas.on_replica(&callback, replica);
            let cookie = login_cookie.clone();
            tokio::spawn(async move {
                plain_client()
                    .get(url)
                    .header(COOKIE, cookie)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .expect("callback")
                    .status()
                    .as_u16()
            })
        };
        let (a, b) = (send(0), send(1));
        let mut statuses = vec![a.await.expect("task"), b.await.expect("task")];
        statuses.sort_unstable();
        assert_eq!(statuses, vec![200, 400], "round {round}");
        assert_eq!(
            replicas.emulator.calls(Endpoint::Token),
            token_calls + 1,
            "round {round}: the loser never reached Salesforce"
        );
    }
}

#[tokio::test]
async fn a_logout_on_one_replica_is_refused_by_the_others_within_a_second() {
    let Some(redis) = RedisServer::start("logout_everywhere") else {
        return;
    };
    let replicas = Replicas::start(&redis, 3).await;
    let t = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    // Every replica holds the token's verdict in its local cache.
    for replica in 0..3 {
        assert_eq!(
            replicas.me(replica, &t.access_token, &t.instance_url).await,
            200
        );
    }
    let userinfo_before = replicas.emulator.calls(Endpoint::UserInfo);

    assert_eq!(
        replicas.logout(0, &t.access_token, &t.instance_url).await,
        200
    );
    let logged_out = Instant::now();
    for replica in [1, 2] {
        loop {
            let status = replicas.me(replica, &t.access_token, &t.instance_url).await;
            if status == 401 {
                break;
            }
            assert_eq!(status, 200);
            assert!(
                logged_out.elapsed() < Duration::from_secs(1),
                "replica {replica} still accepts the token a second after logout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(logged_out.elapsed() < Duration::from_secs(1));
    assert_eq!(
        replicas.emulator.calls(Endpoint::UserInfo),
        userinfo_before,
        "refused from the revocation feed, not by asking Salesforce again"
    );
}

#[tokio::test]
async fn a_token_used_on_three_replicas_costs_one_userinfo_call() {
    let Some(redis) = RedisServer::start("shared_identity_cache") else {
        return;
    };
    let replicas = Replicas::start(&redis, 3).await;
    let t = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    replicas.emulator.reset_stats();
    let mut answers = Vec::new();
    for _round in 0..2 {
        for replica in 0..3 {
            let r = replicas
                .http
                .get(replicas.url(replica, "/api/me"))
                .bearer_auth(&t.access_token)
                .header("x-instance-url", &t.instance_url)
                .send()
                .await
                .expect("me");
            let r = expect_status_for(r, 200, format!("replica {replica}")).await;
            answers.push(r.json::<serde_json::Value>().await.expect("json"));
        }
    }
    assert_eq!(replicas.emulator.calls(Endpoint::UserInfo), 1);
    // The identity read from the shared level is the one Salesforce gave the first replica.
    assert_eq!(answers[0]["username"], ALICE.0);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
}

/// A JWT access token checked against a cached key costs Salesforce nothing, so its verdict
/// skips the shared level: no Redis round trip on the first request with a new JWT. Opaque
/// tokens still share theirs.
#[tokio::test]
async fn locally_checked_jwts_skip_the_shared_level_opaque_tokens_use_it() {
    let Some(redis) = RedisServer::start("jwt_skips_shared_level") else {
        return;
    };
    let replicas = Replicas::start(&redis, 2).await;
    let identity_keys = || {
        dump(&redis)
            .into_iter()
            .filter(|(k, _)| k.starts_with("sfgate:identity:"))
            .count()
    };
    // Each replica's first JWT fetches the issuer's keys (a call at Salesforce), so its
    // verdict is shared. One JWT per replica: a replica that found another's verdict in Redis
    // would not have fetched the keys.
    for replica in 0..2 {
        let warm = replicas.emulator.issue_jwt(ALICE.0).expect("jwt");
        assert_eq!(
            replicas
                .me(replica, &warm.access_token, &warm.instance_url)
                .await,
            200
        );
    }
    let before = identity_keys();
    // With the keys cached on both replicas, further JWTs are checked locally everywhere.
    for _ in 0..3 {
        let jwt = replicas.emulator.issue_jwt(ALICE.0).expect("jwt");
        for replica in 0..2 {
            assert_eq!(
                replicas
                    .me(replica, &jwt.access_token, &jwt.instance_url)
                    .await,
                200
            );
        }
    }
    assert_eq!(
        identity_keys(),
        before,
        "a locally checked JWT reached Redis"
    );

    let opaque = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    assert_eq!(
        replicas
            .me(0, &opaque.access_token, &opaque.instance_url)
            .await,
        200
    );
    assert_eq!(
        identity_keys(),
        before + 1,
        "an opaque token's verdict is shared"
    );
}

#[tokio::test]
async fn a_verdict_from_the_shared_level_is_not_kept_longer_than_its_ttl() {
    let Some(redis) = RedisServer::start("shared_verdict_ttl") else {
        return;
    };
    let replicas = Replicas::start_with(&redis, 2, &[("IDENTITY_CACHE_TTL", "3")]).await;
    let t = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    replicas.emulator.reset_stats();
    let first = Instant::now();
    assert_eq!(replicas.me(0, &t.access_token, &t.instance_url).await, 200);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // B takes A's verdict with about a second left...
    assert_eq!(replicas.me(1, &t.access_token, &t.instance_url).await, 200);
    assert_eq!(replicas.emulator.calls(Endpoint::UserInfo), 1);
    assert!(
        first.elapsed() < Duration::from_millis(2900),
        "too slow to tell"
    );
    // ...and asks Salesforce again once the verdict's 3 s are over, not 3 s after it took it.
    tokio::time::sleep(Duration::from_millis(3100).saturating_sub(first.elapsed())).await;
    assert_eq!(replicas.me(1, &t.access_token, &t.instance_url).await, 200);
    assert_eq!(replicas.emulator.calls(Endpoint::UserInfo), 2);
}

#[tokio::test]
async fn nothing_secret_is_stored_in_redis_in_clear() {
    let Some(redis) = RedisServer::start("nothing_secret_in_redis") else {
        return;
    };
    let replicas = Replicas::start(&redis, 2).await;
    let browser = browser_client();
    let (callback, login_cookie) = replicas.start_login(0, &browser).await;
    let code = reqwest::Url::parse(&callback)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let state = reqwest::Url::parse(&callback)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let finished = get_accepting(
        &browser,
        replicas.on_replica(&callback, 1),
        "application/json",
    )
    .await;
    let finished = expect_status(finished, 200).await;
    let tokens: serde_json::Value = finished.json().await.expect("token json");
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let instance = tokens["instance_url"]
        .as_str()
        .expect("instance")
        .to_string();
    assert_eq!(replicas.me(0, &access, &instance).await, 200);
    // A renewal result passes through Redis too (sealed).
    let store = ready_store_for(&redis).await;
    let key = [7u8; 32];
    let RenewalTurn::Renew(lease) = store.try_lock_renewal(&key, Duration::from_secs(5)).await
    else {
        panic!("the lock is free");
    };
    let renewed = Renewed {
        access_token: access.clone(),
        refresh_token: refresh.clone(),
    };
    assert!(lease.complete(&renewed, Duration::from_secs(5)).await);
    // A JWT, checked and logged out too (its revocation goes to the revocation log).
    let jwt = replicas.emulator.issue_jwt(ALICE.0).expect("jwt");
    assert_eq!(
        replicas.me(1, &jwt.access_token, &jwt.instance_url).await,
        200
    );
    // Nor may any of them appear as an unkeyed digest, which a reader of Redis could test
    // guesses against: SHA-256 of the value, or of instance and token as verdicts are keyed.
    use aws_lc_rs::digest::{self, SHA256};
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    let keyed_like_verdicts = |instance: &str, token: &str| {
        let mut hasher = digest::Context::new(&SHA256);
        hasher.update(instance.as_bytes());
        hasher.update(&[0u8]);
        hasher.update(token.as_bytes());
        hex(hasher.finish().as_ref())
    };
    let mut secrets: Vec<String> = [
        access.as_str(),
        refresh.as_str(),
        code.as_str(),
        state.as_str(),
        login_cookie.as_str(),
        jwt.access_token.as_str(),
    ]
    .iter()
    .flat_map(|s| {
        [
            s.to_string(),
            hex(digest::digest(&SHA256, s.as_bytes()).as_ref()),
        ]
    })
    .collect();
    secrets.push(keyed_like_verdicts(&instance, &access));
    secrets.push(keyed_like_verdicts(&jwt.instance_url, &jwt.access_token));
    let during = dump(&redis);
    assert!(
        during.len() >= 3,
        "state, verdict and renewal result are there: {during:?}"
    );
    assert_eq!(replicas.logout(1, &access, &instance).await, 200);
    assert_eq!(
        replicas
            .logout(0, &jwt.access_token, &jwt.instance_url)
            .await,
        200
    );
    let after = dump(&redis);
    assert!(
        after.iter().any(|(k, _)| k == "sfgate:revocation-log"),
        "{after:?}"
    );
    for (key, value) in during.iter().chain(after.iter()) {
        assert!(key.starts_with("sfgate:"), "{key}");
        for secret in &secrets {
            assert!(
                !key.contains(secret.as_str()) && !value.contains(secret.as_str()),
                "a secret, or its plain digest, is stored under {key}"
            );
        }
    }
}
