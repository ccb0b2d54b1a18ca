//! `POST /oauth2/logout`: revokes the token at Salesforce, evicts it from the identity cache and
//! clears the session. Local state is cleared even when revocation fails, and the answer says so.

use crate::auth::session::{Session, SESSION_COOKIE};
use crate::auth::{extract_credentials, CredentialSource};
use crate::error::wants_html;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

pub(super) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let outcome = revoke_and_evict(&state, &headers).await;
    let html = wants_html(&headers);
    let mut response = match (&outcome, html) {
        (Ok(_), true) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/?logout=done")]).into_response(),
        (Ok(_), false) => StatusCode::NO_CONTENT.into_response(),
        (Err(_), true) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/?logout=revocation_failed")]).into_response(),
        (Err(reason), false) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "logged_out": true,
                "revoked": false,
                "error": "revocation_failed",
                "error_description": format!("the local session was cleared, but Salesforce did not confirm the revocation: {reason}"),
            })),
        )
            .into_response(),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.cookies.removal(SESSION_COOKIE));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `Ok(false)` when there was nothing to revoke.
async fn revoke_and_evict(state: &AppState, headers: &HeaderMap) -> Result<bool, String> {
    let credentials = match extract_credentials(headers, &state.cookies) {
        Ok(Some(c)) => c,
        // No session, or one we cannot read: there is nothing of ours to revoke.
        Ok(None) | Err(_) => return Ok(false),
    };
    if let Ok(instance) = state.config.instance_policy.check(&credentials.instance) {
        state.validator.evict(&instance, &credentials.token).await;
    }
    // Revoking the refresh token revokes every access token issued from it.
    let token: SecretString = match (&credentials.source, &credentials.session) {
        (
            CredentialSource::Session,
            Some(Session {
                refresh_token: Some(rt),
                ..
            }),
        ) => rt.clone(),
        _ => credentials.token.clone(),
    };
    let mut result = state.oauth.revoke(&token).await;
    if result.is_err()
        && credentials
            .session
            .as_ref()
            .is_some_and(|s| s.refresh_token.is_some())
    {
        // The refresh token may already be gone; the access token itself can still be revoked.
        result = state.oauth.revoke(&credentials.token).await;
    }
    let failure = match &result {
        Err(e) if e.is_transient() => Some(e.to_string()),
        _ => None,
    };
    state.readiness.record("revoke", failure);
    match result {
        Ok(()) => {
            tracing::info!("logout revoked the token at Salesforce");
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(error = %e, "logout could not revoke the token at Salesforce");
            Err(e.to_string())
        }
    }
}
