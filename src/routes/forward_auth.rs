//! `/oauth2/auth`: forward authentication for nginx (`auth_request`) and Traefik
//! (`forwardAuth`), which ask sfgate about each request and pass the answer's identity headers
//! on to their upstream.
//!
//! Any method is accepted: nginx's subrequest keeps the original request's method.
//!
//! Route rules need the path the user asked for, which the proxy passes in `X-Original-URI`
//! (nginx) or `X-Forwarded-Uri` (Traefik). Anyone can send those headers, so they are read
//! only with `TRUST_PROXY`; with route rules and no trusted path, the request is refused.

use crate::auth::{
    authenticate, authorize, path_for_rules, record_identity, reject_as, AuthError, Authenticated,
    BrowserRejection, RefreshPolicy,
};
use crate::proxy::headers::{identity_headers, insert_access_token};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderName;
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
    match authenticate_for_original_uri(&state, &headers).await {
        Ok(auth) => {
            record_identity(&auth);
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

/// nginx's and Traefik's names for the original request URI.
static ORIGINAL_URI: [HeaderName; 2] = [
    HeaderName::from_static("x-original-uri"),
    HeaderName::from_static("x-forwarded-uri"),
];

/// Authenticates, then applies the authorization policy to the original request's path.
async fn authenticate_for_original_uri(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Authenticated, AuthError> {
    let auth = authenticate(state, headers, RefreshPolicy::Allowed).await?;
    let original = if state.config.server.trust_proxy && !state.config.policy.routes.is_empty() {
        original_path(headers)?
    } else {
        None
    };
    let path = match original {
        Some(p) => path_for_rules(state, p)?,
        None => None,
    };
    authorize(state, &auth, path.as_deref()).await?;
    Ok(auth)
}

/// The path of the original URI the proxy sent: a plain absolute path, with its query cut
/// off. A full URL, a scheme-relative `//host`, or several values are refused (400).
fn original_path(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(name) = ORIGINAL_URI.iter().find(|n| headers.contains_key(*n)) else {
        return Ok(None);
    };
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AuthError::BadHeader(format!("{name} must be sent once")));
    };
    let uri = value
        .to_str()
        .map_err(|_| AuthError::BadHeader(format!("{name} is not text")))?;
    let path = uri.split_once('?').map_or(uri, |(path, _)| path);
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(AuthError::BadHeader(format!(
            "{name} must be an absolute path such as /app/page?x=1"
        )));
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn original_uris_must_be_plain_absolute_paths() {
        let ok = with("x-original-uri", &["/admin/x?y=/public"]);
        assert_eq!(original_path(&ok).ok().flatten(), Some("/admin/x"));
        let traefik = with("x-forwarded-uri", &["/a"]);
        assert_eq!(original_path(&traefik).ok().flatten(), Some("/a"));
        assert!(matches!(original_path(&HeaderMap::new()), Ok(None)));
        for bad in ["https://evil.example/admin", "//evil/admin", "admin", ""] {
            assert!(
                original_path(&with("x-original-uri", &[bad])).is_err(),
                "{bad}"
            );
        }
        assert!(original_path(&with("x-original-uri", &["/a", "/b"])).is_err());
    }
}
