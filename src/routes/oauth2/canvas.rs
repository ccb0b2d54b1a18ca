//! `POST /oauth2/canvas` (`CANVAS_ENABLED`): the Canvas App URL, where Salesforce POSTs a
//! signed request (see [`crate::auth::login`]'s Canvas sign-in). Any refusal answers with the
//! error and creates nothing.

use super::answer::{see_other_no_store, with_cookie};
use super::params::{body_params, query_params};
use crate::auth::login::{Login, LoginError};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

pub(super) async fn canvas(
    State(login): State<Login>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match sign_in(&login, &headers, query.as_deref(), &body).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %e, "canvas signed request refused");
            metrics::counter!("sfgate_canvas_requests_total", "result" => "refused").increment(1);
            e.into_response()
        }
    }
}

/// The signed request from the form, then `rd` (form or query), then the session; a redirect
/// to the landing with the session cookie.
async fn sign_in(
    login: &Login,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Response, LoginError> {
    // The signed request is read from the body only: in a URL it would reach logs.
    let form = body_params(headers, None, body)?;
    let raw = form
        .get("signed_request")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| LoginError::BadRequest("`signed_request` is required".into()))?;
    let request = login.verify_canvas(raw)?;
    let query = query_params(query)?;
    let rd = form.get("rd").or(query.get("rd")).map(String::as_str);
    let landing = login.canvas_landing(rd)?;
    let session_cookie = login.canvas_session(request).await?;
    let location = HeaderValue::from_str(landing.as_str()).unwrap_or(HeaderValue::from_static("/"));
    Ok(with_cookie(see_other_no_store(location), session_cookie))
}
