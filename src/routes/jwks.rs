//! `/.well-known/jwks.json`: the public key that verifies `X-Sfgate-Assertion`.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The JWKS, cacheable for five minutes: a rotated key is picked up that soon by apps that
/// refetch on an unknown `kid`. Without `ASSERTION_KEY` there is nothing to serve (404).
pub(super) async fn jwks(State(state): State<AppState>) -> Response {
    let Some(signer) = state.assertion.as_ref() else {
        return crate::error::not_found();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        signer.jwks(),
    )
        .into_response()
}
