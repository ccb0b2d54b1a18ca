use super::verdict::TokenPrefix;
use super::*;

#[test]
fn cache_keys_depend_on_instance_and_token() {
    let policy = crate::domain::InstancePolicy::default();
    let a = policy.check("https://a.my.salesforce.com").expect("ok");
    let b = policy.check("https://b.my.salesforce.com").expect("ok");
    let t1 = SecretString::from("00D5j00000AcMe1!one".to_string());
    let t2 = SecretString::from("00D5j00000AcMe1!two".to_string());
    assert_eq!(cache_key(&a, &t1), cache_key(&a, &t1));
    assert_ne!(cache_key(&a, &t1), cache_key(&b, &t1));
    assert_ne!(cache_key(&a, &t1), cache_key(&a, &t2));
}

/// The key is also what an identity verdict is named by in Redis (`store::keys`), which replicas
/// of different releases share during a rolling upgrade: it is pinned to the bytes earlier
/// releases computed.
#[test]
fn cache_keys_are_those_of_earlier_releases() {
    let policy = crate::domain::InstancePolicy::default();
    let acme = policy.check("https://acme.my.salesforce.com").expect("ok");
    let token = SecretString::from("00D5j00000AcMe1!token".to_string());
    let key: String = cache_key(&acme, &token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        key,
        "dc8cc35c7559404ed310c6f1caf9aa880ed0122b04f17697790f5899be0e5bd0"
    );
}

#[test]
fn token_prefixes_are_read_only_when_present() {
    let read = |token: &str| RawPrefix::of(&SecretString::from(token.to_string())).read();
    let TokenPrefix::Org(org) = read("00D5j00000AcMe1!abc") else {
        panic!("a classic token names its org");
    };
    assert_eq!(org.short(), "00D5j00000AcMe1");
    assert_eq!(read("eyJhbGciOiJSUzI1NiJ9.e30.sig"), TokenPrefix::Absent);
    assert_eq!(read("junk!abc"), TokenPrefix::Malformed);
}

mod prefix_property {
    use super::*;
    use crate::domain::{AllowedOrgs, OrgId};
    use proptest::prelude::*;

    const ORGS: [&str; 3] = ["00D5j00000AcMe1", "00DB0000000TfcR", "00D5j00000GlBx2"];

    /// Prefixes of every kind: an org's own 15-character form, its 18-character form, other
    /// cases (another org, ids being case-sensitive), spaces around, a non-org id, junk, none.
    fn token() -> impl Strategy<Value = String> {
        let prefixes = prop::sample::select(vec![
            "00D5j00000AcMe1",
            "00D5j00000AcMe1AAA",
            "00DB0000000TfcR",
            "00DB0000000TfcRMAS",
            "00db0000000tfcr",
            "00D5J00000ACME1",
            "00DB0000000TFCR",
            " 00D5j00000AcMe1",
            "00D5j00000AcMe1 ",
            "00D5j00000GlBx2",
            "0055j00000AcMe1",
            "00D5j00000AcMe",
            "junk",
            "",
            "00D5j00000AcMe1!more",
        ]);
        prop_oneof![
            prefixes.prop_map(|p| format!("{p}!secret")),
            Just("eyJhbGciOiJSUzI1NiJ9.e30.sig".to_string()),
        ]
    }

    fn allowed() -> impl Strategy<Value = AllowedOrgs> {
        prop::sample::select(vec![
            "*",
            "00D5j00000AcMe1",
            "00DB0000000TfcRMAS",
            "00D5j00000AcMe1,00D5j00000GlBx2",
        ])
        .prop_map(|raw| AllowedOrgs::parse(raw).expect("valid list"))
    }

    proptest! {
        /// The byte comparisons answer exactly as the parsed reading does.
        #[test]
        fn the_raw_checks_answer_as_the_parsed_prefix(
            token in token(),
            reported in prop::sample::select(ORGS.to_vec()),
            allowed in allowed(),
        ) {
            let token = SecretString::from(token);
            let raw = RawPrefix::of(&token);
            let reported = OrgId::parse(reported).expect("org id");
            let parsed = raw.read();
            let contradicts = match &parsed {
                TokenPrefix::Absent => false,
                TokenPrefix::Org(org) => *org != reported,
                TokenPrefix::Malformed => true,
            };
            prop_assert_eq!(raw.contradicts(&reported), contradicts);
            let refused = match parsed {
                TokenPrefix::Org(org) if !allowed.allows(&org) => Some(org),
                _ => None,
            };
            prop_assert_eq!(raw.refused_org(&allowed), refused);
        }
    }
}

/// A JWT-shaped token (header `typ: JWT` with a `kid`, the given `exp`), unsigned: enough for
/// how long its logout is remembered, which never admits anything.
fn jwt_expiring_at(exp: u64) -> SecretString {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"https://login.example","sub":"uid:0055j00000AlIcEAAV","exp":{exp}}}"#
    ));
    let signature = URL_SAFE_NO_PAD.encode([7u8; 32]);
    SecretString::from(format!("{header}.{claims}.{signature}"))
}

#[test]
fn a_logout_is_remembered_as_long_as_the_token_could_pass_and_no_longer() {
    let hour = Duration::from_secs(3600);
    let opaque = SecretString::from("00D5j00000AcMe1!opaque".to_string());
    assert_eq!(logout_memory(&opaque, hour), hour, "what the logout asks");
    assert_eq!(
        logout_memory(&opaque, 100 * hour),
        MAX_LOGOUT_MEMORY,
        "never beyond Salesforce's longest session"
    );
    let now = crate::salesforce::jwt::now_secs();
    let leeway = crate::salesforce::jwt::LEEWAY;
    // A JWT: until its exp plus the leeway, whether the logout asked for more or for less.
    let soon = jwt_expiring_at(now + 60);
    for asked in [Duration::ZERO, hour, 100 * hour] {
        let kept = logout_memory(&soon, asked);
        assert!(
            kept >= Duration::from_secs(59) + leeway && kept <= Duration::from_secs(61) + leeway,
            "{kept:?} for a JWT expiring in 60 s (asked {asked:?})"
        );
    }
    assert_eq!(
        logout_memory(&jwt_expiring_at(now.saturating_sub(600)), hour),
        leeway
    );
    for far_off in [now + 30 * 24 * 3600, u64::MAX] {
        assert_eq!(
            logout_memory(&jwt_expiring_at(far_off), Duration::ZERO),
            MAX_LOGOUT_MEMORY,
            "an exp far off (which only a forged token could claim unchecked) is bounded too"
        );
    }
}
