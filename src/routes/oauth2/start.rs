//! `GET /oauth2/authorize` and `GET /oauth2/start`: start a login ([`Login::start`]).

use super::params::query_params;
use crate::auth::login::{Login, LoginError};
use crate::domain::ReturnTo;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `GET /oauth2/authorize?return_to=/path`.
pub(super) async fn authorize(
    State(login): State<Login>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, LoginError> {
    if let Some(there) = login.callback_host(&headers, &uri) {
        return Ok(moved_to(&there));
    }
    begin(&login, query.as_deref(), "return_to")
}

/// `GET /oauth2/start?rd=/path`: oauth2-proxy's name for the same start, with the return path
/// as `rd` (the same-site rule of `return_to` applies). nginx's `error_page 401 =
/// /oauth2/start?rd=$request_uri` and forward auth's redirect for Traefik and Caddy land here.
pub(super) async fn start(
    State(login): State<Login>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, LoginError> {
    if let Some(there) = login.callback_host(&headers, &uri) {
        return Ok(moved_to(&there));
    }
    begin(&login, query.as_deref(), "rd")
}

/// Starts a login that returns to the path in the query parameter `return_key`: to
/// Salesforce, with the login cookie, never cached.
fn begin(login: &Login, query: Option<&str>, return_key: &str) -> Result<Response, LoginError> {
    let params = query_params(query)?;
    let started = login.start(
        params.get("prompt").map(String::as_str),
        params.get("login_hint").map(String::as_str),
        params.get(return_key).and_then(|r| ReturnTo::parse(r)),
    )?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, started.location),
            (header::SET_COOKIE, started.login_cookie),
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
