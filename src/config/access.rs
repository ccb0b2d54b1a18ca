//! Access: who may pass beyond the org check, globally and per route
//! (docs/authorization.md).

use super::reader::{list, Reader};
use crate::access::{self, Policy, Requirements, UserTypes};

/// `SF_ALLOWED_USERS`, `SF_ALLOWED_EMAIL_DOMAINS`, `SF_ALLOWED_USER_TYPES`,
/// `SF_REQUIRED_PERMISSIONS` and `ROUTE_RULES`.
pub(super) fn parse(r: &mut Reader<'_>, scopes: &[String]) -> crate::access::Policy {
    let users = list(r, "SF_ALLOWED_USERS", access::UserRef::parse);
    let email_domains = list(r, "SF_ALLOWED_EMAIL_DOMAINS", access::parse_email_domain);
    let user_types = match r.get("SF_ALLOWED_USER_TYPES") {
        Some(v) if v.trim() == "*" => UserTypes::Any,
        Some(_) => UserTypes::Only(list(r, "SF_ALLOWED_USER_TYPES", access::parse_user_type)),
        None => Policy::default().global.user_types,
    };
    let permissions = list(r, "SF_REQUIRED_PERMISSIONS", access::parse_permission);
    let routes = match r.get("ROUTE_RULES") {
        None => Vec::new(),
        Some(raw) => access::parse_route_rules(&raw).unwrap_or_else(|problems| {
            for p in problems {
                r.problem("ROUTE_RULES", p);
            }
            Vec::new()
        }),
    };
    let policy = Policy {
        global: Requirements {
            users,
            email_domains,
            user_types,
            permissions,
        },
        routes,
    };
    // Salesforce reports custom permissions only to a login that asked for this scope.
    if policy.needs_permissions() && !scopes.iter().any(|s| s == "custom_permissions") {
        r.problem(
            "SF_SCOPES",
            "must include custom_permissions when SF_REQUIRED_PERMISSIONS or a perm: route rule is set",
        );
    }
    policy
}
