//! Security headers on sfgate's own pages and JSON, its errors and 404s included (never on
//! proxied upstream responses: the upstream application owns those).
//!
//! The Content-Security-Policy allows only sfgate's own `/assets` script and stylesheet (the
//! templates carry no inline script or style), images from itself or `data:`, and form
//! submissions to itself and the Salesforce login host. Pages may not be framed
//! (clickjacking of the login and logout buttons) and send no referrer (callback URLs carry
//! codes). Responses without a `Cache-Control` of their own get `no-store`: most of sfgate's
//! answers are about a user or carry a token, and only the static assets opt into caching.

use super::Proxied;
use crate::config::Config;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

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

/// The headers every own answer carries, whatever it set itself: [`add`]'s state, computed
/// once from the configuration.
pub fn policy(config: &Config) -> Arc<HeaderMap> {
    let login_origin = config.salesforce.login_url.origin().ascii_serialization();
    // The origin is a parsed URL's ASCII serialization, so it is always a valid header value.
    let csp = HeaderValue::from_str(&content_security_policy(&login_origin))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if config.is_https() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    Arc::new(headers)
}

/// Middleware (with [`policy`] as its state): adds the headers to everything it wraps (routes,
/// fallback, timeouts) except answers the gateway-mode proxy gave for the upstream (marked
/// [`Proxied`]): those are the upstream application's to set.
pub async fn add(State(policy): State<Arc<HeaderMap>>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.extensions().get::<Proxied>().is_some() {
        return response;
    }
    let headers = response.headers_mut();
    for (name, value) in policy.iter() {
        headers.insert(name, value.clone());
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
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
