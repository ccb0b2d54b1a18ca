//! Forward auth's question is about another request: the one the front proxy is about to
//! route. Each front proxy names it its own way, and the auth server must judge exactly the
//! request the proxy routes.
//!
//! | Convention | Original path and query | Original method |
//! |---|---|---|
//! | nginx `auth_request` | `X-Original-URI` | `X-Original-Method` |
//! | ingress-nginx `auth-url` | `X-Original-URL` (the full URL; must agree with `X-Original-URI` if both are sent) | `X-Original-Method` |
//! | Traefik `forwardAuth`, Caddy `forward_auth` | `X-Forwarded-Uri` (with `X-Forwarded-Host`, `-Proto`) | `X-Forwarded-Method` |
//! | Envoy HTTP `ext_authz` | appended to the auth path (`/oauth2/auth/admin/x?y`) | the request's own |
//!
//! **Rule.** One source, never settled in the client's favour. Front proxies pass the client's
//! own headers on to the auth server (Traefik unless `authRequestHeaders` is set, nginx always),
//! so a client can add another convention's header beside the one the proxy set. With
//! `FORWARD_AUTH_STYLE` naming the proxy, only its source is read (the proxy overwrites its own
//! header, so the value is the proxy's). With `auto` (the default), every source present is
//! read, and when they disagree the request is refused (400 `ambiguous_original_request`):
//! sfgate cannot know which one the proxy routes. A source that is malformed (a header sent
//! twice, not a plain absolute path, a fragment) is refused in every style that reads it.
//!
//! All of this is read only with `TRUST_PROXY=true`, which says a proxy is in front; without
//! it the original request is unknown, and forward auth with `ROUTE_RULES` refuses everyone.

use crate::config::ForwardAuthStyle;
use crate::headers::{
    X_FORWARDED_HOST, X_FORWARDED_METHOD, X_FORWARDED_URI, X_ORIGINAL_METHOD, X_ORIGINAL_URI,
    X_ORIGINAL_URL,
};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderName, Method, Uri};

/// Where an original request was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// `X-Original-URI` or `X-Original-URL`, and `X-Original-Method`.
    Nginx,
    /// `X-Forwarded-Uri` / `X-Forwarded-Method` (Traefik and Caddy).
    Forwarded,
    /// The auth path's suffix and the request's method.
    Envoy,
}

/// The request the front proxy asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    pub method: Method,
    /// Path and query, as the front proxy routes them.
    pub uri: PathAndQuery,
    /// `X-Forwarded-Host`, when the convention sends it.
    pub host: Option<String>,
    pub convention: Convention,
}

impl OriginalRequest {
    /// The path alone (route rules never see the query).
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// Whether two sources name the same request.
    fn agrees_with(&self, other: &Self) -> bool {
        self.method == other.method && self.uri.as_str() == other.uri.as_str()
    }
}

/// Why the original request cannot be known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginalRequestError {
    #[error(
        "the original request is named by more than one front-proxy convention and they \
         disagree ({0}); set FORWARD_AUTH_STYLE to the front proxy in use"
    )]
    Ambiguous(String),
    #[error("{0}")]
    Malformed(String),
}

impl OriginalRequestError {
    pub fn to_error_response(&self) -> crate::error::ErrorResponse {
        let code = match self {
            Self::Ambiguous(_) => "ambiguous_original_request",
            Self::Malformed(_) => "invalid_request",
        };
        crate::error::ErrorResponse::new(
            axum::http::StatusCode::BAD_REQUEST,
            code,
            self.to_string(),
        )
    }
}

/// The forward-auth request as sfgate received it.
pub struct AuthRequest<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// The forward-auth path (`/oauth2/auth`), after which Envoy appends the original path.
    pub auth_path: &'a str,
}

/// The one function that decides the original request: `Ok(None)` when no source the style
/// reads names one (the path is then unknown to route rules).
pub fn original_request(
    style: ForwardAuthStyle,
    request: &AuthRequest<'_>,
) -> Result<Option<OriginalRequest>, OriginalRequestError> {
    match style {
        ForwardAuthStyle::Nginx => nginx(request),
        ForwardAuthStyle::Traefik | ForwardAuthStyle::Caddy => forwarded(request),
        ForwardAuthStyle::Envoy => envoy(request),
        ForwardAuthStyle::Auto => {
            // Every source is read (and a malformed one refused) before any is chosen.
            let found: Vec<OriginalRequest> =
                [nginx(request)?, forwarded(request)?, envoy(request)?]
                    .into_iter()
                    .flatten()
                    .collect();
            let Some((first, others)) = found.split_first() else {
                return Ok(None);
            };
            if let Some(other) = others.iter().find(|o| !o.agrees_with(first)) {
                return Err(OriginalRequestError::Ambiguous(format!(
                    "{} and {}",
                    describe(first.convention),
                    describe(other.convention)
                )));
            }
            Ok(Some(first.clone()))
        }
    }
}

/// Whether a browser refused by forward auth should be sent to the login by sfgate (302 to
/// `/oauth2/start?rd=…`): Traefik and Caddy hand the auth server's answer to the browser as
/// is and expect the redirect there; nginx and Envoy act on the status (nginx with its own
/// `error_page 401`), so they get 401.
pub fn redirects_browsers(style: ForwardAuthStyle, original: Option<&OriginalRequest>) -> bool {
    match style {
        ForwardAuthStyle::Traefik | ForwardAuthStyle::Caddy => true,
        ForwardAuthStyle::Nginx | ForwardAuthStyle::Envoy => false,
        ForwardAuthStyle::Auto => original.is_some_and(|o| o.convention == Convention::Forwarded),
    }
}

fn describe(convention: Convention) -> &'static str {
    match convention {
        Convention::Nginx => "X-Original-URI/-URL/-Method (nginx, ingress-nginx)",
        Convention::Forwarded => "X-Forwarded-Uri/X-Forwarded-Method (Traefik, Caddy)",
        Convention::Envoy => "the path after the auth path (Envoy)",
    }
}

/// nginx's `X-Original-URI` (a path, as `$request_uri`), or ingress-nginx's `X-Original-URL`
/// (the full URL); both present must name the same path and query.
fn nginx(request: &AuthRequest<'_>) -> Result<Option<OriginalRequest>, OriginalRequestError> {
    let uri = single(request.headers, &X_ORIGINAL_URI)?
        .map(|u| plain_path_and_query(u, X_ORIGINAL_URI.as_str()))
        .transpose()?;
    let url = single(request.headers, &X_ORIGINAL_URL)?
        .map(path_of_url)
        .transpose()?;
    let target = match (uri, url) {
        (Some(uri), Some(url)) if uri.as_str() != url.as_str() => {
            return Err(OriginalRequestError::Ambiguous(
                "X-Original-URI and X-Original-URL (nginx, ingress-nginx)".into(),
            ))
        }
        (Some(target), _) | (None, Some(target)) => Some(target),
        (None, None) => None,
    };
    with_method(request, target, &X_ORIGINAL_METHOD, Convention::Nginx)
}

fn forwarded(request: &AuthRequest<'_>) -> Result<Option<OriginalRequest>, OriginalRequestError> {
    let target = single(request.headers, &X_FORWARDED_URI)?
        .map(|u| plain_path_and_query(u, X_FORWARDED_URI.as_str()))
        .transpose()?;
    let Some(mut original) =
        with_method(request, target, &X_FORWARDED_METHOD, Convention::Forwarded)?
    else {
        return Ok(None);
    };
    original.host = single(request.headers, &X_FORWARDED_HOST)?.map(str::to_owned);
    Ok(Some(original))
}

/// A convention that sends the target and the method in headers. The method header alone
/// (without a target) names no request and is refused; without the method header the
/// request's own method is the original's (nginx's `auth_request` subrequest keeps it).
fn with_method(
    request: &AuthRequest<'_>,
    target: Option<PathAndQuery>,
    method_header: &HeaderName,
    convention: Convention,
) -> Result<Option<OriginalRequest>, OriginalRequestError> {
    let method = single(request.headers, method_header)?;
    let Some(uri) = target else {
        return match method {
            Some(_) => Err(OriginalRequestError::Malformed(format!(
                "{method_header} was sent without the original URI"
            ))),
            None => Ok(None),
        };
    };
    let method = match method {
        Some(m) => Method::from_bytes(m.trim().as_bytes()).map_err(|_| {
            OriginalRequestError::Malformed(format!("{method_header} is not an HTTP method"))
        })?,
        None => request.method.clone(),
    };
    Ok(Some(OriginalRequest {
        method,
        uri,
        host: None,
        convention,
    }))
}

/// The path and query of an absolute `http(s)://host/path?query` (ingress-nginx's
/// `X-Original-URL`), under the same rule as a plain path.
fn path_of_url(raw: &str) -> Result<PathAndQuery, OriginalRequestError> {
    let bad = || {
        OriginalRequestError::Malformed(
            "x-original-url must be an absolute URL such as https://app.example.com/page?x=1"
                .into(),
        )
    };
    if raw.contains('#') {
        return Err(bad());
    }
    let uri: Uri = raw.parse().map_err(|_| bad())?;
    let http = matches!(uri.scheme_str(), Some("http" | "https"));
    match (http, uri.authority(), uri.path_and_query()) {
        (true, Some(_), Some(pq)) => plain_path_and_query(pq.as_str(), X_ORIGINAL_URL.as_str()),
        _ => Err(bad()),
    }
}

/// Envoy's `ext_authz` (HTTP service with `path_prefix` set to the auth path) asks about
/// `/admin/x?y` at `/oauth2/auth/admin/x?y`, with the original method.
fn envoy(request: &AuthRequest<'_>) -> Result<Option<OriginalRequest>, OriginalRequestError> {
    let Some(rest) = request.uri.path().strip_prefix(request.auth_path) else {
        return Ok(None);
    };
    if !rest.starts_with('/') {
        return Ok(None);
    }
    let target = match request.uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    Ok(Some(OriginalRequest {
        method: request.method.clone(),
        uri: plain_path_and_query(&target, "the path after the auth path")?,
        host: None,
        convention: Convention::Envoy,
    }))
}

/// The header's value when it was sent exactly once, as text.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h str>, OriginalRequestError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value
            .to_str()
            .map(Some)
            .map_err(|_| OriginalRequestError::Malformed(format!("{name} is not text"))),
        (Some(_), Some(_)) => Err(OriginalRequestError::Malformed(format!(
            "{name} must be sent once"
        ))),
    }
}

/// A plain absolute path with an optional query: no scheme or host, no `//host`, no fragment
/// (a front proxy never routes one; `#` would hide what follows from a parser that cuts it).
fn plain_path_and_query(raw: &str, from: &str) -> Result<PathAndQuery, OriginalRequestError> {
    let bad = || {
        OriginalRequestError::Malformed(format!(
            "{from} must be an absolute path such as /app/page?x=1"
        ))
    };
    if !raw.starts_with('/') || raw.starts_with("//") || raw.contains('#') {
        return Err(bad());
    }
    let parsed = PathAndQuery::try_from(raw).map_err(|_| bad())?;
    // The parser must have kept every byte: the path judged is the path sent.
    if parsed.as_str() != raw {
        return Err(bad());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests;
