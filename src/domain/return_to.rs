//! Where to send a browser after login.
//!
//! `return_to` comes from the query string, so anyone can craft a login link with it. Accepting
//! an absolute or protocol-relative URL would turn sfgate into an open redirect that lends
//! Salesforce's login page to phishing; only same-origin relative paths are kept.

use crate::prefix_paths::PrefixPaths;
use std::fmt;

#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReturnTo(String);

impl ReturnTo {
    /// `None` for anything that is not a plain relative path on this origin.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.starts_with('/')
            && !raw.starts_with("//")
            && !raw.starts_with("/\\")
            && raw.len() <= 2048
            && raw.bytes().all(|b| b.is_ascii_graphic())
            && !raw.contains('\\');
        ok.then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The site's root, `/`.
    pub fn root() -> Self {
        Self("/".into())
    }

    /// The login link that brings a browser back to `path_and_query` afterwards, when that is a
    /// place worth returning to (not the login routes themselves).
    pub fn login_href(paths: &PrefixPaths, path_and_query: &str) -> String {
        Self::href(paths, paths.authorize, "return_to", path_and_query)
    }

    /// oauth2-proxy's spelling of [`Self::login_href`]: `{prefix}/start?rd=…`, where forward
    /// auth sends browsers for Traefik and Caddy.
    pub fn start_href(paths: &PrefixPaths, path_and_query: &str) -> String {
        Self::href(paths, paths.start, "rd", path_and_query)
    }

    fn href(paths: &PrefixPaths, route: &str, parameter: &str, path_and_query: &str) -> String {
        match Self::parse(path_and_query) {
            Some(back) if !back.is_under(paths) => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair(parameter, back.as_str())
                    .finish();
                format!("{route}?{query}")
            }
            _ => route.to_owned(),
        }
    }
}

impl ReturnTo {
    /// Whether this path (its query aside) is one of sfgate's own: never a place to return to.
    fn is_under(&self, paths: &PrefixPaths) -> bool {
        let path = self.0.split(['?', '#']).next().unwrap_or_default();
        paths.is_under(path)
    }
}

impl TryFrom<String> for ReturnTo {
    type Error = &'static str;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or("not a relative path")
    }
}

impl From<ReturnTo> for String {
    fn from(r: ReturnTo) -> String {
        r.0
    }
}

impl fmt::Debug for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReturnTo({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{PrefixPaths, ReturnTo};

    #[test]
    fn only_same_origin_relative_paths_are_kept() {
        for ok in ["/", "/api/me", "/app?tab=1#x", "/a/b%2Fc"] {
            assert!(ReturnTo::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "api/me",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/ok\\..\\x",
            "/\u{ff0f}evil",
        ] {
            assert!(ReturnTo::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn login_links_carry_only_useful_return_paths() {
        let paths = PrefixPaths::default_paths();
        assert_eq!(
            ReturnTo::login_href(paths, "/api/me?x=1"),
            "/oauth2/authorize?return_to=%2Fapi%2Fme%3Fx%3D1"
        );
        assert_eq!(
            ReturnTo::login_href(paths, "/oauth2/callback?code=x"),
            "/oauth2/authorize"
        );
        assert_eq!(
            ReturnTo::login_href(paths, "//evil.example"),
            "/oauth2/authorize"
        );
    }

    #[test]
    fn login_links_follow_the_prefix() {
        let paths = PrefixPaths::parse("/sso").expect("valid");
        assert_eq!(ReturnTo::start_href(paths, "/x"), "/sso/start?rd=%2Fx");
        assert_eq!(ReturnTo::start_href(paths, "/sso/welcome"), "/sso/start");
        // The default prefix is the app's then: a place worth returning to.
        assert_eq!(
            ReturnTo::login_href(paths, "/oauth2/x"),
            "/sso/authorize?return_to=%2Foauth2%2Fx"
        );
    }
}
