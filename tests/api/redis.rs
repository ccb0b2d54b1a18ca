//! Many replicas behave as one: three gateways in this process, each with its own state, share
//! `SESSION_SECRET`, one emulator and a real `redis-server` started by the test. Also the
//! renewal single-flight primitives (src/store/renewal_lock.rs), driven directly against Redis.
//!
//! Without `redis-server` installed the tests print why they were skipped; with `CI=true` they
//! fail instead (see tests/common/redis_server.rs).

use crate::common::redis_server::RedisServer;
use crate::common::*;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde::{Deserialize, Serialize};
use sfgate::config::Config;
use sfgate::salesforce::emulator::{Emulator, EmulatorConfig, EmulatorHandle, Endpoint, Fault};
use sfgate::startup::{spawn, RunningGateway};
use sfgate::store::{RenewalTurn, SharedStore};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Generous: two cores are shared by many builds while these run.
const PATIENCE: Duration = Duration::from_secs(15);

struct Replicas {
    emulator: EmulatorHandle,
    gateways: Vec<RunningGateway>,
    http: reqwest::Client,
}

impl Replicas {
    /// `n` gateways sharing everything a Heroku app's dynos share, with `REDIS_URL` set.
    async fn start(redis: &RedisServer, n: usize) -> Self {
        Self::start_with(redis, n, &[]).await
    }

    async fn start_with(redis: &RedisServer, n: usize, extra: &[(&str, &str)]) -> Self {
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let first = listeners[0].local_addr().expect("addr");
        // One public address for all, as behind Heroku's router.
        let redirect_uri = format!("http://{first}/oauth2/callback");
        let mut emulator_config = EmulatorConfig::new(CLIENT_ID, CLIENT_SECRET);
        emulator_config.redirect_uris = vec![redirect_uri.clone()];
        let emulator = Emulator::start(emulator_config, 0).await.expect("emulator");
        let mut gateways = Vec::new();
        for listener in listeners {
            let mut env = redis_env(&emulator.base_url(), &redirect_uri, &redis.url());
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let config = Config::from_map(&env).expect("valid config");
            gateways.push(spawn(config, listener).await.expect("gateway"));
        }
        let replicas = Self {
            emulator,
            gateways,
            http: plain_client(),
        };
        replicas.wait_for_redis("up").await;
        replicas
    }

    fn url(&self, replica: usize, path: &str) -> String {
        format!("{}{}", self.gateways[replica].base_url(), path)
    }

    async fn readyz(&self, replica: usize) -> serde_json::Value {
        self.http
            .get(self.url(replica, "/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json")
    }

    /// Waits until every replica's `/readyz` reports Redis as `status`.
    async fn wait_for_redis(&self, status: &str) {
        let deadline = Instant::now() + PATIENCE;
        for replica in 0..self.gateways.len() {
            loop {
                let ready = self.readyz(replica).await;
                if ready["redis"]["status"] == status {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "replica {replica} never reported redis {status}: {ready}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    async fn me(&self, replica: usize, token: &str, instance: &str) -> reqwest::StatusCode {
        self.http
            .get(self.url(replica, "/api/me"))
            .bearer_auth(token)
            .header("x-instance-url", instance)
            .send()
            .await
            .expect("me")
            .status()
    }

    /// An API logout; returns its status after checking that it says logged out.
    async fn logout(&self, replica: usize, token: &str, instance: &str) -> reqwest::StatusCode {
        let r = self
            .http
            .post(self.url(replica, "/oauth2/logout"))
            .bearer_auth(token)
            .header("x-instance-url", instance)
            .send()
            .await
            .expect("logout");
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("logout json");
        assert_eq!(body["logged_out"], true, "{body}");
        status
    }

    /// Starts a login on `replica` and signs in at the emulator. Returns the callback URL
    /// Salesforce sent the browser to and the login cookie (`name=value`) it carries.
    async fn start_login(&self, replica: usize, browser: &reqwest::Client) -> (String, String) {
        let start = browser
            .get(self.url(replica, "/oauth2/authorize"))
            .send()
            .await
            .expect("authorize");
        let start = expect_status(start, 302).await;
        let login_cookie = start
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("sfgate_login="))
            .and_then(|c| c.split(';').next())
            .expect("login cookie")
            .to_string();
        let to_salesforce = location(start.headers());
        let url = reqwest::Url::parse(&to_salesforce).expect("url");
        let mut form: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        form.push(("username".into(), ALICE.0.into()));
        form.push(("password".into(), ALICE.1.into()));
        form.push(("action".into(), "allow".into()));
        let answer = browser
            .post(format!(
                "{}/services/oauth2/authorize",
                self.emulator.base_url()
            ))
            .form(&form)
            .send()
            .await
            .expect("emulator login");
        let answer = expect_status(answer, 302).await;
        (location(answer.headers()), login_cookie)
    }

    /// The same callback URL, sent to another replica.
    fn on_replica(&self, callback: &str, replica: usize) -> String {
        callback.replacen(
            &self.gateways[0].base_url(),
            &self.gateways[replica].base_url(),
            1,
        )
    }
}

fn redis_env(emulator: &str, redirect_uri: &str, redis_url: &str) -> HashMap<String, String> {
    let mut env = base_env(emulator, redirect_uri);
    env.insert("REDIS_URL".into(), redis_url.into());
    env
}

/// Every key and string value in the Redis database.
fn dump(redis: &RedisServer) -> Vec<(String, String)> {
    let mut conn = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("keys");
    keys.into_iter()
        .map(|k| {
            let v: Option<String> = redis::cmd("GET").arg(&k).query(&mut conn).unwrap_or(None);
            (k, v.unwrap_or_default())
        })
        .collect()
}

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
    let secrets = [
        access.as_str(),
        refresh.as_str(),
        code.as_str(),
        state.as_str(),
        login_cookie.as_str(),
    ];
    let during = dump(&redis);
    assert!(
        during.len() >= 3,
        "state, verdict and renewal result are there: {during:?}"
    );
    assert_eq!(replicas.logout(1, &access, &instance).await, 200);
    let after = dump(&redis);
    for (key, value) in during.iter().chain(after.iter()) {
        assert!(key.starts_with("sfgate:"), "{key}");
        for secret in secrets {
            assert!(
                !key.contains(secret) && !value.contains(secret),
                "a secret is stored in clear under {key}"
            );
        }
    }
}

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

/// The `sfgate_session=…` pair a response sets, if it sets one.
fn session_pair(headers: &reqwest::header::HeaderMap) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;"))
        .and_then(|c| c.split(';').next().map(str::to_string))
}

#[tokio::test]
async fn an_expired_session_hit_on_all_replicas_at_once_costs_one_refresh_under_rotation() {
    let Some(redis) = RedisServer::start("renewal_across_replicas") else {
        return;
    };
    // No identity cache, so the token the emulator expires is seen as expired at once.
    let replicas = Replicas::start_with(&redis, 3, &[("IDENTITY_CACHE_TTL", "0")]).await;
    replicas.emulator.set_refresh_token_rotation(true);
    let (callback, login_cookie) = replicas.start_login(0, &browser_client()).await;
    let r = replicas
        .http
        .get(&callback)
        .header(COOKIE, &login_cookie)
        .header("accept", "text/html")
        .send()
        .await
        .expect("callback");
    let r = expect_status_for(r, 303, "the callback redirects").await;
    let cookie = session_pair(r.headers()).expect("session cookie");
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

// --- Renewal single-flight primitives (for the renewal module to wire in) ---------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Renewed {
    access_token: String,
    refresh_token: String,
}

/// A store as a replica builds it; each call is another replica (its own connections).
fn store_for(redis: &RedisServer) -> SharedStore {
    let env = redis_env(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/oauth2/callback",
        &redis.url(),
    );
    let config = Config::from_map(&env).expect("config");
    SharedStore::from_config(&config).expect("store")
}

/// A store that is connected and subscribed, as a replica is when it reports ready.
async fn ready_store_for(redis: &RedisServer) -> SharedStore {
    let store = store_for(redis);
    wait_until_up(&store).await;
    store
}

/// As a replica does before it reports ready: connected and subscribed.
async fn wait_until_up(store: &SharedStore) {
    let deadline = Instant::now() + PATIENCE;
    while !store.status().is_some_and(|s| s.is_up()) {
        assert!(Instant::now() < deadline, "never up: {:?}", store.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

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
        let (result, renewed_here) = task.await.expect("task");
        assert_eq!(result.expect("renewed").refresh_token, "rotated-refresh");
        ran += u64::from(renewed_here);
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
    let (result, renewed_here) = store
        .renew_single_flight(&[3u8; 32], || async {
            Ok::<_, String>(Renewed {
                access_token: "local".into(),
                refresh_token: "local-r".into(),
            })
        })
        .await;
    assert!(renewed_here);
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
