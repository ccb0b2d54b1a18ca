//! The path route rules are matched against, in every mode: the request's own, or (forward
//! auth) the original request's, which the proxy in front sends in a header. Either is read by
//! the one path rule ([`CanonicalPath`]) the trust boundary applies, with the same
//! `ALLOW_ENCODED_SLASHES`, so rules judge exactly the paths the proxy forwards, in every
//! reading an upstream may give them ([`crate::policy::Policy::check_path`]).

use super::{AuthError, Authenticator};
use crate::domain::{CanonicalPath, PathError};
use axum::http::{HeaderMap, HeaderName};

impl Authenticator {
    /// `raw` (a request path without its query) under the one path rule; `None` when there
    /// are no route rules (no path is needed, and nothing is refused here).
    pub fn path_for_rules(&self, raw: &str) -> Result<Option<CanonicalPath>, AuthError> {
        if self.policy.routes.is_empty() {
            return Ok(None);
        }
        CanonicalPath::parse(raw, self.path_policy)
            .map(Some)
            .map_err(unmatchable)
    }

    /// Forward auth's path for the rules: the original URI's, read only with `TRUST_PROXY`
    /// and only when there are route rules; `None` (unknown) otherwise.
    pub(super) fn original_path_for_rules(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<CanonicalPath>, AuthError> {
        if !self.trust_proxy || self.policy.routes.is_empty() {
            return Ok(None);
        }
        match original_path(headers)? {
            Some(path) => self.path_for_rules(path),
            None => Ok(None),
        }
    }
}

fn unmatchable(why: PathError) -> AuthError {
    AuthError::BadHeader(format!(
        "the request path cannot be matched against the route rules: {why}"
    ))
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
    use super::original_path;
    use axum::http::{HeaderMap, HeaderName, HeaderValue};

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
