//! What every request gets on its way in and out, in one layer: its id (the client's when
//! acceptable, a fresh one otherwise; sent on to the upstream and back to the client), its log
//! span and `request finished` line, and its metrics.
//!
//! One hand-written layer rather than five (an id sanitiser, tower-http's id setter and
//! propagator, its trace layer and a metrics middleware): `axum::middleware::from_fn` boxes its
//! inner service and its future on every request, and the trace layer wraps every response
//! body; here a request costs one clock read at each end, one header lookup and no allocation
//! beyond the id. With the log level above `info` no span is created and nothing is formatted.

use super::request_id::{self, REQUEST_ID};
use super::request_metrics;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};
use tracing::Span;

/// Applies [`Observe`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

/// See the module documentation. Added with `Router::layer`, so it runs after routing and
/// sees the matched route.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

impl<S, B> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id::ensure(request.headers_mut());
        let span = crate::telemetry::log_span(&request, &id);
        let method = request_metrics::method_label(request.method());
        let matched = request.extensions().get::<MatchedPath>().cloned();
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ObserveFuture {
            inner,
            span,
            started,
            method,
            matched,
            id: Some(id),
        }
    }
}

pin_project! {
    /// [`Observe`]'s response future: the inner future polled inside the request's span.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        started: Instant,
        method: &'static str,
        matched: Option<MatchedPath>,
        id: Option<HeaderValue>,
    }
}

impl<F, B, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut response = match ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let latency = this.started.elapsed();
        // The client sees the id it is logged under, unless the upstream app answered with
        // one of its own.
        if let Some(id) = this.id.take() {
            if !response.headers().contains_key(&REQUEST_ID) {
                response.headers_mut().insert(REQUEST_ID, id);
            }
        }
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = round_ms(latency),
            "request finished"
        );
        request_metrics::record_response(
            this.method,
            this.matched.as_ref(),
            &response,
            latency.as_secs_f64(),
        );
        Poll::Ready(Ok(response))
    }
}

/// Milliseconds with two decimals: `0.07`, not `0.06669900000000001`. Finer digits are noise
/// in a request log, and a long float is hard to read.
pub fn round_ms(latency: std::time::Duration) -> f64 {
    (latency.as_secs_f64() * 100_000.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::round_ms;
    use std::time::Duration;

    #[test]
    fn latencies_are_logged_in_milliseconds_with_two_decimals() {
        assert_eq!(round_ms(Duration::from_nanos(66_699)).to_string(), "0.07");
        assert_eq!(
            round_ms(Duration::from_micros(1_234_567)).to_string(),
            "1234.57"
        );
        assert_eq!(round_ms(Duration::ZERO).to_string(), "0");
    }
}
