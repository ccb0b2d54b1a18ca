//! Authorization: which confirmed Salesforce users may reach which paths, and the signed
//! identity assertion sfgate hands to the app behind it.
//!
//! Authentication (the identity layer) answers "who is this, and is their org allowed?"; this
//! module answers "may this user have this path?". The global requirements (`SF_ALLOWED_*`,
//! `SF_REQUIRED_PERMISSIONS`) apply to every protected request; the first matching
//! `ROUTE_RULES` rule adds its own. Inactive users are always refused.

mod assertion;
mod requirements;
mod route_rules;

pub use assertion::{
    AssertionKey, AssertionSigner, AssertionSlot, SignedAssertion, X_SFGATE_ASSERTION,
};
pub use requirements::{
    parse_email_domain, parse_permission, parse_user_type, Requirements, Unmet, UserRef, UserTypes,
    DEFAULT_USER_TYPES,
};
pub use route_rules::{parse_route_rules, RoutePattern, RouteRule};

use crate::domain::CanonicalPath;
use crate::domain::Identity;
use std::fmt;

/// Everything that decides whether a confirmed user may pass.
#[derive(Debug, Clone)]
pub struct Policy {
    pub global: Requirements,
    pub routes: Vec<RouteRule>,
}

impl Default for Policy {
    /// No configuration: internal (`STANDARD`) users of the allowed orgs, on every path.
    fn default() -> Self {
        Self {
            global: Requirements {
                user_types: UserTypes::Only(
                    DEFAULT_USER_TYPES.iter().map(|t| t.to_string()).collect(),
                ),
                ..Requirements::default()
            },
            routes: Vec::new(),
        }
    }
}

/// Why a request was refused: which rule, never the rule's list of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A global requirement (`SF_ALLOWED_*`, `SF_REQUIRED_PERMISSIONS`, inactive users).
    Global(Unmet),
    /// The route rule with this number and pattern.
    Route {
        number: usize,
        pattern: String,
        unmet: Unmet,
    },
    /// Forward auth with route rules, without a trusted original URI: the path is unknown, so
    /// no rule can be chosen and the request is refused rather than let through unchecked.
    PathUnknown,
}

impl Refusal {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Global(u) | Self::Route { unmet: u, .. } => u.label(),
            Self::PathUnknown => "path_unknown",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Global(Unmet::Inactive) => write!(f, "{}", Unmet::Inactive),
            Self::Global(unmet @ Unmet::User) => write!(f, "{unmet} (SF_ALLOWED_USERS)"),
            Self::Global(unmet @ (Unmet::EmailDomain | Unmet::EmailUnverified)) => {
                write!(f, "{unmet} (SF_ALLOWED_EMAIL_DOMAINS)")
            }
            Self::Global(unmet @ Unmet::UserType(_)) => {
                write!(f, "{unmet} (SF_ALLOWED_USER_TYPES)")
            }
            Self::Global(unmet @ Unmet::Permission { .. }) => {
                write!(f, "{unmet} (SF_REQUIRED_PERMISSIONS)")
            }
            Self::Route { number, unmet, .. } => {
                write!(f, "{unmet} (ROUTE_RULES rule {number}, for this path)")
            }
            Self::PathUnknown => f.write_str(
                "the original request path is unknown: route rules need X-Original-URI (nginx), \
                 X-Forwarded-Uri (Traefik, Caddy) or the path after the auth path (Envoy) from a \
                 proxy trusted with TRUST_PROXY (see FORWARD_AUTH_STYLE)",
            ),
        }
    }
}

impl Policy {
    /// The rules that do not depend on a path: who may use sfgate at all. The login applies
    /// these too, so a refused user is told at once instead of getting a session that every
    /// protected request refuses.
    pub fn check_user(&self, identity: &Identity) -> Result<(), Refusal> {
        // Salesforce answers `active: false` for a deactivated user; no setting admits one. An
        // identity that does not say (a locally validated JWT) was issued to an active user.
        if identity.active == Some(false) {
            return Err(Refusal::Global(Unmet::Inactive));
        }
        self.global.check(identity).map_err(Refusal::Global)
    }

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

    /// Whether some rule needs profile fields (username, email, user type, custom
    /// permissions) beyond the user and org ids: a validator that confirmed a token locally
    /// (JWT) must then fetch the profile (userinfo) before [`Policy::check`], or the rule
    /// refuses for lack of the field.
    pub fn needs_profile(&self) -> bool {
        self.global.needs_profile() || self.routes.iter().any(|r| r.requirements.needs_profile())
    }

    /// Whether some rule needs the user's custom permissions (the `custom_permissions` scope).
    pub fn needs_permissions(&self) -> bool {
        self.global.needs_permissions()
            || self
                .routes
                .iter()
                .any(|r| r.requirements.needs_permissions())
    }
}

#[cfg(test)]
mod tests {
    use super::requirements::tests::identity;
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
}
