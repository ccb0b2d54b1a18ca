//! The router: public pages and OAuth routes, protected routes behind the identity layer,
//! and operational endpoints.

mod assets;
mod forward_auth;
mod health;
mod home;
mod jwks;
pub mod login;
mod metrics;
mod own;
mod protected;

pub use own::OwnPaths;
use own::OwnRoutes;

use crate::state::AppState;
use axum::routing::{any, get};
use axum::Router;

/// sfgate's own routes, and the paths they own (in gateway mode never proxied).
pub fn router(state: AppState) -> (Router, OwnPaths) {
    let (own, paths) = OwnRoutes::new()
        .route("/", get(home::home))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route(
            crate::login_paths::FORWARD_AUTH,
            any(forward_auth::forward_auth),
        )
        // Envoy's `ext_authz` appends the original path to the auth path.
        .route("/oauth2/auth/", any(forward_auth::forward_auth))
        .route("/oauth2/auth/{*original}", any(forward_auth::forward_auth))
        // Exactly this file: other `/.well-known/` paths (ACME challenges, app links) stay the app's.
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .merge(assets::router(state.config.gateway.upstream_url.is_some()))
        .merge(login::router(&state.config))
        .merge(protected::router())
        .into_parts();
    (own.with_state(state), paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn own_paths_are_the_routes_and_namespaces_the_router_was_built_with() {
        let env: std::collections::HashMap<String, String> = [
            ("SF_CLIENT_ID", "client"),
            ("SF_CLIENT_SECRET", "secret-value-123"),
            ("SF_REDIRECT_URI", "https://gw.example.com/auth/done"),
            ("SF_ALLOWED_ORGS", "00D5j00000AcMe1"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
            ("UPSTREAM_URL", "http://127.0.0.1:9"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let state = AppState::new(Config::from_map(&env).expect("config")).expect("state");
        let (_, own) = router(state);
        for path in [
            "/",
            "/oauth2",
            "/oauth2/x",
            "/assets/app.css",
            "/metrics",
            "/api/me",
            "/auth/done",
            "/.well-known/jwks.json",
        ] {
            assert!(own.contains(path), "{path}");
        }
        for other in [
            "/app",
            "/oauth2x",
            "/api/me/x",
            "/assetsx",
            "/metrics/x",
            "/auth/done/x",
            "/.well-known/acme-challenge/x",
            "/favicon.ico",
        ] {
            assert!(!own.contains(other), "{other}");
        }
    }
}
