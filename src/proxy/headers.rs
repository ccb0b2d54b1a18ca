//! Which headers cross the gateway, in each direction.
//!
//! The upstream trusts the identity headers because only sfgate sets them, so every client copy
//! is removed before anything else happens. Salesforce tokens and sfgate's own cookies are
//! credentials for sfgate, not for the upstream: they are removed unless the operator asks
//! for the token to be passed on. Hop-by-hop headers describe one connection (RFC 9110 7.6.1)
//! and never travel further.

use crate::auth::session::{is_own_cookie_pair, LOGIN_COOKIE, SESSION_COOKIE};
use crate::auth::{LEGACY_BEARER, LEGACY_INSTANCE_URL};
use crate::domain::InstanceUrl;
use crate::header_rule::{self, Owned, UnderscoreHeaders, Verdict};
use crate::identity_headers::*;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The headers that carry Salesforce credentials to sfgate.
const CREDENTIAL_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    LEGACY_BEARER,
    LEGACY_INSTANCE_URL,
    X_INSTANCE_URL,
];

/// Hop-by-hop headers with fixed names; `Proxy-*` and the names listed in `Connection` are
/// handled in [`remove_hop_by_hop`].
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Names the `Connection` header lists beyond the fixed ones (`keep-alive` and `close`,
    // the usual contents, need no extra work and no allocation).
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| {
            !name.eq_ignore_ascii_case("close")
                && !HOP_BY_HOP
                    .iter()
                    .any(|h| name.eq_ignore_ascii_case(h.as_str()))
        })
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if headers
        .keys()
        .any(|name| name.as_str().starts_with("proxy-"))
    {
        let proxy: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for name in proxy {
            headers.remove(name);
        }
    }
}

/// Applies the header-name rule ([`header_rule`]): removes client copies of identity headers,
/// look-alikes of every header sfgate owns (`X_Salesforce_User_Id`, `X-Forwarded_For`, ...)
/// and, unless `PROXY_UNDERSCORE_HEADERS=keep`, every name with `_`. Run first, on every
/// proxied request, authenticated or not.
pub fn remove_by_name_rule(headers: &mut HeaderMap, underscores: UnderscoreHeaders) {
    let removed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| header_rule::verdict(name, underscores) == Verdict::Remove)
        .cloned()
        .collect();
    for name in removed {
        headers.remove(name);
    }
}

/// Removes the method-override headers ([`header_rule::is_method_override`]): for requests a
/// skip-auth rule let through for their own method.
pub fn remove_method_overrides(headers: &mut HeaderMap) {
    let removed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| header_rule::is_method_override(name.as_str()))
        .cloned()
        .collect();
    for name in removed {
        headers.remove(name);
    }
}

/// Removes every client-sent `X-Sfgate-Assertion`, including spellings with `_` for `-`
/// that CGI-style servers read as the same header.
pub fn remove_assertion(headers: &mut HeaderMap) {
    let wanted = crate::policy::X_SFGATE_ASSERTION;
    let look_alikes: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            name.as_str().len() == wanted.as_str().len()
                && name
                    .as_str()
                    .bytes()
                    .map(|b| if b == b'_' { b'-' } else { b })
                    .eq(wanted.as_str().bytes())
        })
        .cloned()
        .collect();
    for name in look_alikes {
        headers.remove(name);
    }
}

/// Removes Salesforce credentials and sfgate's cookies; other cookies stay.
pub fn remove_credentials(headers: &mut HeaderMap) {
    for name in &CREDENTIAL_HEADERS {
        headers.remove(name);
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| without_sfgate_cookies(v.as_bytes()))
        .collect();
    headers.remove(header::COOKIE);
    for value in kept {
        headers.append(header::COOKIE, value);
    }
}

/// One `Cookie` header without sfgate's pairs; `None` when nothing else is left.
fn without_sfgate_cookies(value: &[u8]) -> Option<HeaderValue> {
    let kept: Vec<&[u8]> = value
        .split(|b| *b == b';')
        .map(|pair| pair.trim_ascii())
        .filter(|pair| !pair.is_empty())
        .filter(|pair| match std::str::from_utf8(pair) {
            // Exactly what sfgate would read as its cookie (names percent-decoded).
            Ok(pair) => !is_own_cookie_pair(pair),
            // sfgate never reads a header that is not text; raw names are compared anyway.
            Err(_) => {
                let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
                let name = name.trim_ascii();
                name != SESSION_COOKIE.as_bytes() && name != LOGIN_COOKIE.as_bytes()
            }
        })
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(&kept.join(&b"; "[..])).ok()
}

/// What the upstream learns about the original request.
pub struct Forwarded<'a> {
    pub client: Option<SocketAddr>,
    /// The Host the client asked for (HTTP/1.1 `Host` or the HTTP/2 authority).
    pub host: Option<&'a str>,
    /// Whether client-sent `X-Forwarded-*` headers come from a proxy in front of sfgate.
    pub trust_proxy: bool,
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host`. Without `TRUST_PROXY` the client's own values
/// are discarded: anyone can send them, and an upstream may log or authorize on them.
pub fn set_forwarded(headers: &mut HeaderMap, forwarded: &Forwarded<'_>) {
    if !forwarded.trust_proxy {
        // Every forwarding header by the name rule, `X-Forwarded-Prefix` and the like too.
        let claims: Vec<HeaderName> = headers
            .keys()
            .filter(|name| header_rule::owner(name.as_str()) == Some(Owned::Forwarding))
            .cloned()
            .collect();
        for name in claims {
            headers.remove(name);
        }
    }
    if let Some(client) = forwarded.client {
        let previous: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut chain = previous.join(", ");
        if !chain.is_empty() {
            chain.push_str(", ");
        }
        chain.push_str(&client.ip().to_string());
        if let Ok(v) = HeaderValue::from_str(&chain) {
            headers.insert(X_FORWARDED_FOR, v);
        }
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        // sfgate itself only speaks plain HTTP; TLS, if any, ended at a proxy in front.
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !headers.contains_key(X_FORWARDED_HOST) {
        if let Some(v) = forwarded.host.and_then(|h| HeaderValue::from_str(h).ok()) {
            headers.insert(X_FORWARDED_HOST, v);
        }
    }
}

/// What happens to one client request header on its way to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRule {
    /// Passed on unchanged.
    Keep,
    /// Removed: hop-by-hop, a client-sent identity header, a credential for sfgate, or a
    /// header sfgate sets itself.
    Drop,
    /// `Cookie`: passed on without sfgate's own cookies.
    Cookie,
    /// `X-Forwarded-For`: kept (and extended) only from a trusted proxy.
    ForwardedFor,
}

/// The decision for one request header, taken once per header in
/// [`upstream_request_headers`]'s single pass. `connection_named` are the names the request's
/// `Connection` header lists, which are hop-by-hop too.
pub fn request_rule(
    name: &HeaderName,
    trust_proxy: bool,
    connection_named: &[&str],
) -> RequestRule {
    let n = name.as_str();
    match n {
        // Hop-by-hop (RFC 9110 7.6.1); sfgate sets `Host` and answers `Expect` itself.
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
        | "host" | "expect" => RequestRule::Drop,
        // Only meaningful to an h2c upgrade, which is never forwarded (`super::upgrade`).
        "http2-settings" => RequestRule::Drop,
        // Only sfgate may vouch for a caller.
        "x-salesforce-user-id"
        | "x-salesforce-org-id"
        | "x-salesforce-username"
        | "x-salesforce-instance-url"
        | "x-forwarded-user"
        | "x-forwarded-email"
        | "x-forwarded-preferred-username" => RequestRule::Drop,
        // Credentials for sfgate, not for the upstream.
        "authorization" | "bearer" | "instanceurl" | "x-instance-url" => RequestRule::Drop,
        "cookie" => RequestRule::Cookie,
        "x-forwarded-for" => RequestRule::ForwardedFor,
        // Every forwarding header by the name rule (`X-Forwarded-Prefix`, `X-Original-URL`,
        // `Forwarded`, ...): only a trusted proxy's values pass.
        _ if header_rule::owner(n) == Some(Owned::Forwarding) => {
            if trust_proxy {
                RequestRule::Keep
            } else {
                RequestRule::Drop
            }
        }
        _ if n.starts_with("proxy-") => RequestRule::Drop,
        _ if connection_named.iter().any(|c| c.eq_ignore_ascii_case(n)) => RequestRule::Drop,
        _ => RequestRule::Keep,
    }
}

/// Everything the upstream should learn besides the client's own headers.
pub struct Outgoing<'a> {
    /// `host` here is the fallback for a request without a `Host` header (HTTP/2).
    pub forwarded: Forwarded<'a>,
    /// The identity headers of a confirmed caller (see `Confirmed::headers`).
    pub identity: Option<&'a HeaderMap>,
    /// `PASS_ACCESS_TOKEN`: the caller's token and instance.
    pub access_token: Option<(&'a SecretString, &'a InstanceUrl)>,
}

/// The request headers the upstream gets, built in one pass over the client's map: every
/// header is classified once by [`request_rule`], then sfgate adds the forwarding and
/// identity headers. After [`remove_by_name_rule`] (run first, before authentication),
/// equivalent to [`remove_hop_by_hop`],
/// [`remove_credentials`], [`set_forwarded`] and [`identity_headers`] in turn, without
/// rebuilding the map for each.
pub fn upstream_request_headers(headers: HeaderMap, out: &Outgoing<'_>) -> HeaderMap {
    let trust = out.forwarded.trust_proxy;
    let connection: Vec<&str> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    let mut result = HeaderMap::with_capacity(headers.len() + 8);
    let mut forwarded_for: Option<String> = None;
    let mut client_host: Option<&HeaderValue> = None;
    for (name, value) in headers.iter() {
        if name == header::HOST && client_host.is_none() {
            client_host = Some(value);
        }
        match request_rule(name, trust, &connection) {
            RequestRule::Keep => {
                result.append(name.clone(), value.clone());
            }
            RequestRule::Drop => {}
            RequestRule::Cookie => {
                if let Some(kept) = without_sfgate_cookies(value.as_bytes()) {
                    result.append(header::COOKIE, kept);
                }
            }
            RequestRule::ForwardedFor => {
                if trust {
                    if let Ok(v) = value.to_str() {
                        let chain = forwarded_for.get_or_insert_with(String::new);
                        if !chain.is_empty() {
                            chain.push_str(", ");
                        }
                        chain.push_str(v);
                    }
                }
            }
        }
    }
    if let Some(client) = out.forwarded.client {
        let mut chain = forwarded_for.take().unwrap_or_default();
        if !chain.is_empty() {
            chain.push_str(", ");
        }
        push_ip(&mut chain, client.ip());
        forwarded_for = Some(chain);
    }
    if let Some(v) = forwarded_for.and_then(|c| HeaderValue::from_str(&c).ok()) {
        result.insert(X_FORWARDED_FOR, v);
    }
    if !result.contains_key(X_FORWARDED_PROTO) {
        result.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !result.contains_key(X_FORWARDED_HOST) {
        // The client's `Host` as it came (no copy), else the HTTP/2 authority.
        let host = client_host.cloned().or_else(|| {
            out.forwarded
                .host
                .and_then(|h| HeaderValue::from_str(h).ok())
        });
        if let Some(v) = host {
            result.insert(X_FORWARDED_HOST, v);
        }
    }
    if let Some(identity) = out.identity {
        for (name, value) in identity {
            result.insert(name.clone(), value.clone());
        }
    }
    if let Some((token, instance)) = out.access_token {
        insert_access_token(&mut result, token, instance);
    }
    result
}

/// Appends an address as text. IPv4 by hand: `Display` pads and formats through
/// `fmt::write`, which cost more than the rest of the header rewrite on every request.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(_) => {
            let _ = write!(out, "{ip}");
        }
    }
}

/// Removes hop-by-hop headers from an upstream's response; leaves the map alone (no
/// allocation) when it has none, which is the common case.
pub fn remove_hop_by_hop_response(headers: &mut HeaderMap) {
    let any = headers.keys().any(|name| {
        matches!(
            name.as_str(),
            "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
        ) || name.as_str().starts_with("proxy-")
    });
    if any {
        remove_hop_by_hop(headers);
    }
}

#[cfg(test)]
mod tests;
