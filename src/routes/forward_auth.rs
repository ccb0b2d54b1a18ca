//! `/oauth2/auth`: forward authentication for nginx (`auth_request`) and Traefik
//! (`forwardAuth`), which ask sfgate about each request and pass the answer's identity headers
//! on to their upstream.
//!
//! Any method is accepted: nginx's subrequest keeps the original request's method.
//!
//! Route rules need the path the user asked for, which the proxy passes in `X-Original-URI`
//! (nginx) or `X-Forwarded-Uri` (Traefik). Anyone can send those headers, so they are read
//! only with `TRUST_PROXY`; with route rules and no trusted path, the request is refused.

use crate::auth::{Authenticated, BrowserRejection, RulePath};
use crate::identity_headers::{identity_headers, insert_access_token};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// 202 with the identity headers; otherwise the identity layer's status (401, 403, 502-504)
/// as JSON, never a redirect: the proxy in front decides what a browser sees.
pub(super) async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    if let Some(refused) = look_alike_refusal(&parts.headers) {
        return refused;
    }
    let granted = |_, caller| std::future::ready(granted(&state, &caller));
    state
        .auth
        .serve(parts, RulePath::Original, BrowserRejection::Never, granted)
        .await
}

/// The answer for an admitted caller: 202 with the identity headers (and the assertion and
/// token when configured). A renewed session cookie is appended by the authenticator; it
/// reaches the browser if the proxy copies `Set-Cookie` back (nginx: `auth_request_set`;
/// Traefik: `addAuthCookiesToResponse`).
fn granted(state: &AppState, auth: &Authenticated) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    let out = response.headers_mut();
    out.extend(identity_headers(&auth.identity));
    if let Some(assertion) = state
        .assertion
        .as_ref()
        .and_then(|s| s.header_in(auth.identity.assertion_slot(), &auth.identity))
    {
        out.insert(crate::policy::X_SFGATE_ASSERTION, assertion);
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if state.config.gateway.pass_access_token {
        insert_access_token(out, &auth.token, &auth.instance);
    }
    response
}

/// The header-name rule ([`crate::header_rule`]) for forward auth: sfgate's answer can
/// set identity headers but cannot remove what the client sent, and the proxy in front passes
/// the original headers on. A look-alike of a header sfgate owns (`X_Salesforce_User_Id`) is
/// therefore refused here (400) rather than let through to an app that may read `_` as `-`.
/// (nginx drops such names before asking, by default; Traefik passes them.)
fn look_alike_refusal(headers: &HeaderMap) -> Option<Response> {
    let name = headers
        .keys()
        .find(|name| crate::header_rule::is_look_alike(name.as_str()))?;
    tracing::info!(header = %name, "forward auth refused a look-alike of an owned header");
    let mut response = crate::error::ErrorResponse::bad_request(format!(
        "the request carries `{name}`, a look-alike of a header this gateway sets or reads"
    ))
    .into_response();
    // Forward auth answers the proxy, never with an HTML page.
    response
        .extensions_mut()
        .remove::<crate::error::ErrorResponse>();
    Some(response)
}
