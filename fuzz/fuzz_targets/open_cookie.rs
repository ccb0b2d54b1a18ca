//! Opening sealed cookies from arbitrary bytes: the session and login cookies, as the value of
//! a `Cookie` header. Must never panic; a forged value must never open.
#![no_main]

use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sfgate::auth::session::{LoginState, LOGIN_COOKIE, SESSION_COOKIE};
use sfgate::auth::{CookieSealer, Session};
use std::sync::OnceLock;
use std::time::Duration;

fn sealer() -> &'static CookieSealer {
    static SEALER: OnceLock<CookieSealer> = OnceLock::new();
    SEALER.get_or_init(|| {
        CookieSealer::new(
            b"fuzzing-session-secret-0123456789abcdef",
            false,
            Duration::from_secs(3600),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    // The raw bytes as a whole Cookie header, and as the value of each of sfgate's cookies.
    for value in [
        data.to_vec(),
        [format!("{SESSION_COOKIE}=").as_bytes(), data].concat(),
        [format!("{LOGIN_COOKIE}=").as_bytes(), data].concat(),
    ] {
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.append(header::COOKIE, v);
        }
    }
    // Without the key, nothing the fuzzer writes can be authentic (AES-256-GCM).
    assert!(!matches!(
        sealer().open::<Session>(&headers, SESSION_COOKIE),
        Ok(Some(_))
    ));
    assert!(!matches!(
        sealer().open::<LoginState>(&headers, LOGIN_COOKIE),
        Ok(Some(_))
    ));
});
