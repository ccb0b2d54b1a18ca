//! sfgate's own cookies as they arrive in a `Cookie` header and as an app's answer might set
//! them: their names, and the one reading of a `name=value` pair used to find them (the
//! session layer), to strip them before a request is proxied, and to refuse an app's
//! `Set-Cookie` for them (the header rewrites). One reading for all three, so a spelling the
//! session layer would accept can never pass to the app nor be planted by it.

use axum::http::{header, HeaderMap};
use cookie::Cookie;

/// The login cookie: the `state` and PKCE verifier between the start and the callback.
pub const LOGIN_COOKIE: &str = "sfgate_login";
/// The session cookie: the sealed tokens and identity of a logged-in browser.
pub const SESSION_COOKIE: &str = "sfgate_session";

/// The first cookie called `name` in any `Cookie` header. Pairs that are not UTF-8 or do not
/// parse are skipped one by one: a cookie of another site's making with a byte sfgate cannot
/// read (a UTF-8 value, which browsers keep and send) must not hide the session beside it,
/// or every request would look logged out and every login would end in another.
pub fn find_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(read_cookie_pair)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// One `name=value` pair of a `Cookie` header as sfgate reads it: name and value
/// percent-decoded (the `cookie` crate's encoded parsing), `None` for a blank or unreadable
/// pair. The one reading used both to find sfgate's cookies and to strip them before
/// proxying, so `sfgate%5Fsession=...` cannot be read as the session yet pass to the app.
pub fn read_cookie_pair(pair: &str) -> Option<Cookie<'static>> {
    let pair = pair.trim();
    if pair.is_empty() {
        return None;
    }
    Cookie::parse_encoded(pair.to_owned()).ok()
}

/// Whether sfgate reads this `Cookie` pair as one of its own cookies. A pair that is not
/// UTF-8 is never read by sfgate ([`find_cookie`]), but its raw name is compared all the same:
/// removing too much is the safe side of this test.
pub fn is_own_cookie_pair(pair: &[u8]) -> bool {
    match std::str::from_utf8(pair) {
        Ok(pair) => read_cookie_pair(pair)
            .is_some_and(|c| c.name() == SESSION_COOKIE || c.name() == LOGIN_COOKIE),
        Err(_) => {
            let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
            let name = name.trim_ascii();
            name == SESSION_COOKIE.as_bytes() || name == LOGIN_COOKIE.as_bytes()
        }
    }
}

/// Whether a `Set-Cookie` value sets, replaces or removes a cookie sfgate reads as its own:
/// whether the pair a browser stores from it, sent back in `Cookie`, is one
/// [`is_own_cookie_pair`] claims (or would remove the one that is).
///
/// The browser's reading (RFC 6265bis §5.6): the pair is what comes before the first `;`;
/// the name is what comes before its first `=`, the value the rest, both trimmed of spaces
/// and tabs; a pair without `=` is a value with an empty name. A cookie with an empty name
/// is sent back as its value alone, so `=sfgate_session=…` comes back as
/// `sfgate_session=…`, and `sfgate%5Fsession=…` comes back as it was set, which sfgate
/// reads, percent-decoded, as its session. Both are claimed here, with every spelling of the
/// name itself.
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
