//! The login flow: the public OAuth routes (`/oauth2/authorize`, the callback, token, password,
//! refresh, logout, welcome), one file per route group; the steps they share live in `flow.rs`.

mod authorize;
mod callback;
mod error;
mod flow;
mod logout;
mod params;
mod tokens;
mod welcome;

pub use error::LoginError;
pub use welcome::WELCOME_PATH;

use crate::config::Config;
use crate::middleware::rate_limit::{self, LoginRateLimiter};
use super::OwnRoutes;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use std::sync::Arc;

/// sfgate's fixed login routes; the callback (the path of `SF_REDIRECT_URI`) must be none of
/// them.
pub const FIXED_ROUTES: &[&str] = &[
    "/oauth2/authorize",
    "/oauth2/token",
    "/oauth2/password",
    "/oauth2/refresh",
    "/oauth2/login",
    "/oauth2/logout",
    welcome::WELCOME_PATH,
    "/oauth2/auth",
];

/// The routes that start logins or spend codes, passwords and refresh tokens are rate limited
/// per client (see [`crate::middleware::rate_limit`]); logout and the GET refusals are not.
pub(crate) fn router(config: &Config) -> OwnRoutes {
    let limiter = Arc::new(LoginRateLimiter::new(config));
    let limited = OwnRoutes::new()
        .route("/oauth2/authorize", get(authorize::authorize))
        .route(config.callback_path(), get(callback::callback))
        .route("/oauth2/token", post(tokens::token))
        .route(
            "/oauth2/password",
            post(tokens::password).get(tokens::password_via_get),
        )
        .route("/oauth2/refresh", post(tokens::refresh))
        .map(|r| r.route_layer(from_fn_with_state(limiter, rate_limit::enforce)));
    OwnRoutes::new()
        // Every path under it is sfgate's, routed or not.
        .reserve("/oauth2")
        .merge(limited)
        .route("/oauth2/login", get(tokens::password_via_get))
        .route("/oauth2/logout", post(logout::logout))
        .route(welcome::WELCOME_PATH, get(welcome::welcome))
}
