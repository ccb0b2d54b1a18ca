//! sfgate's own cookies as they arrive in a `Cookie` header and as an app's answer might set
//! them: their names, the reading that finds them (the session layer), and the wider rule
//! that strips them before a request is proxied and refuses an app's `Set-Cookie` for them
//! (the header rewrites). The rule claims every name the reading accepts and more, so a
//! spelling the session layer would accept can never pass to the app nor be planted by it.

use axum::http::{header, HeaderMap};
use cookie::Cookie;

/// The login cookie: the `state` and PKCE verifier between the start and the callback.
pub const LOGIN_COOKIE: &str = "sfgate_login";
/// The session cookie: the sealed tokens and identity of a logged-in browser.
pub const SESSION_COOKIE: &str = "sfgate_session";
/// The prefix sfgate's cookie names carry when sfgate is reached over HTTPS (RFC 6265bis
/// §4.1.3.2): a browser stores a `__Host-` cookie only if it is `Secure`, has `Path=/` and
/// no `Domain`, and only from the host itself, so no other host of the site (a sibling
/// subdomain, say) can plant or replace one. Without it, a sibling could set its own sealed
/// session or login cookie for the whole domain and log the visitor in as someone else.
pub const HOST_PREFIX: &str = "__Host-";

/// The name a cookie called `base` is served under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieNames {
    /// `base` itself: plain HTTP, where browsers keep no prefixed cookie.
    Plain,
    /// `__Host-` + `base`: HTTPS.
    HostPrefixed,
}

impl CookieNames {
    /// The prefixed names over HTTPS, the plain ones otherwise.
    pub fn for_https(https: bool) -> Self {
        if https {
            Self::HostPrefixed
        } else {
            Self::Plain
        }
    }

    /// The name [`LOGIN_COOKIE`] or [`SESSION_COOKIE`] is served under.
    pub fn of(self, base: &'static str) -> &'static str {
        match (self, base) {
            (Self::HostPrefixed, LOGIN_COOKIE) => "__Host-sfgate_login",
            (Self::HostPrefixed, SESSION_COOKIE) => "__Host-sfgate_session",
            _ => base,
        }
    }
}

/// The value of the first cookie whose name, as the browser sent it, is `name`; the value
/// percent-decoded (sfgate's own values are written encoded). Names are compared as sent,
/// never decoded: the browser's guarantees for a `__Host-` name hold for that spelling
/// only, and `__Host%2Dsfgate_session` is a plain cookie any host of the site may set.
///
/// Pairs that are not UTF-8 or do not parse are skipped one by one: a cookie of another
/// page's making with a byte sfgate cannot read (a UTF-8 value, which browsers keep and
/// send) must not hide the session beside it, or every request would look logged out and
/// every login would end in another.
pub fn find_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter(|pair| raw_name(pair) == name.as_bytes())
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(read_cookie_pair)
        .map(|c| c.value().to_string())
        .next()
}

/// A `Cookie` pair's name as sent: before the first `=`, trimmed.
fn raw_name(pair: &[u8]) -> &[u8] {
    pair.split(|&b| b == b'=')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// One `name=value` pair of a `Cookie` header, name and value percent-decoded (the `cookie`
/// crate's encoded parsing); `None` for a blank or unreadable pair.
pub fn read_cookie_pair(pair: &str) -> Option<Cookie<'static>> {
    let pair = pair.trim();
    if pair.is_empty() {
        return None;
    }
    Cookie::parse_encoded(pair.to_owned()).ok()
}

/// Whether a name is one of sfgate's cookies, under either name it may be served under and
/// with the prefix in any case (browsers compare it so).
fn is_own_name(name: &[u8]) -> bool {
    let base = match name.get(..HOST_PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(HOST_PREFIX.as_bytes()) => {
            &name[HOST_PREFIX.len()..]
        }
        _ => name,
    };
    base == SESSION_COOKIE.as_bytes() || base == LOGIN_COOKIE.as_bytes()
}

/// Whether a `Cookie` pair is claimed as one of sfgate's cookies: its name as sent, or
/// percent-decoded, is one of them under either name ([`CookieNames`]). Wider than what
/// [`find_cookie`] reads (which takes one name as sent), which is the safe side for a rule
/// that removes: a pair that is not UTF-8 is compared by its raw name alone.
pub fn is_own_cookie_pair(pair: &[u8]) -> bool {
    is_own_name(raw_name(pair))
        || std::str::from_utf8(pair)
            .ok()
            .and_then(read_cookie_pair)
            .is_some_and(|c| is_own_name(c.name().as_bytes()))
}

/// Whether a `Set-Cookie` value sets, replaces or removes one of sfgate's cookies: whether
/// the pair a browser stores from it, sent back in `Cookie`, is one [`is_own_cookie_pair`]
/// claims (or would remove the one that is).
///
/// The browser's reading (RFC 6265bis §5.6): the pair is what comes before the first `;`;
/// the name is what comes before its first `=`, the value the rest, both trimmed of spaces
/// and tabs; a pair without `=` is a value with an empty name. A cookie with an empty name
/// is sent back as its value alone, so `=sfgate_session=…` comes back as
/// `sfgate_session=…`: claimed, as are the prefixed names and the percent-encoded
/// spellings of all of them.
pub fn sets_own_cookie(set_cookie: &[u8]) -> bool {
    let pair = set_cookie.split(|&b| b == b';').next().unwrap_or_default();
    let (name, value) = match pair.iter().position(|&b| b == b'=') {
        Some(at) => (&pair[..at], &pair[at + 1..]),
        None => (&pair[..0], pair),
    };
    let (name, value) = (trim_spaces(name), trim_spaces(value));
    if name.is_empty() {
        return is_own_cookie_pair(value);
    }
    let mut returned = Vec::with_capacity(name.len() + 1 + value.len());
    returned.extend_from_slice(name);
    returned.push(b'=');
    returned.extend_from_slice(value);
    is_own_cookie_pair(&returned)
}

/// Says that an app's `Set-Cookie` for one of sfgate's cookies was removed (never its value),
/// the one line for every way an answer crosses.
pub(crate) fn log_removed_set_cookie() {
    tracing::warn!(
        "an answer from the app set one of sfgate's cookies; that Set-Cookie was removed"
    );
}

/// `bytes` without the spaces and tabs a browser trims from a cookie's name and value.
fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |at| at + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests;
