//! `X-Sfgate-Assertion` ([`super::X_SFGATE_ASSERTION`]): a short-lived ES256 JWT saying who the caller is, signed by sfgate.
//!
//! Identity headers are trustworthy only if every path to the app goes through sfgate. The
//! assertion makes a request that went around the gateway detectable: the app verifies it with
//! the public key sfgate serves at `/.well-known/jwks.json` (any JOSE library), and checks
//! `iss`, `aud` and `exp`. It lives 60 seconds, so a leaked one is soon useless.
//!
//! Signing costs more than the rest of a cached request, so an assertion is reused for the
//! same caller while more than half of its life remains (a 60 s token is handed out with at
//! least 30 s left; `jti` repeats during that window). It is kept with the confirmed identity
//! the identity cache already holds ([`AssertionSlot`]), so reuse costs a read lock, not a
//! second cache lookup.

use crate::domain::Identity;
use axum::body::Bytes;
use axum::http::HeaderValue;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::fmt;

use once_cell::race::OnceBox;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long an assertion is valid.
const LIFETIME: Duration = Duration::from_secs(60);
/// How long a signed assertion is reused: half its life.
const REUSE: Duration = Duration::from_secs(30);

/// The last assertion signed for one confirmed identity, and when (seconds since the epoch).
/// Boxed on first use: every cached identity has a slot, and without `ASSERTION_KEY` it should
/// cost a pointer, not the lock and the value. A `OnceBox` is that one pointer (a `OnceLock`
/// adds its own state word); two threads filling it at once each build an empty slot and one
/// is dropped, which is harmless.
#[derive(Debug, Default)]
pub struct AssertionSlot(OnceBox<RwLock<Option<Kept>>>);

type Kept = (HeaderValue, u64);

impl AssertionSlot {
    fn cell(&self) -> &RwLock<Option<Kept>> {
        self.0.get_or_init(Box::default)
    }
}

/// `ASSERTION_KEY`: an EC P-256 private key (PKCS#8 PEM), with its public JWK.
#[derive(Clone)]
pub struct AssertionKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssertionKey(kid {}, private key redacted)", self.kid())
    }
}

impl AssertionKey {
    /// Parses the PEM and derives the public key; the `kid` is its RFC 7638 thumbprint, so it
    /// changes exactly when the key does. Messages never echo the key.
    pub fn parse(pem: &str) -> Result<Self, String> {
        // Heroku-style variables often carry the PEM with literal `\n`.
        let pem = pem.trim().replace("\\n", "\n");
        let hint = "must be an EC P-256 private key in PKCS#8 PEM (`openssl ecparam -name \
                    prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`)";
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| hint.to_string())?;
        let mut jwk =
            Jwk::from_encoding_key(&key, Algorithm::ES256).map_err(|_| hint.to_string())?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| hint.to_string())?;
        jwk.common.key_id = Some(kid);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(Self { key, jwk })
    }

    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    org: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

/// Signs assertions for one issuer and audience, and serves the public key.
pub struct AssertionSigner {
    key: EncodingKey,
    header: Header,
    issuer: String,
    audience: String,
    jwks: Bytes,
}

impl AssertionSigner {
    pub fn new(key: &AssertionKey, issuer: String, audience: String) -> Self {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid().to_string());
        let jwks = JwkSet {
            keys: vec![key.jwk.clone()],
        };
        let jwks = Bytes::from(serde_json::to_vec(&jwks).unwrap_or_default());
        Self {
            key: key.key.clone(),
            header,
            issuer,
            audience,
            jwks,
        }
    }

    /// The JWKS document (`{"keys":[...]}`), rendered once.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The assertion for `identity`, as a header value: the one in `slot` while it has more
    /// than half its life left, otherwise a fresh one (then kept in `slot`). `slot` must belong
    /// to `identity` (the confirmed identity's own slot).
    pub fn header_in(&self, slot: &AssertionSlot, identity: &Identity) -> Option<HeaderValue> {
        let now = now();
        if let Ok(kept) = slot.cell().read() {
            if let Some((value, iat)) = kept.as_ref() {
                if (*iat..iat + REUSE.as_secs()).contains(&now) {
                    return Some(value.clone());
                }
            }
        }
        let value = self.sign(identity, now)?;
        if let Ok(mut kept) = slot.cell().write() {
            *kept = Some((value.clone(), now));
        }
        Some(value)
    }

    /// Signs a fresh assertion issued at `iat` (seconds since the epoch).
    pub fn sign(&self, identity: &Identity, iat: u64) -> Option<HeaderValue> {
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: identity.user_id.as_str(),
            org: identity.organization_id.as_str(),
            username: identity.username.as_deref().filter(|u| !u.is_empty()),
            email: identity.email.as_deref(),
            iat,
            nbf: iat,
            exp: iat + LIFETIME.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        match jsonwebtoken::encode(&self.header, &claims, &self.key) {
            Ok(token) => HeaderValue::from_str(&token).ok(),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign the identity assertion");
                None
            }
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::requirements::tests::identity;

    /// A throwaway P-256 key generated with the documented openssl command.
    pub(crate) const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+nhF4wKjBcx2EgpL
DNR352V4lvunO5XN3gyvGCaLXwqhRANCAAQTrSfN80uF+LI2vU2ap/cHXsH99FIu
3wicHKpMUPz2OI478DUQt23FnZhwV7gxCSQVIxa8YHBkXFfFZHyx/wMJ
-----END PRIVATE KEY-----";

    #[test]
    fn assertions_verify_with_the_served_key_and_are_reused_while_fresh() {
        let key = AssertionKey::parse(TEST_KEY).expect("key");
        assert_eq!(key.kid().len(), 43, "base64url SHA-256");
        let signer = AssertionSigner::new(
            &key,
            "https://gw.example".into(),
            "https://app.example".into(),
        );
        let jwks: JwkSet = serde_json::from_slice(&signer.jwks()).expect("jwks");
        let jwk = jwks.find(key.kid()).expect("kid served");
        let decoding = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
        let slot = AssertionSlot::default();
        let token = signer.header_in(&slot, &identity()).expect("signed");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://app.example"]);
        validation.set_issuer(&["https://gw.example"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            token.to_str().expect("ascii"),
            &decoding,
            &validation,
        )
        .expect("verifies");
        assert_eq!(data.claims["sub"], identity().user_id.as_str());
        assert_eq!(data.claims["username"], "alice@acme.example");
        assert_eq!(
            signer.header_in(&slot, &identity()),
            Some(token.clone()),
            "reused"
        );
        // One that is past half its life is replaced.
        let old = signer
            .sign(&identity(), now() - REUSE.as_secs())
            .expect("signed");
        let slot = AssertionSlot::default();
        *slot.cell().write().expect("lock") = Some((old.clone(), now() - REUSE.as_secs()));
        let fresh = signer.header_in(&slot, &identity()).expect("signed");
        assert_ne!(fresh, old);
        assert_ne!(fresh, token);
    }

    #[test]
    fn keys_that_are_not_p256_pkcs8_are_refused_without_echo() {
        for bad in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            let err = AssertionKey::parse(bad).expect_err("refused");
            assert!(err.contains("P-256"), "{err}");
        }
        let err = AssertionKey::parse(&TEST_KEY.replace("BEGIN", "BEGIN X")).expect_err("bad");
        assert!(!err.contains(&TEST_KEY[30..50]), "{err}");
    }
}
