//! Redis going away and coming back; one refresh for a session expired on every replica.

use super::*;

#[tokio::test]
async fn replicas_keep_serving_while_redis_is_down_and_share_again_when_it_returns() {
    let Some(mut redis) = RedisServer::start("redis_outage") else {
        return;
    };
    let replicas = Replicas::start(&redis, 3).await;
    let t = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    for replica in 0..3 {
        assert_eq!(
            replicas.me(replica, &t.access_token, &t.instance_url).await,
            200
        );
    }

    redis.kill();
    replicas.wait_for_redis("down").await;
    for replica in 0..3 {
        let ready = replicas.readyz(replica).await;
        assert_eq!(ready["status"], "degraded", "{ready}");
        assert!(ready["redis"]["error"].is_string(), "says why: {ready}");
        // Cached tokens still pass, new ones are still checked at Salesforce, and fast.
        let started = Instant::now();
        assert_eq!(
            replicas.me(replica, &t.access_token, &t.instance_url).await,
            200
        );
        let fresh = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
        assert_eq!(
            replicas
                .me(replica, &fresh.access_token, &fresh.instance_url)
                .await,
            200
        );
        assert_eq!(
            replicas
                .me(replica, "00D5j00000AcMe1!bogus", &t.instance_url)
                .await,
            401
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // A logout during the outage holds on its replica at once.
    assert_eq!(
        replicas.logout(0, &t.access_token, &t.instance_url).await,
        200
    );
    assert_eq!(replicas.me(0, &t.access_token, &t.instance_url).await, 401);
    let scrape = replicas
        .http
        .get(replicas.url(0, "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metric(&scrape, "sfgate_redis_outages_total", &[]) >= 1.0);
    assert!(metric(&scrape, "sfgate_redis_errors_total", &[]) >= 1.0);

    redis.restart();
    replicas.wait_for_redis("up").await;
    for replica in 0..3 {
        assert_eq!(replicas.readyz(replica).await["status"], "ready");
        // B and C missed the revocation while Redis was away: they dropped their local
        // verdicts on resubscribing, and Salesforce (which revoked it) refuses the token.
        assert_eq!(
            replicas.me(replica, &t.access_token, &t.instance_url).await,
            401,
            "replica {replica}"
        );
    }
    // The shared guarantees are back: one userinfo call for a new token on all three...
    let t2 = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    let before = replicas.emulator.calls(Endpoint::UserInfo);
    for replica in 0..3 {
        assert_eq!(
            replicas
                .me(replica, &t2.access_token, &t2.instance_url)
                .await,
            200
        );
    }
    assert_eq!(replicas.emulator.calls(Endpoint::UserInfo), before + 1);
    // ...and a logout on C reaches A and B within a second.
    assert_eq!(
        replicas.logout(2, &t2.access_token, &t2.instance_url).await,
        200
    );
    let logged_out = Instant::now();
    for replica in [0, 1] {
        while replicas
            .me(replica, &t2.access_token, &t2.instance_url)
            .await
            != 401
        {
            assert!(logged_out.elapsed() < Duration::from_secs(1));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn an_expired_session_hit_on_all_replicas_at_once_costs_one_refresh_under_rotation() {
    let Some(redis) = RedisServer::start("renewal_across_replicas") else {
        return;
    };
    // No identity cache, so the token the emulator expires is seen as expired at once.
    let replicas = Replicas::start_with(&redis, 3, &[("IDENTITY_CACHE_TTL", "0")]).await;
    replicas.emulator.set_refresh_token_rotation(true);
    let cookie = replicas.log_in(0).await;
    replicas.emulator.expire_access_tokens();
    // A slow token endpoint keeps the renewal in flight while the others arrive.
    replicas
        .emulator
        .set_fault_for(Endpoint::Token, Fault::Slow(Duration::from_millis(300)));
    let before = replicas.emulator.refresh_calls();
    let requests = (0..9).map(|i| {
        replicas
            .http
            .get(replicas.url(i % 3, "/api/me"))
            .header(COOKIE, &cookie)
            .send()
    });
    let answers = futures_util::future::join_all(requests).await;
    let mut renewed = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.expect("me");
        let answer =
            expect_status_for(answer, 200, format!("request {i} on replica {}", i % 3)).await;
        renewed.extend(session_pair(answer.headers()));
    }
    assert_eq!(
        replicas.emulator.refresh_calls(),
        before + 1,
        "one refresh call for the session across the replicas"
    );
    // Every renewed cookie works on every replica without another refresh.
    assert!(!renewed.is_empty());
    for (i, cookie) in renewed.iter().enumerate() {
        let r = replicas
            .http
            .get(replicas.url((i + 1) % 3, "/api/me"))
            .header(COOKIE, cookie)
            .send()
            .await
            .expect("me");
        expect_status_for(r, 200, format!("renewed cookie {i}")).await;
    }
    assert_eq!(replicas.emulator.refresh_calls(), before + 1);
}

#[tokio::test]
async fn a_session_renewed_on_another_replica_while_redis_is_down_is_not_ended() {
    let Some(mut redis) = RedisServer::start("renewal_during_outage") else {
        return;
    };
    // No identity cache, so the token the emulator expires is seen as expired at once.
    let replicas = Replicas::start_with(&redis, 2, &[("IDENTITY_CACHE_TTL", "0")]).await;
    replicas.emulator.set_refresh_token_rotation(true);
    let cookie = replicas.log_in(0).await;

    redis.kill();
    replicas.wait_for_redis("down").await;
    replicas.emulator.expire_access_tokens();
    // Replica A renews the session; rotation spends its refresh token, and the result cannot
    // reach B through Redis.
    let r = replicas.get_with_cookie(0, "/api/me", &cookie).await;
    let r = expect_status_for(r, 200, "A renews").await;
    let renewed = session_pair(r.headers()).expect("A's renewed cookie");
    // The same (old) cookie on B: Salesforce refuses the spent refresh token. That is not
    // the end of the session while B cannot know whether A renewed it: 503, retry.
    let r = replicas.get_with_cookie(1, "/api/me", &cookie).await;
    assert_eq!(r.status(), 503, "not 401: the session may live on");
    assert!(
        r.headers().get("retry-after").is_some(),
        "says when to retry"
    );
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("sfgate_session=") && v.contains("Max-Age=0"));
    assert!(!cleared, "the session cookie is not cleared");
    // A retry with the old cookie that reaches A gets A's renewal; A's cookie works on B.
    let r = replicas.get_with_cookie(0, "/api/me", &cookie).await;
    expect_status_for(r, 200, "the retry on A").await;
    let r = replicas.get_with_cookie(1, "/api/me", &renewed).await;
    expect_status_for(r, 200, "A's renewed cookie on B").await;

    // Once Redis is back, a refusal B can coordinate is final: the session ends.
    redis.restart();
    replicas.wait_for_redis("up").await;
    let r = replicas.get_with_cookie(1, "/api/me", &cookie).await;
    assert_eq!(
        r.status(),
        401,
        "the spent refresh token ends that cookie's session"
    );
}
