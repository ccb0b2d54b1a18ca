//! Salesforce signs `id` + `issued_at` in every token response with the client secret. Checking
//! it proves the identity URL (and with it the org and user ids) was not altered on the way.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Base64(HMAC-SHA256(client_secret, id + issued_at)), compared in constant time.
pub fn verify_signature(client_secret: &[u8], id: &str, issued_at: &str, signature: &str) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let message = [id.as_bytes(), issued_at.as_bytes()].concat();
    crate::crypto::verify_hmac_sha256(client_secret, &message, &expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, msg: &str) -> String {
        let key = crate::crypto::hmac_key(secret.as_bytes());
        STANDARD.encode(crate::crypto::hmac_sha256(&key, msg.as_bytes()))
    }

    /// A signature computed by an earlier release (and by any HMAC-SHA256): still accepted.
    #[test]
    fn a_fixed_signature_verifies() {
        let id = "https://login.salesforce.com/id/00DB0000000TfcRMAS/005B0000005Bk90IAC";
        let fixture = "0/vF7aLTSBBv71u2JxbcLPRLn2xHXi0kmqFQiQ5kGg8=";
        assert_eq!(sign("s3cret", &format!("{id}1558553873237")), fixture);
        assert!(verify_signature(b"s3cret", id, "1558553873237", fixture));
        assert!(!verify_signature(b"s3cret", id, "1558553873236", fixture));
    }

    #[test]
    fn a_signature_over_id_and_issued_at_verifies() {
        let id = "https://login.salesforce.com/id/00DB0000000TfcRMAS/005B0000005Bk90IAC";
        let sig = sign("s3cret", &format!("{id}1558553873237"));
        assert!(verify_signature(b"s3cret", id, "1558553873237", &sig));
        assert!(!verify_signature(b"other", id, "1558553873237", &sig));
        assert!(!verify_signature(b"s3cret", id, "1558553873238", &sig));
        assert!(!verify_signature(
            b"s3cret",
            id,
            "1558553873237",
            "not base64!"
        ));
        assert!(!verify_signature(b"s3cret", id, "1558553873237", ""));
    }
}
