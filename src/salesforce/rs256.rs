//! The RSA arithmetic of RS256 verification, done by `ring` inside jsonwebtoken.
//!
//! jsonwebtoken still does everything JOSE: splitting the token, the `alg` allowlist (RS256
//! only, never taken from the token), `exp`/`nbf`/`iss` and the claims. Only its final question,
//! "does this signature verify under this RSA key (n, e)", is answered by `ring` (already built
//! into sfgate for TLS, through rustls) instead of the `rsa` crate, and only for RS256 with a key
//! built from a JWK's components, which is what [`super::jwks`] builds. Everything else (other
//! algorithms, PEM keys, signing in the emulator) goes unchanged to jsonwebtoken's RustCrypto
//! provider.
//!
//! Why: profiling bench case (h) with callgrind showed one RSA-2048 verification by the `rsa`
//! crate costs about 2.4 million instructions, 89 % of a first request with a new JWT and
//! about 17 times a whole cached request: its Montgomery exponentiation (num-bigint-dig) walks
//! all 64 bits of the exponent's machine word, some 90 multiplications of 2048-bit numbers where
//! e = 65537 needs 17. ring's assembly does the same check for a few percent of that.
//!
//! ring also refuses RSA keys shorter than 2048 bits (the `rsa` crate accepted any length):
//! Salesforce signs with 2048-bit keys, and shorter ones are not safe to trust.

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use std::sync::OnceLock;

/// Makes [`provider`] jsonwebtoken's process-wide provider. jsonwebtoken fixes its provider at
/// its first use in the process, so this is called before any use in sfgate (the key sets of
/// the gateway, the emulator's signing keys). Returns whether ring verifies RS256 in this
/// process: false only when something used jsonwebtoken first, in which case verification is
/// still correct, only slower (the RustCrypto provider).
pub fn install() -> bool {
    let ours = provider();
    match ours.install_default() {
        Ok(()) => true,
        Err(current) => std::ptr::eq(current, ours),
    }
}

/// jsonwebtoken's RustCrypto provider with RS256 verification of JWK keys done by ring.
fn provider() -> &'static CryptoProvider {
    static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| CryptoProvider {
        verifier_factory: new_verifier,
        ..rust_crypto::DEFAULT_PROVIDER.clone()
    })
}

fn new_verifier(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    match (algorithm, key.family(), key.kind()) {
        (Algorithm::RS256, AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            Ok(Box::new(RingRs256 {
                n: n.clone(),
                e: e.clone(),
            }))
        }
        _ => (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key),
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-256, keys of 2048 to 8192 bits.
struct RingRs256 {
    /// Big-endian modulus and exponent, as in the JWK.
    n: Vec<u8>,
    e: Vec<u8>,
}

impl jsonwebtoken::signature::Verifier<Vec<u8>> for RingRs256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> Result<(), jsonwebtoken::signature::Error> {
        ring::signature::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            message,
            signature,
        )
        .map_err(|_| jsonwebtoken::signature::Error::new())
    }
}

impl JwtVerifier for RingRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::EncodingKey;

    /// A JWK-built key, a message and its RS256 signature by the emulator's foreign test key.
    fn signed() -> (DecodingKey, Vec<u8>, Vec<u8>) {
        let pem = crate::salesforce::emulator::FOREIGN_KEY.as_bytes();
        let key = EncodingKey::from_rsa_pem(pem).expect("pem");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
        let message = b"header.payload".to_vec();
        let signature = jsonwebtoken::crypto::sign(&message, &key, Algorithm::RS256).expect("sign");
        let signature =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
                .expect("b64");
        (
            DecodingKey::from_jwk(&jwk).expect("decoding key"),
            message,
            signature,
        )
    }

    #[test]
    fn ring_verifies_rs256_signatures_of_jwk_keys_and_refuses_altered_ones() {
        let (key, message, signature) = signed();
        let verifier = new_verifier(&Algorithm::RS256, &key).expect("verifier");
        assert!(verifier.verify(&message, &signature).is_ok());
        let mut other_message = message.clone();
        other_message[0] ^= 1;
        assert!(verifier.verify(&other_message, &signature).is_err());
        let mut other_signature = signature.clone();
        other_signature[10] ^= 1;
        assert!(verifier.verify(&message, &other_signature).is_err());
        assert!(verifier.verify(&message, &signature[1..].to_vec()).is_err());
        assert!(verifier.verify(&message, &Vec::new()).is_err());
    }

    /// A 1024-bit RSA key, generated for this test only.
    const SHORT_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\n\
MIICXwIBAAKBgQDjJFgPLl8yinLwl2mLaB97fkRQmKCio9lejiOfNkVDPW6tyOdP\n\
vZ2MNG5Uxj5Y5kEM5Joku/zJ7muru/OzS6AITXOFEq3assBmgLw+rZdFbxscR4Nc\n\
Oiud0l3VcXy/Zrk/exzvrOBhtI7ndlGDWcVucsmUba5TPbvWTwwzmfiw6QIDAQAB\n\
AoGBAK3VZr9XkeuwIX8XoeLa8R0l6Up1RJq0IutGhOSYODHZlhbSJpTUXPqsNbQT\n\
dCu9LBOd8IokhLZWDXkFAuE5A2NlvmYI7nSC/P4WtfYtl1PKDbzSYeS76iTyjp4C\n\
5C+c7nfhOho41pf/coTV4mAPxIv8Oi9EstYd3/l4qmEIPGIBAkEA/OvSzRcY+rIR\n\
K1UVJqTosGM15qR7LHyOHVigKFbj03GaNE3j507loY6iVTXFHFYdR5ZlUNiXjG5p\n\
H43/r9LBkQJBAOXoL1hzeFCjxnEBbFoa1zxaPFSWKSeT0lUGbiMuyYrBcfOaK6rc\n\
D6c7IPhSFNXB++LK66myVlzkCngs/516TdkCQQDN3aXYCdTrOcV/3+E3c0NzT02w\n\
TnFz5G5ItLqoGxGWKgG6USwQOsfumIrJkNrAFdf/TQtqouG4DKbEaHCWTJYBAkEA\n\
kj1xuEqi0nCKrqEgIeSG2m3viEKH5RPjK5BOiHSfYHKSIEkF08Xs8wvqeeoENMAS\n\
j/1Rj/zPcIDho/XDlpEQaQJBAJmOaBEHz+wtwIKapuZHmAPV2vni8PyGzciiFIfU\n\
isjLOukZfdLREAWppyR+obl1McSK2hyoY1gkd7VpktoNt9Y=\n\
-----END RSA PRIVATE KEY-----\n";

    #[test]
    fn a_key_shorter_than_2048_bits_is_refused() {
        let key = EncodingKey::from_rsa_pem(SHORT_KEY.as_bytes()).expect("pem");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
        let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key");
        let message = b"header.payload".to_vec();
        let signature = jsonwebtoken::crypto::sign(&message, &key, Algorithm::RS256).expect("sign");
        let signature =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
                .expect("b64");
        // The signature is genuine: RustCrypto accepts it; ring refuses the short key.
        let rust_crypto =
            (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&Algorithm::RS256, &decoding)
                .expect("verifier");
        assert!(rust_crypto.verify(&message, &signature).is_ok());
        let ours = new_verifier(&Algorithm::RS256, &decoding).expect("verifier");
        assert!(ours.verify(&message, &signature).is_err());
    }

    #[test]
    fn other_algorithms_and_keys_are_left_to_rust_crypto() {
        let (key, ..) = signed();
        // An HMAC secret never becomes an RSA verifier, whatever the algorithm asked.
        let secret = DecodingKey::from_secret(b"secret");
        assert!(new_verifier(&Algorithm::RS256, &secret).is_err());
        assert_eq!(
            new_verifier(&Algorithm::RS384, &key)
                .expect("verifier")
                .algorithm(),
            Algorithm::RS384
        );
    }
}
