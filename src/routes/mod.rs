//! The router: public pages and OAuth routes, protected routes behind the identity layer,
//! and operational endpoints.

mod assets;
mod health;
mod home;
pub mod login;
mod protected;

use crate::auth::require_identity;
use crate::state::AppState;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;

/// Routes sfgate serves itself; in gateway mode everything else is proxied.
pub const OWN_ROUTES: &[&str] = &[
    "/",
    "/oauth2/*",
    "/healthz",
    "/readyz",
    "/metrics",
    "/secured",
    "/api/me",
    "/assets/*",
];

pub fn router(state: AppState) -> Router {
    let protected =
        protected::router().route_layer(from_fn_with_state(state.clone(), require_identity));
    let own = Router::new()
        .route("/", get(home::home))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::render))
        .merge(assets::router())
        .merge(login::router(&state.config))
        .merge(protected);
    // Install the metrics recorder before the first request records anything.
    crate::metrics::handle();
    // Own routes only: a fallback added below (the reverse proxy) keeps upstream headers.
    crate::security_headers::apply(own, &state.config).with_state(state)
}
