//! `/oauth2/auth`: forward authentication for nginx (`auth_request`), Traefik (`forwardAuth`),
//! Caddy (`forward_auth`) and Envoy (HTTP `ext_authz`, which asks at `/oauth2/auth/<original
//! path>`). The proxy asks sfgate about each request and passes the answer's identity headers
//! on to its upstream.
//!
//! Any method is accepted: Envoy (and nginx's subrequest) keep the original request's method.
//!
//! Route rules need the original request, which each proxy names its own way; which source is
//! read, and what happens when several disagree, is [`crate::auth::original_request`]'s one
//! decision (`FORWARD_AUTH_STYLE`). Anyone can send those headers, so they are read only with
//! `TRUST_PROXY`; with route rules and no trusted original request, the request is refused.

use crate::access::RulePath;
use crate::auth::original_request::{
    original_request, redirects_browsers, AuthRequest, OriginalRequest, OriginalRequestError,
};
use crate::auth::{Authenticated, BrowserRejection};
use crate::headers::{insert_access_token, X_SFGATE_ASSERTION};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// 202 with the identity headers; otherwise the identity layer's status (401, 403, 502-504)
/// as JSON, or for Traefik and Caddy a browser's redirect to the login.
pub(super) async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    if let Some(refused) = look_alike_refusal(&parts.headers) {
        return refused;
    }
    let original = match read_original(&state, &parts) {
        Ok(original) => original,
        Err(e) => {
            tracing::info!(reason = %e, "forward auth refused the original request");
            return json_only(e.to_error_response().into_response());
        }
    };
    let path = match original
        .as_ref()
        .map(|o| state.auth.path_for_rules(o.path()))
        .transpose()
    {
        Ok(path) => path.flatten(),
        Err(e) => {
            return state
                .auth
                .reject(&parts.headers, &parts.uri, &e, BrowserRejection::Never)
        }
    };
    let style = state.config.gateway.forward_auth_style;
    let browsers = if redirects_browsers(style, original.as_ref()) {
        // The refusal names the original request (for `rd`), not sfgate's own path.
        parts.uri = original
            .as_ref()
            .and_then(|o| Uri::try_from(o.uri.as_str()).ok())
            .unwrap_or_else(|| Uri::from_static("/"));
        BrowserRejection::Start
    } else {
        BrowserRejection::Never
    };
    let granted = |_, caller| std::future::ready(granted(&state, &caller));
    state
        .auth
        .serve(parts, RulePath::Original(path.as_ref()), browsers, granted)
        .await
}

/// The original request, read only from a proxy trusted with `TRUST_PROXY`.
fn read_original(
    state: &AppState,
    parts: &Parts,
) -> Result<Option<OriginalRequest>, OriginalRequestError> {
    if !state.config.server.trust_proxy {
        return Ok(None);
    }
    original_request(
        state.config.gateway.forward_auth_style,
        &AuthRequest {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            auth_path: state.config.paths().forward_auth,
        },
    )
}

/// Forward auth answers the proxy: JSON, never an HTML page.
fn json_only(mut response: Response) -> Response {
    response
        .extensions_mut()
        .remove::<crate::error::ErrorResponse>();
    response
}

/// The answer for an admitted caller: 202 with the identity headers (and the assertion and
/// token when configured). A renewed session cookie is appended by the authenticator; it
/// reaches the browser if the proxy copies `Set-Cookie` back (nginx: `auth_request_set`;
/// Traefik: `addAuthCookiesToResponse`).
fn granted(state: &AppState, auth: &Authenticated) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    let out = response.headers_mut();
    let vouched = state.auth.vouch(auth);
    for (name, value) in vouched.identity_headers() {
        out.insert(name.clone(), value.clone());
    }
    if let Some(assertion) = vouched.assertion {
        out.insert(X_SFGATE_ASSERTION, assertion);
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if state.config.gateway.pass_access_token {
        insert_access_token(out, &auth.token, &auth.instance);
    }
    response
}

/// The header-name rule ([`crate::headers::rule`]) for forward auth: sfgate's answer can
/// set identity headers but cannot remove what the client sent, and the proxy in front passes
/// the original headers on. A look-alike of a header sfgate owns (`X_Salesforce_User_Id`) is
/// therefore refused here (400) rather than let through to an app that may read `_` as `-`.
/// (nginx drops such names before asking, by default; Traefik passes them.)
fn look_alike_refusal(headers: &HeaderMap) -> Option<Response> {
    let name = headers
        .keys()
        .find(|name| crate::headers::rule::is_look_alike(name.as_str()))?;
    tracing::info!(header = %name, "forward auth refused a look-alike of an owned header");
    Some(json_only(
        crate::error::ErrorResponse::bad_request(format!(
            "the request carries `{name}`, a look-alike of a header this gateway sets or reads"
        ))
        .into_response(),
    ))
}
