//! An Experience Cloud site's URL: an allowed instance origin and the site's path.
//!
//! Salesforce serves a site's OAuth endpoints, `userinfo` included, under the site's full URL
//! (`https://acme.my.site.com/partners/services/oauth2/userinfo`), and a token issued through a
//! site is checked there. A site URL reaches sfgate from its configuration (`SF_LOGIN_URL`),
//! from Salesforce's token response (`sfdc_community_url`) and from sealed session cookies;
//! whatever the source, it is called only when its origin passes the [`InstancePolicy`] and its
//! path is plain segments, so no answer or stored value can send a token elsewhere.

use super::{InstancePolicy, InstanceUrl, InstanceUrlError};
use std::fmt;
use url::Url;

/// The longest site path accepted; Salesforce's site paths are short URL prefixes.
const MAX_PATH: usize = 200;

/// A site URL that passed [`SiteUrl::check`]: holding one means sfgate may call under it.
#[derive(Clone, PartialEq, Eq)]
pub struct SiteUrl {
    origin: InstanceUrl,
    /// `""` for a site at the root of its domain, else `/seg[/seg...]` with no trailing slash.
    path: String,
}

impl SiteUrl {
    /// Parses `raw` (`https://host[/path]`, a trailing slash tolerated) and decides whether it
    /// may be called: the origin by `policy`, exactly as an instance URL; the path must be
    /// segments of letters, digits, `-`, `_`, `.` and `~` (no `.`/`..` segment, no percent
    /// escapes, nothing a URL parser would normalise into another path).
    pub fn check(policy: &InstancePolicy, raw: &str) -> Result<Self, InstanceUrlError> {
        let url = Url::parse(raw.trim()).map_err(|_| InstanceUrlError::Unparsable)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InstanceUrlError::Userinfo);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(InstanceUrlError::QueryOrFragment);
        }
        let path = url.path().trim_end_matches('/');
        // The path as written must be the path as parsed: the parser resolves `..`, `%2e`
        // and `\` silently, and what was written is what an operator or Salesforce meant.
        let written = raw
            .trim()
            .split_once("://")
            .map_or("", |(_, rest)| rest.find('/').map_or("", |at| &rest[at..]));
        if written.trim_end_matches('/') != path || !is_plain_path(path) {
            return Err(InstanceUrlError::Path);
        }
        let origin = policy.check(&url.origin().ascii_serialization())?;
        Ok(Self {
            origin,
            path: path.to_string(),
        })
    }

    /// The instance origin the site is served on.
    pub fn origin(&self) -> &InstanceUrl {
        &self.origin
    }

    /// Where Salesforce answers "whose token is this?" for the site's users.
    pub fn userinfo_url(&self) -> String {
        format!("{}{}/services/oauth2/userinfo", self.origin, self.path)
    }

    /// The URL as kept in a session cookie (read back through [`SiteUrl::check`]).
    pub fn as_string(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }
}

fn is_plain_path(path: &str) -> bool {
    if path.is_empty() {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    path.len() <= MAX_PATH
        && rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        })
}

impl fmt::Display for SiteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

impl fmt::Debug for SiteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> InstancePolicy {
        InstancePolicy::default()
            .with_extra_origins(&[Url::parse("http://127.0.0.1:8123").expect("url")])
    }

    #[test]
    fn a_site_on_an_allowed_origin_has_its_userinfo_under_its_path() {
        for (raw, userinfo) in [
            (
                "https://acme.my.site.com/partners",
                "https://acme.my.site.com/partners/services/oauth2/userinfo",
            ),
            (
                "https://acme.my.site.com/partners/",
                "https://acme.my.site.com/partners/services/oauth2/userinfo",
            ),
            (
                "https://ACME.my.site.com/a/b-c_d",
                "https://acme.my.site.com/a/b-c_d/services/oauth2/userinfo",
            ),
            (
                "https://acme.my.site.com",
                "https://acme.my.site.com/services/oauth2/userinfo",
            ),
            (
                "http://127.0.0.1:8123/partners",
                "http://127.0.0.1:8123/partners/services/oauth2/userinfo",
            ),
        ] {
            let site = SiteUrl::check(&policy(), raw).expect(raw);
            assert_eq!(site.userinfo_url(), userinfo, "{raw}");
            let again = SiteUrl::check(&policy(), &site.as_string()).expect("round trip");
            assert_eq!(again, site);
        }
    }

    #[test]
    fn sites_outside_the_allowlist_or_with_odd_paths_are_refused() {
        for raw in [
            "https://evil.example/partners",
            "https://acme.my.site.com.evil.example/partners",
            "http://acme.my.site.com/partners",
            "https://acme.my.site.com:8443/partners",
            "http://127.0.0.1:9999/partners",
            "https://user@acme.my.site.com/partners",
            "https://acme.my.site.com/partners?x=1",
            "https://acme.my.site.com/partners#x",
            "https://acme.my.site.com/a/../b",
            "https://acme.my.site.com/a/%2e%2e/b",
            "https://acme.my.site.com/a%2fb",
            "https://acme.my.site.com//evil.example",
            "https://acme.my.site.com/a b",
            "https://acme.my.site.com/a\\b",
            "not a url",
            "",
        ] {
            assert!(SiteUrl::check(&policy(), raw).is_err(), "{raw}");
        }
        let long = format!("https://acme.my.site.com/{}", "a".repeat(MAX_PATH));
        assert!(SiteUrl::check(&policy(), &long).is_err());
    }
}
