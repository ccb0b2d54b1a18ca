//! Which Salesforce orgs may use the gateway.
//!
//! A valid Salesforce token proves only that *some* Salesforce user is calling. Without an org
//! allowlist every one of Salesforce's customers could reach the protected routes, so the list is
//! required, and accepting any org has to be said explicitly with `*`.

use super::{OrgId, OrgIdError};
use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrgs {
    Any,
    Only(HashSet<OrgId>),
}

impl AllowedOrgs {
    /// Parses `*` or a comma-separated list of 15- or 18-character org ids, reporting every bad
    /// entry at once.
    pub fn parse(raw: &str) -> Result<Self, Vec<String>> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(Self::Any);
        }
        let mut orgs = HashSet::new();
        let mut problems = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match OrgId::parse(entry) {
                Ok(org) => {
                    orgs.insert(org);
                }
                Err(e) => problems.push(describe(entry, &e)),
            }
        }
        if orgs.is_empty() && problems.is_empty() {
            problems.push("lists no org id (use `*` to accept any org)".to_string());
        }
        if problems.is_empty() {
            Ok(Self::Only(orgs))
        } else {
            Err(problems)
        }
    }

    pub fn allows(&self, org: &OrgId) -> bool {
        match self {
            Self::Any => true,
            Self::Only(orgs) => orgs.contains(org),
        }
    }
}

fn describe(entry: &str, e: &OrgIdError) -> String {
    // Org ids are not secret, but cap what is echoed so a pasted secret is not printed whole.
    let shown: String = entry.chars().take(20).collect();
    format!("entry `{shown}` {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_and_eighteen_character_forms_allow_the_same_org() {
        let allowed = AllowedOrgs::parse("00DB0000000TfcR, 00D5j00000AcMe1").expect("valid");
        assert!(allowed.allows(&OrgId::parse("00DB0000000TfcRMAS").expect("id")));
        assert!(!allowed.allows(&OrgId::parse("00D5j00000GlBx2").expect("id")));
    }

    #[test]
    fn star_allows_any_org() {
        assert_eq!(AllowedOrgs::parse(" * "), Ok(AllowedOrgs::Any));
    }

    #[test]
    fn every_bad_entry_is_reported() {
        let problems = AllowedOrgs::parse("00DB0000000TfcR,abc,005B0000005Bk90").expect_err("bad");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("abc"));
        assert!(problems[1].contains("00D"));
        assert!(AllowedOrgs::parse(" , ").is_err());
    }
}
