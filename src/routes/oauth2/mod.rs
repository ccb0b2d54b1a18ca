//! The login's routes under the prefix (`/oauth2` by default): start (`authorize`, `start`), the
//! callback, token, password, refresh, Canvas, logout and sign-out, and the welcome page, one
//! file per route. Each handler parses the request, calls [`crate::auth::login::Login`] (where
//! the login's logic lives) and answers; `answer.rs` holds the response shapes they share,
//! `params.rs` the reading of query strings and bodies.

mod answer;
mod callback;
mod canvas;
mod logout;
mod params;
mod password;
mod refresh;
mod start;
mod token;
mod welcome;

use super::OwnRoutes;
use crate::config::Config;
use crate::middleware::rate_limit::{self, LoginRateLimiter};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use std::sync::Arc;

/// The routes that start logins or spend codes, passwords and refresh tokens are rate limited
/// per client (see [`crate::middleware::rate_limit`]); logout and the GET refusals are not.
pub(crate) fn router(config: &Config) -> OwnRoutes {
    let paths = config.paths();
    let limiter = Arc::new(LoginRateLimiter::new(config));
    let limited = OwnRoutes::new()
        .route(paths.authorize, get(start::authorize))
        .route(paths.start, get(start::start))
        .route(config.callback_path(), get(callback::callback))
        .route(paths.token, post(token::token))
        .route(
            paths.password,
            post(password::password).get(password::password_via_get),
        )
        .route(paths.refresh, post(refresh::refresh))
        .route_if(config.canvas.enabled, paths.canvas, post(canvas::canvas))
        .map(|r| r.route_layer(from_fn_with_state(limiter, rate_limit::enforce)));
    OwnRoutes::new()
        // Every path under it is sfgate's, routed or not.
        .reserve(paths.prefix)
        .merge(limited)
        .route(paths.login, get(password::password_via_get))
        .route(paths.logout, post(logout::logout))
        .route(paths.sign_out, get(logout::sign_out).post(logout::sign_out))
        .route(paths.welcome, get(welcome::welcome))
}
