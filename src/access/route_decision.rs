//! Where a route rule is decided: a request's method and path, turned into the rule that
//! applies to it.
//!
//! - `SKIP_AUTH_ROUTES` (gateway mode, [`skips_auth`]): the request is proxied without
//!   authentication. A skip rule removes requirements, so it matches the one spelling it
//!   names, in every reading of the path.
//! - `ROUTE_RULES` ([`Policy::check_path`]): the first rule whose pattern matches adds its
//!   requirements to the global ones. A route rule adds requirements, so it matches every
//!   ASCII case and every reading of the path.
//! - Otherwise the global requirements alone ([`Policy::check_user`]).
//!
//! Both kinds judge the path alone (never the query), as the one path rule
//! ([`CanonicalPath`]) reads it: the path the proxy forwards, or (forward auth) the original
//! request's ([`RulePath`]), with the same `ALLOW_ENCODED_SLASHES`.

use super::{Policy, Refusal};
use crate::domain::Identity;
use crate::domain::{CanonicalPath, PathError, PathPolicy};
use axum::http::Method;

/// One rule of `SKIP_AUTH_ROUTES`: an optional method and a path regex, as in oauth2-proxy.
#[derive(Debug, Clone)]
pub struct SkipAuthRule {
    pub method: Option<Method>,
    pub path: regex::Regex,
}

/// Whether `SKIP_AUTH_ROUTES` lets this request through unauthenticated. Rules see the path
/// only (not the query), as oauth2-proxy's do; a rule without a method matches any method.
/// A rule applies only when it matches every reading of the path (as sent, decoded, with
/// `;` parameters stripped), so no upstream can read a skipped path as another one.
pub fn skips_auth(rules: &[SkipAuthRule], method: &Method, path: &CanonicalPath) -> bool {
    rules.iter().any(|rule| {
        rule.method.as_ref().is_none_or(|m| m == method)
            && path.views().all(|view| rule.path.is_match(view))
    })
}

/// Which path the route rules judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulePath<'a> {
    /// The request's own path (sfgate's protected routes).
    Request,
    /// The request's path, already accepted by the path rule (gateway mode checks it before
    /// anything else).
    Checked(&'a CanonicalPath),
    /// Forward auth: the original request's path, already accepted by the path rule, or
    /// `None` when no trusted source names it (see [`crate::auth::original_request`]); route
    /// rules then refuse everyone.
    Original(Option<&'a CanonicalPath>),
}

/// `raw` (a request path without its query) under the one path rule, for the route rules;
/// `None` when there are no route rules (no path is needed, and nothing is refused here).
pub fn path_for_rules(
    policy: &Policy,
    path_policy: PathPolicy,
    raw: &str,
) -> Result<Option<CanonicalPath>, PathError> {
    if policy.routes.is_empty() {
        return Ok(None);
    }
    CanonicalPath::parse(raw, path_policy).map(Some)
}

impl Policy {
    /// Whether `identity` may have `path`. `path` must be the canonical path the upstream (or
    /// sfgate's own router) will act on: the decoded, dot-segment-free path without query.
    /// Callers pass what the canonical-path check accepted; this is the only place rules meet
    /// paths. `None` means the path is unknown (forward auth without a trusted original URI).
    pub fn check(&self, identity: &Identity, path: Option<&str>) -> Result<(), Refusal> {
        self.check_user(identity)?;
        if self.routes.is_empty() {
            return Ok(());
        }
        let Some(path) = path else {
            return Err(Refusal::PathUnknown);
        };
        match self.routes.iter().find(|r| r.pattern.matches(path)) {
            None => Ok(()),
            Some(rule) => rule
                .requirements
                .check(identity)
                .map_err(|unmet| Refusal::Route {
                    number: rule.number,
                    pattern: rule.pattern().to_string(),
                    unmet,
                }),
        }
    }

    /// [`Self::check`] for every reading of a request path the one path rule accepted
    /// ([`CanonicalPath::views`]: as sent, each percent-decoding layer, `;` parameters
    /// stripped, `//` merged). The caller must pass the rules of every reading, so an upstream
    /// that reads the path any of these ways cannot reach a ruled path through another
    /// spelling. An encoded slash is therefore matched both ways: as a character of its
    /// segment (`/docs/a%2Fb` under `/docs/`) and, decoded, as a separator (`/admin%2Fx` is
    /// also `/admin/x`, under `/admin`).
    pub fn check_path(
        &self,
        identity: &Identity,
        path: Option<&CanonicalPath>,
    ) -> Result<(), Refusal> {
        let Some(path) = path else {
            return self.check(identity, None);
        };
        path.views()
            .try_for_each(|reading| self.check(identity, Some(reading)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::requirements::tests::identity;
    use super::super::{parse_route_rules, Requirements, Unmet, UserTypes};
    use super::*;

    fn policy(routes: &str) -> Policy {
        Policy {
            routes: parse_route_rules(routes).expect("rules"),
            ..Policy::default()
        }
    }

    #[test]
    fn default_policy_admits_standard_users_and_refuses_portal_guest_and_inactive() {
        let p = Policy::default();
        assert_eq!(p.check(&identity(), Some("/")), Ok(()));
        for t in ["CSP_LITE_PORTAL", "GUEST", "POWER_PARTNER"] {
            let mut portal = identity();
            portal.user_type = Some(t.into());
            assert_eq!(
                p.check(&portal, Some("/")),
                Err(Refusal::Global(Unmet::UserType(Some(t.into()))))
            );
        }
        let mut gone = identity();
        gone.active = Some(false);
        let any = Policy {
            global: Requirements {
                user_types: UserTypes::Any,
                ..Requirements::default()
            },
            routes: Vec::new(),
        };
        assert_eq!(
            any.check(&gone, Some("/")),
            Err(Refusal::Global(Unmet::Inactive))
        );
    }

    #[test]
    fn first_matching_route_rule_wins() {
        let p = policy("/admin/=perm:Nope;/admin/open=perm:Sfgate_Admin");
        assert!(p.check(&identity(), Some("/admin/open")).is_err());
        let p = policy("/admin/open=perm:Sfgate_Admin;/admin/=perm:Nope");
        assert_eq!(p.check(&identity(), Some("/admin/open")), Ok(()));
        let refusal = p.check(&identity(), Some("/admin/x")).expect_err("refused");
        assert!(matches!(refusal, Refusal::Route { number: 2, .. }));
        assert!(refusal.to_string().contains("ROUTE_RULES rule 2"));
        assert!(!refusal.to_string().contains("/admin/"), "{refusal}");
        assert_eq!(p.check(&identity(), Some("/other")), Ok(()));
        assert_eq!(p.check(&identity(), None), Err(Refusal::PathUnknown));
        assert_eq!(Policy::default().check(&identity(), None), Ok(()));
    }

    fn canonical(raw: &str, allow_encoded_slashes: bool) -> Option<CanonicalPath> {
        let policy = crate::domain::PathPolicy {
            allow_encoded_slashes,
        };
        CanonicalPath::parse(raw, policy).ok()
    }

    #[test]
    fn route_rules_apply_to_every_reading_of_the_path() {
        let p = policy("/admin/=perm:Nope");
        for raw in [
            "/admin/x",
            "//admin/x",
            "/admin;v=1/x",
            "/adm%69n/x",
            "/adm%2569n/x",
            "/admin%2Fx",
            "/%2Fadmin",
        ] {
            let path = canonical(raw, true).expect(raw);
            assert!(p.check_path(&identity(), Some(&path)).is_err(), "{raw}");
        }
        for raw in [
            "/administrator",
            "/public/x",
            "/public/admin",
            "/docs/a%2Fb",
        ] {
            let path = canonical(raw, true).expect(raw);
            assert_eq!(p.check_path(&identity(), Some(&path)), Ok(()), "{raw}");
        }
        assert_eq!(p.check_path(&identity(), None), Err(Refusal::PathUnknown));
    }

    /// Readings of a path by upstreams of other kinds, computed independently of
    /// `CanonicalPath`: decoding once or twice, Tomcat's `;` stripping before decoding, nginx's
    /// slash merging after it.
    fn upstream_readings(raw: &str) -> Vec<String> {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let strip = |s: &str| {
            s.split('/')
                .map(|seg| seg.split(';').next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("/")
        };
        let merge = |s: &str| {
            let mut out = String::new();
            for c in s.chars() {
                if !(c == '/' && out.ends_with('/')) {
                    out.push(c);
                }
            }
            out
        };
        let once = decode(raw);
        vec![
            raw.to_owned(),
            once.clone(),
            decode(&once),
            decode(&strip(raw)),
            strip(&once),
            merge(&once),
            merge(&strip(&decode(&once))),
        ]
    }

    fn piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "/", "//", "admin", "adm", "in", "%69", "%2569", "%61", ".", "..", "%2e", "%2F", "%2f",
            "%252f", "%25", ";", ";x", "%3b", "x",
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Whatever the path rule accepts and the rules let through is, read by any of these
        /// upstreams, outside the ruled prefix: no spelling reaches `/admin` unchecked, with
        /// or without `ALLOW_ENCODED_SLASHES`.
        #[test]
        fn no_spelling_of_a_ruled_path_escapes_its_rule(
            pieces in proptest::collection::vec(piece(), 0..7),
            allow in proptest::bool::ANY,
        ) {
            let p = policy("/admin/=perm:Nope");
            let raw = format!("/{}", pieces.concat());
            if let Some(path) = canonical(&raw, allow) {
                if p.check_path(&identity(), Some(&path)).is_ok() {
                    for reading in upstream_readings(&raw) {
                        proptest::prop_assert!(
                            reading != "/admin" && !reading.starts_with("/admin/"),
                            "{} read as {}", raw, reading
                        );
                    }
                }
            }
        }

        /// The same for an upstream that also ignores case (IIS, ASP.NET, case-insensitive
        /// routers): every spelling of `/admin/x` in any ASCII case, each letter possibly
        /// percent-encoded (`/%41dmin/x`, `/aDmIn/`), is judged by the `/admin/` rule, and
        /// nothing the rules let through reads as `/admin` once lowercased.
        #[test]
        fn no_case_or_encoded_spelling_of_a_ruled_path_escapes_its_rule(
            letters in proptest::collection::vec((proptest::bool::ANY, 0u8..3), 5),
            tail in proptest::sample::select(vec!["", "/", "/x", "/X?y", "/%78"]),
            pieces in proptest::collection::vec(cased_piece(), 0..6),
        ) {
            let p = policy("/admin/=perm:Nope");
            let mut raw = String::from("/");
            for (c, (upper, form)) in "admin".chars().zip(letters) {
                let c = if upper { c.to_ascii_uppercase() } else { c };
                match form {
                    0 => raw.push(c),
                    1 => raw.push_str(&format!("%{:02X}", c as u32)),
                    _ => raw.push_str(&format!("%{:02x}", c as u32)),
                }
            }
            let raw = format!("{raw}{}", tail.split('?').next().unwrap_or_default());
            let path = canonical(&raw, false).expect("a plain path");
            proptest::prop_assert!(p.check_path(&identity(), Some(&path)).is_err(), "{}", raw);

            let raw = format!("/{}", pieces.concat());
            if let Some(path) = canonical(&raw, false) {
                if p.check_path(&identity(), Some(&path)).is_ok() {
                    for reading in upstream_readings(&raw) {
                        let lower = reading.to_ascii_lowercase();
                        proptest::prop_assert!(
                            lower != "/admin" && !lower.starts_with("/admin/"),
                            "{} read as {}", raw, reading
                        );
                    }
                }
            }
        }
    }

    fn cased_piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "/", "ADMIN", "Adm", "aDm", "IN", "in", "%41", "%61", "%44", "%4d", "%4D", "%49",
            "%4E", "%6e", "%2541", "x", ";", "/",
        ])
    }

    fn rule(method: Option<Method>, path: &str) -> SkipAuthRule {
        SkipAuthRule {
            method,
            path: regex::Regex::new(path).expect("regex"),
        }
    }

    fn path(raw: &str) -> CanonicalPath {
        CanonicalPath::parse(raw, PathPolicy::default()).expect("canonical")
    }

    #[test]
    fn skip_rules_match_path_and_optional_method() {
        let rules = [rule(Some(Method::GET), "^/public/"), rule(None, "^/open$")];
        assert!(skips_auth(&rules, &Method::GET, &path("/public/a")));
        assert!(!skips_auth(&rules, &Method::POST, &path("/public/a")));
        assert!(skips_auth(&rules, &Method::DELETE, &path("/open")));
        assert!(!skips_auth(&rules, &Method::GET, &path("/opener")));
        assert!(!skips_auth(&[], &Method::GET, &path("/public/a")));
    }

    #[test]
    fn skip_rules_must_match_every_reading_of_the_path() {
        let rules = [rule(None, r"\.css$"), rule(None, "^/open$")];
        assert!(skips_auth(&rules, &Method::GET, &path("/app.css")));
        assert!(!skips_auth(&rules, &Method::GET, &path("/admin;.css")));
        assert!(!skips_auth(&rules, &Method::GET, &path("/admin%3b.css")));
        assert!(!skips_auth(&rules, &Method::GET, &path("/op%65n")));
    }

    proptest::proptest! {
        /// A skip rule removes requirements, so it matches the spelling it names and no other:
        /// any other ASCII case, or any letter percent-encoded, is authenticated as usual.
        #[test]
        fn skip_rules_match_only_the_exact_spelling(
            letters in proptest::collection::vec((proptest::bool::ANY, 0u8..3), 6),
        ) {
            let rules = [rule(None, "^/public/")];
            let mut raw = String::from("/");
            for (c, (upper, form)) in "public".chars().zip(letters) {
                let c = if upper { c.to_ascii_uppercase() } else { c };
                match form {
                    0 => raw.push(c),
                    1 => raw.push_str(&format!("%{:02X}", c as u32)),
                    _ => raw.push_str(&format!("%{:02x}", c as u32)),
                }
            }
            raw.push_str("/x");
            proptest::prop_assert_eq!(
                skips_auth(&rules, &Method::GET, &path(&raw)),
                raw == "/public/x",
                "{}", raw
            );
        }
    }
}
