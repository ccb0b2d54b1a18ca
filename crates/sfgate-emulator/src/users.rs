//! The emulator's demo users: Alice and Bob in Acme, Carol in Globex.

/// A demo user of one of the two demo orgs.
#[derive(Debug, Clone, Copy)]
pub struct DemoUser {
    pub username: &'static str,
    pub password: &'static str,
    pub display_name: &'static str,
    pub email: &'static str,
    /// 15-character user id.
    pub user_id: &'static str,
    /// 15-character org id.
    pub org_id: &'static str,
    pub org_name: &'static str,
    /// Salesforce `user_type`.
    pub user_type: &'static str,
    /// Custom permissions associated with the Connected App, and whether each is granted;
    /// reported on the identity URL to tokens with the `custom_permissions` scope.
    pub custom_permissions: &'static [(&'static str, bool)],
}

/// What the emulator reports about a user, changeable at run time (tests make portal,
/// inactive or email-less users out of the demo users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub user_type: String,
    pub active: bool,
    pub email: Option<String>,
    pub custom_permissions: Vec<(String, bool)>,
}

impl From<&DemoUser> for UserProfile {
    fn from(u: &DemoUser) -> Self {
        Self {
            user_type: u.user_type.to_string(),
            active: true,
            email: Some(u.email.to_string()),
            custom_permissions: u
                .custom_permissions
                .iter()
                .map(|(n, g)| (n.to_string(), *g))
                .collect(),
        }
    }
}

const USERS: [DemoUser; 3] = [
    DemoUser {
        username: "alice@acme.example",
        password: "alice-demo-1",
        display_name: "Alice Admin",
        email: "alice@acme.example",
        user_id: "0055j00000AlIcE",
        org_id: "00D5j00000AcMe1",
        org_name: "Acme",
        user_type: "STANDARD",
        custom_permissions: &[("Sfgate_Admin", true)],
    },
    DemoUser {
        username: "bob@acme.example",
        password: "bob-demo-2",
        display_name: "Bob Builder",
        email: "bob@acme.example",
        user_id: "0055j00000BoB01",
        org_id: "00D5j00000AcMe1",
        org_name: "Acme",
        user_type: "STANDARD",
        custom_permissions: &[("Sfgate_Admin", false)],
    },
    DemoUser {
        username: "carol@globex.example",
        password: "carol-demo-3",
        display_name: "Carol Chen",
        email: "carol@globex.example",
        user_id: "0055j00000CaRoL",
        org_id: "00D5j00000GlBx2",
        org_name: "Globex",
        user_type: "STANDARD",
        custom_permissions: &[],
    },
];

/// Alice and Bob in Acme, Carol in Globex.
pub fn demo_users() -> &'static [DemoUser] {
    &USERS
}

pub(crate) fn user_index(username: &str) -> Option<usize> {
    USERS
        .iter()
        .position(|u| u.username.eq_ignore_ascii_case(username.trim()))
}

pub(crate) fn user(index: usize) -> &'static DemoUser {
    &USERS[index % USERS.len()]
}

/// The 18-character form of a 15-character id, as Salesforce spells ids in URLs and JWTs: for
/// each block of five characters, a suffix letter whose bits say which of them are upper case.
/// The emulator computes it on its own rather than with the gateway's parser, so the
/// gateway's handling of both spellings is checked against an independent implementation.
pub(crate) fn long_id(short: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    if short.len() != 15 || !short.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return short.to_string();
    }
    let suffix = short.as_bytes().chunks(5).map(|block| {
        let bits = block
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_ascii_uppercase())
            .fold(0usize, |acc, (i, _)| acc | 1 << i);
        char::from(ALPHABET[bits])
    });
    short.chars().chain(suffix).collect()
}

#[cfg(test)]
mod tests {
    use super::long_id;

    #[test]
    fn the_long_form_appends_salesforce_s_case_checksum() {
        // Salesforce's own example pairs, and the demo org as the gateway reads it.
        assert_eq!(long_id("001A000000K5tUO"), "001A000000K5tUOIAZ");
        assert_eq!(long_id("00D5j00000AcMe1"), "00D5j00000AcMe1EAF");
        assert_eq!(long_id("not-an-id"), "not-an-id");
    }
}
