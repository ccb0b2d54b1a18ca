//! The shapes the login routes answer in: redirects that must not be cached, and the token
//! response for API clients.

use crate::salesforce::TokenSet;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;

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

/// `response` with `cookie` appended (`Set-Cookie`).
pub(super) fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
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
