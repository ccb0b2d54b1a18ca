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
