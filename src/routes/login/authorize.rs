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
    let redirect_uri = &state.config.salesforce.redirect_uri;
    if let Some(there) = super::login_host::redirect_to_callback_host(redirect_uri, &headers, &uri)
    {
        return Ok(moved_to(&there));
    }
    let params = query_params(query.as_deref())?;
    let prompt = params
        .get("prompt")
        .map(|p| validate_prompt(p))
        .transpose()?;
    let login_hint = params
        .get("login_hint")
        .map(|h| validate_login_hint(h))
        .transpose()?;
    let return_to = params.get("return_to").and_then(|r| ReturnTo::parse(r));

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
