//! The emulator's JWT signing keys: the current and the previous key (both published, as
//! Salesforce keeps an old key while its tokens live), their JWKS, and signing with
//! Salesforce's header fields. The other Connected App whose tokens are always JWTs is
//! configured here too, as it is part of what the keys are used for.

use crate::test_keys::SIGNING_KEYS;
use crate::users::long_id;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};

/// A Connected App of the emulated org, besides the main one.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub client_id: String,
    pub client_secret: String,
}

struct SigningKey {
    kid: String,
    key: Arc<EncodingKey>,
    /// The public half as a JWK, as the JWKS publishes it.
    jwk: Value,
}

/// The emulator's signing keys: the current one and the one before (still published, as
/// Salesforce keeps an old key while its tokens live).
pub(crate) struct JwtKeys {
    /// The main Connected App issues JWT access tokens instead of opaque ones.
    enabled: bool,
    pub(crate) app: Option<ConnectedApp>,
    keys: RwLock<(Arc<SigningKey>, Option<Arc<SigningKey>>)>,
    generation: std::sync::atomic::AtomicUsize,
}

fn signing_key(generation: usize) -> Arc<SigningKey> {
    let kid = format!("SFGATE_EMULATOR.k{generation}");
    let pem = SIGNING_KEYS[generation % SIGNING_KEYS.len()];
    // The shipped keys are valid PEM (a unit test parses both).
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())
        .unwrap_or_else(|_| EncodingKey::from_secret(b"invalid"));
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256)
        .ok()
        .and_then(|j| serde_json::to_value(j).ok())
        .unwrap_or(Value::Null);
    if let Some(map) = jwk.as_object_mut() {
        map.insert("kid".into(), json!(kid));
        map.insert("use".into(), json!("sig"));
        map.insert("alg".into(), json!("RS256"));
    }
    Arc::new(SigningKey {
        kid,
        key: Arc::new(key),
        jwk,
    })
}

impl JwtKeys {
    pub(crate) fn new(enabled: bool, app: Option<ConnectedApp>) -> Self {
        Self {
            enabled,
            app,
            keys: RwLock::new((signing_key(0), None)),
            generation: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    fn current(&self) -> Option<Arc<SigningKey>> {
        self.keys.read().ok().map(|k| k.0.clone())
    }

    pub(crate) fn kid(&self) -> String {
        self.current().map(|k| k.kid.clone()).unwrap_or_default()
    }

    /// A new current key; the previous one stays published.
    pub(crate) fn rotate(&self) -> String {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let next = signing_key(generation);
        let kid = next.kid.clone();
        if let Ok(mut keys) = self.keys.write() {
            let old = std::mem::replace(&mut keys.0, next);
            keys.1 = Some(old);
        }
        kid
    }

    pub(crate) fn jwks(&self) -> Value {
        let keys = match self.keys.read() {
            Ok(k) => k,
            Err(_) => return json!({"keys": []}),
        };
        let mut list = vec![keys.0.jwk.clone()];
        if let Some(old) = &keys.1 {
            list.push(old.jwk.clone());
        }
        json!({ "keys": list })
    }

    /// Signs `claims` with the current key, with Salesforce's header fields for `org`.
    /// `header_extra` may override any of them (tests use it to forge bad tokens).
    pub(crate) fn sign(&self, org: &str, claims: &Value, header_extra: &Value) -> String {
        let Some(key) = self.current() else {
            return String::new();
        };
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(key.kid.clone());
        header.extras.insert("tty", "sfdc-core-token");
        header
            .extras
            .insert("tnk", format!("core/sfgate-emulator/{}", long_id(org)));
        header.extras.insert("ver", "1.0");
        if let Some(extra) = header_extra.as_object() {
            for (k, v) in extra {
                match k.as_str() {
                    "kid" => header.kid = v.as_str().map(str::to_string),
                    "typ" => header.typ = v.as_str().map(str::to_string),
                    _ => header.extras.insert(k.clone(), v.clone()),
                }
            }
        }
        jsonwebtoken::encode(&header, claims, &key.key).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_keys_parse_and_publish_distinct_public_keys() {
        let a = signing_key(0);
        let b = signing_key(1);
        assert_ne!(a.jwk["n"], Value::Null);
        assert_ne!(a.jwk["n"], b.jwk["n"]);
        assert_eq!(a.jwk["kid"], "SFGATE_EMULATOR.k0");
        assert!(EncodingKey::from_rsa_pem(crate::test_keys::FOREIGN_KEY.as_bytes()).is_ok());
    }
}
