use super::*;
use axum::http::HeaderValue;
use proptest::prelude::*;

fn cookie_header(values: &[&[u8]]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(
            header::COOKIE,
            HeaderValue::from_bytes(value).expect("a header value"),
        );
    }
    headers
}

#[test]
fn the_session_is_found_beside_cookies_sfgate_cannot_read() {
    // A UTF-8 value (browsers keep and send them) and a byte that is not UTF-8 at all.
    let headers = cookie_header(&[
        "name=José; sfgate_session=sealed; theme=dark".as_bytes(),
        b"a=\xff\xfe; sfgate_login=state",
    ]);
    assert_eq!(
        find_cookie(&headers, SESSION_COOKIE).as_deref(),
        Some("sealed")
    );
    assert_eq!(
        find_cookie(&headers, LOGIN_COOKIE).as_deref(),
        Some("state")
    );
    assert_eq!(find_cookie(&headers, "name").as_deref(), Some("José"));
    assert_eq!(find_cookie(&headers, "a"), None);
}

#[test]
fn names_are_read_as_sent_and_values_decoded() {
    let headers = cookie_header(&[
        b"sfgate%5Fsession=encoded; __Host%2Dsfgate_session=encoded; __Host-sfgate_session=a%2Fb",
    ]);
    assert_eq!(find_cookie(&headers, SESSION_COOKIE), None);
    assert_eq!(
        find_cookie(&headers, "__Host-sfgate_session").as_deref(),
        Some("a/b")
    );
    assert_eq!(CookieNames::Plain.of(SESSION_COOKIE), SESSION_COOKIE);
    assert_eq!(
        CookieNames::HostPrefixed.of(LOGIN_COOKIE),
        "__Host-sfgate_login"
    );
    assert_eq!(
        CookieNames::HostPrefixed.of(SESSION_COOKIE),
        format!("{HOST_PREFIX}{SESSION_COOKIE}")
    );
}

#[test]
fn an_apps_set_cookie_for_sfgates_cookies_is_claimed_in_every_spelling() {
    let claimed: [&[u8]; 17] = [
        b"sfgate_session=x",
        b"sfgate_login=x; Path=/; HttpOnly",
        b"sfgate_session=; Max-Age=0",
        b" sfgate_session =x; Path=/app/longer",
        b"\tsfgate_session\t=\tx",
        b"sfgate%5Fsession=x; Path=/",
        b"%73fgate_login=x",
        // An empty name: the browser sends the value back alone.
        b"=sfgate_session=x",
        b"= sfgate_login=x; Domain=example.com",
        b"=sfgate%5Fsession=x",
        b"sfgate_session=\xff",
        b"sfgate_session=a=b",
        // The names served over HTTPS, the prefix in any case, and spellings of them.
        b"__Host-sfgate_session=x; Secure; Path=/",
        b"__host-sfgate_login=x",
        b"__Host%2Dsfgate_session=x; Domain=example.com",
        b"=__Host-sfgate_session=x",
        // No `=`: a value with an empty name, sent back as `sfgate_session`.
        b"sfgate_session",
    ];
    for value in claimed {
        assert!(sets_own_cookie(value), "{}", String::from_utf8_lossy(value));
    }
    let passed: [&[u8]; 10] = [
        b"theme=dark",
        b"sfgate_session2=x",
        b"SFGATE_SESSION=x",
        b"x=sfgate_session=y",
        b"theme=dark; sfgate_session=x",
        b"theme=dark; Path=/; Comment=sfgate_session=x",
        b"",
        b"=",
        b"__Host-theme=x",
        b"__Secure-sfgate_session=x",
    ];
    for value in passed {
        assert!(
            !sets_own_cookie(value),
            "{}",
            String::from_utf8_lossy(value)
        );
    }
}

/// A browser's store, reduced to what this test needs: the pair a `Set-Cookie` value leaves,
/// as the browser sends it back in `Cookie` (RFC 6265bis §5.6 and §5.8.3, written here apart
/// from the code under test), or `None` when the browser ignores the value.
fn sent_back(set_cookie: &str) -> Option<String> {
    let pair = match set_cookie.split_once(';') {
        Some((pair, _attributes)) => pair,
        None => set_cookie,
    };
    let (name, value) = pair.split_once('=').unwrap_or(("", pair));
    let (name, value) = (
        name.trim_matches([' ', '\t']),
        value.trim_matches([' ', '\t']),
    );
    match (name.is_empty(), value.is_empty()) {
        (true, true) => None,
        (true, false) => Some(value.to_owned()),
        (false, _) => Some(format!("{name}={value}")),
    }
}

/// Pieces a `Set-Cookie` value is made of: names and spellings of sfgate's cookies and of
/// others, prefixes, separators, spaces, values and attributes.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "sfgate_session",
        "sfgate_login",
        "sfgate%5Fsession",
        "%73fgate_login",
        "__Host-",
        "__HOST-",
        "__Host%2D",
        "sfgate_",
        "session",
        "SFGATE_SESSION",
        "theme",
        "=",
        "==",
        ";",
        "; Path=/app",
        "; Max-Age=0",
        " ",
        "\t",
        "%",
        "%5F",
        "x",
        "dark",
        "é",
    ])
}

/// `text` with `%XX` escapes decoded, as the `cookie` crate decodes names (written apart from
/// it); `None` when the result is not UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `name` is one of sfgate's four names (the prefix in any case).
fn names_one_of_ours(name: &str) -> bool {
    let base = match name.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("__host-") => &name[7..],
        _ => name,
    };
    base == SESSION_COOKIE || base == LOGIN_COOKIE
}

proptest! {
    /// The class: whatever an app's `Set-Cookie` says, it is claimed whenever the pair the
    /// browser sends back for it would be read by the session layer under any name sfgate
    /// serves (set or, when the browser removes it, the one it would have replaced); and only
    /// when that pair's name, as sent or percent-decoded, is one of sfgate's.
    #[test]
    fn claimed_whenever_the_session_layer_would_read_what_the_browser_sends_back(
        pieces in prop::collection::vec(piece(), 0..8),
    ) {
        let value = pieces.concat();
        let claimed = sets_own_cookie(value.as_bytes());
        let back = sent_back(&value);
        let read = back.as_deref().is_some_and(|pair| {
            let headers = cookie_header(&[pair.as_bytes()]);
            [CookieNames::Plain, CookieNames::HostPrefixed].iter().any(|names| {
                find_cookie(&headers, names.of(SESSION_COOKIE)).is_some()
                    || find_cookie(&headers, names.of(LOGIN_COOKIE)).is_some()
            })
        });
        prop_assert!(!read || claimed, "read but not claimed: {:?}", value);
        // A pair without `=` is no `name=value` pair: only its text as sent can name ours.
        let ours = back.as_deref().is_some_and(|pair| match pair.split_once('=') {
            Some((name, _)) => {
                let name = name.trim();
                names_one_of_ours(name)
                    || percent_decoded(name).is_some_and(|n| names_one_of_ours(&n))
            }
            None => names_one_of_ours(pair.trim()),
        });
        prop_assert_eq!(claimed, ours, "{:?}", value);
    }
}
