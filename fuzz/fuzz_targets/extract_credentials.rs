//! Credential extraction from arbitrary header bytes.
//!
//! The input is read as header lines (`name: value`, separated by `\n`); lines that `http`
//! itself would refuse (as hyper does before sfgate sees them) are dropped. Whatever comes in,
//! `extract_credentials` must not panic, and a token it accepts must be a well-formed one.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;
use sfgate::auth::{extract_credentials, CookieSealer};
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
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    if let Ok(Some(credentials)) = extract_credentials(&headers, sealer()) {
        let token = credentials.token.expose_secret();
        assert!(!token.is_empty() && token.len() <= 4096);
        assert!(token.bytes().all(|b| b.is_ascii_graphic()));
    }
});
