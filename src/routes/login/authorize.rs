//! `GET /oauth2/authorize`: starts a login. A fresh `state` and PKCE verifier go into a sealed
//! 10-minute cookie (so any replica can finish the flow) and the browser goes to Salesforce.
//! A browser on another loopback name of this listener is first sent to the redirect URI's
//! (see [`super::login_host`]), where the callback will look for that cookie.

use super::params::query_params;
use super::LoginError;
use crate::auth::session::LoginState;
use crate::domain::ReturnTo;
use crate::state::AppState;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const PROMPTS: &[&str] = &["login", "consent", "select_account"];

pub(super) async fn authorize(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, LoginError> {
    if let Some(moved) = to_callback_host(&state, &headers, &uri) {
        return Ok(moved);
    }
    begin(&state, query.as_deref(), "return_to")
}

/// `GET /oauth2/start?rd=/path`: oauth2-proxy's name for the same start, with the return path
/// as `rd` (the same-site rule of `return_to` applies). nginx's `error_page 401 =
/// /oauth2/start?rd=$request_uri` and forward auth's redirect for Traefik and Caddy land here.
pub(super) async fn start(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, LoginError> {
    if let Some(moved) = to_callback_host(&state, &headers, &uri) {
        return Ok(moved);
    }
    begin(&state, query.as_deref(), "rd")
}

/// A login started on another loopback name of this listener first moves to the redirect
/// URI's host, where the callback will look for the login cookie.
fn to_callback_host(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Option<Response> {
    let redirect_uri = &state.config.salesforce.redirect_uri;
    super::login_host::redirect_to_callback_host(redirect_uri, headers, uri)
        .map(|there| moved_to(&there))
}

/// Starts a login that returns to the path in the query parameter `return_key`.
fn begin(state: &AppState, query: Option<&str>, return_key: &str) -> Result<Response, LoginError> {
    let params = query_params(query)?;
    let prompt = params
        .get("prompt")
        .map(|p| validate_prompt(p))
        .transpose()?;
    let login_hint = params
        .get("login_hint")
        .map(|h| validate_login_hint(h))
        .transpose()?;
    let return_to = params.get(return_key).and_then(|r| ReturnTo::parse(r));

    let redirect = state.auth.oauth.authorize_redirect(prompt, login_hint);
    let login = LoginState {
        state: redirect.state,
        pkce_verifier: redirect.pkce_verifier,
        return_to,
    };
    let cookie = state
        .auth
        .cookies
        .seal_login(&login)
        .map_err(|_| LoginError::BadRequest("the login cookie could not be created".into()))?;
    let location = HeaderValue::from_str(redirect.url.as_str())
        .map_err(|_| LoginError::BadRequest("the login URL could not be built".into()))?;
    metrics::counter!("sfgate_logins_total", "result" => "started").increment(1);
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// The same request on the redirect URI's origin; nothing is set here.
fn moved_to(there: &str) -> Response {
    match HeaderValue::from_str(there) {
        Ok(location) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => LoginError::BadRequest("the login URL could not be built".into()).into_response(),
    }
}

fn validate_prompt(raw: &str) -> Result<&str, LoginError> {
    if !raw.is_empty() && raw.split(' ').all(|p| PROMPTS.contains(&p)) {
        Ok(raw)
    } else {
        Err(LoginError::BadRequest(format!(
            "prompt must be one or more of {} separated by spaces",
            PROMPTS.join(", ")
        )))
    }
}

fn validate_login_hint(raw: &str) -> Result<&str, LoginError> {
    if !raw.is_empty() && raw.len() <= 256 && !raw.chars().any(char::is_control) {
        Ok(raw)
    } else {
        Err(LoginError::BadRequest(
            "login_hint must be a user name of at most 256 characters".into(),
        ))
    }
}
