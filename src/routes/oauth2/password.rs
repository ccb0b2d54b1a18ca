//! `POST {prefix}/password`: the username-password flow, for testing only and off by default
//! ([`Login::password_grant`]); and the refusal of credentials in URLs on `GET`.

use super::answer::token_json;
use super::params::body_params;
use crate::auth::login::{Login, LoginError};
use crate::error::ErrorResponse;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

pub(super) async fn password(
    State(login): State<Login>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, LoginError> {
    login.require_password_flow()?;
    // Credentials are read from the body only, never from the URL.
    let params = body_params(&headers, None, &body)?;
    let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
        return Err(LoginError::BadRequest(
            "`username` and `password` are required in the body".into(),
        ));
    };
    let tokens = login
        .password_grant(username, &SecretString::from(password.clone()))
        .await?;
    Ok(token_json(&tokens))
}

/// GET on the password routes: the Node.js app took credentials in the URL, where they end up
/// in logs and browser history. Say why that no longer works.
pub(super) async fn password_via_get(State(login): State<Login>) -> Response {
    let mut response = ErrorResponse::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "credentials never go in URLs: POST username and password as a form or JSON body to {}",
            login.paths().password
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}
