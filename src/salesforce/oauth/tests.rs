use super::*;

#[test]
fn identity_url_yields_org_and_user() {
    let (org, user) = ids_from_identity_url(
        "https://login.salesforce.com/id/00DB0000000TfcRMAS/005B0000005Bk90IAC",
    )
    .expect("ids");
    assert_eq!(org.as_str(), "00DB0000000TfcRMAS");
    assert_eq!(user.as_str(), "005B0000005Bk90IAC");
    assert!(ids_from_identity_url(
        "https://login.salesforce.com/x/00DB0000000TfcRMAS/005B0000005Bk90IAC"
    )
    .is_none());
    assert!(ids_from_identity_url(
        "https://login.salesforce.com/id/005B0000005Bk90IAC/005B0000005Bk90IAC"
    )
    .is_none());
}
