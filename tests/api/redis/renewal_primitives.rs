//! The renewal single-flight primitives, driven directly against Redis.

use super::*;

#[tokio::test]
async fn one_replica_renews_a_session_and_the_others_pick_up_its_result() {
    let Some(redis) = RedisServer::start("renewal_single_flight") else {
        return;
    };
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(ready_store_for(&redis).await);
    }
    let calls = Arc::new(AtomicU64::new(0));
    let key = [42u8; 32];
    let mut tasks = Vec::new();
    for store in stores {
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            store
                .renew_single_flight(&key, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // A token call takes a while; the others arrive meanwhile.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, String>(Renewed {
                        access_token: "new-access".into(),
                        refresh_token: "rotated-refresh".into(),
                    })
                })
                .await
        }));
    }
    let mut ran = 0;
    for task in tasks {
        let (result, run) = task.await.expect("task");
        assert_eq!(result.expect("renewed").refresh_token, "rotated-refresh");
        assert_ne!(
            run,
            RenewalRun::Alone,
            "Redis is up: every replica coordinates"
        );
        ran += u64::from(run == RenewalRun::UnderLock);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one refresh call in all");
    assert_eq!(ran, 1);
    // A late replica still gets the result while it is kept, without renewing.
    let late = ready_store_for(&redis).await;
    let found: Option<Renewed> = late.renewal_result(&key).await;
    assert_eq!(found.map(|r| r.access_token).as_deref(), Some("new-access"));
}

#[tokio::test]
async fn renewal_waiters_take_over_when_the_holder_fails_and_results_expire() {
    let Some(redis) = RedisServer::start("renewal_holder_fails") else {
        return;
    };
    let a = ready_store_for(&redis).await;
    let b = ready_store_for(&redis).await;
    let key = [1u8; 32];
    let RenewalTurn::Renew(lease) = a.try_lock_renewal(&key, Duration::from_secs(5)).await else {
        panic!("free lock");
    };
    assert!(matches!(
        b.try_lock_renewal(&key, Duration::from_secs(5)).await,
        RenewalTurn::Wait
    ));
    // The holder fails and releases: the waiter stops waiting at once, with nothing.
    let waiter = tokio::spawn({
        let b = b.clone();
        async move {
            let started = Instant::now();
            let found: Option<Renewed> = b.wait_for_renewal(&key, Duration::from_secs(10)).await;
            (found, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    lease.release().await;
    let (found, waited) = waiter.await.expect("waiter");
    assert!(found.is_none());
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // Then it may renew itself.
    let RenewalTurn::Renew(lease) = b.try_lock_renewal(&key, Duration::from_secs(5)).await else {
        panic!("released lock is free");
    };
    let renewed = Renewed {
        access_token: "a2".into(),
        refresh_token: "r2".into(),
    };
    assert!(lease.complete(&renewed, Duration::from_millis(300)).await);
    assert_eq!(a.renewal_result::<Renewed>(&key).await, Some(renewed));
    // The lock went with the completion; the result expires within its time.
    assert!(matches!(
        a.try_lock_renewal(&key, Duration::from_millis(200)).await,
        RenewalTurn::Renew(_)
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.renewal_result::<Renewed>(&key).await, None);
}

#[tokio::test]
async fn a_renewal_result_sealed_with_another_secret_or_altered_is_ignored() {
    let Some(redis) = RedisServer::start("renewal_sealed") else {
        return;
    };
    let ours = ready_store_for(&redis).await;
    let key = [9u8; 32];
    let RenewalTurn::Renew(lease) = ours.try_lock_renewal(&key, Duration::from_secs(5)).await
    else {
        panic!("free lock");
    };
    let renewed = Renewed {
        access_token: "secret-access".into(),
        refresh_token: "secret-refresh".into(),
    };
    assert!(lease.complete(&renewed, Duration::from_secs(5)).await);
    let mut env = redis_env(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/oauth2/callback",
        &redis.url(),
    );
    env.insert(
        "SESSION_SECRET".into(),
        "another-deployment-secret-0123456789-xyz".into(),
    );
    let theirs = SharedStore::from_config(&Config::from_map(&env).expect("config")).expect("store");
    wait_until_up(&theirs).await;
    assert_eq!(theirs.renewal_result::<Renewed>(&key).await, None);

    // Moved to another key, the sealed value does not open either (bound to its key).
    let mut conn = redis.connection();
    let (name, sealed) = dump(&redis)
        .into_iter()
        .find(|(k, _)| k.contains("renewal-result"))
        .expect("result stored");
    assert!(!sealed.contains("secret-"));
    let other = [10u8; 32];
    let other_name = name.replace(&"09".repeat(32), &"0a".repeat(32));
    let _: () = redis::cmd("SET")
        .arg(&other_name)
        .arg(&sealed)
        .query(&mut conn)
        .expect("set");
    assert_eq!(ours.renewal_result::<Renewed>(&other).await, None);
    assert_eq!(ours.renewal_result::<Renewed>(&key).await, Some(renewed));
}

#[tokio::test]
async fn renewals_run_locally_when_redis_is_unreachable() {
    let Some(mut redis) = RedisServer::start("renewal_without_redis") else {
        return;
    };
    let store = store_for(&redis);
    redis.kill();
    let started = Instant::now();
    let (result, run) = store
        .renew_single_flight(&[3u8; 32], || async {
            Ok::<_, String>(Renewed {
                access_token: "local".into(),
                refresh_token: "local-r".into(),
            })
        })
        .await;
    assert_eq!(run, RenewalRun::Alone, "renewed without the store");
    assert_eq!(result.expect("renewed").access_token, "local");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        store
            .try_lock_renewal(&[3u8; 32], Duration::from_secs(1))
            .await,
        RenewalTurn::Unavailable
    ));
}

#[tokio::test]
async fn a_self_signed_rediss_server_is_used_only_with_verification_turned_off() {
    let Some(redis) = RedisServer::start_tls("rediss_self_signed") else {
        return;
    };
    let with_verify_off = || {
        let mut env = redis_env(
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/oauth2/callback",
            &redis.url(),
        );
        env.insert("REDIS_TLS_VERIFY".into(), "false".into());
        SharedStore::from_config(&Config::from_map(&env).expect("config")).expect("store")
    };
    // Heroku's case: TLS with a certificate nobody vouches for, verification off.
    let (a, b) = (with_verify_off(), with_verify_off());
    let key = [5u8; 32];
    wait_until_up(&a).await;
    wait_until_up(&b).await;
    assert!(matches!(
        a.try_lock_renewal(&key, Duration::from_secs(5)).await,
        RenewalTurn::Renew(_)
    ));
    assert!(
        matches!(
            b.try_lock_renewal(&key, Duration::from_secs(5)).await,
            RenewalTurn::Wait
        ),
        "both replicas reach the same Redis over TLS"
    );
    // By default the certificate is checked, and this one is refused.
    let verifying = store_for(&redis);
    assert!(matches!(
        verifying
            .try_lock_renewal(&[6u8; 32], Duration::from_secs(5))
            .await,
        RenewalTurn::Unavailable
    ));
    assert_eq!(verifying.status().map(|s| s.status), Some("down"));
}
