//! Counts and times every request by matched route (`sfgate_http_requests_total`,
//! `sfgate_http_request_duration_seconds`).

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// Middleware: counts and times every request by matched route.
///
/// Runs after routing (added with `Router::layer`), so `MatchedPath` is there; requests the
/// gateway-mode proxy answered are labelled `proxy`, and requests nothing matched (404s)
/// share the label `unmatched`.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let route = if response.extensions().get::<super::Proxied>().is_some() {
        "proxy".to_owned()
    } else {
        route
    };
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "sfgate_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "sfgate_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"PURGE").expect("method");
        assert_eq!(method_label(&odd), "other");
    }
}
