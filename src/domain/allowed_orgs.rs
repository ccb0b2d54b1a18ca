//! Which Salesforce orgs may use the gateway.
//!
//! A valid Salesforce token proves only that *some* Salesforce user is calling. Without an org
//! allowlist every one of Salesforce's customers could reach the protected routes, so the list is
//! required, and accepting any org has to be said explicitly with `*`.

use super::{OrgId, OrgIdError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrgs {
    Any,
    /// Sorted, without duplicates. A deployment lists a handful of orgs, and every request with
    /// a classic token asks whether its org is among them: comparing 18 bytes against a few
    /// entries costs less than hashing them.
    Only(Box<[OrgId]>),
}

impl AllowedOrgs {
    /// Parses `*` or a comma-separated list of 15- or 18-character org ids, reporting every bad
    /// entry at once.
    pub fn parse(raw: &str) -> Result<Self, Vec<String>> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(Self::Any);
        }
        let mut orgs = Vec::new();
        let mut problems = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match OrgId::parse(entry) {
                Ok(org) => orgs.push(org),
                Err(e) => problems.push(describe(entry, &e)),
            }
        }
        if orgs.is_empty() && problems.is_empty() {
            problems.push("lists no org id (use `*` to accept any org)".to_string());
        }
        if problems.is_empty() {
            orgs.sort();
            orgs.dedup();
            Ok(Self::Only(orgs.into_boxed_slice()))
        } else {
            Err(problems)
        }
    }

    pub fn allows(&self, org: &OrgId) -> bool {
        match self {
            Self::Any => true,
            Self::Only(orgs) if orgs.len() <= 8 => orgs.contains(org),
            Self::Only(orgs) => orgs.binary_search(org).is_ok(),
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
    fn a_long_list_allows_exactly_its_orgs_whatever_their_order() {
        // More orgs than the linear scan takes: the sorted list is searched.
        let ids: Vec<String> = (0..40).map(|i| format!("00D5j00000Ac{i:03}")).collect();
        let mut listed = ids.clone();
        listed.reverse();
        listed.push(ids[3].clone());
        let allowed = AllowedOrgs::parse(&listed.join(",")).expect("valid");
        for id in &ids {
            assert!(allowed.allows(&OrgId::parse(id).expect("id")), "{id}");
        }
        for other in ["00D5j00000Ac999", "00D5j00000Ab000", "00D5j00000AcMe1"] {
            assert!(
                !allowed.allows(&OrgId::parse(other).expect("id")),
                "{other}"
            );
        }
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
