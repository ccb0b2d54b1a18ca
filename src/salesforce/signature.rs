//! Salesforce signs `id` + `issued_at` in every token response with the client secret. Checking
//! it proves the identity URL (and with it the org and user ids) was not altered on the way.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Base64(HMAC-SHA256(client_secret, id + issued_at)), compared in constant time.
pub fn verify_signature(client_secret: &[u8], id: &str, issued_at: &str, signature: &str) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(client_secret) else {
        return false;
    };
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, msg: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(msg.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
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
