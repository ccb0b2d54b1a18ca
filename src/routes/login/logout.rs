//! `POST /oauth2/logout` and oauth2-proxy's `GET|POST /oauth2/sign_out?rd=`: revokes what it can at Salesforce, evicts the token from the identity
//! cache and clears the session. Local state is cleared even when revocation fails, and the
//! answer says which tokens were revoked.
//!
//! - A browser session: its refresh token is revoked (Salesforce then revokes the access tokens
//!   issued from it); if that fails, its access token.
//! - An API client (`Authorization: Bearer` or the legacy headers): its access token, and the
//!   `refresh_token` it may send in the body (form or JSON).
//!
//! The token is also refused by every replica: at once through Redis when it is reachable,
//! otherwise once Redis returns (kept meanwhile), and in the meantime because the other
//! replicas, unable to hear revocations, check tokens with Salesforce, where it was revoked.
//! The JSON answer says which (`replicas`: `published`, `queued` or `not_shared`).
//!
//! A logout that rides on the session cookie is refused (403, the session kept) when the
//! browser says it comes from another site (see [`crate::auth::origin`]).

use super::params::body_params;
use super::LoginError;
use crate::auth::origin::require_same_origin;
use crate::auth::session::{now_secs, Session, SESSION_COOKIE};
use crate::auth::MAX_LOGOUT_MEMORY;
use crate::auth::{extract_credentials, CredentialSource, Credentials};
use crate::domain::ReturnTo;
use crate::error::wants_html;
use crate::state::AppState;
use crate::store::Shared;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Serialize;
use std::time::Duration;

/// Which token a revocation was for; the answer lists those Salesforce confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum TokenKind {
    AccessToken,
    RefreshToken,
}

/// What the logout achieved at Salesforce.
#[derive(Debug, Default)]
struct Revocation {
    revoked: Vec<TokenKind>,
    /// Why a revocation that was attempted did not succeed.
    failure: Option<String>,
    /// What the other replicas were told.
    replicas: Option<Shared>,
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match log_out(&state, &headers, &body).await {
        Ok(outcome) => answer(&state, &headers, &outcome),
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /oauth2/sign_out?rd=/path`, oauth2-proxy's route: the same logout as
/// `POST /oauth2/logout`, then a redirect (302, as oauth2-proxy answers) to `rd` when it is a
/// same-origin path ([`ReturnTo`], the rule of the login's `return_to`), otherwise to sfgate's
/// home page with the logout notice. `rd` is read from the query or, on a POST, the form.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        // Read before anything is revoked: a bad query changes nothing.
        let rd = body_params(&headers, query.as_deref(), &body)?.remove("rd");
        let outcome = log_out(&state, &headers, &body).await?;
        Ok::<_, LoginError>((rd, outcome))
    }
    .await;
    match result {
        Ok((rd, outcome)) => {
            let location = sign_out_location(rd.as_deref(), &state.config, &outcome);
            let mut response = clear_session(&state, found(&location));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// Where a sign-out lands: a same-origin `rd` as given, otherwise the home page with the notice
/// the logout earned. Anything else (`//evil`, `/\evil`, absolute URLs, control characters,
/// and their encoded forms once the query is decoded) is dropped, never followed.
fn sign_out_location(
    rd: Option<&str>,
    config: &crate::config::Config,
    outcome: &Revocation,
) -> String {
    match rd.and_then(ReturnTo::parse) {
        Some(rd) => rd.as_str().to_owned(),
        None => {
            let notice = if outcome.failure.is_some() {
                "revocation_failed"
            } else {
                "done"
            };
            format!("{}?logout={notice}", config.home_path())
        }
    }
}

/// The logout itself, shared by `/oauth2/logout` and `/oauth2/sign_out`: what the caller holds
/// is revoked at Salesforce and evicted from the cache. The caller clears the cookie.
async fn log_out(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Revocation, LoginError> {
    let credentials = extract_credentials(headers, &state.auth.cookies)
        .ok()
        .flatten();
    let cookie_authenticated = credentials
        .as_ref()
        .is_none_or(|c| c.source == CredentialSource::Session);
    if cookie_authenticated {
        // Before anything is revoked or cleared: a cross-site logout changes nothing.
        require_same_origin(headers, &state.config.public_origin())?;
    }
    // A refresh token is read from the body only, never from the URL (which is logged).
    let params = body_params(headers, None, body)?;
    let body_refresh = params
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.clone()));
    Ok(revoke_and_evict(state, credentials, body_refresh).await)
}

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::FOUND.into_response(),
    }
}

/// Appends the session cookie's removal.
fn clear_session(state: &AppState, mut response: Response) -> Response {
    response.headers_mut().append(
        header::SET_COOKIE,
        state.auth.cookies.removal(SESSION_COOKIE),
    );
    response
}

fn answer(state: &AppState, headers: &HeaderMap, outcome: &Revocation) -> Response {
    let home = state.config.home_path();
    let response = match (&outcome.failure, wants_html(headers)) {
        (None, true) => see_other(&format!("{home}?logout=done")),
        (Some(_), true) => see_other(&format!("{home}?logout=revocation_failed")),
        (None, false) => axum::Json(serde_json::json!({
            "logged_out": true,
            "revoked": outcome.revoked,
            "replicas": outcome.replicas.unwrap_or(Shared::NotShared),
        }))
        .into_response(),
        (Some(reason), false) => axum::Json(serde_json::json!({
            "logged_out": true,
            "revoked": outcome.revoked,
            "replicas": outcome.replicas.unwrap_or(Shared::NotShared),
            "error": "revocation_failed",
            "error_description": format!("the local session was cleared, but Salesforce did not confirm the revocation: {reason}"),
        }))
        .into_response(),
    };
    let mut response = clear_session(state, response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::SEE_OTHER.into_response(),
    }
}

async fn revoke_and_evict(
    state: &AppState,
    credentials: Option<Credentials>,
    body_refresh: Option<SecretString>,
) -> Revocation {
    let mut outcome = Revocation {
        replicas: end_locally(state, credentials.as_ref(), body_refresh.as_ref()).await,
        ..Revocation::default()
    };
    let Some(credentials) = credentials else {
        // No session and no token (or none we can read): nothing of ours to revoke, except a
        // refresh token sent alone.
        if let Some(rt) = body_refresh {
            revoke(state, &rt, TokenKind::RefreshToken, &mut outcome).await;
        }
        return outcome;
    };
    match (&credentials.source, &credentials.session) {
        (
            CredentialSource::Session,
            Some(Session {
                refresh_token: Some(rt),
                ..
            }),
        ) => revoke_session(state, rt, &credentials.token, &mut outcome).await,
        _ => {
            revoke(
                state,
                &credentials.token,
                TokenKind::AccessToken,
                &mut outcome,
            )
            .await;
            if let Some(rt) = body_refresh {
                revoke(state, &rt, TokenKind::RefreshToken, &mut outcome).await;
            }
        }
    }
    outcome
}

/// Ends, for sfgate itself and before Salesforce is asked anything, every credential the
/// logout covers: the access token (evicted and tombstoned), the session's refresh token and a
/// refresh token sent in the body (never renewed with again). Salesforce's revocation may time
/// out or fail while Salesforce still honours the tokens, so a logged-out session must not
/// depend on it to stay logged out. Says what the other replicas were told (`None` when there
/// was nothing to tell them).
async fn end_locally(
    state: &AppState,
    credentials: Option<&Credentials>,
    body_refresh: Option<&SecretString>,
) -> Option<Shared> {
    let mut replicas = None;
    // However long the access token could still be presented: a session's cookie until the
    // session's maximum age; a token the client holds for as long as Salesforce may accept it.
    let session = credentials.and_then(|c| c.session.as_ref());
    let access_keep = session.map_or(MAX_LOGOUT_MEMORY, |session| {
        let ends_at = state.auth.cookies.session_ends_at(session);
        Duration::from_secs(ends_at.saturating_sub(now_secs()).max(1))
    });
    // Refresh tokens first: a replica that hears the access token's tombstone has then heard
    // these too (one ordered channel), so it never renews the session in between.
    if let Some(rt) = session.and_then(|s| s.refresh_token.as_ref()) {
        // The cookie can be replayed until the session's maximum age, no longer.
        replicas = Some(state.auth.renewals.log_out(rt, access_keep).await);
    }
    if let Some(rt) = body_refresh {
        // An API client's refresh token: its age is unknown, so the longest a session lives.
        let keep = state.config.session.max_age;
        replicas = Some(state.auth.renewals.log_out(rt, keep).await);
    }
    if let Some(credentials) = credentials {
        if let Ok(instance) = state
            .config
            .salesforce
            .instance_policy
            .check(&credentials.instance)
        {
            replicas = Some(
                state
                    .auth
                    .validator
                    .evict_for(&instance, &credentials.token, access_keep)
                    .await,
            );
        }
    }
    replicas
}

/// A browser session's logout: its refresh token, which revokes every access token issued from
/// it; if that fails (it may already be gone), its access token.
async fn revoke_session(
    state: &AppState,
    refresh_token: &SecretString,
    access_token: &SecretString,
    outcome: &mut Revocation,
) {
    if revoke(state, refresh_token, TokenKind::RefreshToken, outcome).await {
        outcome.revoked.push(TokenKind::AccessToken);
        return;
    }
    let failure = outcome.failure.take();
    if !revoke(state, access_token, TokenKind::AccessToken, outcome).await {
        outcome.failure = outcome.failure.take().or(failure);
    }
}

/// One revocation at Salesforce, recorded in `outcome`; `true` when Salesforce confirmed it.
async fn revoke(
    state: &AppState,
    token: &SecretString,
    kind: TokenKind,
    outcome: &mut Revocation,
) -> bool {
    match state.auth.oauth.revoke(token).await {
        Ok(()) => {
            tracing::info!(token = ?kind, "logout revoked the token at Salesforce");
            outcome.revoked.push(kind);
            true
        }
        Err(e) => {
            tracing::warn!(token = ?kind, error = %e, "logout could not revoke the token at Salesforce");
            outcome.failure.get_or_insert_with(|| e.to_string());
            false
        }
    }
}
