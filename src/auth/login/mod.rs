//! The login: every way a caller gets (or gives up) Salesforce tokens through sfgate, as
//! functions the routes under `/oauth2` (`routes/oauth2/`) call and tests can call too.
//!
//! - [`Login::start`] (`start.rs`): a fresh `state` and PKCE verifier in a sealed login cookie,
//!   and the authorization URL; [`Login::callback_host`] (`login_host.rs`) first moves a
//!   browser that started on another loopback name of this listener.
//! - [`Login::finish`] (`finish.rs`): the callback; the state against the login cookie, once
//!   ([`ReplayGuard`], `replay_guard.rs`), the code exchange, the identity, the session.
//! - [`Login::exchange_code`] and [`Login::password_grant`] (`grants.rs`): tokens for API
//!   clients.
//! - [`Login::refresh_tokens`] and [`Login::renew_session`] (`refresh.rs`).
//! - [`Login::verify_canvas`] and [`Login::canvas_session`] (`canvas.rs`): Canvas sign-in.
//! - [`Login::logout_caller`] and [`Login::log_out`] (`logout.rs`).
//!
//! Each new grant is confirmed the same way (`confirm.rs`); every failure is a [`LoginError`]
//! (`error.rs`), which is also the response it gets.

mod canvas;
mod confirm;
mod error;
mod finish;
mod grants;
mod login_host;
mod logout;
mod refresh;
mod replay_guard;
mod start;

pub use error::{printable, LoginError};
pub use finish::Finished;
pub use logout::{LogoutCaller, Revocation, TokenKind};
pub use refresh::SessionRenewal;
pub use replay_guard::ReplayGuard;
pub use start::Started;

use super::Authenticator;
use crate::config::Config;
use crate::domain::ReturnTo;
use crate::store::SharedStore;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The login, built once at start. Cheap to clone (one `Arc`); handlers take `State<Login>`.
#[derive(Clone)]
pub struct Login(Arc<Inner>);

struct Inner {
    auth: Authenticator,
    guard: ReplayGuard,
    settings: LoginSettings,
}

/// What the login reads from the configuration.
pub struct LoginSettings {
    /// `SF_REDIRECT_URI`: where Salesforce sends the browser back, and so the host a login
    /// must start on.
    pub redirect_uri: Url,
    /// The origin browsers use; same-site checks and the "start here" hint name it.
    pub public_origin: String,
    /// Verifies Canvas signed requests.
    pub client_secret: SecretString,
    /// `SF_ENABLE_PASSWORD_FLOW`.
    pub password_flow: bool,
    /// `CANVAS_LANDING`.
    pub canvas_landing: ReturnTo,
    /// `SESSION_MAX_AGE`: how long a refresh token logged out by an API client stays refused.
    pub session_max_age: Duration,
    /// Where logout sends browsers (see [`Config::home_path`]).
    pub home_path: &'static str,
    /// sfgate's own paths (`PROXY_PREFIX`): where browsers land after logging in.
    pub paths: &'static crate::prefix_paths::PrefixPaths,
}

impl LoginSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            redirect_uri: config.salesforce.redirect_uri.clone(),
            public_origin: config.public_origin(),
            client_secret: config.salesforce.client_secret.clone(),
            password_flow: config.salesforce.enable_password_flow,
            canvas_landing: config.canvas.landing.clone(),
            session_max_age: config.session.max_age,
            home_path: config.home_path(),
            paths: config.paths(),
        }
    }
}

impl Login {
    pub fn new(auth: Authenticator, store: SharedStore, settings: LoginSettings) -> Self {
        Self(Arc::new(Inner {
            auth,
            guard: ReplayGuard::new(store),
            settings,
        }))
    }

    fn auth(&self) -> &Authenticator {
        &self.0.auth
    }

    fn settings(&self) -> &LoginSettings {
        &self.0.settings
    }

    /// Where logout and a sessionless welcome page send browsers.
    pub fn home_path(&self) -> &'static str {
        self.0.settings.home_path
    }

    /// sfgate's own paths (`PROXY_PREFIX`): where browsers land after logging in, where
    /// credentials are posted.
    pub fn paths(&self) -> &'static crate::prefix_paths::PrefixPaths {
        self.0.settings.paths
    }

    /// The `Set-Cookie` value that removes the login cookie: success or failure, a callback
    /// ends its login attempt.
    pub fn login_cookie_removal(&self) -> axum::http::HeaderValue {
        self.auth()
            .cookies()
            .removal(crate::auth::session::LOGIN_COOKIE)
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn session_removal(&self) -> axum::http::HeaderValue {
        self.auth().session_removal()
    }
}
