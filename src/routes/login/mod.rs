//! The public OAuth routes: `/oauth2/authorize`, the callback, token, password, refresh, logout.

mod authorize;
mod callback;
mod error;
mod logout;
mod params;
mod tokens;

pub use error::LoginError;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;

pub fn router(callback_path: &str) -> Router<AppState> {
    Router::new()
        .route("/oauth2/authorize", get(authorize::authorize))
        .route(callback_path, get(callback::callback))
        .route("/oauth2/token", post(tokens::token))
        .route(
            "/oauth2/password",
            post(tokens::password).get(tokens::password_via_get),
        )
        .route("/oauth2/login", get(tokens::password_via_get))
        .route("/oauth2/refresh", post(tokens::refresh))
        .route("/oauth2/logout", post(logout::logout))
}
