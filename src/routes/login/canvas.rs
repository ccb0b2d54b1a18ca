//! `POST /oauth2/canvas` (`CANVAS_ENABLED`): the Canvas App URL. Salesforce shows the app in an
//! iframe on its own pages and POSTs a signed request there; a valid one starts a session
//! without a login click.
//!
//! The order is the login's: the signature first (nothing in the context is believed before
//! it), then the embedded token exactly as a bearer call is checked (instance allowlist,
//! `userinfo` or local JWT check, org allowlist, user rules), then the session. Any refusal
//! answers with the error and creates nothing: no cookie, no cached grant beyond the token's
//! own verdict.

use super::flow::{login_completed, see_other_no_store};
use super::params::{body_params, query_params};
use super::LoginError;
use crate::auth::session::{now_secs, Session, SessionUser};
use crate::auth::Confirmed;
use crate::domain::{OrgId, ReturnTo, SalesforceId};
use crate::salesforce::canvas::{self, CanvasRequest};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

pub(super) async fn canvas(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match start_session(&state, &headers, query.as_deref(), &body).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %e, "canvas signed request refused");
            metrics::counter!("sfgate_canvas_requests_total", "result" => "refused").increment(1);
            e.into_response()
        }
    }
}

async fn start_session(
    state: &AppState,
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
    let secret = state.config.salesforce.client_secret.expose_secret();
    let request = canvas::verify(raw, secret.as_bytes())?;
    let landing = landing(state, query, form.get("rd"))?;
    let identity = confirm(state, &request).await?;
    let session = Session {
        access_token: request.oauth_token,
        refresh_token: request.refresh_token,
        instance_url: identity.instance_url.as_str().to_string(),
        user: SessionUser::from(&**identity),
        login_at: now_secs(),
        login_ms: Some(crate::auth::session::now_ms()),
        embedded: true,
    };
    let sealed =
        state.auth.cookies.seal_session(&session).map_err(|_| {
            LoginError::BadRequest("the session cookie could not be created".into())
        })?;
    login_completed(&identity);
    metrics::counter!("sfgate_canvas_requests_total", "result" => "session").increment(1);
    let location = HeaderValue::from_str(landing.as_str()).unwrap_or(HeaderValue::from_static("/"));
    let mut response = see_other_no_store(location);
    response
        .headers_mut()
        .append(header::SET_COOKIE, sealed.cookie);
    Ok(response)
}

/// `CANVAS_LANDING`, or a same-origin `rd` (query or form) when one is given. An `rd` that is
/// not a plain path on this origin is refused rather than ignored: it was asked for.
fn landing(
    state: &AppState,
    query: Option<&str>,
    form_rd: Option<&String>,
) -> Result<ReturnTo, LoginError> {
    let query = query_params(query)?;
    match form_rd.or(query.get("rd")) {
        None => Ok(state.config.canvas.landing.clone()),
        Some(rd) => ReturnTo::parse(rd).ok_or_else(|| {
            LoginError::BadRequest("`rd` must be a path on this origin, e.g. /app".into())
        }),
    }
}

/// The embedded token, checked exactly as a bearer call's; then the rules that need no path.
/// The token must belong to the user and org the signed context names.
async fn confirm(
    state: &AppState,
    request: &CanvasRequest,
) -> Result<std::sync::Arc<Confirmed>, LoginError> {
    let auth = &state.auth;
    let instance = auth
        .instance_policy
        .check(&request.instance_url)
        .map_err(crate::auth::AuthError::from)?;
    let identity = auth
        .validator
        .validate(&instance, &request.oauth_token)
        .await?;
    let same_user = request
        .user_id
        .as_deref()
        .is_none_or(|u| SalesforceId::parse(u).is_ok_and(|u| u == identity.user_id));
    let same_org = request
        .org_id
        .as_deref()
        .is_none_or(|o| OrgId::parse(o).is_ok_and(|o| o == identity.organization_id));
    if !same_user || !same_org {
        return Err(LoginError::CanvasMismatch);
    }
    auth.authorize_user(&identity, &request.oauth_token).await?;
    Ok(identity)
}
