//! Security headers on sfgate's own pages and JSON, its errors and 404s included (never on
//! proxied upstream responses: the upstream application owns those).
//!
//! The Content-Security-Policy allows only sfgate's own `/assets` script and stylesheet (the
//! templates carry no inline script or style), images from itself or `data:`, and form
//! submissions to itself and the Salesforce login host. Pages may not be framed
//! (clickjacking of the login and logout buttons) and send no referrer (callback URLs carry
//! codes). Responses without a `Cache-Control` of their own get `no-store`: most of sfgate's
//! answers are about a user or carry a token, and only the static assets opt into caching.
//!
//! One exception, with `CANVAS_ENABLED`: the Canvas route and the Canvas landing page are shown
//! inside Salesforce's pages, so they may be framed, by Salesforce's domains only
//! (`frame-ancestors` lists the instance allowlist: its domain suffixes and
//! `SF_INSTANCE_ORIGINS`), and without `X-Frame-Options` (which cannot name several
//! origins). Every other path keeps `frame-ancestors 'none'`.

use super::Proxied;
use crate::config::Config;
use crate::domain::InstancePolicy;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower::{Layer, Service};

/// One year, as browsers' preload lists expect; sent only when sfgate is reached over https.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The policy for sfgate's pages; `login_origin` is where the login flow sends the browser.
pub fn content_security_policy(login_origin: &str) -> String {
    content_security_policy_framed_by(login_origin, "'none'")
}

/// The policy with `ancestors` as the sources that may frame the page.
fn content_security_policy_framed_by(login_origin: &str, ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self' {login_origin}; frame-ancestors {ancestors}; \
         base-uri 'none'"
    )
}

/// Who may frame the Canvas pages: every Salesforce domain suffix of the instance allowlist
/// as a wildcard https source, and each `SF_INSTANCE_ORIGINS` origin exactly.
pub fn canvas_frame_ancestors(policy: &InstancePolicy) -> String {
    policy
        .suffixes()
        .iter()
        .map(|suffix| format!("https://*{suffix}"))
        .chain(policy.extra_origins().iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What [`SecurityHeaders`] sets: the headers for every own answer, and those for the Canvas pages.
pub struct PagePolicy {
    headers: HeaderMap,
    /// With `CANVAS_ENABLED`: the paths that may be framed, and their headers.
    canvas: Option<(Vec<String>, HeaderMap)>,
}

/// The headers every own answer carries, whatever it set itself: [`SecurityHeadersLayer`]'s state, computed
/// once from the configuration.
pub fn policy(config: &Config) -> Arc<PagePolicy> {
    let login_origin = config.salesforce.login_url.origin().ascii_serialization();
    let headers = page_headers(config, content_security_policy(&login_origin), true);
    let canvas = config.canvas.enabled.then(|| {
        let ancestors = canvas_frame_ancestors(&config.salesforce.instance_policy);
        let csp = content_security_policy_framed_by(&login_origin, &ancestors);
        let landing = config.canvas.landing.as_str();
        let landing = landing.split(['?', '#']).next().unwrap_or("/");
        let paths = vec![config.paths().canvas.to_string(), landing.to_string()];
        (paths, page_headers(config, csp, false))
    });
    Arc::new(PagePolicy { headers, canvas })
}

fn page_headers(config: &Config, csp: String, deny_frames: bool) -> HeaderMap {
    // Origins are parsed URLs' ASCII serializations, so it is always a valid header value.
    let csp = HeaderValue::from_str(&csp)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    if deny_frames {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
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
    headers
}

/// Applies [`SecurityHeaders`] with [`policy`]. A layer of its own rather than `from_fn`,
/// which would box its inner service and its future on every request.
#[derive(Clone)]
pub struct SecurityHeadersLayer(pub Arc<PagePolicy>);

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders {
            inner,
            policy: self.0.clone(),
        }
    }
}

/// Adds the headers to everything it wraps (routes, fallback, timeouts) except answers the
/// gateway-mode proxy gave for the upstream (marked [`Proxied`]): those are the upstream
/// application's to set.
#[derive(Clone)]
pub struct SecurityHeaders<S> {
    inner: S,
    policy: Arc<PagePolicy>,
}

impl<S> Service<Request> for SecurityHeaders<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = SecurityHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let canvas = match &self.policy.canvas {
            Some((paths, _)) => paths.iter().any(|p| p == request.uri().path()),
            None => false,
        };
        SecurityHeadersFuture {
            inner: self.inner.call(request),
            policy: self.policy.clone(),
            canvas,
        }
    }
}

pin_project! {
    /// [`SecurityHeaders`]' response future.
    pub struct SecurityHeadersFuture<F> {
        #[pin]
        inner: F,
        policy: Arc<PagePolicy>,
        // Whether the request was for a Canvas page (framed headers).
        canvas: bool,
    }
}

impl<F, E> Future for SecurityHeadersFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if response.extensions().get::<Proxied>().is_none() {
            this.policy.apply(*this.canvas, response.headers_mut());
        }
        Poll::Ready(Ok(response))
    }
}

impl PagePolicy {
    fn apply(&self, canvas: bool, headers: &mut HeaderMap) {
        let set = match &self.canvas {
            Some((_, framed)) if canvas => framed,
            _ => &self.headers,
        };
        for (name, value) in set.iter() {
            headers.insert(name, value.clone());
        }
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
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
        assert!(csp.contains("frame-ancestors 'none';"));
    }

    #[test]
    fn canvas_pages_may_be_framed_by_salesforce_domains_and_listed_origins_only() {
        let extra = url::Url::parse("http://localhost:4000").expect("url");
        let ancestors =
            canvas_frame_ancestors(&InstancePolicy::default().with_extra_origins(&[extra]));
        for source in [
            "https://*.salesforce.com",
            "https://*.force.com",
            "https://*.site.com",
            "http://localhost:4000",
        ] {
            assert!(ancestors.split(' ').any(|s| s == source), "{source}");
        }
        assert!(!ancestors.contains('\''), "no keywords: {ancestors}");
        assert!(!ancestors.split(' ').any(|s| s == "*" || s == "https:"));
    }
}
