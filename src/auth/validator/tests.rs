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
    let classic = SecretString::from("00D5j00000AcMe1!abc".to_string());
    let TokenPrefix::Org(org) = token_prefix(&classic) else {
        panic!("a classic token names its org");
    };
    assert_eq!(org.short(), "00D5j00000AcMe1");
    let jwt = SecretString::from("eyJhbGciOiJSUzI1NiJ9.e30.sig".to_string());
    assert_eq!(token_prefix(&jwt), TokenPrefix::Absent);
    assert_eq!(
        token_prefix(&SecretString::from("junk!abc".to_string())),
        TokenPrefix::Malformed
    );
}
