//! The rule for state-changing requests that ride on the session cookie (`POST /oauth2/refresh`,
//! `POST /oauth2/logout`): they must come from sfgate's own origin.
//!
//! The cookie is `SameSite=Lax`, which keeps it off most cross-site POSTs, but not off requests
//! from a sibling subdomain (the same *site*), and not in browsers that ignore `SameSite`. So a
//! cookie-authenticated state change is refused (403) when the browser says it comes from
//! elsewhere:
//!
//! - `Sec-Fetch-Site` is present and is anything but `same-origin` or `none` (`none`: the user
//!   started it, e.g. from the address bar);
//! - `Origin` is present and names another origin than sfgate's public origin (the origin of
//!   `SF_REDIRECT_URI`).
//!
//! `Origin: null` alone is not a refusal: browsers send it for sfgate's own forms, because
//! sfgate's pages set `Referrer-Policy: no-referrer`; current browsers then tell the site
//! through `Sec-Fetch-Site`, which pages cannot forge. Browsers always send at least one of
//! the two headers on a POST; requests with neither come from programs, which can only use a
//! cookie they already hold. Requests that carry their own
//! credentials (`Authorization`, a `refresh_token` in the body) are not cookie-authenticated and
//! are not subject to this rule.

use crate::error::ErrorResponse;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// A cookie-authenticated state change that the browser says came from another site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this request comes from another site ({0}); sfgate only accepts it from its own pages")]
pub struct CrossSiteRequest(String);

impl CrossSiteRequest {
    pub fn to_error_response(&self) -> ErrorResponse {
        ErrorResponse::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            self.to_string(),
        )
    }
}

impl IntoResponse for CrossSiteRequest {
    fn into_response(self) -> Response {
        self.to_error_response().into_response()
    }
}

/// `Ok` unless `Sec-Fetch-Site` or `Origin` show that the request comes from somewhere other
/// than `public_origin` (as `scheme://host[:port]`).
pub fn require_same_origin(
    headers: &HeaderMap,
    public_origin: &str,
) -> Result<(), CrossSiteRequest> {
    for value in headers.get_all(SEC_FETCH_SITE) {
        match value.to_str().map(|v| v.trim().to_ascii_lowercase()) {
            Ok(v) if v == "same-origin" || v == "none" => {}
            Ok(v) => {
                return Err(CrossSiteRequest(format!(
                    "Sec-Fetch-Site: {}",
                    printable(&v)
                )))
            }
            Err(_) => return Err(CrossSiteRequest("Sec-Fetch-Site is not text".into())),
        }
    }
    for value in headers.get_all(header::ORIGIN) {
        match value.to_str().map(str::trim) {
            Ok(v) if v.eq_ignore_ascii_case(public_origin) || v == "null" => {}
            Ok(v) => return Err(CrossSiteRequest(format!("Origin: {}", printable(v)))),
            Err(_) => return Err(CrossSiteRequest("Origin is not text".into())),
        }
    }
    Ok(())
}

/// The rule for WebSocket handshakes that ride on the session cookie (gateway mode). Browsers
/// send cookies on a handshake from any page, and `SameSite=Lax` does not keep them off one
/// from a sibling subdomain, so a page elsewhere could open a socket as the user (cross-site
/// WebSocket hijacking). Such a handshake must name its origin, and the origin must be
/// sfgate's own public origin or listed in `WEBSOCKET_ALLOWED_ORIGINS`:
///
/// - `Origin` missing: refused. Browsers always send it on a WebSocket handshake; a program
///   that lacks it authenticates with a bearer token instead.
/// - `Origin: null` (sandboxed frames, `file:` pages), or sent more than once: refused.
/// - `Sec-Fetch-Site: cross-site`: refused unless the origin is listed (the operator named
///   that site); `same-site` (a sibling subdomain) passes only with a listed origin, which the
///   `Origin` check already demands.
///
/// Handshakes authenticated by a bearer token carry their credential explicitly and are not
/// subject to this rule.
pub fn require_websocket_origin(
    headers: &HeaderMap,
    public_origin: &str,
    allowed: &[String],
) -> Result<(), CrossSiteRequest> {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let origin = match (origins.next(), origins.next()) {
        (Some(one), None) => one
            .to_str()
            .map(str::trim)
            .map_err(|_| CrossSiteRequest("Origin is not text".into()))?,
        (None, _) => {
            return Err(CrossSiteRequest(
                "a WebSocket handshake with the session cookie must carry Origin".into(),
            ))
        }
        (Some(_), Some(_)) => return Err(CrossSiteRequest("Origin sent more than once".into())),
    };
    let listed = allowed.iter().any(|a| a.eq_ignore_ascii_case(origin));
    if !listed && !origin.eq_ignore_ascii_case(public_origin) {
        return Err(CrossSiteRequest(format!("Origin: {}", printable(origin))));
    }
    let cross_site = headers.get_all(SEC_FETCH_SITE).iter().any(|v| {
        v.to_str()
            .map_or(true, |v| v.trim().eq_ignore_ascii_case("cross-site"))
    });
    if cross_site && !listed {
        return Err(CrossSiteRequest("Sec-Fetch-Site: cross-site".into()));
    }
    Ok(())
}

/// Client text for the error message (which is also logged): visible ASCII only, cut short.
fn printable(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    const ORIGIN: &str = "https://gw.example.com";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn own_origin_user_initiated_and_headerless_requests_pass() {
        for ok in [
            vec![],
            vec![("sec-fetch-site", "same-origin")],
            vec![("sec-fetch-site", "none")],
            vec![("origin", ORIGIN)],
            vec![("origin", "HTTPS://GW.EXAMPLE.COM")],
            vec![("origin", ORIGIN), ("sec-fetch-site", "same-origin")],
            // Our own form under `Referrer-Policy: no-referrer`.
            vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
            vec![("origin", "null")],
        ] {
            assert_eq!(require_same_origin(&headers(&ok), ORIGIN), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn other_sites_sibling_subdomains_and_opaque_origins_are_refused() {
        for bad in [
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
            vec![("origin", "https://evil.example")],
            vec![("origin", "https://app.gw.example.com")],
            vec![("origin", "http://gw.example.com")],
            vec![("origin", "https://gw.example.com:444")],
            // A same-origin claim does not excuse a foreign Origin, nor the reverse.
            vec![
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
            vec![("origin", ORIGIN), ("sec-fetch-site", "cross-site")],
            vec![("origin", ORIGIN), ("origin", "https://evil.example")],
        ] {
            assert!(
                require_same_origin(&headers(&bad), ORIGIN).is_err(),
                "{bad:?}"
            );
        }
    }

    const ALLOWED: &[&str] = &["https://app.example.com"];

    fn websocket(pairs: &[(&str, &str)]) -> Result<(), CrossSiteRequest> {
        let allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
        require_websocket_origin(&headers(pairs), ORIGIN, &allowed)
    }

    #[test]
    fn cookie_websocket_handshakes_need_our_origin_or_a_listed_one() {
        for ok in [
            vec![("origin", ORIGIN)],
            vec![("origin", "HTTPS://GW.EXAMPLE.COM")],
            vec![("origin", ORIGIN), ("sec-fetch-site", "same-origin")],
            vec![("origin", "https://app.example.com")],
            vec![
                ("origin", "https://app.example.com"),
                ("sec-fetch-site", "cross-site"),
            ],
        ] {
            assert_eq!(websocket(&ok), Ok(()), "{ok:?}");
        }
        for bad in [
            vec![],
            vec![("sec-fetch-site", "same-origin")],
            vec![("origin", "null")],
            vec![("origin", "https://evil.example")],
            vec![("origin", "https://sub.gw.example.com")],
            vec![("origin", "http://gw.example.com")],
            vec![("origin", "https://gw.example.com:8443")],
            vec![("origin", "https://gw.example.com.evil.example")],
            vec![("origin", ORIGIN), ("sec-fetch-site", "cross-site")],
            vec![("origin", ORIGIN), ("origin", ORIGIN)],
        ] {
            assert!(websocket(&bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        /// Any Origin other than our own, however spelled, is refused.
        #[test]
        fn any_other_origin_is_refused(
            scheme in "(http|https)",
            host in "[a-z]{1,12}(\\.[a-z]{1,8}){0,3}",
            port in proptest::option::of(1u16..),
        ) {
            let origin = match port {
                Some(p) => format!("{scheme}://{host}:{p}"),
                None => format!("{scheme}://{host}"),
            };
            let h = headers(&[("origin", &origin)]);
            let expected_ok = origin.eq_ignore_ascii_case(ORIGIN);
            prop_assert_eq!(require_same_origin(&h, ORIGIN).is_ok(), expected_ok);
        }

        /// Only `same-origin` and `none` pass as Sec-Fetch-Site values.
        #[test]
        fn only_same_origin_and_none_pass_sec_fetch_site(value in "[a-zA-Z -]{0,20}") {
            let h = headers(&[("sec-fetch-site", &value)]);
            let v = value.trim().to_ascii_lowercase();
            prop_assert_eq!(
                require_same_origin(&h, ORIGIN).is_ok(),
                v == "same-origin" || v == "none"
            );
        }
    }
}
