//! `POST /oauth2/refresh`. An API client sends its `refresh_token` in the body and gets new
//! tokens. A browser (no `refresh_token` in the body) renews its session cookie: the answer
//! carries the renewed cookie and its expiry but never a token, so a script on the page cannot
//! take one; and it is refused when the browser says it comes from another site.

use super::answer::{token_json, with_cookie};
use super::params::body_params;
use crate::auth::login::{Login, LoginError, SessionRenewal};
use crate::auth::session::now_secs;
use crate::auth::Authenticated;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

pub(super) async fn refresh(
    State(login): State<Login>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, LoginError> {
    let params = body_params(&headers, None, &body)?;
    match params.get("refresh_token").filter(|t| !t.is_empty()) {
        Some(token) => {
            let tokens = login
                .refresh_tokens(SecretString::from(token.clone()))
                .await?;
            Ok(token_json(&tokens))
        }
        None => match login.renew_session(&headers).await? {
            SessionRenewal::Renewed(auth) => Ok(renewal_json(auth)),
            // Not a failed login: the renewal's own answer, and the cookie's removal when the
            // session is over.
            SessionRenewal::Refused(e) => {
                let response = e.to_error_response().into_response();
                if e.ends_session() {
                    return Ok(with_cookie(response, login.session_removal()));
                }
                Ok(response)
            }
        },
    }
}

/// The renewed session's expiry, with its cookie but never a token.
fn renewal_json(auth: Authenticated) -> Response {
    let expires_at = auth.session_expires_at.unwrap_or_default();
    let body = serde_json::json!({
        "renewed": true,
        "expires_at": expires_at,
        "expires_in": expires_at.saturating_sub(now_secs()),
        "instance_url": auth.instance.as_str(),
    });
    let response = (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response();
    match auth.renewed_session {
        Some(cookie) => with_cookie(response, cookie),
        None => response,
    }
}
