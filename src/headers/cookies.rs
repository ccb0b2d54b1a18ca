//! sfgate's own cookies as they arrive in a `Cookie` header: their names, and the one reading
//! of a `name=value` pair used both to find them (the session layer) and to strip them before a
//! request is proxied (the header rewrite). One reading for both, so a spelling the session
//! layer would accept can never pass to the app, and the other way round.

use axum::http::{header, HeaderMap};
use cookie::Cookie;

/// The login cookie: the `state` and PKCE verifier between the start and the callback.
pub const LOGIN_COOKIE: &str = "sfgate_login";
/// The session cookie: the sealed tokens and identity of a logged-in browser.
pub const SESSION_COOKIE: &str = "sfgate_session";

/// The first cookie called `name` in any `Cookie` header. Headers that are not valid UTF-8 or
/// cookies that do not parse are skipped.
pub fn find_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
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

/// Whether sfgate reads this `Cookie` pair as one of its own cookies.
pub fn is_own_cookie_pair(pair: &str) -> bool {
    read_cookie_pair(pair).is_some_and(|c| c.name() == SESSION_COOKIE || c.name() == LOGIN_COOKIE)
}
