//! `/oauth2/auth`: forward authentication for nginx (`auth_request`) and Traefik
//! (`forwardAuth`), which ask sfgate about each request and pass the answer's identity headers
//! on to their upstream.
//!
//! Any method is accepted: nginx's subrequest keeps the original request's method.

use crate::auth::{authenticate, record_identity, reject_as, BrowserRejection, RefreshPolicy};
use crate::proxy::headers::{identity_headers, insert_access_token};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// 202 with the identity headers; otherwise the identity layer's status (401, 403, 502-504)
/// as JSON, never a redirect: the proxy in front decides what a browser sees.
pub(super) async fn forward_auth(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = look_alike_refusal(&headers) {
        return refused;
    }
    match authenticate(&state, &headers, RefreshPolicy::Allowed).await {
        Ok(auth) => {
            record_identity(&auth);
            let mut response = StatusCode::ACCEPTED.into_response();
            let out = response.headers_mut();
            out.extend(identity_headers(&auth.identity));
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if state.config.pass_access_token {
                insert_access_token(out, &auth.token, &auth.instance);
            }
            // A renewed session reaches the browser if the proxy copies `Set-Cookie` back
            // (nginx: `auth_request_set`; Traefik: `addAuthCookiesToResponse`).
            if let Some(cookie) = auth.renewed_session {
                out.append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => reject_as(&state, &headers, &uri, &e, BrowserRejection::Never),
    }
}

/// The header-name rule ([`crate::proxy::header_rule`]) for forward auth: sfgate's answer can
/// set identity headers but cannot remove what the client sent, and the proxy in front passes
/// the original headers on. A look-alike of a header sfgate owns (`X_Salesforce_User_Id`) is
/// therefore refused here (400) rather than let through to an app that may read `_` as `-`.
/// (nginx drops such names before asking, by default; Traefik passes them.)
fn look_alike_refusal(headers: &HeaderMap) -> Option<Response> {
    let name = headers
        .keys()
        .find(|name| crate::proxy::header_rule::is_look_alike(name.as_str()))?;
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
