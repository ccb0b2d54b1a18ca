//! The signed identity assertion sent upstream (`X-Sfgate-Assertion`).

use super::reader::Reader;
use crate::headers::AssertionKey;
use url::Url;

#[derive(Debug, Clone, Default)]
pub struct AssertionConfig {
    /// `ASSERTION_KEY`: signs `X-Sfgate-Assertion` when set.
    pub key: Option<AssertionKey>,
    /// The assertion's `aud`: `ASSERTION_AUDIENCE`, else the origin of `UPSTREAM_URL`.
    pub audience: Option<String>,
}

/// `ASSERTION_KEY` and `ASSERTION_AUDIENCE`.
pub(super) fn parse(r: &mut Reader<'_>, upstream: Option<&Url>) -> AssertionConfig {
    let audience = match r.get("ASSERTION_AUDIENCE") {
        Some(raw) => r.url("ASSERTION_AUDIENCE", &raw).and_then(|u| {
            if matches!(u.path(), "" | "/") && u.query().is_none() {
                Some(u.origin().ascii_serialization())
            } else {
                r.problem(
                    "ASSERTION_AUDIENCE",
                    format!("`{raw}` must be an origin (scheme://host[:port])"),
                );
                None
            }
        }),
        None => upstream.map(|u| u.origin().ascii_serialization()),
    };
    let Some(pem) = r.get("ASSERTION_KEY") else {
        return AssertionConfig {
            key: None,
            audience,
        };
    };
    let key = match AssertionKey::parse(&pem) {
        Ok(k) => Some(k),
        Err(m) => {
            r.problem("ASSERTION_KEY", m);
            None
        }
    };
    if audience.is_none() {
        r.problem(
            "ASSERTION_AUDIENCE",
            "is required with ASSERTION_KEY when UPSTREAM_URL is not set (the app's origin, e.g. https://app.example.com)",
        );
    }
    AssertionConfig { key, audience }
}
