//! A cap on the total size of request headers.
//!
//! hyper refuses a header section larger than its read buffer (about 400 KB) with 431, but
//! accepts anything below that. Nothing legitimate sent to sfgate comes near [`MAX_HEADER_BYTES`]
//! (the session cookie is a few KB), while huge headers cost memory on every hop, and would be
//! passed on to the upstream application by the proxy. So anything larger is refused here with
//! 431 Request Header Fields Too Large, before any handler or the proxy sees it.

use crate::error::ErrorResponse;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use std::future::{ready, Ready};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Total bytes of header names and values (plus ": " and CRLF per line) sfgate accepts.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Applies [`HeaderLimit`]. A layer of its own rather than `from_fn`, which would box its
/// inner service and its future on every request for what is one sum over the headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeaderLimitLayer;

impl<S> Layer<S> for HeaderLimitLayer {
    type Service = HeaderLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HeaderLimit { inner }
    }
}

/// 431 for requests whose headers exceed [`MAX_HEADER_BYTES`]; the rest pass untouched.
#[derive(Clone, Debug)]
pub struct HeaderLimit<S> {
    inner: S,
}

impl<S> Service<Request> for HeaderLimit<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let size: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if size > MAX_HEADER_BYTES {
            tracing::warn!(size, "request headers too large");
            return Either::Left(ready(Ok(refusal())));
        }
        Either::Right(self.inner.call(request))
    }
}

fn refusal() -> Response {
    ErrorResponse::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request_header_fields_too_large",
        format!("request headers may total at most {MAX_HEADER_BYTES} bytes"),
    )
    .into_response()
}
