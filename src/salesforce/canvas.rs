//! Canvas apps: the signed request Salesforce POSTs to the Canvas App URL.
//!
//! Canvas Developer Guide, "Signed Request Authentication" and "Verifying and Decoding a
//! Signed Request": the form field `signed_request` is `<signature>.<context>`, where `context`
//! is the Base64 of a JSON `CanvasRequest` and `signature` the Base64 of HMAC-SHA256 over the
//! *encoded* context string, keyed with the Connected App's consumer secret. The split is on
//! the first `.`. The context carries `algorithm` (`HMACSHA256`), the user and org, and a
//! `client` with the OAuth token (`oauthToken`), the instance (`instanceUrl`) and, for
//! pre-approved apps with the `refresh_token` scope, a `refreshToken`.
//!
//! Nothing in a context is believed before the signature checks out: the MAC is compared in
//! constant time over the bytes as received, and only then is the JSON decoded. A valid
//! signature proves only that Salesforce (or whoever holds the secret) signed it; the token
//! inside is still validated like any bearer token, so a leaked old signed request is worth no
//! more than the token it carries.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use secrecy::SecretString;
use serde::Deserialize;
use std::fmt;

/// The only algorithm Salesforce signs Canvas requests with; anything else is refused, so a
/// context cannot choose a weaker check.
pub const ALGORITHM: &str = "HMACSHA256";

/// A signed request larger than this is refused before any work (Salesforce's are a few KB).
pub const MAX_SIGNED_REQUEST: usize = 32 * 1024;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    #[error("the signed request is not `<signature>.<context>` in Base64")]
    Malformed,
    #[error("the signed request's signature does not match (wrong consumer secret, or altered)")]
    BadSignature,
    #[error("the signed request's context is not valid JSON of a Canvas request")]
    BadContext,
    #[error("the signed request uses algorithm `{0}`; only HMACSHA256 is accepted")]
    Algorithm(String),
    #[error("the signed request carries no OAuth token (client.oauthToken)")]
    MissingToken,
    #[error("the signed request carries no instance URL (client.instanceUrl)")]
    MissingInstance,
}

/// What sfgate uses of a verified Canvas request.
pub struct CanvasRequest {
    pub oauth_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub instance_url: String,
    /// The user the context names (`userId`, or `context.user.userId`), compared with the
    /// token's owner.
    pub user_id: Option<String>,
    /// The org the context names (`context.organization.organizationId`).
    pub org_id: Option<String>,
}

impl fmt::Debug for CanvasRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CanvasRequest")
            .field("instance_url", &self.instance_url)
            .field("user_id", &self.user_id)
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    algorithm: Option<String>,
    user_id: Option<String>,
    client: Option<Client>,
    context: Option<Context>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Client {
    oauth_token: Option<String>,
    refresh_token: Option<String>,
    instance_url: Option<String>,
}

#[derive(Deserialize)]
struct Context {
    user: Option<ContextUser>,
    organization: Option<ContextOrg>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContextUser {
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContextOrg {
    organization_id: Option<String>,
}

/// Checks the signature with `secret` (the consumer secret), then decodes the context.
pub fn verify(signed_request: &str, secret: &[u8]) -> Result<CanvasRequest, SignedRequestError> {
    if signed_request.len() > MAX_SIGNED_REQUEST {
        return Err(SignedRequestError::Malformed);
    }
    let (signature, encoded) = signed_request
        .trim()
        .split_once('.')
        .ok_or(SignedRequestError::Malformed)?;
    let signature = decode(signature).ok_or(SignedRequestError::Malformed)?;
    // Compared in constant time.
    if !crate::crypto::verify_hmac_sha256(secret, encoded.as_bytes(), &signature) {
        return Err(SignedRequestError::BadSignature);
    }
    let json = decode(encoded).ok_or(SignedRequestError::BadContext)?;
    let envelope: Envelope =
        serde_json::from_slice(&json).map_err(|_| SignedRequestError::BadContext)?;
    match envelope.algorithm.as_deref() {
        Some(ALGORITHM) => {}
        Some(other) => {
            // Named in the refusal and the log: no control characters, bounded.
            let named = other.chars().filter(|c| !c.is_control()).take(32);
            return Err(SignedRequestError::Algorithm(named.collect()));
        }
        None => return Err(SignedRequestError::Algorithm("none".into())),
    }
    let client = envelope.client.ok_or(SignedRequestError::MissingToken)?;
    let oauth_token = client
        .oauth_token
        .filter(|t| !t.is_empty())
        .ok_or(SignedRequestError::MissingToken)?;
    let instance_url = client
        .instance_url
        .filter(|u| !u.is_empty())
        .ok_or(SignedRequestError::MissingInstance)?;
    let context = envelope.context;
    let user_id = envelope.user_id.or_else(|| {
        context
            .as_ref()
            .and_then(|c| c.user.as_ref())
            .and_then(|u| u.user_id.clone())
    });
    let org_id = context
        .and_then(|c| c.organization)
        .and_then(|o| o.organization_id);
    Ok(CanvasRequest {
        oauth_token: SecretString::from(oauth_token),
        refresh_token: client
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
        instance_url,
        user_id,
        org_id,
    })
}

/// Base64 as Salesforce writes it (standard alphabet, padded); the URL-safe alphabet and
/// unpadded forms are accepted too, since the guide does not pin them down. Which spelling
/// was used does not matter to the signature: it is computed over the context as received.
fn decode(raw: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(raw).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;
    use sfgate_emulator::sign_request as sign;

    const SECRET: &[u8] = b"consumer-secret";

    fn context(algorithm: &str) -> serde_json::Value {
        json!({
            "algorithm": algorithm,
            "issuedAt": null,
            "userId": "0055j00000AlIcEAAA",
            "client": {
                "oauthToken": "00D5j00000AcMe1!token",
                "instanceUrl": "https://acme.my.salesforce.com",
                "targetOrigin": "https://acme.my.salesforce.com",
                "refreshToken": null
            },
            "context": {
                "user": {"userId": "0055j00000AlIcEAAA", "userName": "alice@acme.example"},
                "organization": {"organizationId": "00D5j00000AcMe1AAA", "name": "Acme"}
            }
        })
    }

    #[test]
    fn a_request_signed_with_the_consumer_secret_is_decoded() {
        let request = verify(&sign(&context(ALGORITHM), SECRET), SECRET).expect("valid");
        assert_eq!(request.oauth_token.expose_secret(), "00D5j00000AcMe1!token");
        assert_eq!(request.instance_url, "https://acme.my.salesforce.com");
        assert_eq!(request.user_id.as_deref(), Some("0055j00000AlIcEAAA"));
        assert_eq!(request.org_id.as_deref(), Some("00D5j00000AcMe1AAA"));
        assert!(request.refresh_token.is_none());
    }

    #[test]
    fn altered_or_wrongly_signed_requests_are_refused() {
        let good = sign(&context(ALGORITHM), SECRET);
        let (signature, body) = good.split_once('.').expect("dot");
        let mut flipped = body.as_bytes().to_vec();
        flipped[10] ^= 0x01;
        let tampered_body = format!("{signature}.{}", String::from_utf8_lossy(&flipped));
        let other_key = sign(&context(ALGORITHM), b"another-secret");
        let swapped = format!("{}.{body}", other_key.split_once('.').expect("dot").0);
        for bad in [tampered_body, other_key, swapped] {
            assert_eq!(
                verify(&bad, SECRET).err(),
                Some(SignedRequestError::BadSignature)
            );
        }
        for malformed in [
            "",
            "no-dot",
            "!!!.e30=",
            &"a".repeat(MAX_SIGNED_REQUEST + 1),
        ] {
            assert_eq!(
                verify(malformed, SECRET).err(),
                Some(SignedRequestError::Malformed),
                "{malformed:.20}"
            );
        }
    }

    #[test]
    fn only_hmacsha256_is_accepted() {
        for other in ["HMACSHA1", "hmacsha256", "none", ""] {
            assert!(matches!(
                verify(&sign(&context(other), SECRET), SECRET),
                Err(SignedRequestError::Algorithm(_))
            ));
        }
        let mut no_algorithm = context(ALGORITHM);
        no_algorithm
            .as_object_mut()
            .expect("object")
            .remove("algorithm");
        assert!(matches!(
            verify(&sign(&no_algorithm, SECRET), SECRET),
            Err(SignedRequestError::Algorithm(_))
        ));
    }

    #[test]
    fn a_context_without_a_token_or_instance_is_refused() {
        let mut no_token = context(ALGORITHM);
        no_token["client"]["oauthToken"] = json!(null);
        assert_eq!(
            verify(&sign(&no_token, SECRET), SECRET).err(),
            Some(SignedRequestError::MissingToken)
        );
        let mut no_instance = context(ALGORITHM);
        no_instance["client"]["instanceUrl"] = json!("");
        assert_eq!(
            verify(&sign(&no_instance, SECRET), SECRET).err(),
            Some(SignedRequestError::MissingInstance)
        );
    }

    /// A signed request made outside sfgate (HMAC-SHA256 over the encoded context, keyed with
    /// the consumer secret): its bytes are fixed, so the check is the one earlier releases made.
    #[test]
    fn a_fixed_signed_request_verifies() {
        let fixture = "HRMpih23Kvtd0EwDSg76a11RtIixK6kGeiIXiGNP2lc=.eyJhbGdvcml0aG0iOiJITUFDU0hBMjU2IiwidXNlcklkIjoiMDA1NWowMDAwMEFsSWNFQUFBIiwiY2xpZW50Ijp7Im9hdXRoVG9rZW4iOiIwMEQ1ajAwMDAwQWNNZTEhdG9rZW4iLCJpbnN0YW5jZVVybCI6Imh0dHBzOi8vYWNtZS5teS5zYWxlc2ZvcmNlLmNvbSJ9fQ==";
        let request = verify(fixture, b"canvas-consumer-secret").expect("valid");
        assert_eq!(request.instance_url, "https://acme.my.salesforce.com");
        assert_eq!(
            verify(fixture, b"canvas-consumer-secreT").err(),
            Some(SignedRequestError::BadSignature)
        );
    }

    #[test]
    fn url_safe_unpadded_encodings_are_accepted() {
        let encoded = URL_SAFE_NO_PAD.encode(context(ALGORITHM).to_string());
        let mac = crate::crypto::hmac_sha256(&crate::crypto::hmac_key(SECRET), encoded.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac);
        assert!(verify(&format!("{signature}.{encoded}"), SECRET).is_ok());
    }
}
