//! The router: public pages and OAuth routes, protected routes behind the identity layer,
//! and operational endpoints.

mod assets;
mod forward_auth;
mod health;
mod home;
mod jwks;
pub mod login;
mod metrics;
mod protected;

use crate::auth::require_identity;
use crate::state::AppState;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get};
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
    // Exactly this file: other `/.well-known/` paths (ACME challenges, app links) stay the app's.
    "/.well-known/jwks.json",
];

/// Whether `path` belongs to sfgate (see [`OWN_ROUTES`]): such paths are never proxied, even
/// when no handler matches them, so an upstream cannot shadow or be reached through them.
pub fn is_own_route(path: &str) -> bool {
    OWN_ROUTES
        .iter()
        .any(|route| match route.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix) || path == prefix.trim_end_matches('/'),
            None => path == *route,
        })
}

pub fn router(state: AppState) -> Router {
    let protected =
        protected::router().route_layer(from_fn_with_state(state.clone(), require_identity));
    let own = Router::new()
        .route("/", get(home::home))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route("/oauth2/auth", any(forward_auth::forward_auth))
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .merge(assets::router(state.config.gateway.upstream_url.is_some()))
        .merge(login::router(&state.config))
        .merge(protected);
    own.with_state(state)
}

#[cfg(test)]
mod tests {
    use super::is_own_route;

    #[test]
    fn own_routes_include_their_prefixes_only() {
        for own in [
            "/",
            "/oauth2",
            "/oauth2/x",
            "/assets/app.css",
            "/metrics",
            "/api/me",
        ] {
            assert!(is_own_route(own), "{own}");
        }
        for other in ["/app", "/oauth2x", "/api/me/x", "/assetsx", "/metrics/x"] {
            assert!(!is_own_route(other), "{other}");
        }
    }
}
