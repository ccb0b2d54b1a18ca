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

use super::owned::{class_of_spelling, Class};
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

/// The class of a name the rule owns ([`Class::is_owned`]), comparing case-insensitively
/// with `_` read as `-`.
pub fn owner(name: &str) -> Option<Class> {
    class_of_spelling(name).filter(|class| class.is_owned())
}

/// Whether `name` (in any spelling, `_` read as `-`) asks the app to change the method. A
/// skip-auth rule let the request through for its own method, so on such requests these
/// headers are removed: `POST=^/webhook$` must not become an unauthenticated `DELETE`.
pub fn is_method_override(name: &str) -> bool {
    class_of_spelling(name) == Some(Class::MethodOverride)
}

/// Whether `name` spells a header sfgate owns in another way than sfgate spells it.
pub fn is_look_alike(name: &str) -> bool {
    name.contains('_') && owner(name).is_some()
}

/// What the header-name rule decides for one client request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameVerdict {
    /// Passed on as the client sent it.
    Pass,
    /// Left for the header's own handling (credentials, forwarding, request id), which
    /// removes, replaces or extends it.
    Owned(Class),
    /// Removed before anything else: a look-alike of an owned name, or any `_` name under
    /// [`UnderscoreHeaders::Drop`], or a client copy of an identity header.
    Remove,
}

/// The rule, for one header name.
pub fn verdict(name: &HeaderName, underscores: UnderscoreHeaders) -> NameVerdict {
    let name = name.as_str();
    if name.contains('_') {
        return if underscores == UnderscoreHeaders::Keep && owner(name).is_none() {
            NameVerdict::Pass
        } else {
            NameVerdict::Remove
        };
    }
    match owner(name) {
        None => NameVerdict::Pass,
        Some(Class::Identity | Class::Assertion) => NameVerdict::Remove,
        Some(family) => NameVerdict::Owned(family),
    }
}

#[cfg(test)]
mod tests {
    use super::super::owned::{NAMES, PREFIXES};
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
                    NameVerdict::Remove,
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
        assert_eq!(verdict(&n, UnderscoreHeaders::Drop), NameVerdict::Remove);
        assert_eq!(verdict(&n, UnderscoreHeaders::Keep), NameVerdict::Pass);
        assert!(!is_look_alike("x_custom_thing"));
    }

    #[test]
    fn exact_names_go_to_their_family() {
        let d = UnderscoreHeaders::Drop;
        assert_eq!(
            verdict(&name("x-salesforce-user-id"), d),
            NameVerdict::Remove
        );
        assert_eq!(verdict(&name("x-sfgate-assertion"), d), NameVerdict::Remove);
        assert_eq!(verdict(&name("x-forwarded-user"), d), NameVerdict::Remove);
        assert_eq!(
            verdict(&name("x-forwarded-for"), d),
            NameVerdict::Owned(Class::ForwardedFor)
        );
        assert_eq!(
            verdict(&name("x-forwarded-prefix"), d),
            NameVerdict::Owned(Class::Forwarding)
        );
        assert_eq!(
            verdict(&name("x-original-url"), d),
            NameVerdict::Owned(Class::Forwarding)
        );
        assert_eq!(
            verdict(&name("bearer"), d),
            NameVerdict::Owned(Class::Credential)
        );
        assert_eq!(
            verdict(&name("x-request-id"), d),
            NameVerdict::Owned(Class::RequestId)
        );
        for foreign in ["accept", "content-type", "x-custom", "x-forwardedfor"] {
            assert_eq!(verdict(&name(foreign), d), NameVerdict::Pass, "{foreign}");
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
    fn owner_by_spelling(name: &str) -> Option<Class> {
        let canonical = spelled(name);
        NAMES
            .iter()
            .find(|(owned, _)| *owned == canonical)
            .or_else(|| {
                PREFIXES
                    .iter()
                    .find(|(prefix, _)| canonical.starts_with(prefix))
            })
            .map(|(_, class)| *class)
            .filter(|class| class.is_owned())
    }

    fn method_overrides() -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .filter(|(_, class)| *class == Class::MethodOverride)
            .map(|(name, _)| *name)
    }

    /// Names near the owned ones: an owned name or prefix with each character's case flipped
    /// at random, `-` and `_` swapped, characters added or cut at the end, and non-ASCII
    /// letters mixed in.
    fn near_owned_name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let owned: Vec<&str> = NAMES
            .iter()
            .map(|(n, _)| *n)
            .chain(PREFIXES.iter().map(|(p, _)| *p))
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
            let overrides = method_overrides().any(|m| m == spelled(&name));
            proptest::prop_assert_eq!(is_method_override(&name), overrides);
        }
    }
}
