//! The path route rules are matched against, in every mode: the request's own, or (forward
//! auth) the original request's, which the proxy in front sends in a header.

use super::{AuthError, Authenticator};
use axum::http::{HeaderMap, HeaderName};
use std::borrow::Cow;

/// The path route rules are matched against, from the raw request path (or forward auth's
/// original URI path): percent-decoded once, after refusing every spelling a decoding or
/// normalising upstream could read as another path (encoded `/`, `\\`, `.` or `%`,
/// dot-segments, `;` parameters on dot-segments, control characters). Without route rules no
/// path is needed and nothing is refused here.
///
/// This is the single place where rules meet paths: when sfgate has one canonical-path type
/// for every check (`CanonicalPath::parse`), it replaces the body of this function.
impl Authenticator {
    pub fn path_for_rules<'a>(&self, raw: &'a str) -> Result<Option<Cow<'a, str>>, AuthError> {
        if self.policy.routes.is_empty() {
            return Ok(None);
        }
        canonical_path(raw).map(Some).map_err(|why| {
            AuthError::BadHeader(format!(
                "the request path cannot be matched against the route rules: {why}"
            ))
        })
    }

    /// Forward auth's path for the rules: the original URI's, read only with `TRUST_PROXY`
    /// and only when there are route rules; `None` (unknown) otherwise.
    pub(super) fn original_path_for_rules<'a>(
        &self,
        headers: &'a HeaderMap,
    ) -> Result<Option<Cow<'a, str>>, AuthError> {
        if !self.trust_proxy || self.policy.routes.is_empty() {
            return Ok(None);
        }
        match original_path(headers)? {
            Some(path) => self.path_for_rules(path),
            None => Ok(None),
        }
    }
}

/// See [`path_for_rules`].
fn canonical_path(raw: &str) -> Result<Cow<'_, str>, &'static str> {
    if !raw.starts_with('/') || raw.starts_with("//") {
        return Err("it must be an absolute path starting with a single /");
    }
    if raw
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\' || b == b'#' || b >= 0x80)
    {
        return Err("it contains a character that is not allowed in a path");
    }
    // A `%` that is not an escape would let `%%32%66` decode to `%2f`: a second decoding (by
    // the app or another proxy) would then read a `/` that no rule saw.
    let bytes = raw.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err("it contains a % that is not a %-escape");
    }
    let lower = raw.to_ascii_lowercase();
    for encoded in ["%2f", "%5c", "%2e", "%25", "%00"] {
        if lower.contains(encoded) {
            return Err("it contains an encoded /, \\, . or %");
        }
    }
    let dot_segment = |segment: &str| {
        let bare = segment.split(';').next().unwrap_or_default();
        bare == "." || bare == ".."
    };
    if raw.split('/').any(dot_segment) {
        return Err("it contains a . or .. segment");
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "it does not decode to UTF-8")?;
    if decoded.chars().any(char::is_control) {
        return Err("it decodes to a control character");
    }
    Ok(decoded)
}

/// nginx's and Traefik's names for the original request URI.
static ORIGINAL_URI: [HeaderName; 2] = [
    HeaderName::from_static("x-original-uri"),
    HeaderName::from_static("x-forwarded-uri"),
];

/// The path of the original URI the proxy sent: a plain absolute path, with its query cut
/// off. A full URL, a scheme-relative `//host`, or several values are refused (400).
pub(super) fn original_path(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(name) = ORIGINAL_URI.iter().find(|n| headers.contains_key(*n)) else {
        return Ok(None);
    };
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AuthError::BadHeader(format!("{name} must be sent once")));
    };
    let uri = value
        .to_str()
        .map_err(|_| AuthError::BadHeader(format!("{name} is not text")))?;
    let path = uri.split_once('?').map_or(uri, |(path, _)| path);
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(AuthError::BadHeader(format!(
            "{name} must be an absolute path such as /app/page?x=1"
        )));
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::{canonical_path, original_path};
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    use proptest::prelude::*;

    /// Pieces attackers combine: separators, dots, their encoded and double-encoded forms,
    /// matrix parameters, and harmless encodings of letters.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/", "a", ".", "..", "%", "2", "f", "e", "5", "c", "%2e", "%2F", "%5c", "%25", "%32",
            "%66", "%61", ";", "\\", "%zz", "%00", "%c3%a9",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever is accepted is what any decoding, normalising upstream reads too: decoding
        /// it again changes nothing, and it has no `.`/`..` segment (also with `;` parameters)
        /// and no backslash. So a rule matched on it is matched on the path the app serves.
        #[test]
        fn accepted_paths_mean_the_same_to_a_decoding_upstream(
            pieces in prop::collection::vec(piece(), 0..8)
        ) {
            let raw = format!("/{}", pieces.concat());
            if let Ok(path) = canonical_path(&raw) {
                let again = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
                prop_assert_eq!(again.as_ref(), path.as_ref(), "raw {}", raw);
                prop_assert!(!path.contains('\\'));
                for segment in path.split('/') {
                    let bare = segment.split(';').next().unwrap_or_default();
                    prop_assert!(bare != "." && bare != "..", "raw {} gave {}", raw, path);
                }
            }
        }
    }

    #[test]
    fn plain_paths_are_decoded_once_and_ambiguous_ones_refused() {
        assert_eq!(canonical_path("/admin/x").as_deref(), Ok("/admin/x"));
        assert_eq!(canonical_path("/adm%69n/").as_deref(), Ok("/admin/"));
        assert_eq!(canonical_path("/caf%C3%A9").as_deref(), Ok("/café"));
        for bad in [
            "admin",
            "//evil/admin",
            "/public/..%2fadmin",
            "/public/%2e%2e/admin",
            "/public/../admin",
            "/public/..;/admin",
            "/./admin",
            "/a%252fb",
            "/a\\b",
            "/a%00",
            "/a%0a",
            "/a b",
            "/a#b",
            "/%ff",
            "/%%32%66admin",
            "/a%zz",
        ] {
            assert!(canonical_path(bad).is_err(), "{bad}");
        }
    }

    fn with(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn original_uris_must_be_plain_absolute_paths() {
        let ok = with("x-original-uri", &["/admin/x?y=/public"]);
        assert_eq!(original_path(&ok).ok().flatten(), Some("/admin/x"));
        let traefik = with("x-forwarded-uri", &["/a"]);
        assert_eq!(original_path(&traefik).ok().flatten(), Some("/a"));
        assert!(matches!(original_path(&HeaderMap::new()), Ok(None)));
        for bad in ["https://evil.example/admin", "//evil/admin", "admin", ""] {
            assert!(
                original_path(&with("x-original-uri", &[bad])).is_err(),
                "{bad}"
            );
        }
        assert!(original_path(&with("x-original-uri", &["/a", "/b"])).is_err());
    }
}
