//! The header-name rule: which client request headers may cross the gateway.
//!
//! **Rule.** A request header whose name, compared case-insensitively with `_` read as `-`,
//! equals a header sfgate owns is removed before proxying, on every proxied request
//! (authenticated or skip-auth). sfgate owns the identity headers it sets (`X-Salesforce-*`,
//! oauth2-proxy's `X-Forwarded-User/-Email/-Preferred-Username`, anything `X-Sfgate-*`), the
//! credential headers it reads (`Authorization`, `X-Instance-Url`, the legacy `bearer` and
//! `instanceurl`), the forwarding and client-address headers (`Forwarded`, `X-Forwarded-*`,
//! `X-Real-IP`, and the path overrides `X-Original-URL`, `X-Original-URI`, `X-Rewrite-URL`)
//! and `X-Request-Id`.
//!
//! Why `_` matters: WSGI, CGI, PHP and Rack hand headers to the app as `HTTP_X_SALESFORCE_USER_ID`,
//! so `X_Salesforce_User_Id: someone-else` and `X-Salesforce-User-Id` become the same variable
//! (oauth2-proxy's CVE-2025-64484). A filter that compares exact names passes the first.
//!
//! HTTP names are already case-insensitive (`HeaderMap` stores them lowercased), so a
//! look-alike is exactly a name that contains `_` and whose `-` spelling is owned. Exact
//! spellings are handled by their class: identity headers are always the gateway's own,
//! credentials are removed (or replaced by `PASS_ACCESS_TOKEN`), forwarding headers are kept
//! only from a trusted proxy (`TRUST_PROXY`), and `X-Request-Id` is the sanitised id.
//!
//! Beyond the rule, like nginx (`underscores_in_headers off`), every header name containing
//! `_` is dropped by default (`PROXY_UNDERSCORE_HEADERS=drop`): no legitimate browser sends one,
//! and any of them could collide with a header the app or a later proxy owns.
//! `PROXY_UNDERSCORE_HEADERS=keep` passes them on, except look-alikes of owned names.

use axum::http::HeaderName;

/// `PROXY_UNDERSCORE_HEADERS`: what happens to request header names containing `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnderscoreHeaders {
    /// Drop them all before proxying (nginx's default).
    #[default]
    Drop,
    /// Pass them on, except look-alikes of headers sfgate owns.
    Keep,
}

impl std::str::FromStr for UnderscoreHeaders {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "drop" => Ok(Self::Drop),
            "keep" => Ok(Self::Keep),
            _ => Err(()),
        }
    }
}

/// The families of headers sfgate owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// Set by sfgate for the upstream; a client's copy is never passed on.
    Identity,
    /// Read by sfgate; passed on only as sfgate sets it (`PASS_ACCESS_TOKEN`).
    Credential,
    /// Who the client is and how it came: passed on only from a trusted proxy.
    Forwarding,
    /// The request id sfgate logs and forwards (already sanitised, see `request_id`).
    RequestId,
}

/// Owned names (lowercase, `-` spelling) that are not covered by a prefix below.
const OWNED_NAMES: [(&str, Owned); 15] = [
    ("x-forwarded-user", Owned::Identity),
    ("x-forwarded-email", Owned::Identity),
    ("x-forwarded-preferred-username", Owned::Identity),
    ("authorization", Owned::Credential),
    ("bearer", Owned::Credential),
    ("instanceurl", Owned::Credential),
    ("x-instance-url", Owned::Credential),
    ("forwarded", Owned::Forwarding),
    ("x-real-ip", Owned::Forwarding),
    // Path overrides some frameworks route on (Symfony's `X-Original-URL`, CVE-2018-14773):
    // the path sfgate checked must be the path the app serves.
    ("x-original-url", Owned::Forwarding),
    ("x-original-uri", Owned::Forwarding),
    // nginx's name for the original method in forward auth (`auth_request`).
    ("x-original-method", Owned::Forwarding),
    ("x-rewrite-url", Owned::Forwarding),
    ("x-request-id", Owned::RequestId),
    // `Proxy-Authorization` is hop-by-hop and removed anyway; its look-alike is a credential.
    ("proxy-authorization", Owned::Credential),
];

/// Owned name prefixes (lowercase, `-` spelling), checked after [`OWNED_NAMES`].
const OWNED_PREFIXES: [(&str, Owned); 3] = [
    ("x-salesforce-", Owned::Identity),
    ("x-sfgate-", Owned::Identity),
    ("x-forwarded-", Owned::Forwarding),
];

/// The family a header name belongs to, comparing case-insensitively with `_` read as `-`.
pub fn owner(name: &str) -> Option<Owned> {
    let name = name.as_bytes();
    OWNED_NAMES
        .iter()
        .find(|(owned, _)| canonical_eq(name, owned.as_bytes()))
        .or_else(|| {
            OWNED_PREFIXES.iter().find(|(prefix, _)| {
                name.get(..prefix.len())
                    .is_some_and(|start| canonical_eq(start, prefix.as_bytes()))
            })
        })
        .map(|(_, family)| *family)
}

/// Headers that ask an app to act as if the request had another method (Rails, Laravel,
/// Symfony, Express's `method-override`, ...).
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whether `name` (in any spelling, `_` read as `-`) asks the app to change the method. A
/// skip-auth rule let the request through for its own method, so on such requests these
/// headers are removed: `POST=^/webhook$` must not become an unauthenticated `DELETE`.
pub fn is_method_override(name: &str) -> bool {
    METHOD_OVERRIDES
        .iter()
        .any(|owned| canonical_eq(name.as_bytes(), owned.as_bytes()))
}

/// Whether `name` read case-insensitively with `_` as `-` equals `canonical` (lowercase, `-`
/// spelling). Compared byte by byte, without building the canonical spelling: this runs for
/// every header of every proxied request. Bytes outside ASCII never equal an owned name's.
fn canonical_eq(name: &[u8], canonical: &[u8]) -> bool {
    name.len() == canonical.len()
        && name.iter().zip(canonical).all(|(&b, &c)| {
            let b = if b == b'_' {
                b'-'
            } else {
                b.to_ascii_lowercase()
            };
            b == c
        })
}

/// Whether `name` spells a header sfgate owns in another way than sfgate spells it.
pub fn is_look_alike(name: &str) -> bool {
    name.contains('_') && owner(name).is_some()
}

/// What the proxy does with one client request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Passed on as the client sent it.
    Pass,
    /// Left for the header's own handling (credentials, forwarding, request id), which
    /// removes, replaces or extends it.
    Owned(Owned),
    /// Removed before anything else: a look-alike of an owned name, or any `_` name under
    /// [`UnderscoreHeaders::Drop`], or a client copy of an identity header.
    Remove,
}

/// The rule, for one header name.
pub fn verdict(name: &HeaderName, underscores: UnderscoreHeaders) -> Verdict {
    let name = name.as_str();
    if name.contains('_') {
        return if underscores == UnderscoreHeaders::Keep && owner(name).is_none() {
            Verdict::Pass
        } else {
            Verdict::Remove
        };
    }
    match owner(name) {
        None => Verdict::Pass,
        Some(Owned::Identity) => Verdict::Remove,
        Some(family) => Verdict::Owned(family),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> HeaderName {
        HeaderName::from_bytes(s.as_bytes()).expect("name")
    }

    #[test]
    fn look_alikes_of_owned_names_are_removed_whatever_the_setting() {
        for look_alike in [
            "X_Salesforce_User_Id",
            "x-salesforce_org-id",
            "X_FORWARDED_FOR",
            "x-forwarded_email",
            "X_Real_IP",
            "x_instance_url",
            "X_Sfgate_Assertion",
            "x_request_id",
            "X-Forwarded_Proto",
        ] {
            for setting in [UnderscoreHeaders::Drop, UnderscoreHeaders::Keep] {
                assert_eq!(
                    verdict(&name(look_alike), setting),
                    Verdict::Remove,
                    "{look_alike}"
                );
            }
            assert!(is_look_alike(look_alike), "{look_alike}");
        }
    }

    #[test]
    fn method_overrides_are_recognised_in_any_spelling() {
        for name in [
            "X-HTTP-Method-Override",
            "x_http_method",
            "X-Method_Override",
        ] {
            assert!(is_method_override(name), "{name}");
        }
        assert!(!is_method_override("x-http-methods"));
    }

    #[test]
    fn other_underscore_names_follow_the_setting() {
        let n = name("x_custom_thing");
        assert_eq!(verdict(&n, UnderscoreHeaders::Drop), Verdict::Remove);
        assert_eq!(verdict(&n, UnderscoreHeaders::Keep), Verdict::Pass);
        assert!(!is_look_alike("x_custom_thing"));
    }

    #[test]
    fn exact_names_go_to_their_family() {
        let d = UnderscoreHeaders::Drop;
        assert_eq!(verdict(&name("x-salesforce-user-id"), d), Verdict::Remove);
        assert_eq!(verdict(&name("x-sfgate-assertion"), d), Verdict::Remove);
        assert_eq!(verdict(&name("x-forwarded-user"), d), Verdict::Remove);
        assert_eq!(
            verdict(&name("x-forwarded-for"), d),
            Verdict::Owned(Owned::Forwarding)
        );
        assert_eq!(
            verdict(&name("x-forwarded-prefix"), d),
            Verdict::Owned(Owned::Forwarding)
        );
        assert_eq!(
            verdict(&name("x-original-url"), d),
            Verdict::Owned(Owned::Forwarding)
        );
        assert_eq!(
            verdict(&name("bearer"), d),
            Verdict::Owned(Owned::Credential)
        );
        assert_eq!(
            verdict(&name("x-request-id"), d),
            Verdict::Owned(Owned::RequestId)
        );
        for foreign in ["accept", "content-type", "x-custom", "x-forwardedfor"] {
            assert_eq!(verdict(&name(foreign), d), Verdict::Pass, "{foreign}");
        }
    }

    /// The rule's reading of a name spelled out: lowercase, `_` as `-`.
    fn spelled(name: &str) -> String {
        name.chars()
            .map(|c| {
                if c == '_' {
                    '-'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    /// [`owner`] spelled out: build the canonical name, then compare.
    fn owner_by_spelling(name: &str) -> Option<Owned> {
        let canonical = spelled(name);
        OWNED_NAMES
            .iter()
            .find(|(owned, _)| *owned == canonical)
            .or_else(|| {
                OWNED_PREFIXES
                    .iter()
                    .find(|(prefix, _)| canonical.starts_with(prefix))
            })
            .map(|(_, family)| *family)
    }

    /// Names near the owned ones: an owned name or prefix with each character's case flipped
    /// at random, `-` and `_` swapped, characters added or cut at the end, and non-ASCII
    /// letters mixed in.
    fn near_owned_name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let owned: Vec<&str> = OWNED_NAMES
            .iter()
            .map(|(n, _)| *n)
            .chain(OWNED_PREFIXES.iter().map(|(p, _)| *p))
            .chain(METHOD_OVERRIDES)
            .collect();
        (
            proptest::sample::select(owned),
            proptest::collection::vec(any::<(bool, bool)>(), 40),
            0usize..4,
            "[a-zA-Z_\\-é]{0,6}",
        )
            .prop_map(|(base, flips, cut, tail)| {
                let mut name: String = base
                    .chars()
                    .zip(flips.iter().cycle())
                    .map(|(c, &(upper, swap))| match c {
                        '-' if swap => '_',
                        c if upper => c.to_ascii_uppercase(),
                        c => c,
                    })
                    .collect();
                name.truncate(name.len().saturating_sub(cut));
                name + &tail
            })
    }

    proptest::proptest! {
        #[test]
        fn owner_reads_names_as_the_rule_spells_them(name in near_owned_name()) {
            proptest::prop_assert_eq!(owner(&name), owner_by_spelling(&name));
            let overrides = METHOD_OVERRIDES.contains(&spelled(&name).as_str());
            proptest::prop_assert_eq!(is_method_override(&name), overrides);
        }
    }
}
