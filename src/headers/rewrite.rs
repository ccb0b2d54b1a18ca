//! The proxy's rewrite of a request's headers for the upstream, and of the upstream's answer
//! for the client: which headers cross the gateway, in each direction, decided by each
//! header's [`Class`] in the one table ([`super::owned`]).
//!
//! The upstream trusts the identity headers (and the signed assertion) because only sfgate
//! sets them, so every client copy is removed, in every spelling the header-name rule
//! ([`super::rule`]) reads as theirs. Salesforce tokens and sfgate's own cookies are
//! credentials for sfgate, not for the upstream: they are removed unless the operator asks
//! for the token to be passed on. Hop-by-hop headers describe one connection (RFC 9110 7.6.1)
//! and never travel further.

use super::cookies::{is_own_cookie_pair, sets_own_cookie};
use super::identity::access_token_headers;
use super::owned::{
    class_of, class_of_spelling, is_hop_by_hop, Class, X_FORWARDED_FOR, X_FORWARDED_HOST,
    X_FORWARDED_PROTO, X_SFGATE_ASSERTION,
};
use super::rule::{self, NameVerdict, UnderscoreHeaders};
use crate::domain::InstanceUrl;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use secrecy::SecretString;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// One item of a `Connection` value.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectionItem {
    Close,
    KeepAlive,
    /// A header name the value lists: hop-by-hop for this connection.
    Name(HeaderName),
}

/// The items of a `Connection` value as the proxy reads them wherever it meets one (hyper's
/// answers, sfgate's own client's): comma-separated, trimmed, compared in any case; empty
/// items and items that are not header names are skipped.
pub fn connection_items(value: &[u8]) -> impl Iterator<Item = ConnectionItem> + '_ {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter_map(|token| {
            if token.eq_ignore_ascii_case(b"close") {
                Some(ConnectionItem::Close)
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                Some(ConnectionItem::KeepAlive)
            } else if token.is_empty() {
                None
            } else {
                HeaderName::from_bytes(token).ok().map(ConnectionItem::Name)
            }
        })
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Names the `Connection` header lists beyond the hop-by-hop ones (`keep-alive` and
    // `close`, the usual contents, need no extra work and no allocation).
    let mut removed: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        for item in connection_items(value.as_bytes()) {
            if let ConnectionItem::Name(name) = item {
                if !is_hop_by_hop(&name) {
                    removed.push(name);
                }
            }
        }
    }
    removed.extend(headers.keys().filter(|name| is_hop_by_hop(name)).cloned());
    for name in removed {
        headers.remove(name);
    }
}

/// Applies the header-name rule ([`rule`]) alone: removes client copies of identity headers
/// and the assertion, look-alikes of every header sfgate owns (`X_Salesforce_User_Id`,
/// `X-Forwarded_For`, ...) and, unless `PROXY_UNDERSCORE_HEADERS=keep`, every name with `_`.
/// [`upstream_request_headers`] applies it in its own pass; this is the rule on its own.
pub fn remove_by_name_rule(headers: &mut HeaderMap, underscores: UnderscoreHeaders) {
    let removed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| rule::verdict(name, underscores) == NameVerdict::Remove)
        .cloned()
        .collect();
    for name in removed {
        headers.remove(name);
    }
}

/// Removes from the trailer fields that end a client's request body (chunked HTTP/1.1,
/// HTTP/2) every field the upstream must not take from the client: whatever the header-name
/// rule does not pass as the client's own (identity headers and the assertion, credentials,
/// cookies, forwarding and request-id headers, hop-by-hop and framing fields, their
/// look-alikes, `_` names unless `PROXY_UNDERSCORE_HEADERS=keep`), and the fields RFC 9110
/// §6.5.1 keeps out of trailers (framing, routing, authentication, how to read the content).
///
/// Why: trailers arrive after the request was judged and its headers rewritten, and an
/// HTTP/2 upstream receives them as a header block of their own; an app (or a framework that
/// merges trailers into headers) must not find there a name it trusts sfgate alone to set.
pub fn remove_request_trailers(trailers: &mut HeaderMap, underscores: UnderscoreHeaders) {
    let removed: Vec<HeaderName> = trailers
        .keys()
        .filter(|name| !trailer_passes(name, underscores))
        .cloned()
        .collect();
    for name in removed {
        trailers.remove(name);
    }
}

/// [`remove_request_trailers`]'s rule for one name.
fn trailer_passes(name: &HeaderName, underscores: UnderscoreHeaders) -> bool {
    rule::verdict(name, underscores) == NameVerdict::Pass
        // Every class in every spelling, not only the owned ones the rule removes from
        // headers: a trailer is no place for a cookie, a hop-by-hop or framing field or a
        // method override either.
        && class_of_spelling(name.as_str()).is_none()
        && !matches!(
            *name,
            header::CACHE_CONTROL
                | header::CONTENT_ENCODING
                | header::CONTENT_LENGTH
                | header::CONTENT_RANGE
                | header::CONTENT_TYPE
                | header::MAX_FORWARDS
                | header::SET_COOKIE
        )
}

/// Removes Salesforce credentials and sfgate's cookies; other cookies stay.
pub fn remove_credentials(headers: &mut HeaderMap) {
    let credentials: Vec<HeaderName> = headers
        .keys()
        .filter(|name| class_of(name) == Some(Class::Credential))
        .cloned()
        .collect();
    for name in credentials {
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
        .filter(|pair| !pair.is_empty() && !is_own_cookie_pair(pair))
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(&kept.join(&b"; "[..])).ok()
}

/// Removes the upstream's `Set-Cookie` values that would set, replace or remove one of
/// sfgate's cookies, in any spelling sfgate reads as its own ([`sets_own_cookie`]); the
/// app's other cookies stay, in their order. sfgate's cookies are sfgate's alone: an app
/// that could set the session cookie could log its visitor in as someone else (a session of
/// the app's choosing, or of an attacker who got one sealed for themselves) or out, and a
/// cookie on a longer path is sent first and read first. Leaves the map alone (no
/// allocation) when no value is one of them, which is the common case.
pub fn remove_own_cookie_settings(headers: &mut HeaderMap) {
    let values = headers.get_all(header::SET_COOKIE);
    if !values.iter().any(|v| sets_own_cookie(v.as_bytes())) {
        return;
    }
    let kept: Vec<HeaderValue> = values
        .iter()
        .filter(|v| !sets_own_cookie(v.as_bytes()))
        .cloned()
        .collect();
    super::cookies::log_removed_set_cookie();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
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
            .filter(|name| {
                matches!(
                    rule::owner(name.as_str()),
                    Some(Class::Forwarding | Class::ForwardedFor)
                )
            })
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
    /// Removed: hop-by-hop, a client-sent identity header or assertion, a credential for
    /// sfgate, a header sfgate sets itself, or a name the header-name rule removes.
    Drop,
    /// `Cookie`: passed on without sfgate's own cookies.
    Cookie,
    /// `X-Forwarded-For`: kept (and extended) only from a trusted proxy.
    ForwardedFor,
}

/// How the request's own headers are judged, besides their class.
#[derive(Debug, Clone, Copy, Default)]
pub struct Judged<'a> {
    /// `TRUST_PROXY`: whether client-sent forwarding headers come from a proxy in front.
    pub trust_proxy: bool,
    /// `PROXY_UNDERSCORE_HEADERS`.
    pub underscores: UnderscoreHeaders,
    /// Whether method-override headers are removed: on a request a skip-auth rule let
    /// through for its own method (`POST=^/webhook$` must not become a `DELETE`).
    pub drop_method_overrides: bool,
    /// The names the request's `Connection` header lists ([`connection_items`]), which are
    /// hop-by-hop too.
    pub connection_named: &'a [HeaderName],
}

/// The decision for one request header, taken once per header in
/// [`upstream_request_headers`]'s single pass: first the header-name rule for names with `_`,
/// then the header's class.
pub fn request_rule(name: &HeaderName, judged: &Judged<'_>) -> RequestRule {
    let n = name.as_str();
    if n.contains('_') {
        // The header-name rule: look-alikes of owned names always go, other `_` names as
        // `PROXY_UNDERSCORE_HEADERS` says. No name of the table has `_`, so a name kept here
        // has no class below.
        let spelled = class_of_spelling(n);
        let removed = match spelled {
            Some(class) if class.is_owned() => true,
            Some(Class::MethodOverride) if judged.drop_method_overrides => true,
            _ => judged.underscores == UnderscoreHeaders::Drop,
        };
        if removed {
            return RequestRule::Drop;
        }
    }
    // A name the client's `Connection` header lists is hop-by-hop whatever its class (RFC 9110
    // §7.6.1): a listed `Cookie` or `X-Forwarded-For` does not cross either.
    if judged.connection_named.contains(name) {
        return RequestRule::Drop;
    }
    match class_of(name) {
        // Only sfgate may vouch for a caller; credentials are for sfgate, not the upstream;
        // hop-by-hop and framing headers describe the client's connection.
        Some(Class::Identity | Class::Assertion | Class::Credential) => RequestRule::Drop,
        Some(Class::HopByHop | Class::Framing) => RequestRule::Drop,
        Some(Class::Cookie) => RequestRule::Cookie,
        Some(Class::ForwardedFor) => RequestRule::ForwardedFor,
        // Only a trusted proxy's values pass (`X-Forwarded-Prefix`, `X-Original-URL`, ...).
        Some(Class::Forwarding) if judged.trust_proxy => RequestRule::Keep,
        Some(Class::Forwarding) => RequestRule::Drop,
        Some(Class::MethodOverride) if judged.drop_method_overrides => RequestRule::Drop,
        Some(Class::MethodOverride | Class::RequestId) | None => RequestRule::Keep,
    }
}

/// Everything the upstream should learn besides the client's own headers.
pub struct Outgoing<'a> {
    /// `host` here is the fallback for a request without a `Host` header (HTTP/2).
    pub forwarded: Forwarded<'a>,
    /// `PROXY_UNDERSCORE_HEADERS`.
    pub underscores: UnderscoreHeaders,
    /// Whether the request passed a skip-auth rule (see [`Judged::drop_method_overrides`]).
    pub drop_method_overrides: bool,
    /// The identity headers of a confirmed caller (see `Confirmed::headers`).
    pub identity: Option<&'a HeaderMap>,
    /// The signed `X-Sfgate-Assertion` for that caller (`ASSERTION_KEY`).
    pub assertion: Option<&'a HeaderValue>,
    /// `PASS_ACCESS_TOKEN`: the caller's token and instance.
    pub access_token: Option<(&'a SecretString, &'a InstanceUrl)>,
}

/// Where the rewritten request headers go: a map for hyper's client
/// ([`upstream_request_headers`]), or the request head's own lines for sfgate's HTTP/1.1
/// client (`crate::proxy`), which writes them without building a second map. One rewrite
/// ([`rewrite_request`]) serves both, so the two cannot come to differ.
pub trait RequestHeaders {
    /// A client header passed on as it came.
    fn pass(&mut self, name: &HeaderName, value: &HeaderValue);
    /// A header sfgate sets. Never a name a client header was passed on under: the rule drops
    /// every client copy of the headers sfgate sets, so setting is adding.
    fn set(&mut self, name: &HeaderName, value: &HeaderValue);
    /// The same, for a value made for this request (a map takes it without a copy).
    fn set_made(&mut self, name: HeaderName, value: HeaderValue) {
        self.set(&name, &value);
    }
}

impl RequestHeaders for HeaderMap {
    fn pass(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.append(name.clone(), value.clone());
    }

    fn set(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.insert(name.clone(), value.clone());
    }

    fn set_made(&mut self, name: HeaderName, value: HeaderValue) {
        self.insert(name, value);
    }
}

/// The request headers the upstream gets, as a map (see [`rewrite_request`]).
pub fn upstream_request_headers(headers: &HeaderMap, out: &Outgoing<'_>) -> HeaderMap {
    // Room for what is added (forwarding, identity, assertion): growing the map rehashes it.
    let mut result = HeaderMap::with_capacity(headers.len() + 16);
    rewrite_request(headers, out, &mut result);
    result
}

/// The request headers the upstream gets, in one pass over the client's map: every header is
/// classified once by [`request_rule`], then sfgate adds the forwarding, identity and
/// assertion headers. Equivalent to [`remove_by_name_rule`], [`remove_hop_by_hop`],
/// [`remove_credentials`], [`set_forwarded`] and the identity headers in turn, without
/// rebuilding the map for each. Client headers go out in the map's order, sfgate's after them.
pub fn rewrite_request(headers: &HeaderMap, out: &Outgoing<'_>, result: &mut impl RequestHeaders) {
    let trust = out.forwarded.trust_proxy;
    // Read as the proxy reads every `Connection` value ([`connection_items`]); `close` and
    // `keep-alive` are not names, which keeps the list empty (and unallocated) for the usual
    // values.
    let connection: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| connection_items(v.as_bytes()))
        .filter_map(|item| match item {
            ConnectionItem::Name(name) => Some(name),
            ConnectionItem::Close | ConnectionItem::KeepAlive => None,
        })
        .collect();
    let judged = Judged {
        trust_proxy: trust,
        underscores: out.underscores,
        drop_method_overrides: out.drop_method_overrides,
        connection_named: &connection,
    };
    let mut forwarded_for: Option<String> = None;
    let mut client_host: Option<&HeaderValue> = None;
    // Whether a trusted proxy's `X-Forwarded-Proto` / `-Host` passed (then they are not set).
    let (mut has_proto, mut has_host) = (false, false);
    for (name, value) in headers.iter() {
        if name == header::HOST && client_host.is_none() {
            client_host = Some(value);
        }
        match request_rule(name, &judged) {
            RequestRule::Keep => {
                // Only a trusted proxy's forwarding headers are kept at all.
                if trust {
                    has_proto |= name == X_FORWARDED_PROTO;
                    has_host |= name == X_FORWARDED_HOST;
                }
                result.pass(name, value);
            }
            RequestRule::Drop => {}
            RequestRule::Cookie => {
                if let Some(kept) = without_sfgate_cookies(value.as_bytes()) {
                    result.pass(&header::COOKIE, &kept);
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
        // Room for an IPv4 address without growing.
        let mut chain = forwarded_for
            .take()
            .unwrap_or_else(|| String::with_capacity(16));
        if !chain.is_empty() {
            chain.push_str(", ");
        }
        push_ip(&mut chain, client.ip());
        forwarded_for = Some(chain);
    }
    // The chain becomes the value itself (no copy).
    if let Some(v) = forwarded_for.and_then(|c| HeaderValue::from_maybe_shared(Bytes::from(c)).ok())
    {
        result.set_made(X_FORWARDED_FOR, v);
    }
    if !has_proto {
        result.set_made(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !has_host {
        // The client's `Host` as it came (no copy), else the HTTP/2 authority.
        if let Some(v) = client_host {
            result.set(&X_FORWARDED_HOST, v);
        } else if let Some(v) = out
            .forwarded
            .host
            .and_then(|h| HeaderValue::from_str(h).ok())
        {
            result.set_made(X_FORWARDED_HOST, v);
        }
    }
    if let Some(identity) = out.identity {
        for (name, value) in identity {
            result.set(name, value);
        }
    }
    if let Some(assertion) = out.assertion {
        result.set(&X_SFGATE_ASSERTION, assertion);
    }
    if let Some((token, instance)) = out.access_token {
        for (name, value) in access_token_headers(token, instance) {
            result.set_made(name, value);
        }
    }
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
    if headers.keys().any(is_hop_by_hop) {
        remove_hop_by_hop(headers);
    }
}

#[cfg(test)]
pub(crate) mod tests;
