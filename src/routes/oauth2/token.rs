//! `POST /oauth2/token`: the Node.js app's code exchange for API clients
//! ([`Login::exchange_code`]).

use super::answer::token_json;
use super::params::body_params;
use crate::auth::login::{Login, LoginError};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

pub(super) async fn token(
    State(login): State<Login>,
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
    let tokens = login.exchange_code(code, verifier).await?;
    Ok(token_json(&tokens))
}
