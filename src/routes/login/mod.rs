//! The login flow: the public OAuth routes (`/oauth2/authorize`, the callback, token, password,
//! refresh, logout, welcome), one file per route group; the steps they share live in `flow.rs`.

mod authorize;
mod callback;
mod canvas;
mod error;
mod flow;
mod login_host;
mod logout;
mod params;
mod tokens;
mod welcome;

pub use error::LoginError;
pub use welcome::WELCOME_PATH;

use super::OwnRoutes;
use crate::config::Config;
use crate::login_paths as paths;
use crate::middleware::rate_limit::{self, LoginRateLimiter};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use std::sync::Arc;

/// The routes that start logins or spend codes, passwords and refresh tokens are rate limited
/// per client (see [`crate::middleware::rate_limit`]); logout and the GET refusals are not.
pub(crate) fn router(config: &Config) -> OwnRoutes {
    let limiter = Arc::new(LoginRateLimiter::new(config));
    let limited = OwnRoutes::new()
        .route(paths::AUTHORIZE, get(authorize::authorize))
        .route(paths::START, get(authorize::start))
        .route(config.callback_path(), get(callback::callback))
        .route(paths::TOKEN, post(tokens::token))
        .route(
            paths::PASSWORD,
            post(tokens::password).get(tokens::password_via_get),
        )
        .route(paths::REFRESH, post(tokens::refresh))
        .route_if(config.canvas.enabled, paths::CANVAS, post(canvas::canvas))
        .map(|r| r.route_layer(from_fn_with_state(limiter, rate_limit::enforce)));
    OwnRoutes::new()
        // Every path under it is sfgate's, routed or not.
        .reserve("/oauth2")
        .merge(limited)
        .route(paths::LOGIN, get(tokens::password_via_get))
        .route(paths::LOGOUT, post(logout::logout))
        .route(
            paths::SIGN_OUT,
            get(logout::sign_out).post(logout::sign_out),
        )
        .route(paths::WELCOME, get(welcome::welcome))
}
