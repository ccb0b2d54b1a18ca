//! A panic anywhere below (a handler, a layer, the proxy) becomes a 500 with sfgate's JSON
//! error body (an HTML page for browsers, outside), and the connection keeps serving.
//!
//! Hand-written rather than tower-http's `CatchPanic`, which boxes every response body to give
//! its panic answer the same type: here both are sfgate's own `Body`, so a request costs no
//! allocation for it.

use crate::error::ErrorResponse;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Applies [`CatchPanic`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// Answers 500 for a panic in the inner service's `call` or while its future is polled.
#[derive(Clone, Debug)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S> Service<Request> for CatchPanic<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CatchPanicFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => CatchPanicFuture::Running { future },
            Err(_) => CatchPanicFuture::Panicked,
        }
    }
}

pin_project! {
    /// [`CatchPanic`]'s response future.
    #[project = Projected]
    pub enum CatchPanicFuture<F> {
        Running { #[pin] future: F },
        Panicked,
    }
}

impl<F, E> Future for CatchPanicFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Running { future } => {
                match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(polled) => polled,
                    Err(_) => Poll::Ready(Ok(panic_response())),
                }
            }
            Projected::Panicked => Poll::Ready(Ok(panic_response())),
        }
    }
}

fn panic_response() -> Response {
    // The panic message may hold request data; it is not echoed.
    tracing::error!("a handler panicked");
    ErrorResponse::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "internal error",
    )
    .into_response()
}
