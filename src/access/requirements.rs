//! One set of "who may pass" requirements, and how an identity is checked against it.
//!
//! Every requirement fails closed: when the identity lacks the field a requirement needs (no
//! email, no user type, no custom permissions because the scope was not granted), the
//! requirement refuses rather than guessing. Values are compared in one normalised form each:
//! user ids in their 18-character form, usernames, email domains and user types without case.

use crate::domain::Identity;
use crate::domain::SalesforceId;
use std::fmt;

/// A user named in `SF_ALLOWED_USERS` or a `user:` route requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// A user id (prefix `005`), held in its 18-character form.
    Id(SalesforceId),
    /// A username (Salesforce usernames have the form of an email address), lowercased.
    Username(String),
}

impl UserRef {
    /// A value with `@` is a username; anything else must be a 15- or 18-character user id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.contains('@') {
            if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("`{raw}` is not a username"));
            }
            return Ok(Self::Username(raw.to_lowercase()));
        }
        let id = SalesforceId::parse(raw)
            .map_err(|e| format!("`{raw}` is neither a username nor a user id: it {e}"))?;
        if !id.as_str().starts_with("005") {
            return Err(format!(
                "`{raw}` is not a user id (user ids start with 005)"
            ));
        }
        Ok(Self::Id(id))
    }

    fn matches(&self, identity: &Identity) -> bool {
        match self {
            Self::Id(id) => *id == identity.user_id,
            // An identity without a username never matches a username.
            Self::Username(name) => identity
                .username
                .as_deref()
                .is_some_and(|u| !u.is_empty() && u.to_lowercase() == *name),
        }
    }
}

/// An email domain, compared exactly (after lowercasing): `acme.example` admits
/// `a@acme.example`, not `a@evilacme.example` nor `a@sales.acme.example`. Subdomains are
/// listed one by one, so a subdomain an attacker can create mail in is never admitted by accident.
pub fn parse_email_domain(raw: &str) -> Result<String, String> {
    let domain = raw.trim().trim_start_matches('@').to_ascii_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.split('.').count() < 2 || !domain.split('.').all(valid_label) {
        return Err(format!(
            "`{}` is not an email domain such as acme.example",
            raw.trim()
        ));
    }
    Ok(domain)
}

/// A Salesforce user type (`STANDARD`, `PARTNER`, `CSP_LITE_PORTAL`, `GUEST`...), uppercased.
pub fn parse_user_type(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "`{t}` is not a Salesforce user type such as STANDARD"
        ));
    }
    Ok(t.to_ascii_uppercase())
}

/// A custom permission's API name (`Sfgate_Admin`, or `ns__Name` from a package).
pub fn parse_permission(raw: &str) -> Result<String, String> {
    let p = raw.trim();
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "`{p}` is not a custom permission API name such as Sfgate_Admin"
        ));
    }
    Ok(p.to_string())
}

/// Which user types may pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserTypes {
    /// `*`: any user type.
    Any,
    /// Only these (uppercased). Empty means "no restriction" in a route rule.
    Only(Vec<String>),
}

/// The user types admitted when `SF_ALLOWED_USER_TYPES` is not set: internal users only.
/// An allowed org with an Experience Cloud site may let anyone self-register as a portal
/// user and get a token, so portal and guest users must be admitted explicitly.
pub const DEFAULT_USER_TYPES: &[&str] = &["STANDARD"];

/// Requirements that must all hold. Within one kind, users, email domains and user types are
/// alternatives (any one matches); permissions are all required. An empty list adds nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub users: Vec<UserRef>,
    pub email_domains: Vec<String>,
    pub user_types: UserTypes,
    pub permissions: Vec<String>,
}

impl Default for Requirements {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            email_domains: Vec::new(),
            user_types: UserTypes::Only(Vec::new()),
            permissions: Vec::new(),
        }
    }
}

/// Which requirement refused, without the configured values (a refused user learns which
/// rule to ask about, not who else is allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    Inactive,
    User,
    EmailDomain,
    EmailUnverified,
    UserType(Option<String>),
    Permission {
        name: String,
        /// Whether Salesforce said nothing about custom permissions at all (scope missing).
        unknown: bool,
    },
}

impl Unmet {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::User => "user",
            Self::EmailDomain | Self::EmailUnverified => "email_domain",
            Self::UserType(_) => "user_type",
            Self::Permission { .. } => "permission",
        }
    }
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inactive => f.write_str("your Salesforce user is inactive"),
            Self::User => f.write_str("your Salesforce user is not on the list of allowed users"),
            Self::EmailDomain => f.write_str(
                "your email address is not in an allowed domain (or Salesforce gave none)",
            ),
            Self::EmailUnverified => {
                f.write_str("your email address is not verified in Salesforce")
            }
            Self::UserType(Some(t)) => {
                write!(
                    f,
                    "your Salesforce user type ({}) is not allowed",
                    sanitise(t)
                )
            }
            Self::UserType(None) => f.write_str("Salesforce did not report your user type"),
            Self::Permission {
                name,
                unknown: false,
            } => write!(f, "the custom permission {name} is not granted to you"),
            Self::Permission {
                name,
                unknown: true,
            } => write!(
                f,
                "the custom permission {name} is required, and Salesforce reported no custom \
                 permissions (the custom_permissions scope was not granted)"
            ),
        }
    }
}

/// A value from Salesforce echoed in a message: short and printable.
fn sanitise(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}

impl Requirements {
    /// The first unmet requirement, if any.
    pub fn check(&self, identity: &Identity) -> Result<(), Unmet> {
        if !self.users.is_empty() && !self.users.iter().any(|u| u.matches(identity)) {
            return Err(Unmet::User);
        }
        if !self.email_domains.is_empty() {
            let domain = identity.email.as_deref().and_then(email_domain);
            match domain {
                Some(d) if self.email_domains.contains(&d) => {
                    // Only an address Salesforce verified says the user controls that mailbox.
                    if identity.email_verified != Some(true) {
                        return Err(Unmet::EmailUnverified);
                    }
                }
                _ => return Err(Unmet::EmailDomain),
            }
        }
        if let UserTypes::Only(types) = &self.user_types {
            if !types.is_empty() {
                match identity.user_type.as_deref() {
                    Some(t) if types.iter().any(|allowed| allowed.eq_ignore_ascii_case(t)) => {}
                    other => return Err(Unmet::UserType(other.map(str::to_string))),
                }
            }
        }
        for name in &self.permissions {
            match &identity.custom_permissions {
                Some(granted) if granted.iter().any(|g| g == name) => {}
                granted => {
                    return Err(Unmet::Permission {
                        name: name.clone(),
                        unknown: granted.is_none(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Whether checking needs profile fields (username, email, user type, custom
    /// permissions) that an identity confirmed from the token alone may lack.
    pub fn needs_profile(&self) -> bool {
        self.users.iter().any(|u| matches!(u, UserRef::Username(_)))
            || !self.email_domains.is_empty()
            || matches!(&self.user_types, UserTypes::Only(t) if !t.is_empty())
            || !self.permissions.is_empty()
    }

    pub fn needs_permissions(&self) -> bool {
        !self.permissions.is_empty()
    }
}

/// The domain of an email address, lowercased; `None` when it is not of the form
/// `local@domain` (then no domain rule can admit it).
fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || local.contains('@') {
        return None;
    }
    Some(domain.to_ascii_lowercase())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{InstancePolicy, OrgId};

    pub(crate) fn identity() -> Identity {
        Identity {
            user_id: SalesforceId::parse("0055j00000AlIcE").expect("id"),
            organization_id: OrgId::parse("00D5j00000AcMe1").expect("org"),
            username: Some("alice@acme.example".into()),
            display_name: Some("Alice".into()),
            email: Some("Alice@ACME.example".into()),
            email_verified: Some(true),
            user_type: Some("STANDARD".into()),
            active: Some(true),
            custom_permissions: Some(vec!["Sfgate_Admin".into()]),
            instance_url: InstancePolicy::default()
                .check("https://acme.my.salesforce.com")
                .expect("instance"),
        }
    }

    #[test]
    fn users_match_by_either_id_form_or_username_without_case() {
        let id15 = UserRef::parse("0055j00000AlIcE").expect("id");
        let id18 = UserRef::parse(
            &SalesforceId::parse("0055j00000AlIcE")
                .expect("id")
                .to_string(),
        )
        .expect("id");
        assert_eq!(id15, id18);
        let by_name = UserRef::parse("ALICE@acme.example").expect("name");
        for u in [id15, by_name] {
            let r = Requirements {
                users: vec![u],
                ..Default::default()
            };
            assert_eq!(r.check(&identity()), Ok(()));
        }
        // The same 15 characters in another case are another user.
        let other = Requirements {
            users: vec![UserRef::parse("0055J00000ALICE").expect("id")],
            ..Default::default()
        };
        assert_eq!(other.check(&identity()), Err(Unmet::User));
        assert!(
            UserRef::parse("00D5j00000AcMe1").is_err(),
            "an org id is not a user"
        );
        assert!(UserRef::parse("alice").is_err());
    }

    #[test]
    fn email_domains_match_exactly_never_by_suffix() {
        let r = |d: &str| Requirements {
            email_domains: vec![parse_email_domain(d).expect("domain")],
            ..Default::default()
        };
        assert_eq!(r("acme.example").check(&identity()), Ok(()));
        let mut evil = identity();
        for email in [
            "alice@evilacme.example",
            "alice@sales.acme.example",
            "alice@acme.example.evil",
            "alice@acme.example@evil.example",
            "acme.example",
            "@acme.example",
        ] {
            evil.email = Some(email.into());
            assert!(r("acme.example").check(&evil).is_err(), "{email}");
        }
        evil.email = None;
        assert_eq!(r("acme.example").check(&evil), Err(Unmet::EmailDomain));
        let mut unverified = identity();
        unverified.email_verified = Some(false);
        assert_eq!(
            r("acme.example").check(&unverified),
            Err(Unmet::EmailUnverified)
        );
        assert!(parse_email_domain("*.acme.example").is_err());
        assert!(parse_email_domain("localhost").is_err());
    }

    #[test]
    fn absent_profile_fields_refuse() {
        let mut bare = identity();
        bare.user_type = None;
        bare.custom_permissions = None;
        let types = Requirements {
            user_types: UserTypes::Only(vec!["STANDARD".into()]),
            ..Default::default()
        };
        assert_eq!(types.check(&bare), Err(Unmet::UserType(None)));
        let perms = Requirements {
            permissions: vec!["Sfgate_Admin".into()],
            ..Default::default()
        };
        assert!(matches!(
            perms.check(&bare),
            Err(Unmet::Permission { unknown: true, .. })
        ));
        assert!(types.needs_profile() && perms.needs_profile());
        assert!(!Requirements::default().needs_profile());
        let by_id = Requirements {
            users: vec![UserRef::parse("0055j00000AlIcE").expect("id")],
            ..Default::default()
        };
        assert!(!by_id.needs_profile());
    }
}
