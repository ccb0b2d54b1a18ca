//! The spans sfgate exports, and the W3C trace context it reads and sends.
//!
//! One server span per request ([`trace_request`], a middleware present only when tracing is
//! on), and one client span per call sfgate makes on the request's behalf: Salesforce
//! ([`salesforce`]), Redis ([`redis`]), the upstream ([`upstream`]). Every attribute is set
//! here, from values that cannot hold a credential: the method, the route template, the path
//! (never the query, which carries OAuth codes and state), status codes, endpoint and operation
//! names, and the user id only with `OTEL_RECORD_USER=true`. No header value is ever copied
//! onto a span, so tokens, cookies, `Authorization` and secrets cannot reach the collector.
//!
//! With tracing off every function here returns [`Span::none`] after one atomic load, and
//! [`trace_request`] is not installed at all.

use super::otel::{enabled, record_user, CALL_TARGET, REQUEST_TARGET};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, Method};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::fmt::Display;
use std::future::Future;
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

tokio::task_local! {
    /// The request's server span, for attributes learnt deep inside the request (the caller).
    static REQUEST_SPAN: Span;
}

/// What the request middleware needs from the configuration.
#[derive(Clone, Copy)]
pub struct RequestTracing {
    /// Only a trusted front proxy's `traceparent` is continued (`TRUST_PROXY`): a client could
    /// otherwise pick trace ids, join other traces, or force sampling on.
    pub trust_proxy: bool,
}

/// The request middleware's settings when tracing is on, `None` when it is off, so that the
/// middleware is not installed at all (`option_layer`). It goes outside the log layer: the
/// log span is then made inside the request span and can name its trace id.
pub fn request_tracing(config: &crate::config::Config) -> Option<RequestTracing> {
    enabled().then_some(RequestTracing {
        trust_proxy: config.server.trust_proxy,
    })
}

/// Runs the request inside its server span and records the answer on it.
pub async fn trace_request(
    State(settings): State<RequestTracing>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let span = tracing::info_span!(
        target: REQUEST_TARGET,
        "request",
        otel.name = %span_name(&method, route.as_deref()),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route.as_deref(),
        url.path = %request.uri().path(),
        http.response.status_code = Empty,
        enduser.id = Empty,
    );
    if settings.trust_proxy && request.headers().contains_key(TRACEPARENT) {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
        let _ = span.set_parent(parent);
    }
    let response = REQUEST_SPAN
        .scope(span.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    response
}

fn span_name(method: &str, route: Option<&str>) -> String {
    match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    }
}

/// The trace id of the current span, for the request's log span (`trace_id` in the logs);
/// `None` when tracing is off.
pub fn current_trace_id() -> Option<String> {
    if !enabled() {
        return None;
    }
    let cx = Span::current().context();
    let span_context = cx.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Names the caller on the request span as `enduser.id`, when `OTEL_RECORD_USER=true`.
pub fn record_user_id(user_id: &dyn Display) {
    if enabled() && record_user() {
        let _ = REQUEST_SPAN.try_with(|span| {
            span.record("enduser.id", tracing::field::display(user_id));
        });
    }
}

/// A call to Salesforce (`endpoint`: `token`, `userinfo`, `introspect`, `revoke`, `jwks`).
pub fn salesforce(endpoint: &'static str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: CALL_TARGET,
        "salesforce",
        otel.name = %format_args!("salesforce {endpoint}"),
        otel.kind = "client",
        otel.status_code = Empty,
        peer.service = "salesforce",
        sfgate.salesforce.endpoint = endpoint,
    )
}

/// A Redis command (`operation`: sfgate's name for it, such as `identity_get`).
pub fn redis(operation: &'static str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: CALL_TARGET,
        "redis",
        otel.name = %format_args!("redis {operation}"),
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = "redis",
        db.operation.name = operation,
    )
}

/// The proxied request to the upstream.
fn upstream(method: &Method) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: CALL_TARGET,
        "upstream",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = %method,
        http.response.status_code = Empty,
    )
}

/// Marks a call span as failed (status Error). A no-op on [`Span::none`].
pub fn mark_error(span: &Span) {
    span.record("otel.status_code", "error");
}

/// Replaces any `traceparent`/`tracestate` in `headers` with the current span's, so the
/// upstream continues sfgate's trace with sfgate's span as the parent. With tracing off the
/// client's own headers pass untouched.
pub fn propagate(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    headers.remove(TRACEPARENT);
    headers.remove(TRACESTATE);
    let cx = Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
    // The propagator writes `tracestate` even when there is none; an empty one is noise.
    if headers.get(TRACESTATE).is_some_and(|v| v.is_empty()) {
        headers.remove(TRACESTATE);
    }
}

/// Awaits `call` inside `span`, marking the span failed when `failed` says so. With tracing
/// off (`span` is [`Span::none`]) the call is awaited as it is.
pub async fn in_call_span<T>(
    span: Span,
    call: impl Future<Output = T>,
    failed: impl FnOnce(&T) -> bool,
) -> T {
    if span.is_none() {
        return call.await;
    }
    let result = call.instrument(span.clone()).await;
    if failed(&result) {
        mark_error(&span);
    }
    result
}

/// Awaits the proxied request inside its [`upstream`] span: the upstream's status on the span,
/// a 5xx or a failure to get an answer marked as an error.
pub async fn upstream_call<E>(
    method: Method,
    call: impl Future<Output = Result<Response, E>>,
) -> Result<Response, E> {
    let span = upstream(&method);
    let result = call.instrument(span.clone()).await;
    match &result {
        Ok(response) => {
            span.record("http.response.status_code", response.status().as_u16());
            if response.status().is_server_error() {
                mark_error(&span);
            }
        }
        Err(_) => mark_error(&span),
    }
    result
}
