//! A Salesforce emulator, for demo mode and every test.
//!
//! It follows Salesforce's documented behaviour (`shared/salesforce.md`) closely enough that
//! sfgate's safety checks are exercised for real: exact redirect URIs, single-use 15-minute
//! codes, PKCE, client authentication, signed token responses, `Bad_OAuth_Token` for bad
//! tokens, revocation. Fault switches (slow, 5xx, garbage, hang, closed connection) let tests
//! prove sfgate fails closed. It binds loopback only: it hands out tokens for anyone.
//!
//! A crate of its own that does not depend on `sfgate`: it is the other side of every check the
//! gateway makes, so it computes ids and signatures with its own code, and a test passes only
//! when the two independent implementations agree. The `sfgate` binary links it for `sfgate
//! demo` and `sfgate emulator`; the gateway library does not use it.

mod authorize;
mod canvas;
mod config;
mod control;
mod faults;
mod grants;
mod introspect;
mod jwt;
mod oauth_error;
mod records;
mod revoke;
mod signing_keys;
mod state;
pub mod test_keys;
mod token;
mod userinfo;
mod users;

pub use canvas::sign_request;
pub use config::EmulatorConfig;
pub use faults::Fault;
pub use records::{CommunityFields, TokenGrant, SITE_ID};
pub use signing_keys::ConnectedApp;
pub use state::{Endpoint, Stats};
pub use test_keys::FOREIGN_KEY;
pub use users::{demo_users, DemoUser, UserProfile};

use axum::routing::{get, post};
use axum::Router;
use state::EmulatorState;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct Emulator;

impl Emulator {
    /// Binds `127.0.0.1:port` (0 picks a free port) and serves in the background.
    pub async fn start(config: EmulatorConfig, port: u16) -> std::io::Result<EmulatorHandle> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = Arc::new(EmulatorState::new(
            config,
            format!("http://{addr}"),
            shutdown_rx.clone(),
        ));
        let app = router(state.clone());
        let mut rx = shutdown_rx;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await;
        });
        Ok(EmulatorHandle {
            addr,
            state,
            shutdown: Arc::new(shutdown_tx),
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
        })
    }
}

/// The path of the emulated Experience Cloud site: its users log in at
/// `{base}/partners/services/oauth2/authorize`, and every OAuth endpoint and `userinfo` are
/// served under it too, as Salesforce serves them under a site's URL.
pub const SITE_PATH: &str = "/partners";

fn router(state: Arc<EmulatorState>) -> Router {
    let counted = state.clone();
    let site = oauth_routes().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counted.count_site_call(request.uri().path());
            next.run(request)
        },
    ));
    oauth_routes()
        .nest(SITE_PATH, site)
        .route("/id/{org}/{user}", get(userinfo::identity))
        .route("/.well-known/openid-configuration", get(jwt::discovery))
        .route("/id/keys", get(jwt::jwks))
        .route("/__emulator/rotate-key", post(jwt::rotate))
        .route("/canvas/host", get(canvas::host))
        .route("/favicon.ico", get(favicon))
        .merge(control::router())
        .with_state(state)
}

/// The endpoints under `/services/oauth2/`, at the login host and under the site's path.
fn oauth_routes() -> Router<Arc<EmulatorState>> {
    Router::new()
        .route(
            "/services/oauth2/authorize",
            get(authorize::page).post(authorize::submit),
        )
        .route("/services/oauth2/token", post(token::token))
        .route(
            "/services/oauth2/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            "/services/oauth2/revoke",
            post(revoke::revoke_form).get(revoke::revoke_query),
        )
        .route("/services/oauth2/introspect", post(introspect::introspect))
}

/// The demo's login page is the first page of Salesforce a newcomer sees; it gets sfgate's icon
/// rather than a 404 in the browser's console.
async fn favicon() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "image/svg+xml")],
        include_str!("../../../assets/favicon.svg"),
    )
}

/// Controls a running emulator from tests.
#[derive(Clone)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    state: Arc<EmulatorState>,
    shutdown: Arc<watch::Sender<bool>>,
    task: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Both the login host and every org's instance URL.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    pub fn add_redirect_uri(&self, uri: &str) {
        self.state.add_redirect_uri(uri);
    }

    /// Sets the Connected App's Canvas App URL (see [`EmulatorConfig::canvas_url`]).
    pub fn set_canvas_url(&self, url: &str) {
        self.state.set_canvas_url(url);
    }

    pub fn set_fault(&self, fault: Fault) {
        for endpoint in Endpoint::API {
            self.state.set_fault(endpoint, fault.clone());
        }
    }

    pub fn set_fault_for(&self, endpoint: Endpoint, fault: Fault) {
        self.state.set_fault(endpoint, fault);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state.set_latency(latency);
    }

    /// Requests received under the Experience Cloud site's path ([`SITE_PATH`]).
    pub fn site_calls(&self) -> u64 {
        self.state
            .site_calls
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn calls(&self, endpoint: Endpoint) -> u64 {
        self.state.calls(endpoint)
    }

    /// Calls to one endpoint under the site's path (also counted in [`Self::calls`]).
    pub fn site_calls_to(&self, endpoint: Endpoint) -> u64 {
        self.state.site_calls_to(endpoint)
    }

    /// What token responses through the site carry about it (by default the site's URL and
    /// id); [`CommunityFields::Omitted`] answers as orgs that do not send them.
    pub fn set_community_fields(&self, fields: CommunityFields) {
        self.state.set_community_fields(fields);
    }

    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    pub fn reset_stats(&self) {
        self.state.reset_stats();
    }

    /// As if `username` had logged in with scope `api refresh_token`.
    pub fn issue_tokens(&self, username: &str) -> Option<TokenGrant> {
        let user = users::user_index(username)?;
        Some(self.state.issue(user, "api refresh_token", true))
    }

    /// As if `username` had logged in with these (space-separated) scopes.
    pub fn issue_tokens_with_scope(&self, username: &str, scope: &str) -> Option<TokenGrant> {
        let user = users::user_index(username)?;
        Some(self.state.issue(user, scope, true))
    }

    /// What the emulator reports about `username` (user type, active, email, permissions).
    pub fn user_profile(&self, username: &str) -> Option<UserProfile> {
        users::user_index(username).map(|u| self.state.profile(u))
    }

    /// Changes what the emulator reports about `username` from now on.
    pub fn set_user_profile(&self, username: &str, profile: UserProfile) {
        if let Some(u) = users::user_index(username) {
            self.state.set_profile(u, profile);
        }
    }

    /// A JWT-based access token for `username` from the main Connected App, whatever the
    /// `jwt_access_tokens` switch says.
    pub fn issue_jwt(&self, username: &str) -> Option<TokenGrant> {
        let user = users::user_index(username)?;
        let client_id = self.state.client_id.clone();
        Some(
            self.state
                .issue_access_as(user, "api", None, &client_id, true),
        )
    }

    /// The claims the emulator would put in a fresh JWT access token for `username`, for
    /// tests to alter and sign with [`EmulatorHandle::sign_jwt`].
    pub fn jwt_claims(&self, username: &str) -> Option<serde_json::Value> {
        let user = users::user_index(username)?;
        Some(self.state.jwt_claims(user, "api", &self.state.client_id))
    }

    /// Signs arbitrary claims with the emulator's current key, with Salesforce's header for
    /// `org_id`; `header_extra` overrides header fields. The token is not registered, so only
    /// local validation can accept it.
    pub fn sign_jwt(
        &self,
        org_id: &str,
        claims: &serde_json::Value,
        header_extra: &serde_json::Value,
    ) -> String {
        self.state.jwt.sign(org_id, claims, header_extra)
    }

    /// The `kid` of the current signing key.
    pub fn jwt_kid(&self) -> String {
        self.state.jwt.kid()
    }

    /// A new signing key (the previous one stays published); returns its `kid`.
    pub fn rotate_jwt_key(&self) -> String {
        self.state.jwt.rotate()
    }

    pub fn expire_access_tokens(&self) {
        self.state.expire_access_tokens();
    }

    /// Switches refresh-token rotation on or off (see [`EmulatorConfig::rotate_refresh_tokens`]).
    pub fn set_refresh_token_rotation(&self, on: bool) {
        self.state.set_rotation(on);
    }

    /// Requests with `grant_type=refresh_token` received (a subset of the token calls).
    pub fn refresh_calls(&self) -> u64 {
        self.state.refresh_calls()
    }

    pub fn advance_time(&self, by: Duration) {
        self.state.advance_time(by);
    }

    pub fn is_revoked(&self, token: &str) -> bool {
        self.state.is_revoked(token)
    }

    /// Stops serving; hanging requests are released first.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// Runs the emulator alone until `shutdown` completes (`sfgate emulator` passes its Ctrl-C and
/// SIGTERM signal).
pub async fn run_standalone(
    config: EmulatorConfig,
    port: u16,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let client_id = config.client_id.clone();
    let redirect_uris = config.redirect_uris.clone();
    let handle = Emulator::start(config, port).await?;
    println!("Salesforce emulator on {}", handle.base_url());
    println!("  client id: {client_id} (the secret is the one given with --client-secret)");
    println!("  callback URLs: {}", redirect_uris.join(", "));
    println!("  users:");
    for user in demo_users() {
        let granted: Vec<&str> = user
            .custom_permissions
            .iter()
            .filter(|(_, granted)| *granted)
            .map(|(name, _)| *name)
            .collect();
        println!(
            "    {:<24} password {:<14} org {} ({}){}",
            user.username,
            user.password,
            user.org_id,
            user.org_name,
            if granted.is_empty() {
                String::new()
            } else {
                format!(", custom permissions {}", granted.join(", "))
            }
        );
    }
    println!("  control: GET {0}/__emulator/stats, POST {0}/__emulator/fault|latency|tokens|expire|rotation|reset-stats|rotate-key", handle.base_url());
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}
