//! The host a login must start on.
//!
//! The login cookie (state and PKCE verifier) is set by `/oauth2/authorize` on the host the
//! browser used, and read back by the callback on the host of `SF_REDIRECT_URI`. Browsers keep
//! cookies per host name, so a login started on `http://127.0.0.1:3000` that comes back to
//! `http://localhost:3000/oauth2/callback` arrives without its cookie and can only fail, however
//! often it is retried. On a developer's machine that is the common trap: two names for the same
//! listener. sfgate therefore sends such a browser to the same path on the redirect URI's origin
//! before setting the cookie.
//!
//! The rule is narrow on purpose:
//! - only the login start route calls it, so no other page moves;
//! - only when both the request's host and the redirect URI's host are loopback names and the
//!   ports are the same: the browser then reached this very listener, so the redirect cannot
//!   loop through a proxy that rewrites `Host` (in production, behind a proxy, a differing `Host`
//!   is normal and is left alone);
//! - the target origin is always `SF_REDIRECT_URI`'s, never one the client named.

use axum::http::{header, HeaderMap, Uri};
use url::{Host, Url};

/// Where to send a browser that started a login on another loopback name of this listener,
/// or `None` to go on here.
pub(super) fn redirect_to_callback_host(
    redirect_uri: &Url,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<String> {
    let wanted_host = redirect_uri.host()?;
    let wanted_port = redirect_uri.port_or_known_default()?;
    let authority = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<axum::http::uri::Authority>().ok())
        .or_else(|| uri.authority().cloned())?;
    let port = authority
        .port_u16()
        .unwrap_or(if redirect_uri.scheme() == "https" {
            443
        } else {
            80
        });
    let host = Host::parse(authority.host()).ok()?;
    let same_name = match (&host, &wanted_host) {
        (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => a.to_string() == b.to_string(),
    };
    if same_name || port != wanted_port || !is_loopback(&host) || !is_loopback(&wanted_host) {
        return None;
    }
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    Some(format!(
        "{}{path_and_query}",
        redirect_uri.origin().ascii_serialization()
    ))
}

fn is_loopback(host: &Host<impl AsRef<str>>) -> bool {
    match host {
        Host::Domain(d) => d.as_ref().eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn sent_to(redirect_uri: &str, host: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        let uri: Uri = "/oauth2/authorize?return_to=%2Fapp".parse().expect("uri");
        redirect_to_callback_host(&Url::parse(redirect_uri).expect("url"), &headers, &uri)
    }

    #[test]
    fn another_loopback_name_of_the_same_port_goes_to_the_redirect_uris_origin() {
        for (redirect_uri, host) in [
            ("http://localhost:3000/oauth2/callback", "127.0.0.1:3000"),
            ("http://localhost:3000/oauth2/callback", "[::1]:3000"),
            ("http://127.0.0.1:3000/oauth2/callback", "localhost:3000"),
            ("http://127.0.0.1:3000/oauth2/callback", "LOCALHOST:3000"),
            ("http://127.0.0.1:3000/oauth2/callback", "127.0.0.2:3000"),
            ("http://[::1]:3000/oauth2/callback", "localhost:3000"),
            ("http://localhost/oauth2/callback", "127.0.0.1"),
            ("http://localhost/oauth2/callback", "127.0.0.1:80"),
        ] {
            let origin = Url::parse(redirect_uri)
                .expect("url")
                .origin()
                .ascii_serialization();
            assert_eq!(
                sent_to(redirect_uri, host),
                Some(format!("{origin}/oauth2/authorize?return_to=%2Fapp")),
                "{redirect_uri} from {host}"
            );
        }
    }

    #[test]
    fn the_same_host_another_port_or_a_non_loopback_name_stays() {
        for (redirect_uri, host) in [
            ("http://localhost:3000/oauth2/callback", "localhost:3000"),
            ("http://localhost:3000/oauth2/callback", "Localhost:3000"),
            ("http://127.0.0.1:3000/oauth2/callback", "127.0.0.1:3000"),
            // Another port may be a proxy in front: a redirect could loop.
            ("http://localhost:8080/oauth2/callback", "127.0.0.1:3000"),
            // Never to a host the client chose, and not in production behind a proxy.
            ("http://127.0.0.1:3000/oauth2/callback", "evil.example:3000"),
            (
                "https://sfgate.example.com/oauth2/callback",
                "127.0.0.1:443",
            ),
            (
                "https://sfgate.example.com/oauth2/callback",
                "www.example.com",
            ),
            ("http://127.0.0.1:3000/oauth2/callback", "not a host"),
        ] {
            assert_eq!(
                sent_to(redirect_uri, host),
                None,
                "{redirect_uri} from {host}"
            );
        }
    }
}
