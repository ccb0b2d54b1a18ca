//! The one shape every error takes on the wire.
//!
//! API clients get `{"error","error_description"}` JSON (RFC 6749/6750 style); browsers get an
//! HTML page with the same facts and a way forward. Each boundary keeps its own error enum
//! (`AuthError`, `LoginError`, ...) and converts into [`ErrorResponse`], so the status, header
//! and body rules live here only. A response is chosen by the request's `Accept` header, which
//! [`negotiate`] (a middleware) applies after the handler, so handlers never need to know it.

use crate::prefix_paths::PrefixPaths;
use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use futures_util::future::Either;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// An error ready to be sent: status, an OAuth-style code and a human description.
#[derive(Debug, Clone)]
pub struct ErrorResponse {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// RFC 6750 challenge for 401s. `Some(None)` sends a challenge with no error code (the
    /// request had no credentials at all).
    pub bearer_challenge: Option<Option<&'static str>>,
    pub retry_after: Option<Duration>,
    /// Whether the HTML page offers a login link (authentication problems).
    pub offer_login: bool,
    /// The HTML page's heading when the status line would be the wrong tone, e.g. for a
    /// person's own choice to deny access; `None` shows the status ("401 Unauthorized").
    pub heading: Option<&'static str>,
    /// Steps the HTML page shows for a mistake in the set-up, not in the request.
    pub fix: Option<Fix>,
    /// What the HTML page says instead of `description`, for a person rather than an API
    /// client ("Please log in" rather than "send Authorization: Bearer").
    pub page_text: Option<String>,
}

/// A set-up mistake the error page explains step by step (README.md, "Troubleshooting").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Salesforce refused the redirect URI sfgate sent: it is not a Callback URL of the
    /// Connected App (or External Client App).
    RegisterRedirectUri { sent: String },
    /// The callback came back without the login cookie: the login was started on another host
    /// name (cookies are kept per host), or cookies are off.
    StartOn { origin: String },
}

impl ErrorResponse {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            bearer_challenge: None,
            retry_after: None,
            offer_login: false,
            heading: None,
            fix: None,
            page_text: None,
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn with_login_link(mut self) -> Self {
        self.offer_login = true;
        self
    }

    pub fn with_heading(mut self, heading: &'static str) -> Self {
        self.heading = Some(heading);
        self
    }

    /// The browser page's heading and text, in plain words; API clients keep `description`.
    pub fn with_page(mut self, heading: &'static str, text: impl Into<String>) -> Self {
        self.heading = Some(heading);
        self.page_text = Some(text.into());
        self
    }

    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }

    pub fn with_bearer_challenge(mut self, code: Option<&'static str>) -> Self {
        self.bearer_challenge = Some(code);
        self
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.error, "error_description": self.description })
    }

    fn headers(&self, headers: &mut HeaderMap) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(code) = self.bearer_challenge {
            let mut value = String::from("Bearer realm=\"sfgate\"");
            if let Some(code) = code {
                let description: String = self
                    .description
                    .chars()
                    .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
                    .collect();
                value.push_str(&format!(
                    ", error=\"{code}\", error_description=\"{description}\""
                ));
            }
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
    }

    /// The HTML form of this error, for browsers.
    pub fn to_html_response(&self, paths: &'static PrefixPaths, path_and_query: &str) -> Response {
        let login_href = self
            .offer_login
            .then(|| crate::domain::ReturnTo::login_href(paths, path_and_query));
        let page = ErrorPage {
            paths,
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or("Error"),
            error: self.error,
            description: self.page_text.as_deref().unwrap_or(&self.description),
            login_href: login_href.as_deref(),
            heading: self.heading,
            fix: self.fix.as_ref(),
        };
        let body = page.render().unwrap_or_else(|_| self.description.clone());
        let mut response = (self.status, Html(body)).into_response();
        self.headers(response.headers_mut());
        response
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.json())).into_response();
        self.headers(response.headers_mut());
        response.extensions_mut().insert(self);
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    paths: &'static PrefixPaths,
    status: u16,
    reason: &'a str,
    error: &'a str,
    description: &'a str,
    login_href: Option<&'a str>,
    heading: Option<&'a str>,
    fix: Option<&'a Fix>,
}

/// Whether the client prefers an HTML page: browsers send `text/html` first in `Accept`;
/// API clients send `application/json`, `*/*` or nothing.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let html = accept.find("text/html");
    let json = accept.find("application/json");
    match (html, json) {
        (Some(h), Some(j)) => h < j,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The answer for a path sfgate does not serve.
pub fn not_found() -> Response {
    ErrorResponse::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
}

/// Turns JSON errors into HTML pages for browsers (their links under sfgate's prefix). A
/// layer of its own rather than `from_fn`, which would box its inner service and its future on
/// every request.
#[derive(Clone, Copy)]
pub struct NegotiateLayer(pub &'static PrefixPaths);

impl<S> Layer<S> for NegotiateLayer {
    type Service = Negotiate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Negotiate {
            inner,
            paths: self.0,
        }
    }
}

/// [`NegotiateLayer`]'s service.
#[derive(Clone)]
pub struct Negotiate<S> {
    inner: S,
    paths: &'static PrefixPaths,
}

impl<S> Service<Request> for Negotiate<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<NegotiateFuture<S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // API clients (no `text/html` first) get the response as it is: nothing to keep for them.
        if !wants_html(request.headers()) {
            return Either::Right(self.inner.call(request));
        }
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        Either::Left(NegotiateFuture {
            inner: self.inner.call(request),
            paths: self.paths,
            path,
        })
    }
}

pin_project! {
    /// [`Negotiate`]'s future for a browser: an error answer becomes its HTML page.
    pub struct NegotiateFuture<F> {
        #[pin]
        inner: F,
        paths: &'static PrefixPaths,
        path: String,
    }
}

impl<F, E> Future for NegotiateFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        Poll::Ready(Ok(as_page(this.paths, this.path, response)))
    }
}

/// `response` as the browser's HTML page if it is an error sfgate answered, else as it is.
fn as_page(paths: &'static PrefixPaths, path: &str, response: Response) -> Response {
    match response.extensions().get::<ErrorResponse>() {
        Some(error) => {
            let mut page = error.to_html_response(paths, path);
            // Keep headers the handler or inner layers set besides the body's own (cookie
            // removal, security headers), unless the page sets its own value.
            for name in response.headers().keys() {
                if name == header::CONTENT_TYPE
                    || name == header::CONTENT_LENGTH
                    || page.headers().contains_key(name)
                {
                    continue;
                }
                for value in response.headers().get_all(name) {
                    page.headers_mut().append(name, value.clone());
                }
            }
            // And extensions: outer layers (request metrics) read markers from them.
            let (parts, _) = response.into_parts();
            page.extensions_mut().extend(parts.extensions);
            page
        }
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_told_apart_from_api_clients() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/html"),
        );
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_html(&h));
    }

    #[test]
    fn bearer_challenge_carries_code_and_sanitised_description() {
        let e = ErrorResponse::new(StatusCode::UNAUTHORIZED, "invalid_token", "bad \"token\"\n")
            .with_bearer_challenge(Some("invalid_token"));
        let r = e.into_response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"sfgate\", error=\"invalid_token\", error_description=\"bad token\""
        );
    }
}
