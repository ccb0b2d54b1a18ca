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
fn an_apps_set_cookie_for_sfgates_cookies_is_claimed_in_every_spelling() {
    let claimed: [&[u8]; 12] = [
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
    ];
    for value in claimed {
        assert!(sets_own_cookie(value), "{}", String::from_utf8_lossy(value));
    }
    let passed: [&[u8]; 8] = [
        b"theme=dark",
        b"sfgate_session2=x",
        b"SFGATE_SESSION=x",
        b"x=sfgate_session=y",
        b"theme=dark; sfgate_session=x",
        b"theme=dark; Path=/; Comment=sfgate_session=x",
        b"",
        b"=",
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
/// others, separators, spaces, values and attributes.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "sfgate_session",
        "sfgate_login",
        "sfgate%5Fsession",
        "%73fgate_login",
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

proptest! {
    /// The class: whatever an app's `Set-Cookie` says, it is claimed exactly when the pair the
    /// browser sends back for it is found by the session layer as one of sfgate's cookies
    /// (set or, when the browser removes it, the one it would have replaced).
    #[test]
    fn claimed_exactly_when_the_session_layer_would_read_what_the_browser_sends_back(
        pieces in prop::collection::vec(piece(), 0..8),
    ) {
        let value = pieces.concat();
        let read_as_own = sent_back(&value).is_some_and(|pair| {
            let headers = cookie_header(&[pair.as_bytes()]);
            find_cookie(&headers, SESSION_COOKIE).is_some()
                || find_cookie(&headers, LOGIN_COOKIE).is_some()
        });
        prop_assert_eq!(sets_own_cookie(value.as_bytes()), read_as_own, "{:?}", value);
    }
}
