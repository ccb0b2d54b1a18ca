//! Replicas: several gateways in this process sharing `SESSION_SECRET`, one emulator and a real
//! `redis-server`; and the shared store as each replica builds it.

use crate::common::redis_server::RedisServer;
use crate::common::*;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde::{Deserialize, Serialize};
use sfgate::config::Config;
use sfgate::startup::{spawn, RunningGateway};
use sfgate::store::SharedStore;
use sfgate_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Generous: two cores are shared by many builds while these run.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub struct Replicas {
    pub emulator: EmulatorHandle,
    pub gateways: Vec<RunningGateway>,
    pub http: reqwest::Client,
    /// The first replica's environment, for replicas added later.
    env: HashMap<String, String>,
}

impl Replicas {
    /// `n` gateways sharing everything a Heroku app's dynos share, with `REDIS_URL` set.
    pub async fn start(redis: &RedisServer, n: usize) -> Self {
        Self::start_with(redis, n, &[]).await
    }

    pub async fn start_with(redis: &RedisServer, n: usize, extra: &[(&str, &str)]) -> Self {
        Self::start_each(redis, &vec![extra; n]).await
    }

    /// One replica per entry of `extras`, each with its own extra settings.
    pub async fn start_each(redis: &RedisServer, extras: &[&[(&str, &str)]]) -> Self {
        let mut listeners = Vec::new();
        for _ in extras {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let first = listeners[0].local_addr().expect("addr");
        // One public address for all, as behind Heroku's router.
        let redirect_uri = format!("http://{first}/oauth2/callback");
        let mut emulator_config = EmulatorConfig::new(CLIENT_ID, CLIENT_SECRET);
        emulator_config.redirect_uris = vec![redirect_uri.clone()];
        let emulator = Emulator::start(emulator_config, 0).await.expect("emulator");
        let mut gateways = Vec::new();
        let mut first_env = None;
        for (listener, extra) in listeners.into_iter().zip(extras) {
            let mut env = redis_env(&emulator.base_url(), &redirect_uri, &redis.url());
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            first_env.get_or_insert_with(|| env.clone());
            let config = Config::from_map(&env).expect("valid config");
            gateways.push(spawn(config, listener).await.expect("gateway"));
        }
        let replicas = Self {
            emulator,
            gateways,
            http: plain_client(),
            env: first_env.unwrap_or_default(),
        };
        replicas.wait_for_redis("up").await;
        replicas
    }

    /// The first replica's configuration (what an operator's `sfgate` command would read).
    pub fn config(&self) -> Config {
        Config::from_map(&self.env).expect("valid config")
    }

    /// Starts one more replica configured as the first; returns its index.
    pub async fn add_replica(&mut self) -> usize {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let config = Config::from_map(&self.env).expect("valid config");
        self.gateways
            .push(spawn(config, listener).await.expect("gateway"));
        self.gateways.len() - 1
    }

    /// The JSON answer of an API logout on `replica`.
    pub async fn logout_answer(
        &self,
        replica: usize,
        token: &str,
        instance: &str,
    ) -> serde_json::Value {
        self.http
            .post(self.url(replica, "/oauth2/logout"))
            .bearer_auth(token)
            .header("x-instance-url", instance)
            .send()
            .await
            .expect("logout")
            .json()
            .await
            .expect("logout json")
    }

    pub fn url(&self, replica: usize, path: &str) -> String {
        format!("{}{}", self.gateways[replica].base_url(), path)
    }

    pub async fn readyz(&self, replica: usize) -> serde_json::Value {
        self.http
            // The prefixed path answers in both modes (gateway mode proxies `/readyz`).
            .get(self.url(replica, "/oauth2/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json")
    }

    /// Waits until every replica's `/readyz` reports Redis as `status`.
    pub async fn wait_for_redis(&self, status: &str) {
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

    pub async fn me(&self, replica: usize, token: &str, instance: &str) -> reqwest::StatusCode {
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
    pub async fn logout(&self, replica: usize, token: &str, instance: &str) -> reqwest::StatusCode {
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

    /// `GET path` on `replica` with a session cookie (`name=value`).
    pub async fn get_with_cookie(
        &self,
        replica: usize,
        path: &str,
        cookie: &str,
    ) -> reqwest::Response {
        self.http
            .get(self.url(replica, path))
            .header(COOKIE, cookie)
            .send()
            .await
            .expect("request with a session cookie")
    }

    /// A whole browser login through `replica`: the session cookie (`name=value`) it ends with.
    pub async fn log_in(&self, replica: usize) -> String {
        let (callback, login_cookie) = self.start_login(replica, &browser_client()).await;
        let r = self
            .http
            .get(&callback)
            .header(COOKIE, &login_cookie)
            .header("accept", "text/html")
            .send()
            .await
            .expect("callback");
        let r = expect_status_for(r, 303, "the callback redirects").await;
        session_pair(r.headers()).expect("session cookie")
    }

    /// Starts a login on `replica` and signs in at the emulator. Returns the callback URL
    /// Salesforce sent the browser to and the login cookie (`name=value`) it carries.
    pub async fn start_login(&self, replica: usize, browser: &reqwest::Client) -> (String, String) {
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
    pub fn on_replica(&self, callback: &str, replica: usize) -> String {
        callback.replacen(
            &self.gateways[0].base_url(),
            &self.gateways[replica].base_url(),
            1,
        )
    }
}

pub fn redis_env(emulator: &str, redirect_uri: &str, redis_url: &str) -> HashMap<String, String> {
    let mut env = base_env(emulator, redirect_uri);
    env.insert("REDIS_URL".into(), redis_url.into());
    env
}

/// Every key in the Redis database with its value: a string's value, or a sorted set's
/// members joined by newlines.
pub fn dump(redis: &RedisServer) -> Vec<(String, String)> {
    let mut conn = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("keys");
    keys.into_iter()
        .map(|k| {
            let kind: String = redis::cmd("TYPE").arg(&k).query(&mut conn).expect("type");
            let v = match kind.as_str() {
                "zset" => redis::cmd("ZRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .query::<Vec<String>>(&mut conn)
                    .expect("zrange")
                    .join("\n"),
                _ => redis::cmd("GET")
                    .arg(&k)
                    .query::<Option<String>>(&mut conn)
                    .unwrap_or(None)
                    .unwrap_or_default(),
            };
            (k, v)
        })
        .collect()
}

/// The names of the keys starting with `prefix`.
pub fn keys_like(redis: &RedisServer, prefix: &str) -> std::collections::BTreeSet<String> {
    dump(redis)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(prefix))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Renewed {
    pub access_token: String,
    pub refresh_token: String,
}

/// A store as a replica builds it; each call is another replica (its own connections).
pub fn store_for(redis: &RedisServer) -> SharedStore {
    let env = redis_env(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/oauth2/callback",
        &redis.url(),
    );
    let config = Config::from_map(&env).expect("config");
    SharedStore::from_config(&config).expect("store")
}

/// A store that is connected and subscribed, as a replica is when it reports ready.
pub async fn ready_store_for(redis: &RedisServer) -> SharedStore {
    let store = store_for(redis);
    wait_until_up(&store).await;
    store
}

/// As a replica does before it reports ready: connected and subscribed.
pub async fn wait_until_up(store: &SharedStore) {
    let deadline = Instant::now() + PATIENCE;
    while !store.status().is_some_and(|s| s.is_up()) {
        assert!(Instant::now() < deadline, "never up: {:?}", store.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
