//! SHA-256 and HMAC-SHA256 on AWS-LC, in the shapes sfgate uses them: digests that name tokens
//! without holding them, Salesforce's signatures (token responses, Canvas signed requests), and
//! the keys Redis names are derived with.
//!
//! The outputs are the standard functions' bytes, so values computed by earlier releases (Redis
//! key names shared by replicas during a rolling upgrade) stay the same; the callers' tests pin
//! fixtures.

use aws_lc_rs::{digest, hmac};

/// An HMAC-SHA256 key prepared by [`hmac_key`].
pub type HmacKey = hmac::Key;

/// SHA-256 of the concatenation of `parts` (one call, no intermediate buffer).
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    to_array(context.finish().as_ref())
}

/// A key prepared once for many HMAC-SHA256 computations (its padded blocks are computed here,
/// not per message).
pub fn hmac_key(key: &[u8]) -> HmacKey {
    hmac::Key::new(hmac::HMAC_SHA256, key)
}

/// HMAC-SHA256 of `message` under a prepared key.
pub fn hmac_sha256(key: &HmacKey, message: &[u8]) -> [u8; 32] {
    to_array(hmac::sign(key, message).as_ref())
}

/// Whether `tag` is HMAC-SHA256 of `message` under `key`, compared in constant time.
pub fn verify_hmac_sha256(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    hmac::verify(&hmac_key(key), message, tag).is_ok()
}

/// SHA-256 and HMAC-SHA256 outputs are 32 bytes; anything shorter is zero-padded (cannot happen).
fn to_array(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = bytes.len().min(32);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// FIPS 180-2's "abc", split anywhere: the concatenation is what is hashed.
    #[test]
    fn sha256_is_the_standard_function_over_the_concatenation() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex(&sha256(&[b"abc"])), abc);
        assert_eq!(hex(&sha256(&[b"a", b"", b"bc"])), abc);
    }

    /// RFC 4231 test case 2 (a key shorter than the block) and 6 (a key longer than it).
    #[test]
    fn hmac_sha256_is_the_standard_function() {
        let jefe = hmac_sha256(&hmac_key(b"Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            hex(&jefe),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long = hmac_sha256(
            &hmac_key(&[0xaa; 131]),
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&long),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert!(verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing?",
            &jefe
        ));
        assert!(!verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing!",
            &jefe
        ));
        assert!(!verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing?",
            &jefe[..31]
        ));
        assert!(!verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing?",
            b""
        ));
    }
}
