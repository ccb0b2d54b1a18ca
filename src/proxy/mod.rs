//! Gateway mode: with `UPSTREAM_URL` set, every request outside sfgate's own routes passes the
//! identity layer and is then proxied to the upstream app, which learns who the caller is from
//! headers only sfgate can set (as with oauth2-proxy).
//!
//! The proxy is a fallback service outside the body limit and request timeout of sfgate's own
//! routes: proxied bodies stream at any size, and `UPSTREAM_TIMEOUT` governs the upstream.

mod error;
mod forward;
pub mod headers;
mod tunnel;

pub use error::ProxyError;
pub use forward::{Upstream, UpstreamError, UpstreamOptions};
pub use headers::identity_headers;
pub use tunnel::Tunnels;

use crate::auth::{authenticate, record_identity, reject_as, BrowserRejection, RefreshPolicy};
use crate::config::SkipAuthRule;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// The service that answers everything sfgate's own routes do not.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(proxy).with_state(state)
}

/// Response extension on every answer the proxy gave for an upstream path (forwarded or
/// refused), so request metrics can label it `proxy` rather than lumping it with 404s.
#[derive(Clone, Copy, Debug)]
pub struct Proxied;

/// Authenticates (unless a skip-auth rule matches) and forwards.
async fn proxy(State(state): State<AppState>, request: Request) -> Response {
    let Some(upstream) = state.upstream.as_ref() else {
        return crate::error::not_found();
    };
    if crate::routes::is_own_route(request.uri().path()) {
        return crate::error::not_found();
    }
    let mut response = authenticate_and_forward(&state, upstream, request).await;
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
    let (parts, body) = request.into_parts();
    let auth = if skips_auth(
        &state.config.skip_auth_routes,
        &parts.method,
        parts.uri.path(),
    ) {
        None
    } else {
        match authenticate(state, &parts.headers, RefreshPolicy::Allowed).await {
            Ok(auth) => Some(auth),
            Err(e) => {
                return reject_as(
                    state,
                    &parts.headers,
                    &parts.uri,
                    &e,
                    BrowserRejection::Login,
                );
            }
        }
    };
    if let Some(auth) = &auth {
        record_identity(auth);
    }
    let mut response = match upstream
        .forward(&state.config, parts, body, auth.as_ref())
        .await
    {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    metrics::counter!("sfgate_proxy_requests_total", "status" => response.status().as_str().to_owned())
        .increment(1);
    if let Some(cookie) = auth.and_then(|a| a.renewed_session) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Whether `SKIP_AUTH_ROUTES` lets this request through unauthenticated. Rules see the path
/// only (not the query), as oauth2-proxy's do; a rule without a method matches any method.
pub fn skips_auth(rules: &[SkipAuthRule], method: &Method, path: &str) -> bool {
    rules
        .iter()
        .any(|rule| rule.method.as_ref().is_none_or(|m| m == method) && rule.path.is_match(path))
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

    #[test]
    fn skip_rules_match_path_and_optional_method() {
        let rules = [rule(Some(Method::GET), "^/public/"), rule(None, "^/open$")];
        assert!(skips_auth(&rules, &Method::GET, "/public/a"));
        assert!(!skips_auth(&rules, &Method::POST, "/public/a"));
        assert!(skips_auth(&rules, &Method::DELETE, "/open"));
        assert!(!skips_auth(&rules, &Method::GET, "/opener"));
        assert!(!skips_auth(&[], &Method::GET, "/public/a"));
    }
}
