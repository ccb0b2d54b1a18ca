//! `GET /metrics`: what the process's recorder ([`crate::telemetry::metrics`]) holds, as
//! Prometheus text.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

/// `GET /metrics`: Prometheus text. With `METRICS_TOKEN` set, only `Authorization: Bearer
/// <token>` may read it (compared in constant time); metrics reveal traffic and org activity.
pub(super) async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.config.server.metrics_token {
        if !bearer_matches(&headers, expected.expose_secret()) {
            let mut response = crate::error::ErrorResponse::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "metrics need Authorization: Bearer <METRICS_TOKEN>",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sfgate-metrics\""),
            );
            return response;
        }
    }
    metrics::gauge!("sfgate_identity_cache_entries").set(state.auth.cached_identities() as f64);
    for (set, figures) in state.auth.remembered_logouts() {
        metrics::gauge!("sfgate_logouts_remembered", "set" => set).set(figures.entries as f64);
        metrics::gauge!("sfgate_logouts_remembered_bytes", "set" => set).set(figures.bytes as f64);
        metrics::gauge!("sfgate_logouts_forgotten_in_force_seconds", "set" => set)
            .set(figures.forgotten_in_force.as_secs_f64());
    }
    crate::telemetry::allocator::record();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        state.metrics.render(),
    )
        .into_response()
}

fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Some(token) = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) else {
        return false;
    };
    // `ct_eq` on slices of different lengths is false without looking at the contents; the
    // length of the configured token is not a secret worth hiding.
    bool::from(token.trim().as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_opens_metrics() {
        let mut h = HeaderMap::new();
        assert!(!bearer_matches(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(bearer_matches(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cre"),
        );
        assert!(!bearer_matches(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic s3cret"),
        );
        assert!(!bearer_matches(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(!bearer_matches(&h, "s3cret"));
    }
}
