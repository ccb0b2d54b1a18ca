//! `POST /oauth2/logout` and oauth2-proxy's `GET|POST /oauth2/sign_out?rd=`: the logout
//! ([`Login::log_out`]), then the session cookie's removal and an answer that says which
//! tokens were revoked.

use super::params::body_params;
use crate::auth::login::{Login, LoginError, Revocation};
use crate::error::wants_html;
use crate::store::Shared;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

pub(super) async fn logout(
    State(login): State<Login>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match log_out(&login, &headers, &body).await {
        Ok(outcome) => answer(&login, &headers, &outcome),
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /oauth2/sign_out?rd=/path`, oauth2-proxy's route: the same logout as
/// `POST /oauth2/logout`, then a redirect (302, as oauth2-proxy answers) to `rd` when it is a
/// same-origin path ([`crate::domain::ReturnTo`], the rule of the login's `return_to`),
/// otherwise to sfgate's home page with the logout notice. `rd` is read from the query or, on
/// a POST, the form.
pub(super) async fn sign_out(
    State(login): State<Login>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        // Read before anything is revoked: a bad query changes nothing.
        let rd = body_params(&headers, query.as_deref(), &body)?.remove("rd");
        let outcome = log_out(&login, &headers, &body).await?;
        Ok::<_, LoginError>((rd, outcome))
    }
    .await;
    match result {
        Ok((rd, outcome)) => {
            let location = outcome.sign_out_location(rd.as_deref(), login.home_path());
            let mut response = clear_session(&login, found(&location));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The caller (refused first when cross-site), then a refresh token from the body only, never
/// from the URL (which is logged), then the logout.
async fn log_out(
    login: &Login,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Revocation, LoginError> {
    let caller = login.logout_caller(headers)?;
    let params = body_params(headers, None, body)?;
    let body_refresh = params
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.clone()));
    Ok(login.log_out(caller, body_refresh).await)
}

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::FOUND.into_response(),
    }
}

/// Appends the session cookie's removal.
fn clear_session(login: &Login, mut response: Response) -> Response {
    response
        .headers_mut()
        .append(header::SET_COOKIE, login.session_removal());
    response
}

fn answer(login: &Login, headers: &HeaderMap, outcome: &Revocation) -> Response {
    let home = login.home_path();
    let response = match (&outcome.failure, wants_html(headers)) {
        (_, true) => see_other(&format!("{home}?logout={}", outcome.notice())),
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
    let mut response = clear_session(login, response);
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
