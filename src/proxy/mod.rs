//! Gateway mode: with `UPSTREAM_URL` set, every request outside sfgate's own routes passes the
//! identity layer and is then proxied to the upstream app, which learns who the caller is from
//! headers only sfgate can set (as with oauth2-proxy).
//!
//! The proxy is a fallback service outside the body limit and request timeout of sfgate's own
//! routes: proxied bodies stream at any size, and `UPSTREAM_TIMEOUT` governs the upstream.

mod error;
mod forward;
pub mod header_rule;
pub mod headers;
mod tunnel;

pub use error::ProxyError;
pub use forward::{Upstream, UpstreamError, UpstreamOptions};
pub use headers::identity_headers;
pub use tunnel::Tunnels;

use crate::auth::{Authenticated, BrowserRejection, RulePath};
use crate::config::SkipAuthRule;
use crate::domain::{CanonicalPath, PathPolicy};
use crate::routes::OwnPaths;
use crate::state::AppState;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;

/// The service that answers everything sfgate's own routes do not. Mounted only in gateway
/// mode, so it takes the upstream itself rather than looking for one in the state.
/// `own`: sfgate's own paths, answered 404 here rather than proxied (see
/// [`OwnPaths::contains`]).
pub fn router(state: AppState, upstream: Upstream, own: OwnPaths) -> Router {
    let upstream = Arc::new(upstream);
    Router::new().fallback(move |request: Request| {
        let state = state.clone();
        let upstream = upstream.clone();
        let own = own.clone();
        async move { proxy(&state, &upstream, &own, request).await }
    })
}

pub use crate::middleware::Proxied;

/// Authenticates (unless a skip-auth rule matches) and forwards.
async fn proxy(state: &AppState, upstream: &Upstream, own: &OwnPaths, request: Request) -> Response {
    if own.contains(request.uri().path()) {
        return crate::error::not_found();
    }
    let mut response = authenticate_and_forward(state, upstream, request).await;
    response.extensions_mut().insert(Proxied);
    response
}

async fn authenticate_and_forward(
    state: &AppState,
    upstream: &Upstream,
    request: Request,
) -> Response {
    let upgrade = forward::is_upgrade(request.headers());
    let response = authenticate_then_forward(state, upstream, request).await;
    if upgrade {
        metrics::counter!("sfgate_upgrades_total", "status" => response.status().as_str().to_owned())
            .increment(1);
    }
    response
}

async fn authenticate_then_forward(
    state: &AppState,
    upstream: &Upstream,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    headers::remove_by_name_rule(&mut parts.headers, state.config.gateway.underscore_headers);
    // Only sfgate signs assertions; a client's copy (in any spelling) never reaches the app.
    headers::remove_assertion(&mut parts.headers);
    let policy = PathPolicy {
        allow_encoded_slashes: state.config.gateway.allow_encoded_slashes,
    };
    let path = match CanonicalPath::parse(parts.uri.path(), policy) {
        Ok(path) => path,
        Err(e) => {
            tracing::info!(reason = %e, "ambiguous request path refused");
            return ProxyError::from(e).into_response();
        }
    };
    if skips_auth(&state.config.gateway.skip_auth_routes, &parts.method, &path) {
        // The rule allowed this method; the app must not be told to act as another one.
        headers::remove_method_overrides(&mut parts.headers);
        return forward(state, upstream, parts, body, None).await;
    }
    let rejection = BrowserRejection::Login;
    state
        .auth
        .serve(
            parts,
            RulePath::Request,
            rejection,
            |mut parts, caller| async move {
                if let Some(assertion) = state
                    .assertion
                    .as_ref()
                    .and_then(|s| s.header_in(caller.identity.assertion_slot(), &caller.identity))
                {
                    parts
                        .extensions
                        .insert(crate::policy::SignedAssertion(assertion));
                }
                forward(state, upstream, parts, body, Some(&caller)).await
            },
        )
        .await
}

/// Forwards to the upstream and counts the answer.
async fn forward(
    state: &AppState,
    upstream: &Upstream,
    parts: axum::http::request::Parts,
    body: axum::body::Body,
    caller: Option<&Authenticated>,
) -> Response {
    let response = match upstream.forward(&state.config, parts, body, caller).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    metrics::counter!("sfgate_proxy_requests_total", "status" => response.status().as_str().to_owned())
        .increment(1);
    response
}

/// Whether `SKIP_AUTH_ROUTES` lets this request through unauthenticated. Rules see the path
/// only (not the query), as oauth2-proxy's do; a rule without a method matches any method.
/// A rule applies only when it matches every reading of the path (as sent, decoded, with
/// `;` parameters stripped), so no upstream can read a skipped path as another one.
pub fn skips_auth(rules: &[SkipAuthRule], method: &Method, path: &CanonicalPath) -> bool {
    rules.iter().any(|rule| {
        rule.method.as_ref().is_none_or(|m| m == method)
            && path.views().all(|view| rule.path.is_match(view))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Option<Method>, path: &str) -> SkipAuthRule {
        SkipAuthRule {
            method,
            path: regex::Regex::new(path).expect("regex"),
        }
    }

    fn path(raw: &str) -> CanonicalPath {
        CanonicalPath::parse(raw, PathPolicy::default()).expect("canonical")
    }

    #[test]
    fn skip_rules_match_path_and_optional_method() {
        let rules = [rule(Some(Method::GET), "^/public/"), rule(None, "^/open$")];
        assert!(skips_auth(&rules, &Method::GET, &path("/public/a")));
        assert!(!skips_auth(&rules, &Method::POST, &path("/public/a")));
        assert!(skips_auth(&rules, &Method::DELETE, &path("/open")));
        assert!(!skips_auth(&rules, &Method::GET, &path("/opener")));
        assert!(!skips_auth(&[], &Method::GET, &path("/public/a")));
    }

    #[test]
    fn skip_rules_must_match_every_reading_of_the_path() {
        let rules = [rule(None, r"\.css$"), rule(None, "^/open$")];
        assert!(skips_auth(&rules, &Method::GET, &path("/app.css")));
        assert!(!skips_auth(&rules, &Method::GET, &path("/admin;.css")));
        assert!(!skips_auth(&rules, &Method::GET, &path("/admin%3b.css")));
        assert!(!skips_auth(&rules, &Method::GET, &path("/op%65n")));
    }
}
