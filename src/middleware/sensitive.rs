//! Credentials marked sensitive on their way through: the request's `Authorization`, legacy
//! `bearer`, `Proxy-Authorization` and `Cookie`, and the answer's `Set-Cookie`.
//!
//! A sensitive value is printed as `Sensitive` by `Debug` (so a logged header map shows no
//! token) and never enters an HTTP/2 compression table (HPACK's never-indexed form), where a
//! later stream could probe for it. Marked by one walk over each map, comparing names: a
//! lookup per name costs a hash and may grow the map (measured: about 1 300 instructions per
//! request for four names, where the walk costs about a tenth of that).

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName};
use axum::response::Response;
use futures_util::future::{FutureExt, Map};
use std::task::{Context, Poll};
use tower::{Layer, Service};

use crate::headers::LEGACY_BEARER;

/// Applies [`Sensitive`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SensitiveLayer;

impl<S> Layer<S> for SensitiveLayer {
    type Service = Sensitive<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Sensitive { inner }
    }
}

/// Marks credentials sensitive in the request before it goes in, and in the answer after.
#[derive(Clone, Debug)]
pub struct Sensitive<S> {
    inner: S,
}

/// The answer as the inner service gives it, with `Set-Cookie` marked.
type Marked<E> = fn(Result<Response, E>) -> Result<Response, E>;

impl<S> Service<Request> for Sensitive<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Map<S::Future, Marked<S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        mark(request.headers_mut(), is_request_credential);
        self.inner.call(request).map(|answer| {
            answer.map(|mut response| {
                mark(response.headers_mut(), |name| name == header::SET_COOKIE);
                response
            })
        })
    }
}

fn is_request_credential(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION
        || name == header::COOKIE
        || name == header::PROXY_AUTHORIZATION
        || name == LEGACY_BEARER
}

/// Marks every value (repeated lines too) of the names `credential` picks.
fn mark(headers: &mut HeaderMap, credential: impl Fn(&HeaderName) -> bool) {
    for (name, value) in headers.iter_mut() {
        if credential(name) {
            value.set_sensitive(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::HeaderValue;
    use std::convert::Infallible;
    use tower::ServiceExt;

    #[tokio::test]
    async fn credentials_are_marked_both_ways_and_nothing_else() {
        let inner = tower::service_fn(|request: Request| async move {
            let marked: Vec<(String, bool)> = request
                .headers()
                .iter()
                .map(|(name, value)| (name.to_string(), value.is_sensitive()))
                .collect();
            let mut response = Response::new(Body::empty());
            for value in ["a=1", "b=2"] {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, HeaderValue::from_static(value));
            }
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            let body = serde_json::to_string(&marked).unwrap_or_default();
            response.headers_mut().insert(
                "x-marked",
                HeaderValue::from_str(&body).unwrap_or(HeaderValue::from_static("")),
            );
            Ok::<_, Infallible>(response)
        });
        let mut request = Request::new(Body::empty());
        for (name, value) in [
            ("authorization", "Bearer t"),
            ("Bearer", "t"),
            ("proxy-authorization", "Basic x"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x-instance-url", "https://a.my.salesforce.com"),
            ("accept", "*/*"),
        ] {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_static(value),
            );
        }
        let response = SensitiveLayer
            .layer(inner)
            .oneshot(request)
            .await
            .expect("answer");
        let marked: Vec<(String, bool)> = serde_json::from_slice(
            response
                .headers()
                .get("x-marked")
                .expect("marked")
                .as_bytes(),
        )
        .expect("json");
        let expected: Vec<(String, bool)> = [
            ("authorization", true),
            ("bearer", true),
            ("proxy-authorization", true),
            ("cookie", true),
            ("cookie", true),
            ("x-instance-url", false),
            ("accept", false),
        ]
        .iter()
        .map(|(n, s)| (n.to_string(), *s))
        .collect();
        assert_eq!(marked, expected);
        let set_cookies: Vec<bool> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(HeaderValue::is_sensitive)
            .collect();
        assert_eq!(set_cookies, [true, true]);
        assert!(!response.headers()[header::CONTENT_TYPE].is_sensitive());
    }
}
