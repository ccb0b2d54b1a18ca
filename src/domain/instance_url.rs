//! The instance URL a caller names, and the rule that decides whether sfgate may call it.
//!
//! A caller tells sfgate which Salesforce instance issued its token, and sfgate asks that
//! instance whether the token is valid. If any host were accepted, a caller could name a server
//! of its own that answers "valid" for anything; so only Salesforce-owned domains, or origins the
//! operator lists exactly, are ever called. The check runs before any network request.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use url::{Host, Url};

/// Salesforce-owned domain suffixes accepted by default (see `shared/salesforce.md`; the list
/// follows Salesforce's own CLI, `isSalesforceDomain`). A suffix matches only at a dot boundary.
pub const DEFAULT_SALESFORCE_SUFFIXES: &[&str] = &[
    ".salesforce.com",
    ".force.com",
    ".cloudforce.com",
    ".salesforce.mil",
    ".crmforce.mil",
    ".my-salesforce.com",
    ".sfcrmproducts.cn",
    ".site.com",
];

/// Why an instance URL was refused. Each names the rule, so a caller can fix its request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceUrlError {
    #[error("instance URL is not a valid absolute URL")]
    Unparsable,
    #[error("instance URL must use https")]
    NotHttps,
    #[error("instance URL must not contain a user name or password")]
    Userinfo,
    #[error("instance URL must not contain a query or fragment")]
    QueryOrFragment,
    #[error("instance URL must be an origin, with no path")]
    Path,
    #[error("instance URL must use the default https port")]
    Port,
    #[error("instance URL must name a host, not an IP address")]
    IpLiteral,
    #[error("instance URL host {0} is not a Salesforce domain or an allowed origin")]
    NotAllowed(String),
    #[error("instance URL host is not a valid DNS name (labels of at most 63 bytes, 253 in all)")]
    NotADnsName,
}

/// An instance origin (`scheme://host[:port]`, no trailing slash) that passed the policy.
/// Only [`InstancePolicy::check`] makes one, so holding one means sfgate may call it.
///
/// Shared text: an org's users all name the same instance, and every cached identity holds
/// one, so a serving thread hands out the copy it made last for the same origin
/// ([`InstanceUrl::shared`]) instead of a new allocation per request and per cache entry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InstanceUrl(Arc<str>);

/// How many instance origins each serving thread remembers (a deployment serves one or a
/// few orgs; more only means a new allocation now and then).
const RECENT_ORIGINS: usize = 4;

thread_local! {
    static RECENT: RefCell<([Option<Arc<str>>; RECENT_ORIGINS], usize)> =
        const { RefCell::new(([const { None }; RECENT_ORIGINS], 0)) };
}

impl InstanceUrl {
    /// The origin as an `InstanceUrl`, sharing this thread's copy of the same text when it
    /// made one recently. Only for origins the policy has passed.
    fn shared(origin: &str) -> Self {
        RECENT.with_borrow_mut(|(recent, next)| {
            if let Some(known) = recent.iter().flatten().find(|known| &***known == origin) {
                return Self(known.clone());
            }
            let made: Arc<str> = Arc::from(origin);
            recent[*next] = Some(made.clone());
            *next = (*next + 1) % RECENT_ORIGINS;
            Self(made)
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where Salesforce answers "whose token is this?".
    pub fn userinfo_url(&self) -> String {
        format!("{}/services/oauth2/userinfo", self.0)
    }
}

impl fmt::Display for InstanceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InstanceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceUrl({})", self.0)
    }
}

impl serde::Serialize for InstanceUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Which instance URLs may be called: Salesforce domain suffixes plus exact extra origins.
#[derive(Debug, Clone)]
pub struct InstancePolicy {
    suffixes: Vec<String>,
    extra_origins: Vec<String>,
}

impl Default for InstancePolicy {
    fn default() -> Self {
        Self {
            suffixes: DEFAULT_SALESFORCE_SUFFIXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            extra_origins: Vec::new(),
        }
    }
}

impl InstancePolicy {
    /// Adds exact origins (e.g. a customer's own domain, or the emulator on loopback). This is
    /// the only way to allow http, a port or an IP literal, and it is exact: no suffix matching.
    pub fn with_extra_origins(mut self, origins: &[Url]) -> Self {
        self.extra_origins = origins
            .iter()
            .map(|o| o.origin().ascii_serialization())
            .collect();
        self
    }

    pub fn extra_origins(&self) -> &[String] {
        &self.extra_origins
    }

    /// The domain suffixes accepted (each with its leading dot).
    pub fn suffixes(&self) -> &[String] {
        &self.suffixes
    }

    /// Parses `raw` and decides whether it may be called. Never touches the network.
    ///
    /// Runs on every protected request, so an origin already written the way the `url` crate
    /// would write it (what clients send nearly always) is recognised without parsing; anything
    /// else takes [`InstancePolicy::check_with_parser`]. The two always agree (property-tested).
    pub fn check(&self, raw: &str) -> Result<InstanceUrl, InstanceUrlError> {
        match self.canonical(raw) {
            Some(instance) => Ok(instance),
            None => self.check_with_parser(raw),
        }
    }

    /// An allowed origin already in canonical form: an extra origin verbatim, or `https://`
    /// and a lowercase ASCII host under an allowed suffix, optionally with a trailing `/`.
    /// `None` means "not obviously fine", never "refused": the parser decides those.
    fn canonical(&self, raw: &str) -> Option<InstanceUrl> {
        let origin = raw.strip_suffix('/').unwrap_or(raw);
        if self.extra_origins.iter().any(|o| o == origin) {
            return Some(InstanceUrl::shared(origin));
        }
        let host = origin.strip_prefix("https://")?;
        // Plain LDH bytes only: nothing the URL parser would map, decode or normalise. `xn--`
        // labels are punycode, which the parser validates, so they take the slow path.
        let plain = host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let allowed = self
            .suffixes
            .iter()
            .any(|suffix| host.ends_with(suffix.as_str()) && host.len() > suffix.len());
        (plain && allowed && !host.contains("xn--") && is_dns_name(host))
            .then(|| InstanceUrl::shared(origin))
    }

    /// The full check through the `url` crate, the authority on what a URL means (reqwest
    /// parses the same way before it connects).
    pub fn check_with_parser(&self, raw: &str) -> Result<InstanceUrl, InstanceUrlError> {
        let url = Url::parse(raw.trim()).map_err(|_| InstanceUrlError::Unparsable)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InstanceUrlError::Userinfo);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(InstanceUrlError::QueryOrFragment);
        }
        if !matches!(url.path(), "" | "/") {
            return Err(InstanceUrlError::Path);
        }
        let origin = url.origin().ascii_serialization();
        if self.extra_origins.contains(&origin) {
            return Ok(InstanceUrl::shared(&origin));
        }
        if url.scheme() != "https" {
            return Err(InstanceUrlError::NotHttps);
        }
        if url.port().is_some() {
            return Err(InstanceUrlError::Port);
        }
        let host = match url.host() {
            Some(Host::Domain(host)) => host.to_ascii_lowercase(),
            Some(Host::Ipv4(_) | Host::Ipv6(_)) => return Err(InstanceUrlError::IpLiteral),
            None => return Err(InstanceUrlError::Unparsable),
        };
        let allowed = self
            .suffixes
            .iter()
            .any(|suffix| host.ends_with(suffix.as_str()) && host.len() > suffix.len());
        if !allowed {
            return Err(InstanceUrlError::NotAllowed(host));
        }
        // A name no resolver can look up would fail as "Salesforce unreachable" (503) and mark
        // the gateway degraded; it is the caller's mistake, so it is refused here instead.
        if !is_dns_name(&host) {
            return Err(InstanceUrlError::NotADnsName);
        }
        Ok(InstanceUrl::shared(&origin))
    }
}

/// RFC 1035 limits: labels of 1 to 63 bytes, at most 253 bytes in all (no trailing dot).
fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> InstancePolicy {
        let extra = Url::parse("http://127.0.0.1:8123").expect("url");
        InstancePolicy::default().with_extra_origins(&[extra])
    }

    #[test]
    fn salesforce_hosts_are_accepted_as_origins() {
        for raw in [
            "https://acme.my.salesforce.com",
            "https://acme.my.salesforce.com/",
            "https://na1.salesforce.com",
            "https://ACME.lightning.force.com",
            "https://acme--dev.sandbox.my.salesforce.com",
            "https://acme.my.site.com",
            "https://acme.my.salesforce.mil",
            "https://acme.my.sfcrmproducts.cn",
        ] {
            let url = policy().check(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert!(!url.as_str().ends_with('/'), "{raw}");
        }
    }

    #[test]
    fn refused_forms_name_the_rule_they_broke() {
        use InstanceUrlError::*;
        let cases: &[(&str, InstanceUrlError)] = &[
            ("not a url", Unparsable),
            ("acme.my.salesforce.com", Unparsable),
            ("http://acme.my.salesforce.com", NotHttps),
            ("https://user:pw@acme.my.salesforce.com", Userinfo),
            ("https://acme.my.salesforce.com?x=1", QueryOrFragment),
            ("https://acme.my.salesforce.com#x", QueryOrFragment),
            ("https://acme.my.salesforce.com/services", Path),
            ("https://acme.my.salesforce.com:8443", Port),
            ("https://13.110.0.1", IpLiteral),
            ("https://[::1]", IpLiteral),
            ("http://127.0.0.1:8124", NotHttps),
            ("https://127.0.0.1:8123", Port),
            (
                "https://login.salesforce.com.evil.example",
                NotAllowed("login.salesforce.com.evil.example".into()),
            ),
            (
                "https://evilsalesforce.com",
                NotAllowed("evilsalesforce.com".into()),
            ),
            (
                "https://salesforce.com",
                NotAllowed("salesforce.com".into()),
            ),
            (
                "https://acme.salesforce.com.",
                NotAllowed("acme.salesforce.com.".into()),
            ),
        ];
        let long_label = format!("https://{}.my.salesforce.com", "a".repeat(64));
        let long_name = format!("https://{}my.salesforce.com", "abcdefghi.".repeat(24));
        let cases = [
            cases,
            &[
                (long_label.as_str(), NotADnsName),
                (long_name.as_str(), NotADnsName),
            ],
        ]
        .concat();
        for (raw, expected) in &cases {
            assert_eq!(policy().check(raw).as_ref(), Err(expected), "{raw}");
        }
        let longest_label = format!("https://{}.my.salesforce.com", "a".repeat(63));
        assert!(policy().check(&longest_label).is_ok());
    }

    #[test]
    fn extra_origins_match_exactly() {
        let ok = policy()
            .check("http://127.0.0.1:8123/")
            .expect("listed origin");
        assert_eq!(ok.as_str(), "http://127.0.0.1:8123");
        assert_eq!(
            ok.userinfo_url(),
            "http://127.0.0.1:8123/services/oauth2/userinfo"
        );
        assert!(policy().check("http://127.0.0.1:8123/path").is_err());
    }
}
