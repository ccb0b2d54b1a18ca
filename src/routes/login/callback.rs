//! The OAuth callback (the path of `SF_REDIRECT_URI`): checks state against the login cookie,
//! exchanges the code with its PKCE verifier, verifies the response, checks instance and org,
//! and starts the session.
//!
//! Browsers then leave the callback at once (post/redirect/get): a 303 to `return_to` or to the
//! welcome page, so the single-use code leaves the address bar and the history, and reload,
//! Back and Forward show a page instead of "the login cookie is missing". A repeated callback
//! (reload, Back) from a browser that already holds a live session goes to the welcome page
//! too. API clients that ask for JSON get the token response instead.

use super::params::{printable, query_params};
use super::LoginError;
use crate::auth::session::{LoginState, Session, SessionUser, LOGIN_COOKIE, LOGIN_TTL};
use crate::auth::{AuthError, Confirmed};
use crate::error::wants_html;
use crate::salesforce::{Identity, TokenSet};
use crate::state::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub(super) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let clear_login = state.cookies.removal(LOGIN_COOKIE);
    let mut response = match finish_login(&state, &headers, query.as_deref()).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %e, "login failed");
            e.into_response()
        }
    };
    // Success or failure, this login attempt is over.
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_login);
    response
}

async fn finish_login(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, LoginError> {
    let params = query_params(query)?;
    let code = params.get("code").filter(|c| !c.is_empty());
    if let Some(error) = params.get("error") {
        if code.is_some() {
            return Err(LoginError::CodeAndError);
        }
        return Err(LoginError::Denied {
            error: printable(error, 64),
            description: params
                .get("error_description")
                .map(|d| printable(d, 300))
                .unwrap_or_else(|| "no description given".into()),
        });
    }
    let json_caller = accepts_json(headers) && !wants_html(headers);
    let login: LoginState = match state.cookies.open(headers, LOGIN_COOKIE) {
        Ok(Some(login)) => login,
        Ok(None) => {
            return already_logged_in(state, headers, json_caller)
                .ok_or(LoginError::MissingLoginCookie)
        }
        Err(e) => return Err(LoginError::BadLoginCookie(e)),
    };
    let returned_state = params.get("state").ok_or(LoginError::MissingState)?;
    if !bool::from(returned_state.as_bytes().ct_eq(login.state.as_bytes())) {
        return Err(LoginError::StateMismatch);
    }
    let code = code.ok_or(LoginError::MissingCode)?;
    if !claim_state(state, &login.state).await {
        return already_logged_in(state, headers, json_caller).ok_or(LoginError::StateReplayed);
    }

    let tokens = state
        .oauth
        .exchange_code(code, Some(&login.pkce_verifier))
        .await;
    record_salesforce_call(state, "token", &tokens);
    let tokens = tokens?;
    let identity = confirm_identity(state, &tokens).await?;
    let session = Session::new(&tokens, &identity);
    let session_cookie = state
        .cookies
        .seal_session(&session)
        .ok_or_else(|| LoginError::BadRequest("the session cookie could not be created".into()))?;
    login_completed(&identity);

    let mut response = match &login.return_to {
        Some(return_to) => see_other(
            HeaderValue::from_str(return_to.as_str()).unwrap_or(HeaderValue::from_static("/")),
        ),
        None if json_caller => token_json(&tokens),
        None => see_other(HeaderValue::from_static(WELCOME_PATH)),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie.cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Marks the login's `state` as used, atomically: of concurrent callbacks with the same state,
/// exactly one gets `true` (moka's entry API inserts once and says which caller inserted).
async fn claim_state(state: &AppState, login_state: &str) -> bool {
    let digest: [u8; 32] = Sha256::digest(login_state.as_bytes()).into();
    // [store] Single use, on this replica and (with REDIS_URL) on all of them.
    state
        .store
        .claim_login_state(&state.used_states, digest, LOGIN_TTL)
        .await
}

/// A callback that cannot start a login (no login cookie any more, or its state already used),
/// from a browser that is logged in: the reload of a completed callback, or Back to it. Such a
/// browser goes to the welcome page; API clients and browsers without a session get the error.
fn already_logged_in(state: &AppState, headers: &HeaderMap, json_caller: bool) -> Option<Response> {
    let live = matches!(state.cookies.open_session(headers), Ok(Some(_)));
    (live && !json_caller).then(|| {
        let mut response = see_other(HeaderValue::from_static(WELCOME_PATH));
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    })
}

fn see_other(location: HeaderValue) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Counts the login and names the user in the request's log span from here on.
pub(super) fn login_completed(identity: &Identity) {
    metrics::counter!("sfgate_logins_total", "result" => "completed").increment(1);
    let span = tracing::Span::current();
    span.record("user_id", tracing::field::display(&identity.user_id));
    span.record("org_id", tracing::field::display(&identity.organization_id));
    tracing::info!(user_id = %identity.user_id, org_id = %identity.organization_id, "login completed");
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

pub(super) fn record_salesforce_call<T>(
    state: &AppState,
    endpoint: &'static str,
    result: &Result<T, crate::salesforce::SalesforceError>,
) {
    let error = match result {
        Err(e) if e.is_transient() => Some(e.to_string()),
        _ => None,
    };
    state.readiness.record(endpoint, error);
}

/// Asks Salesforce who the new token belongs to (which also warms the identity cache for the
/// first protected call) and applies the org allowlist. The signed `id` in the token response
/// must name the same org.
pub(super) async fn confirm_identity(
    state: &AppState,
    tokens: &TokenSet,
) -> Result<Arc<Confirmed>, LoginError> {
    // Salesforce named this instance in a signed token response: its failures are real ones.
    state.readiness.trust_instance(&tokens.instance_url);
    let identity = state
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
    let policy = &state.config.policy;
    let verdict = if policy.needs_profile() && !identity.has_profile() {
        let complete = state
            .validator
            .require_profile(identity, &tokens.access_token)
            .await?;
        policy.check_user(&complete)
    } else {
        policy.check_user(identity)
    };
    let Err(refusal) = verdict else {
        return Ok(());
    };
    metrics::counter!("sfgate_authorization_refusals_total", "rule" => refusal.label())
        .increment(1);
    tracing::info!(
        user_id = %identity.user_id,
        rule = refusal.label(),
        "login refused by the authorization policy"
    );
    // Revoking the refresh token revokes the access tokens issued with it.
    let grant = tokens
        .refresh_token
        .as_ref()
        .unwrap_or(&tokens.access_token);
    if let Err(e) = state.oauth.revoke(grant).await {
        tracing::warn!(error = %e, "could not revoke the tokens of a refused login");
    }
    state
        .validator
        .evict(&tokens.instance_url, &tokens.access_token)
        .await;
    Err(LoginError::Auth(AuthError::AccessDenied(refusal)))
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

/// Where browsers land after logging in: a page rendered from the session cookie alone.
pub const WELCOME_PATH: &str = "/oauth2/welcome";

#[derive(Template)]
#[template(path = "success.html")]
struct SuccessPage<'a> {
    user: &'a SessionUser,
    instance_url: &'a str,
    access_token: Option<&'a str>,
    curl: Option<String>,
}

/// `GET /oauth2/welcome`: who is logged in, and (outside gateway mode) the access token with a
/// curl line to try it. Never cached; it carries no refresh token. In gateway mode the app
/// shares sfgate's origin, so the page shows no token a script of the app could read. Without
/// a session it sends the browser home.
pub(super) async fn welcome(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Ok(Some(session)) = state.cookies.open_session(&headers) else {
        return see_other(HeaderValue::from_static("/"));
    };
    let access_token = state
        .upstream
        .is_none()
        .then(|| session.access_token.expose_secret());
    let curl = access_token.map(|token| {
        crate::shell_examples::api_me_literal(
            &state.config.public_origin(),
            token,
            session.instance_url.as_str(),
        )
    });
    let page = SuccessPage {
        user: &session.user,
        instance_url: &session.instance_url,
        access_token,
        curl,
    };
    match page.render() {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "welcome page failed to render");
            crate::error::ErrorResponse::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the page could not be rendered",
            )
            .into_response()
        }
    }
}
