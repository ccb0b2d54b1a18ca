//! Access: which confirmed Salesforce users may reach which paths.
//!
//! Authentication (the identity layer) answers "who is this, and is their org allowed?"; this
//! module answers "may this user have this path?". The global requirements (`SF_ALLOWED_*`,
//! `SF_REQUIRED_PERMISSIONS`) apply to every protected request; the first matching
//! `ROUTE_RULES` rule adds its own. Inactive users are always refused. Which rule applies to
//! a request (and whether `SKIP_AUTH_ROUTES` lets it through unauthenticated) is decided in
//! [`route_decision`].

pub(crate) mod requirements;
pub mod route_decision;
mod route_rules;

pub use requirements::{
    parse_email_domain, parse_permission, parse_user_type, Requirements, Unmet, UserRef, UserTypes,
    DEFAULT_USER_TYPES,
};
pub use route_decision::{path_for_rules, skips_auth, RulePath, SkipAuthRule};
pub use route_rules::{parse_route_rules, RoutePattern, RouteRule};

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
