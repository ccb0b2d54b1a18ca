//! The OAuth callback (the path of `SF_REDIRECT_URI`): checks state against the login cookie,
//! exchanges the code with its PKCE verifier, verifies the response, checks instance and org,
//! and starts the session.
//!
//! Browsers then leave the callback at once (post/redirect/get): a 303 to `return_to` or to the
//! welcome page, so the single-use code leaves the address bar and the history, and reload,
//! Back and Forward show a page instead of "the login cookie is missing". A repeated callback
//! (reload, Back) from a browser that already holds a live session goes to the welcome page
//! too. API clients that ask for JSON get the token response instead.

use super::flow::{
    accepts_json, confirm_identity, login_completed, see_other_no_store, token_json,
};
use super::params::{printable, query_params};
use super::welcome::WELCOME_PATH;
use super::LoginError;
use crate::auth::session::{LoginState, Session, LOGIN_COOKIE, LOGIN_TTL};
use crate::error::wants_html;
use crate::salesforce::TokenSet;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

pub(super) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let clear_login = state.auth.cookies.removal(LOGIN_COOKIE);
    let mut response = match finish_login(&state, &headers, query.as_deref()).await {
        Ok(response) => response,
        Err(e) => {
            let e = e.explain_redirect_uri(state.config.salesforce.redirect_uri.as_str());
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
    let code = callback_code(&params)?;
    let json_caller = accepts_json(headers) && !wants_html(headers);
    let login: LoginState = match state.auth.cookies.open_login(headers) {
        Ok(Some(login)) => login,
        Ok(None) => {
            return already_logged_in(state, headers, json_caller).ok_or_else(|| {
                LoginError::MissingLoginCookie {
                    origin: state.config.public_origin(),
                }
            })
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
        .auth
        .oauth
        .exchange_code(code, Some(&login.pkce_verifier))
        .await;
    let tokens = tokens?;
    let identity = confirm_identity(state, &tokens).await?;
    let session_cookie = state
        .auth
        .cookies
        .seal_session(&Session::new(&tokens, &identity))
        .map_err(|_| LoginError::BadRequest("the session cookie could not be created".into()))?;
    login_completed(&identity);
    Ok(login_answer(
        &login,
        json_caller,
        &tokens,
        session_cookie.cookie,
    ))
}

/// Back where the login started, else tokens for a JSON caller or the welcome page for a
/// browser; with the new session cookie.
fn login_answer(
    login: &LoginState,
    json_caller: bool,
    tokens: &TokenSet,
    session_cookie: HeaderValue,
) -> Response {
    let mut response = match &login.return_to {
        Some(return_to) => see_other_no_store(
            HeaderValue::from_str(return_to.as_str()).unwrap_or(HeaderValue::from_static("/")),
        ),
        None if json_caller => token_json(tokens),
        None => see_other_no_store(HeaderValue::from_static(WELCOME_PATH)),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie);
    response
}

/// The code Salesforce sent, or the refusal it sent instead (never both).
fn callback_code(params: &HashMap<String, String>) -> Result<Option<&String>, LoginError> {
    let code = params.get("code").filter(|c| !c.is_empty());
    let Some(error) = params.get("error") else {
        return Ok(code);
    };
    if code.is_some() {
        return Err(LoginError::CodeAndError);
    }
    Err(LoginError::Denied {
        error: printable(error, 64),
        description: params
            .get("error_description")
            .map(|d| printable(d, 300))
            .unwrap_or_else(|| "no description given".into()),
    })
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
    let live = matches!(state.auth.cookies.open_session(headers), Ok(Some(_)));
    (live && !json_caller).then(|| see_other_no_store(HeaderValue::from_static(WELCOME_PATH)))
}
