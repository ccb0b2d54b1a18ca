//! Token routes for API clients: the Node.js app's `/oauth2/token` and password flow, and
//! `/oauth2/refresh`.

use super::flow::{confirm_identity, login_completed, token_json};
use super::params::body_params;
use super::LoginError;
use crate::auth::origin::require_same_origin;
use crate::auth::session::{now_secs, Session, SESSION_COOKIE};
use crate::auth::{record_identity, AuthError};
use crate::error::ErrorResponse;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

/// `POST /oauth2/token`: exchanges a code obtained by an app that ran the authorize step itself,
/// for the configured redirect URI, keeping the client secret on the server.
pub(super) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, LoginError> {
    let params = body_params(&headers, query.as_deref(), &body)?;
    let code = params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| LoginError::BadRequest("`code` is required".into()))?;
    let verifier = params
        .get("code_verifier")
        .map(String::as_str)
        .filter(|v| !v.is_empty());
    let tokens = state.auth.oauth.exchange_code(code, verifier).await;
    let tokens = tokens?;
    let identity = confirm_identity(&state, &tokens).await?;
    login_completed(&identity);
    Ok(token_json(&tokens))
}

/// `POST /oauth2/password`: the username-password flow, for testing only and off by default.
pub(super) async fn password(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, LoginError> {
    if !state.config.salesforce.enable_password_flow {
        return Err(LoginError::PasswordFlowDisabled);
    }
    // Credentials are read from the body only, never from the URL.
    let params = body_params(&headers, None, &body)?;
    let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
        return Err(LoginError::BadRequest(
            "`username` and `password` are required in the body".into(),
        ));
    };
    let tokens = state
        .auth
        .oauth
        .password(username, &SecretString::from(password.clone()))
        .await;
    let tokens = tokens?;
    let identity = confirm_identity(&state, &tokens).await?;
    login_completed(&identity);
    Ok(token_json(&tokens))
}

/// GET on the password routes: the Node.js app took credentials in the URL, where they end up
/// in logs and browser history. Say why that no longer works.
pub(super) async fn password_via_get() -> Response {
    let mut response = ErrorResponse::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "credentials never go in URLs: POST username and password as a form or JSON body to /oauth2/password",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}

/// `POST /oauth2/refresh`. An API client sends its `refresh_token` in the body and gets new
/// tokens. A browser (no `refresh_token` in the body) renews its session cookie: the answer
/// carries the renewed cookie and its expiry but never a token, so a script on the page cannot
/// take one; and it is refused when the browser says it comes from another site.
pub(super) async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, LoginError> {
    let params = body_params(&headers, None, &body)?;
    match params.get("refresh_token").filter(|t| !t.is_empty()) {
        Some(token) => refresh_for_client(&state, SecretString::from(token.clone())).await,
        None => refresh_session(&state, &headers).await,
    }
}

async fn refresh_for_client(
    state: &AppState,
    refresh_token: SecretString,
) -> Result<Response, LoginError> {
    // Logged out through sfgate: refused whatever Salesforce would say (see `Renewals::log_out`).
    if state.auth.renewals.is_logged_out(&refresh_token) {
        return Err(LoginError::RefreshRejected {
            error: "invalid_grant".into(),
            description: "this refresh token was logged out".into(),
        });
    }
    let tokens = state.auth.oauth.refresh(&refresh_token).await;
    let tokens = tokens.map_err(LoginError::refresh_failed)?;
    let identity = confirm_identity(state, &tokens).await?;
    crate::auth::record_caller(&identity);
    Ok(token_json(&tokens))
}

/// The session's renewal, on request: the same shared renewal as the identity layer's.
async fn refresh_session(state: &AppState, headers: &HeaderMap) -> Result<Response, LoginError> {
    require_same_origin(headers, &state.config.public_origin())?;
    let session: Session = state
        .auth
        .cookies
        .open_session(headers)
        .map_err(|e| LoginError::Auth(AuthError::BadSession(e)))?
        .ok_or_else(|| {
            LoginError::BadRequest(
                "send `refresh_token` in the body, or call with a session cookie".into(),
            )
        })?;
    if session.refresh_token.is_none() {
        return Err(LoginError::BadRequest(
            "this session has no refresh token (the refresh_token scope was not granted)".into(),
        ));
    }
    let auth = match state.auth.renew_session(&session).await {
        Ok(auth) => auth,
        Err(e) => {
            let mut response = e.to_error_response().into_response();
            if e.ends_session() {
                response.headers_mut().append(
                    header::SET_COOKIE,
                    state.auth.cookies.removal(SESSION_COOKIE),
                );
            }
            return Ok(response);
        }
    };
    record_identity(&auth);
    Ok(renewal_json(auth))
}

/// The renewed session's expiry, with its cookie but never a token.
fn renewal_json(auth: crate::auth::Authenticated) -> Response {
    let expires_at = auth.session_expires_at.unwrap_or_default();
    let body = serde_json::json!({
        "renewed": true,
        "expires_at": expires_at,
        "expires_in": expires_at.saturating_sub(now_secs()),
        "instance_url": auth.instance.as_str(),
    });
    let mut response = (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response();
    if let Some(cookie) = auth.renewed_session {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
