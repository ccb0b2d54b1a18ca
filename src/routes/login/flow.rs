//! The steps the login routes share (not handlers): confirm who the new tokens belong to, count the login, and answer with tokens or a redirect.

use super::LoginError;
use crate::auth::{AuthError, Confirmed};
use crate::domain::Identity;
use crate::salesforce::TokenSet;
use crate::state::AppState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::sync::Arc;

/// Asks Salesforce who the new token belongs to (which also warms the identity cache for the
/// first protected call) and applies the org allowlist. The signed `id` in the token response
/// must name the same org.
pub(super) async fn confirm_identity(
    state: &AppState,
    tokens: &TokenSet,
) -> Result<Arc<Confirmed>, LoginError> {
    let identity = state
        .auth
        .validator
        .validate(&tokens.instance_url, &tokens.access_token)
        .await?;
    if identity.organization_id != tokens.org_id || identity.user_id != tokens.user_id {
        return Err(LoginError::IdentityMismatch);
    }
    refuse_unless_allowed(state, &identity, tokens).await?;
    Ok(identity)
}

/// The authorization rules that need no path (`SF_ALLOWED_*`, `SF_REQUIRED_PERMISSIONS`,
/// inactive users), applied at login: a refused user gets the refusal page now, and no session
/// cookie. The tokens Salesforce just issued are revoked, so no usable grant is left behind.
async fn refuse_unless_allowed(
    state: &AppState,
    identity: &Confirmed,
    tokens: &TokenSet,
) -> Result<(), LoginError> {
    let auth = &state.auth;
    let refusal = match auth.authorize_user(identity, &tokens.access_token).await {
        Ok(()) => return Ok(()),
        Err(refusal @ AuthError::AccessDenied(_)) => refusal,
        // The profile a rule needs could not be had: fail closed, the grant is left as is.
        Err(e) => return Err(e.into()),
    };
    // Revoking the refresh token revokes the access tokens issued with it.
    let grant = tokens
        .refresh_token
        .as_ref()
        .unwrap_or(&tokens.access_token);
    if let Err(e) = auth.oauth.revoke(grant).await {
        tracing::warn!(error = %e, "could not revoke the tokens of a refused login");
    }
    auth.validator
        .evict(&tokens.instance_url, &tokens.access_token)
        .await;
    Err(LoginError::Auth(refusal))
}

/// Counts the login and names the user in the request's log span from here on.
pub(super) fn login_completed(identity: &Identity) {
    metrics::counter!("sfgate_logins_total", "result" => "completed").increment(1);
    crate::auth::record_caller(identity);
    tracing::info!(user_id = %identity.user_id, org_id = %identity.organization_id, "login completed");
}

pub(super) fn see_other(location: HeaderValue) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// A redirect that must not be cached (it follows a login or carries a cookie).
pub(super) fn see_other_no_store(location: HeaderValue) -> Response {
    let mut response = see_other(location);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

#[derive(Serialize)]
struct TokenJson<'a> {
    access_token: &'a str,
    instance_url: &'a str,
    id: &'a str,
    issued_at: &'a str,
    token_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

/// The token response for API clients, in Salesforce's field names.
pub(super) fn token_json(tokens: &TokenSet) -> Response {
    let body = TokenJson {
        access_token: tokens.access_token.expose_secret(),
        instance_url: tokens.instance_url.as_str(),
        id: &tokens.id,
        issued_at: &tokens.issued_at,
        token_type: &tokens.token_type,
        scope: tokens.scope.as_deref(),
        refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
    };
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response()
}
