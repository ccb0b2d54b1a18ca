//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256) verification with a key prepared once per `kid`.
//!
//! Why a prepared key: a JWT access token's first request costs one RSA verification, and
//! issue 15 asks for that to cost little more than a cached request. Verifying with `e = 65537`
//! is 17 modular squarings and a hash; everything else a verification API may redo per call
//! (parsing the key, and above all the Montgomery set-up for the modulus, a third of a whole
//! verification with `ring`, whose API takes the key's components on every call) is the same
//! for every token signed with the key. [`Rs256Key`] is built once, when the issuer's key set
//! is fetched ([`super::jwks`]), and keeps AWS-LC's parsed key (`aws_lc_rs::signature::
//! ParsedPublicKey`), in which AWS-LC caches the Montgomery context after the first use (it
//! is used once here, at preparation, so no token pays for it).
//!
//! Measured with `bench/rs256_cost.rs` on the 2-core benchmark machine: ring's per-call API
//! ~32 µs per verification, the prepared AWS-LC key 19-23 µs (callgrind, which hides the CPU's
//! ADX instructions from both: 421 k and 306 k instructions).
//!
//! Rules (the class, enforced here once): only RS256, chosen by sfgate and never read from a
//! token; keys of 2048 to 8192 bits (Salesforce signs with 2048-bit keys; shorter ones are not
//! safe to trust), refused when the key is prepared, and again by AWS-LC at each verification.

use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The shortest RSA modulus accepted.
pub const MIN_BITS: usize = 2048;
/// The longest RSA modulus accepted (what AWS-LC's RS256 parameters allow).
pub const MAX_BITS: usize = 8192;

/// Why a published key cannot be used for RS256.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejected {
    #[error("the key's modulus or exponent is not base64url")]
    Encoding,
    #[error("the RSA key has {0} bits; at least {MIN_BITS} are required")]
    TooShort(usize),
    #[error("the RSA key has {0} bits; at most {MAX_BITS} are accepted")]
    TooLong(usize),
    #[error("the RSA key's components are not a usable public key")]
    Invalid,
}

/// An issuer's RSA public key, ready to verify RS256 signatures.
pub struct Rs256Key {
    key: ParsedPublicKey,
    bits: usize,
}

impl std::fmt::Debug for Rs256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rs256Key({} bits)", self.bits)
    }
}

impl Rs256Key {
    /// From a JWK's `n` and `e` (base64url, unpadded).
    pub fn from_jwk(n: &str, e: &str) -> Result<Self, KeyRejected> {
        let n = URL_SAFE_NO_PAD
            .decode(n)
            .map_err(|_| KeyRejected::Encoding)?;
        let e = URL_SAFE_NO_PAD
            .decode(e)
            .map_err(|_| KeyRejected::Encoding)?;
        Self::from_components(&n, &e)
    }

    /// From the big-endian modulus and exponent. Leading zero octets (which RFC 7518 forbids
    /// but some publishers send) do not change the number and are ignored.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<Self, KeyRejected> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_length(n);
        if bits < MIN_BITS {
            return Err(KeyRejected::TooShort(bits));
        }
        if bits > MAX_BITS {
            return Err(KeyRejected::TooLong(bits));
        }
        if e.is_empty() {
            return Err(KeyRejected::Invalid);
        }
        let key = RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .map_err(|_| KeyRejected::Invalid)?;
        let prepared = Self { key, bits };
        // One verification now, so that AWS-LC derives and caches the modulus's Montgomery
        // context here rather than during the first token's request. Its answer is irrelevant
        // (no signature of these bytes exists); an error here means nothing either.
        let _ = prepared.verify(b"", &vec![1u8; n.len()]);
        Ok(prepared)
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Whether `signature` is this key's RS256 signature of `message` (for a JWT, the
    /// base64url header, a dot and the base64url payload, exactly as received).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Bits of a big-endian number without leading zero octets.
fn bit_length(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey};

    /// The JWK `n` and `e` of a PEM private key, and an RS256 signature of `message` by it.
    pub(crate) fn jwk_and_signature(pem: &str, message: &[u8]) -> (String, String, Vec<u8>) {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("pem");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
        let jwk = serde_json::to_value(&jwk).expect("json");
        let signature = jsonwebtoken::crypto::sign(message, &key, Algorithm::RS256).expect("sign");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("b64");
        (
            jwk["n"].as_str().expect("n").to_string(),
            jwk["e"].as_str().expect("e").to_string(),
            signature,
        )
    }

    const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1aWQ6MDA1In0";

    #[test]
    fn a_valid_signature_is_accepted_and_an_altered_message_refused() {
        let pem = sfgate_emulator::FOREIGN_KEY;
        let (n, e, signature) = jwk_and_signature(pem, MESSAGE);
        let key = Rs256Key::from_jwk(&n, &e).expect("key");
        assert_eq!(key.bits(), 2048);
        assert!(key.verify(MESSAGE, &signature));
        // The same key verifies again (the cached Montgomery context changes nothing).
        assert!(key.verify(MESSAGE, &signature));
        let mut tampered = MESSAGE.to_vec();
        tampered[30] ^= 1;
        assert!(!key.verify(&tampered, &signature));
        assert!(!key.verify(b"", &signature));
    }

    #[test]
    fn altered_truncated_or_empty_signatures_are_refused() {
        let pem = sfgate_emulator::FOREIGN_KEY;
        let (n, e, signature) = jwk_and_signature(pem, MESSAGE);
        let key = Rs256Key::from_jwk(&n, &e).expect("key");
        for i in [0, 100, signature.len() - 1] {
            let mut altered = signature.clone();
            altered[i] ^= 0x40;
            assert!(!key.verify(MESSAGE, &altered), "bit flipped at {i}");
        }
        assert!(!key.verify(MESSAGE, &signature[..signature.len() - 1]));
        assert!(!key.verify(MESSAGE, &signature[1..]));
        let mut longer = vec![0u8];
        longer.extend_from_slice(&signature);
        assert!(!key.verify(MESSAGE, &longer));
        assert!(!key.verify(MESSAGE, &[]));
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let foreign = sfgate_emulator::FOREIGN_KEY;
        let (_, _, foreign_signature) = jwk_and_signature(foreign, MESSAGE);
        let issuer = sfgate_emulator::test_keys::SIGNING_KEYS[0];
        let (n, e, own_signature) = jwk_and_signature(issuer, MESSAGE);
        let key = Rs256Key::from_jwk(&n, &e).expect("key");
        assert!(key.verify(MESSAGE, &own_signature));
        assert!(!key.verify(MESSAGE, &foreign_signature));
    }

    /// A 1024-bit key's JWK `n` (`e` is 65537) and its RS256 signature of [`MESSAGE`], made
    /// with `openssl dgst -sha256 -sign`: AWS-LC refuses to sign with a key this short, which
    /// is the point, so the signature is a constant.
    const SHORT_KEY_N: &str = "4yRYDy5fMopy8Jdpi2gfe35EUJigoqPZXo4jnzZFQz1urcjnT72djDRuVMY-WOZBDOSaJLv8ye5rq7vzs0ugCE1zhRKt2rLAZoC8Pq2XRW8bHEeDXDorndJd1XF8v2a5P3sc76zgYbSO53ZRg1nFbnLJlG2uUz271k8MM5n4sOk";
    const SHORT_KEY_SIGNATURE: &str = "dXra18N9eU_44pmiYq8NTLdZvYwotZZcVVnNKQWhqmCRuHe9XRdNyUDMoHj02z67prtD0oQJGGo9-K_0JnAiBl08v0yY2XylcHyuN1aY_N4Q54HTyTFuGCujY_XAutG2HOJY5pT7CssxcUVBmyjcCl9RbPYiK7Ou76EwptAD_1E";

    #[test]
    fn a_key_shorter_than_2048_bits_is_refused_even_with_a_genuine_signature() {
        let (n, e) = (SHORT_KEY_N.to_string(), "AQAB".to_string());
        let signature = URL_SAFE_NO_PAD.decode(SHORT_KEY_SIGNATURE).expect("b64");
        assert_eq!(
            Rs256Key::from_jwk(&n, &e).map(|k| k.bits()),
            Err(KeyRejected::TooShort(1024))
        );
        // The signature is genuine: only the key's length refuses it.
        let n = URL_SAFE_NO_PAD.decode(&n).expect("n");
        let e = URL_SAFE_NO_PAD.decode(&e).expect("e");
        let lenient = RsaPublicKeyComponents {
            n: &n[..],
            e: &e[..],
        }
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY)
        .expect("parsed");
        assert!(lenient.verify_sig(MESSAGE, &signature).is_ok());
    }

    #[test]
    fn malformed_components_are_refused() {
        assert_eq!(
            Rs256Key::from_jwk("not base64!", "AQAB").map(|k| k.bits()),
            Err(KeyRejected::Encoding)
        );
        let n = vec![0xC5u8; 256];
        assert_eq!(
            Rs256Key::from_components(&n, &[]).map(|k| k.bits()),
            Err(KeyRejected::Invalid)
        );
        assert_eq!(
            Rs256Key::from_components(&vec![0xFFu8; 1025], &[1, 0, 1]).map(|k| k.bits()),
            Err(KeyRejected::TooLong(8200))
        );
        // A leading zero octet is the same number: still 2048 bits.
        let pem = sfgate_emulator::FOREIGN_KEY;
        let (n, e, signature) = jwk_and_signature(pem, MESSAGE);
        let mut padded = vec![0u8];
        padded.extend(URL_SAFE_NO_PAD.decode(&n).expect("n"));
        let e = URL_SAFE_NO_PAD.decode(&e).expect("e");
        let key = Rs256Key::from_components(&padded, &e).expect("key");
        assert_eq!(key.bits(), 2048);
        assert!(key.verify(MESSAGE, &signature));
    }
}
