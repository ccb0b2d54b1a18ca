//! Security headers on sfgate's own pages and JSON (never on proxied upstream responses: the
//! upstream application owns those).
//!
//! The Content-Security-Policy allows only sfgate's own `/assets` script and stylesheet (the
//! templates carry no inline script or style), images from itself or `data:`, and form
//! submissions to itself and the Salesforce login host. Pages may not be framed
//! (clickjacking of the login and logout buttons) and send no referrer (callback URLs carry
//! codes). Responses without a `Cache-Control` of their own get `no-store`: most of sfgate's
//! answers are about a user or carry a token, and only the static assets opt into caching.

use crate::config::Config;
use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

/// One year, as browsers' preload lists expect; sent only when sfgate is reached over https.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The policy for sfgate's pages; `login_origin` is where the login flow sends the browser.
pub fn content_security_policy(login_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self' {login_origin}; frame-ancestors 'none'; \
         base-uri 'none'"
    )
}

/// Adds the headers to every route of `router` that exists when this is called (a
/// `route_layer`, so a fallback added later, such as the reverse proxy, is left alone).
pub fn apply<S>(router: Router<S>, config: &Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    with_headers(router, config, Scope::Routes)
}

/// Adds the headers to everything `router` answers, its fallback included: for sfgate's own
/// 404 when there is no upstream to fall back to.
pub fn apply_everywhere<S>(router: Router<S>, config: &Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    with_headers(router, config, Scope::Everything)
}

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Routes,
    Everything,
}

fn with_headers<S>(router: Router<S>, config: &Config, scope: Scope) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let login_origin = config.login_url.origin().ascii_serialization();
    // The origin is a parsed URL's ASCII serialization, so it is always a valid header value.
    let csp = HeaderValue::from_str(&content_security_policy(&login_origin))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    let hsts = config.is_https().then(|| HeaderValue::from_static(HSTS));
    let fixed = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ));
    let router = match scope {
        Scope::Routes => router.route_layer(fixed),
        Scope::Everything => router.layer(fixed),
    };
    let Some(value) = hsts else {
        return router;
    };
    let hsts = SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, value);
    match scope {
        Scope::Routes => router.route_layer(hsts),
        Scope::Everything => router.layer(hsts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_allows_forms_to_the_login_host_only_besides_self() {
        let csp = content_security_policy("https://login.salesforce.com");
        assert!(csp.contains("form-action 'self' https://login.salesforce.com;"));
        assert!(csp.starts_with("default-src 'none';"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
