//! Finding the caller's credentials in a request. First match wins:
//! 1. `Authorization: Bearer <token>` with `X-Instance-Url`;
//! 2. the Node.js app's `bearer` and `instanceurl` headers (a drop-in for its clients);
//! 3. the session cookie set by the browser login.

use super::session::{CookieSealer, Session};
use super::AuthError;
use axum::http::{header, HeaderMap, HeaderName};
use secrecy::SecretString;

use crate::headers::text::as_text;
use crate::headers::{LEGACY_BEARER, LEGACY_INSTANCE_URL, X_INSTANCE_URL};

/// Salesforce tokens are well under this; anything longer is not a token.
const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Bearer,
    Legacy,
    Session,
}

/// A token and the instance it claims to come from. The instance is not yet checked.
pub struct Credentials {
    pub token: SecretString,
    pub instance: String,
    pub source: CredentialSource,
    /// The whole session, when the credentials came from the cookie (needed to refresh it).
    pub session: Option<Session>,
}

/// `Ok(None)` means the request carries no credentials at all; malformed credentials are an
/// error, never "anonymous".
pub fn extract_credentials(
    headers: &HeaderMap,
    sealer: &CookieSealer,
) -> Result<Option<Credentials>, AuthError> {
    if let Some(value) = single(headers, &header::AUTHORIZATION)? {
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed(
                "the Authorization header must use the Bearer scheme".into(),
            ));
        }
        let token = parse_token(token.trim(), "Authorization")?;
        let instance = single(headers, &X_INSTANCE_URL)?
            .ok_or(AuthError::MissingInstance("X-Instance-Url"))?;
        return Ok(Some(Credentials {
            token,
            instance: instance.to_string(),
            source: CredentialSource::Bearer,
            session: None,
        }));
    }
    if let Some(value) = single(headers, &LEGACY_BEARER)? {
        let token = parse_token(value.trim(), "bearer")?;
        let instance = single(headers, &LEGACY_INSTANCE_URL)?
            .ok_or(AuthError::MissingInstance("instanceurl"))?;
        return Ok(Some(Credentials {
            token,
            instance: instance.to_string(),
            source: CredentialSource::Legacy,
            session: None,
        }));
    }
    match sealer.open_session(headers) {
        Ok(Some(session)) => Ok(Some(Credentials {
            token: session.access_token.clone(),
            instance: session.instance_url.clone(),
            source: CredentialSource::Session,
            session: Some(session),
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(AuthError::BadSession(e)),
    }
}

/// The header's value if it appears once; a repeated or non-UTF-8 credential header is refused
/// rather than guessed at.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::BadHeader(format!(
            "the {name} header must appear only once"
        )));
    }
    as_text(first.as_bytes())
        .map(Some)
        .ok_or_else(|| AuthError::BadHeader(format!("the {name} header is not valid text")))
}

/// RFC 6750 tokens are visible ASCII; Salesforce's contain `!`, so any visible character is
/// accepted, but no spaces, no control characters and nothing absurdly long.
fn parse_token(raw: &str, header: &str) -> Result<SecretString, AuthError> {
    if raw.is_empty() {
        return Err(AuthError::Malformed(format!(
            "the {header} header carries no token"
        )));
    }
    if raw.len() > MAX_TOKEN_LEN || !all_visible_ascii(raw.as_bytes()) {
        return Err(AuthError::Malformed(format!(
            "the {header} header does not carry a well-formed token"
        )));
    }
    Ok(SecretString::from(raw))
}

/// Whether every byte is visible ASCII (`!` to `~`), without stopping early: written so the
/// compiler checks many bytes per instruction. Every request with a token runs this over it,
/// and a byte-by-byte check was a measurable part of a cached request's cost.
fn all_visible_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(true, |ok, &b| ok & (b.wrapping_sub(b'!') <= b'~' - b'!'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use secrecy::ExposeSecret;
    use std::time::Duration;

    fn sealer() -> CookieSealer {
        CookieSealer::new(
            b"0123456789abcdef0123456789abcdef",
            false,
            Duration::from_secs(60),
        )
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_bytes(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn bearer_header_wins_over_legacy_headers() {
        let h = headers(&[
            ("authorization", b"Bearer 00Dabc!tok"),
            ("x-instance-url", b"https://a.my.salesforce.com"),
            ("bearer", b"legacy"),
            ("instanceurl", b"https://b.my.salesforce.com"),
        ]);
        let c = extract_credentials(&h, &sealer())
            .expect("ok")
            .expect("some");
        assert_eq!(c.source, CredentialSource::Bearer);
        assert_eq!(c.token.expose_secret(), "00Dabc!tok");
        assert_eq!(c.instance, "https://a.my.salesforce.com");
    }

    #[test]
    fn legacy_headers_work_alone() {
        let h = headers(&[
            ("bearer", b"tok"),
            ("instanceurl", b"https://b.my.salesforce.com"),
        ]);
        let c = extract_credentials(&h, &sealer())
            .expect("ok")
            .expect("some");
        assert_eq!(c.source, CredentialSource::Legacy);
    }

    #[test]
    fn visible_ascii_is_exactly_bang_to_tilde() {
        for b in 0u8..=255 {
            let long = [vec![b'x'; 37], vec![b], vec![b'y'; 21]].concat();
            assert_eq!(
                all_visible_ascii(&[b]),
                b.is_ascii_graphic(),
                "byte {b:#04x}"
            );
            assert_eq!(
                all_visible_ascii(&long),
                b.is_ascii_graphic(),
                "byte {b:#04x}"
            );
        }
        assert!(all_visible_ascii(b""));
    }

    #[test]
    fn no_credentials_is_not_an_error() {
        assert!(extract_credentials(&HeaderMap::new(), &sealer())
            .expect("ok")
            .is_none());
    }

    #[test]
    fn malformed_credentials_are_errors_naming_the_problem() {
        type Headers<'a> = &'a [(&'a str, &'a [u8])];
        let cases: &[(Headers<'_>, &str)] = &[
            (&[("authorization", b"Basic abc")], "Bearer scheme"),
            (&[("authorization", b"Bearer ")], "no token"),
            (&[("authorization", b"Bearer a b")], "well-formed"),
            (&[("authorization", b"Bearer tok")], "X-Instance-Url"),
            (&[("bearer", b"tok")], "instanceurl"),
            (
                &[
                    ("authorization", b"Bearer a"),
                    ("authorization", b"Bearer b"),
                ],
                "only once",
            ),
            (
                &[
                    ("authorization", b"Bearer \xff\xfe"),
                    ("x-instance-url", b"https://a.salesforce.com"),
                ],
                "not valid text",
            ),
        ];
        for (pairs, expected) in cases {
            let err = extract_credentials(&headers(pairs), &sealer())
                .err()
                .expect("error");
            assert!(
                err.to_string().contains(expected),
                "{err} should mention {expected}"
            );
        }
    }
}
