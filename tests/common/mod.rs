//! One way to start what integration tests talk to: the real gateway on a random loopback
//! port and the Salesforce emulator on another, configured for each other.
#![allow(dead_code, unreachable_pub)]

// A real redis-server for the shared-state tests (tests/api/redis/).
pub mod log_capture;
pub mod raw_http;
pub mod redis_server;

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::redirect::Policy;
use sfgate::config::Config;
use sfgate::startup::{spawn, RunningGateway};
use sfgate_emulator::{Emulator, EmulatorConfig, EmulatorHandle, TokenGrant};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const ACME: &str = "00D5j00000AcMe1";
pub const GLOBEX: &str = "00D5j00000GlBx2";
pub const ALICE: (&str, &str) = ("alice@acme.example", "alice-demo-1");
pub const CAROL: (&str, &str) = ("carol@globex.example", "carol-demo-3");

pub struct TestApp {
    pub gateway: RunningGateway,
    pub emulator: EmulatorHandle,
    pub base: String,
    /// Follows no redirects, keeps no cookies: every step is asserted by the test.
    pub http: reqwest::Client,
}

pub fn plain_client() -> reqwest::Client {
    sfgate::crypto::install_tls_provider();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// A client with a cookie jar, as a browser has.
pub fn browser_client() -> reqwest::Client {
    sfgate::crypto::install_tls_provider();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

/// `SERVER_THREADS` for every gateway the tests start, from `SFGATE_TEST_SERVER_THREADS`
/// when set (`SFGATE_TEST_SERVER_THREADS=1 cargo test`), else the default (one per core): the
/// suite is run at 1, the default and 4.
pub fn test_server_threads() -> Option<String> {
    std::env::var("SFGATE_TEST_SERVER_THREADS").ok()
}

pub fn base_env(emulator_url: &str, redirect_uri: &str) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("SF_CLIENT_ID", CLIENT_ID),
        ("SF_CLIENT_SECRET", CLIENT_SECRET),
        ("SF_REDIRECT_URI", redirect_uri),
        ("SF_LOGIN_URL", emulator_url),
        ("SF_INSTANCE_ORIGINS", emulator_url),
        ("SF_ALLOWED_ORGS", ACME),
        ("SESSION_SECRET", SESSION_SECRET),
        ("SALESFORCE_TIMEOUT", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(threads) = test_server_threads() {
        env.insert("SERVER_THREADS".into(), threads);
    }
    env
}

/// How a test's gateway and emulator are set up, from [`TestApp::builder`]: the one way to
/// start a test app. The gateway's environment starts as [`base_env`] and every change applies
/// in the order given; emulator changes apply to the emulated Connected App before it starts.
#[must_use = "a builder does nothing until `spawn` is awaited"]
pub struct TestAppBuilder<'a> {
    emulator: Vec<Change<'a, EmulatorConfig>>,
    env: Vec<Change<'a, HashMap<String, String>>>,
}

/// One change a [`TestAppBuilder`] makes, in order, to the emulator's or the gateway's setup.
type Change<'a, T> = Box<dyn FnOnce(&mut T) + Send + 'a>;

impl TestApp {
    /// Starts describing a test app; `.spawn().await` starts it.
    pub fn builder<'a>() -> TestAppBuilder<'a> {
        TestAppBuilder {
            emulator: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl<'a> TestAppBuilder<'a> {
    /// Sets one variable of the gateway's environment.
    pub fn env(self, name: &str, value: impl Into<String>) -> Self {
        let (name, value) = (name.to_string(), value.into());
        self.configure(move |env| {
            env.insert(name, value);
        })
    }

    /// Sets several variables of the gateway's environment, in order.
    pub fn envs(self, vars: &[(&str, &str)]) -> Self {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.configure(move |env| env.extend(vars))
    }

    /// Changes the gateway's environment as it stands (to read or remove a variable).
    pub fn configure(mut self, f: impl FnOnce(&mut HashMap<String, String>) + Send + 'a) -> Self {
        self.env.push(Box::new(f));
        self
    }

    /// The (testing-only) username-password flow switched on.
    pub fn password_flow(self) -> Self {
        self.env("SF_ENABLE_PASSWORD_FLOW", "true")
    }

    /// Gateway mode, proxying to `upstream_url`, with metrics on a port of their own
    /// ([`scrape`] finds it).
    pub fn gateway_for(self, upstream_url: &str) -> Self {
        self.env("UPSTREAM_URL", upstream_url)
            .env("METRICS_ADDR", "127.0.0.1:0")
    }

    /// Changes the emulated Connected App before the emulator starts.
    pub fn emulator(mut self, f: impl FnOnce(&mut EmulatorConfig) + Send + 'a) -> Self {
        self.emulator.push(Box::new(f));
        self
    }

    /// Starts the emulator and the gateway, configured for each other.
    pub async fn spawn(self) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let redirect_uri = format!("http://{addr}/oauth2/callback");
        let mut emulator_config = EmulatorConfig::new(CLIENT_ID, CLIENT_SECRET);
        emulator_config.redirect_uris = vec![redirect_uri.clone()];
        for change in self.emulator {
            change(&mut emulator_config);
        }
        let emulator = Emulator::start(emulator_config, 0).await.expect("emulator");
        let mut env = base_env(&emulator.base_url(), &redirect_uri);
        for change in self.env {
            change(&mut env);
        }
        let config = Config::from_map(&env).expect("valid test config");
        let gateway = spawn(config, listener).await.expect("gateway");
        TestApp {
            base: format!("http://{addr}"),
            gateway,
            emulator,
            http: plain_client(),
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn tokens(&self, username: &str) -> TokenGrant {
        self.emulator.issue_tokens(username).expect("known user")
    }

    /// GET with `Authorization: Bearer` and `X-Instance-Url`.
    pub async fn get_with_token(
        &self,
        path: &str,
        token: &str,
        instance: &str,
    ) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .header("x-instance-url", instance)
            .send()
            .await
            .expect("request")
    }

    /// Runs the browser login through the emulator's form, up to (not following) the callback.
    /// Returns the callback URL Salesforce sent the browser to.
    pub async fn authorize_at_emulator(
        &self,
        browser: &reqwest::Client,
        authorize_path: &str,
        user: (&str, &str),
        action: &str,
    ) -> String {
        let start = browser
            .get(self.url(authorize_path))
            .send()
            .await
            .expect("authorize");
        let start = expect_status_for(start, 302, "authorize should redirect").await;
        let to_salesforce = location(start.headers());
        let page = browser
            .get(&to_salesforce)
            .send()
            .await
            .expect("login page");
        expect_status_for(page, 200, "emulator login page").await;
        let url = reqwest::Url::parse(&to_salesforce).expect("url");
        let mut form: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        form.push(("username".into(), user.0.into()));
        form.push(("password".into(), user.1.into()));
        form.push(("action".into(), action.into()));
        let post_url = format!("{}/services/oauth2/authorize", self.emulator.base_url());
        let answer = browser
            .post(post_url)
            .form(&form)
            .send()
            .await
            .expect("submit");
        let answer = expect_status_for(answer, 302, "emulator should redirect back").await;
        location(answer.headers())
    }

    /// The whole browser login; returns the callback's response.
    pub async fn login(&self, browser: &reqwest::Client, user: (&str, &str)) -> reqwest::Response {
        let callback = self
            .authorize_at_emulator(browser, "/oauth2/authorize", user, "allow")
            .await;
        get_accepting(browser, callback, "text/html").await
    }
}

pub fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("Location header")
        .to_string()
}

/// Every `Set-Cookie` value of a response.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

/// A loopback server that counts the requests reaching it: an upstream app, a host the client
/// named, or a misbehaving Salesforce.
pub struct StubServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicU64>,
}

impl StubServer {
    /// Answers each request with a fixed response.
    pub async fn start(status: u16, content_type: &'static str, body: String) -> Self {
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move {
                (
                    axum::http::StatusCode::from_u16(status).expect("status"),
                    [(axum::http::header::CONTENT_TYPE, content_type)],
                    body,
                )
            }
        });
        Self::serve(app).await
    }

    /// Serves `app` on a random loopback port.
    pub async fn serve(app: axum::Router) -> Self {
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        let app = app.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    next.run(request).await
                }
            },
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, hits }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The value of the series `name` whose labels include all of `labels` (summed if several).
pub fn metric(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (series_name, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            (series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// `/metrics`, read where the gateway serves it: its own listener when `METRICS_ADDR` is set
/// (always in gateway mode), the main port otherwise.
pub async fn scrape(app: &TestApp) -> String {
    let url = match app.gateway.metrics_addr {
        Some(addr) => format!("http://{addr}/metrics"),
        None => app.url("/metrics"),
    };
    let r = app.http.get(url).send().await.expect("metrics");
    let r = expect_status(r, 200).await;
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/plain"));
    r.text().await.expect("text")
}

/// `POST /oauth2/password` for a demo user, as a script would log in.
pub async fn password_grant(app: &TestApp, user: (&str, &str)) -> reqwest::Response {
    app.http
        .post(app.url("/oauth2/password"))
        .form(&[("username", user.0), ("password", user.1)])
        .send()
        .await
        .expect("password grant")
}

// --- Shared harness helpers (tidy, issue 13) ---

/// The session secret [`base_env`] configures, for tests that seal cookies themselves.
pub const SESSION_SECRET: &str = "test-session-secret-0123456789-abcdefghij";

/// Every header of a request as JSON, name to the list of its values, as echo upstreams
/// answer them; read back with [`received`].
pub fn headers_json(headers: &axum::http::HeaderMap) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<serde_json::Value> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        out.insert(name.as_str().to_string(), values.into());
    }
    out.into()
}

/// The header values an echo upstream received under `name` (see [`headers_json`]).
pub fn received(echoed: &serde_json::Value, name: &str) -> Vec<String> {
    echoed["headers"][name]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// GET `url` with an `Accept` header, as a browser (`text/html`) or an API client would.
pub async fn get_accepting(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    accept: &str,
) -> reqwest::Response {
    client
        .get(url)
        .header("accept", accept)
        .send()
        .await
        .expect("request")
}

/// `s` percent-encoded for a query string or form value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A loopback port that was free a moment ago, for a child process that must be told its port
/// before it starts (chromedriver, the `sfgate serve` binary). Another process may take it in
/// between: callers retry when the child reports it could not bind. In-process servers take a
/// bound `TcpListener` instead.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Returns `response` when its status is `code`; otherwise panics with the body's
/// `error_description` and the whole body, so a failure says why, not only what.
pub async fn expect_status(response: reqwest::Response, code: u16) -> reqwest::Response {
    check_status(response, code, None).await
}

/// [`expect_status`], naming what was checked (the case of a table, a step of a flow).
pub async fn expect_status_for(
    response: reqwest::Response,
    code: u16,
    context: impl std::fmt::Display,
) -> reqwest::Response {
    check_status(response, code, Some(context.to_string())).await
}

async fn check_status(
    response: reqwest::Response,
    code: u16,
    context: Option<String>,
) -> reqwest::Response {
    if response.status() == code {
        return response;
    }
    let status = response.status().as_u16();
    let url = response.url().clone();
    let body = response.text().await.unwrap_or_default();
    status_failure(code, status, &url, &body, context)
}

/// The status check for an answer another client library read (a refused WebSocket
/// handshake): panics as [`expect_status`] does when `status` is not `code`.
pub fn expect_status_of(status: u16, body: &[u8], code: u16, from: impl std::fmt::Display) {
    if status != code {
        status_failure(code, status, from, &String::from_utf8_lossy(body), None);
    }
}

fn status_failure(
    code: u16,
    status: u16,
    from: impl std::fmt::Display,
    body: &str,
    context: Option<String>,
) -> ! {
    let description = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json["error_description"].as_str().map(str::to_string))
        .unwrap_or_else(|| "(no error_description)".into());
    let context = context.map(|c| format!("{c}: ")).unwrap_or_default();
    panic!(
        "{context}expected status {code}, got {status} from {from}: {description}\nbody: {body}"
    );
}

/// A loopback address where connections are refused, for as long as it is held: the port is
/// bound (so no other process or test can take it meanwhile) but not listening. Dropping a
/// listener instead would free the port for anyone to take before the test connects.
pub struct RefusingAddress {
    pub addr: SocketAddr,
    _bound: tokio::net::TcpSocket,
}

pub fn refusing_address() -> RefusingAddress {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    RefusingAddress {
        addr,
        _bound: socket,
    }
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address), as a distinct client
/// for per-client limits; follows no redirects.
pub fn client_from(ip: &str) -> reqwest::Client {
    sfgate::crypto::install_tls_provider();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .local_address(ip.parse::<std::net::IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

/// The `sfgate_session=<value>` pair a response sets, if it sets one (removals excluded).
pub fn session_pair(headers: &reqwest::header::HeaderMap) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;"))
        .and_then(|c| c.split(';').next().map(str::to_string))
}
