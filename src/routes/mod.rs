//! The router: public pages and OAuth routes, protected routes behind the identity layer,
//! and operational endpoints.

mod assets;
mod forward_auth;
mod health;
mod home;
mod jwks;
mod metrics;
mod oauth2;
mod own;
mod protected;

pub use own::OwnPaths;
use own::OwnRoutes;

use crate::state::AppState;
use axum::routing::{any, get};
use axum::Router;

/// sfgate's own routes, and the paths they own (in gateway mode never proxied).
///
/// Under the prefix (`PROXY_PREFIX`, `/oauth2` by default) in both modes: the login flow, the sign-in and sign-out pages,
/// `userinfo`, forward auth, health, readiness, the JWKS and the pages' assets. Standalone mode
/// (no `UPSTREAM_URL`) adds what it has always served at the root: the home page, `/secured`,
/// `/api/me`, `/healthz`, `/readyz`, `/.well-known/jwks.json` and `/metrics` (unless
/// `METRICS_ADDR` gives metrics a listener of their own). Gateway mode adds nothing: every
/// path outside the prefix, `/` included, is the app's.
pub fn router(state: AppState) -> (Router, OwnPaths) {
    let gateway_mode = state.config.gateway.upstream_url.is_some();
    let paths = state.config.paths();
    let own = OwnRoutes::new()
        .route(paths.sign_in, get(home::home))
        .route(paths.userinfo, any(protected::userinfo))
        .route(paths.healthz, get(health::healthz))
        .route(paths.readyz, get(health::readyz))
        .route(paths.forward_auth, any(forward_auth::forward_auth))
        // Envoy's `ext_authz` appends the original path to the auth path.
        .route(paths.forward_auth_slash, any(forward_auth::forward_auth))
        .route(paths.forward_auth_any, any(forward_auth::forward_auth))
        .route(paths.jwks, get(jwks::jwks))
        .merge(assets::router(paths, gateway_mode))
        .merge(oauth2::router(&state.config));
    let own = if gateway_mode {
        own
    } else {
        standalone(own, state.config.server.metrics_addr.is_none())
    };
    let (own, paths) = own.into_parts();
    (own.with_state(state), paths)
}

/// The root paths sfgate serves when it is the whole site.
fn standalone(own: OwnRoutes, metrics_here: bool) -> OwnRoutes {
    let own = own
        .route("/", get(home::home))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        // Exactly this file: other `/.well-known/` paths stay unanswered.
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .merge(protected::router());
    if metrics_here {
        own.route("/metrics", get(metrics::render))
    } else {
        own
    }
}

/// The router of the metrics listener (`METRICS_ADDR`): `/metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn own_paths(redirect: &str, upstream: Option<&str>) -> OwnPaths {
        own_paths_under(None, redirect, upstream)
    }

    fn own_paths_under(prefix: Option<&str>, redirect: &str, upstream: Option<&str>) -> OwnPaths {
        let mut env: std::collections::HashMap<String, String> = [
            ("SF_CLIENT_ID", "client"),
            ("SF_CLIENT_SECRET", "secret-value-123"),
            ("SF_REDIRECT_URI", redirect),
            ("SF_ALLOWED_ORGS", "00D5j00000AcMe1"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(upstream) = upstream {
            env.insert("UPSTREAM_URL".into(), upstream.into());
        }
        if let Some(prefix) = prefix {
            env.insert("PROXY_PREFIX".into(), prefix.into());
        }
        let state = AppState::new(Config::from_map(&env).expect("config")).expect("state");
        router(state).1
    }

    #[tokio::test]
    async fn in_gateway_mode_sfgate_owns_its_prefix_and_nothing_else() {
        let own = own_paths(
            "https://gw.example.com/oauth2/done",
            Some("http://127.0.0.1:9"),
        );
        for path in [
            "/oauth2",
            "/oauth2/x",
            "/oauth2/done",
            "/oauth2/sign_in",
            "/oauth2/assets/sfgate.css",
            "/oauth2/healthz",
        ] {
            assert!(own.contains(path), "{path}");
        }
        for other in [
            "/",
            "/app",
            "/oauth2x",
            "/api/me",
            "/secured",
            "/healthz",
            "/readyz",
            "/metrics",
            "/assets/sfgate.css",
            "/.well-known/jwks.json",
            "/favicon.ico",
        ] {
            assert!(!own.contains(other), "{other}");
        }
    }

    #[tokio::test]
    async fn standalone_sfgate_keeps_its_root_paths() {
        let own = own_paths("https://gw.example.com/auth/done", None);
        for path in [
            "/",
            "/oauth2",
            "/oauth2/x",
            "/assets/app.css",
            "/metrics",
            "/api/me",
            "/auth/done",
            "/.well-known/jwks.json",
            "/favicon.ico",
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
        ] {
            assert!(!own.contains(other), "{other}");
        }
    }

    #[tokio::test]
    async fn with_another_prefix_sfgate_owns_that_prefix_and_the_app_owns_oauth2() {
        for upstream in [Some("http://127.0.0.1:9"), None] {
            let own = own_paths_under(Some("/sso/"), "https://gw.example.com/sso/done", upstream);
            for path in [
                "/sso",
                "/sso/x",
                "/sso/start",
                "/sso/auth",
                "/sso/auth/admin/x",
                "/sso/assets/sfgate.css",
                "/sso/healthz",
                "/sso/done",
            ] {
                assert!(own.contains(path), "{path} {upstream:?}");
            }
            for other in [
                "/oauth2",
                "/oauth2/start",
                "/oauth2/auth",
                "/ssox",
                "/SSO/start",
            ] {
                assert!(!own.contains(other), "{other} {upstream:?}");
            }
        }
    }
}
