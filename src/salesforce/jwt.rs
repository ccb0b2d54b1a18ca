//! Salesforce's JWT-based access tokens: recognising one, and checking it without a call.
//!
//! Salesforce Help ("JWT-Based Access Tokens") documents these as meant to be "parsed and
//! validated locally ... without calling a Salesforce endpoint". The header carries `alg`
//! (always RS256), `typ: JWT`, `kid`, `tty: sfdc-core-token` and `tnk` (the tenant key, which
//! ends with the 18-character org id); the payload `iss` (the org's My Domain URL), `sub`
//! (`uid:<user id>`), `client_id`, `nbf`, `iat` and `exp`. There is no org claim in the
//! payload: the org comes from `tnk` (or the `kid`, `CORE_ATJWT.<org>.<timestamp>`).
//!
//! The algorithm is fixed to RS256 here, never read from the token: a token that says `none`
//! or `HS256` is refused before any key is used.

use crate::domain::{OrgId, SalesforceId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Clock skew tolerated on `exp` and `nbf`. Servers synchronised with NTP agree within a
/// second, but containers and VMs that resume from a pause drift by seconds; 30 s absorbs
/// that while extending a token's life by no more than the identity cache already does for
/// opaque tokens (IDENTITY_CACHE_TTL, 60 s). jsonwebtoken's default of 60 s would double the
/// life of the shortest Salesforce tokens (the Mobile SDK's sample lives 60 s).
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Salesforce's token type for JWT access tokens (header `tty`).
pub const SFDC_TOKEN_TYPE: &str = "sfdc-core-token";

/// A JWT access token's unverified header and issuer: enough to find the key, nothing else.
/// Nothing here may admit anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub kid: String,
    pub issuer: String,
}

/// Why a JWT access token is refused. All are the client's problem (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    #[error("the JWT access token is malformed")]
    Malformed,
    #[error("the JWT access token is not signed with RS256")]
    Algorithm,
    #[error("the JWT access token's signature is invalid")]
    Signature,
    #[error("the JWT access token has expired")]
    Expired,
    #[error("the JWT access token is not valid yet")]
    NotYetValid,
    #[error("the JWT access token was issued by another issuer")]
    Issuer,
    #[error("the JWT access token was issued to a Connected App this gateway does not accept")]
    ClientId,
    #[error("the JWT access token does not name its org (tnk) or user (sub)")]
    MissingIdentity,
    #[error("the JWT access token's key is not among the issuer's published keys")]
    UnknownKey,
}

#[derive(Deserialize)]
struct HeaderView {
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    tty: Option<String>,
}

#[derive(Deserialize)]
struct IssuerView {
    #[serde(default)]
    iss: Option<String>,
}

/// `None` when the token is not a JWT access token (an opaque token, which only Salesforce can
/// judge). A JWT is three base64url parts whose header says `tty: sfdc-core-token`, or at
/// least `typ: JWT` with a `kid`. `Some(Err)` is a JWT that cannot be checked.
pub fn recognise(token: &str) -> Option<Result<Unverified, JwtRejection>> {
    // Classic tokens contain `!`, which base64url never does: the common case is one scan.
    if token.contains('!') {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header: HeaderView = decode_json(header)?;
    let is_sfdc = header.tty.as_deref() == Some(SFDC_TOKEN_TYPE);
    let is_jwt = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("JWT"));
    if !(is_sfdc || (is_jwt && header.kid.is_some())) {
        return None;
    }
    if header.tty.as_deref().is_some_and(|t| t != SFDC_TOKEN_TYPE) {
        return Some(Err(JwtRejection::Malformed));
    }
    let Some(kid) = header.kid.filter(|k| !k.is_empty() && k.len() <= 256) else {
        return Some(Err(JwtRejection::Malformed));
    };
    let Some(issuer) = decode_json::<IssuerView>(payload).and_then(|p| p.iss) else {
        return Some(Err(JwtRejection::Malformed));
    };
    Some(Ok(Unverified { kid, issuer }))
}

/// The `exp` of a JWT, unverified: only for decisions that can refuse, never admit (how long
/// to remember that a token was logged out).
pub fn unverified_exp(token: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Exp {
        exp: u64,
    }
    decode_json::<Exp>(token.split('.').nth(1)?).map(|e| e.exp)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What a verified JWT access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    pub user_id: SalesforceId,
    pub organization_id: OrgId,
    pub client_id: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
}

impl VerifiedJwt {
    /// How long the token remains valid from now (zero once past `exp`, even within the
    /// leeway): a cache entry must never outlive the token.
    pub fn remaining(&self) -> Duration {
        Duration::from_secs(self.expires_at.saturating_sub(now_secs()))
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    client_id: Option<String>,
    exp: u64,
}

#[derive(Deserialize)]
struct SignedHeader {
    #[serde(default)]
    tnk: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Checks signature (RS256 only), `iss`, `exp`/`nbf` with [`LEEWAY`] and `client_id`, and
/// reads the user and org.
pub fn verify(
    token: &str,
    key: &DecodingKey,
    issuer: &str,
    accepted_client_ids: &[String],
) -> Result<VerifiedJwt, JwtRejection> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = LEEWAY.as_secs();
    validation.validate_nbf = true;
    // `aud` is the org's My Domain, like `iss`; `iss` is what is checked.
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.set_issuer(&[issuer]);
    let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                JwtRejection::Algorithm
            }
            ErrorKind::InvalidSignature | ErrorKind::InvalidKeyFormat => JwtRejection::Signature,
            ErrorKind::ExpiredSignature => JwtRejection::Expired,
            ErrorKind::ImmatureSignature => JwtRejection::NotYetValid,
            ErrorKind::InvalidIssuer => JwtRejection::Issuer,
            _ => JwtRejection::Malformed,
        }
    })?;
    let claims = data.claims;
    let client_id = claims.client_id.ok_or(JwtRejection::ClientId)?;
    if !accepted_client_ids.contains(&client_id) {
        return Err(JwtRejection::ClientId);
    }
    let user_id = claims
        .sub
        .strip_prefix("uid:")
        .and_then(|id| SalesforceId::parse(id).ok())
        .ok_or(JwtRejection::MissingIdentity)?;
    // The header is covered by the signature, so its tenant key can be trusted now.
    let header: SignedHeader = token
        .split('.')
        .next()
        .and_then(decode_json)
        .ok_or(JwtRejection::Malformed)?;
    let organization_id = org_of(header.tnk.as_deref(), header.kid.as_deref())?;
    Ok(VerifiedJwt {
        user_id,
        organization_id,
        client_id,
        expires_at: claims.exp,
    })
}

/// The org from the tenant key (`core/<instance>/<18-char org id>`), else from a
/// `CORE_ATJWT.<org>.<timestamp>` key id. When both name an org they must agree.
fn org_of(tnk: Option<&str>, kid: Option<&str>) -> Result<OrgId, JwtRejection> {
    let from_tnk = tnk
        .and_then(|t| t.rsplit('/').next())
        .and_then(|last| OrgId::parse(last).ok());
    let from_kid = kid
        .and_then(|k| k.split('.').nth(1))
        .and_then(|part| OrgId::parse(part).ok());
    match (from_tnk, from_kid) {
        (Some(a), Some(b)) if a != b => Err(JwtRejection::MissingIdentity),
        (Some(org), _) | (None, Some(org)) => Ok(org),
        (None, None) => Err(JwtRejection::MissingIdentity),
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(v: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn opaque_tokens_are_not_jwts() {
        assert_eq!(recognise("00D5j00000AcMe1!AQ0AQ.abc.def"), None);
        assert_eq!(recognise("plain"), None);
        assert_eq!(recognise("a.b"), None);
        assert_eq!(recognise("a.b.c.d"), None);
        // A JWT-shaped token without a key id or Salesforce's token type is left to userinfo.
        let h = part(serde_json::json!({"alg": "RS256", "typ": "JWT"}));
        let p = part(serde_json::json!({"iss": "https://x.my.salesforce.com"}));
        assert_eq!(recognise(&format!("{h}.{p}.sig")), None);
    }

    #[test]
    fn salesforce_jwts_are_recognised_with_kid_and_issuer() {
        let h = part(
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "CORE_ATJWT.00DSG000009FYVd.1725579420125", "tty": "sfdc-core-token", "tnk": "core/falcontest1-core4sdb6/00DSG000009FYVd2AO", "ver": "1.0"}),
        );
        let p = part(
            serde_json::json!({"iss": "https://x.my.salesforce.com", "sub": "uid:005SG00000AAAAAAAA"}),
        );
        let found = recognise(&format!("{h}.{p}.sig"))
            .expect("a jwt")
            .expect("checkable");
        assert_eq!(found.kid, "CORE_ATJWT.00DSG000009FYVd.1725579420125");
        assert_eq!(found.issuer, "https://x.my.salesforce.com");
        // `alg: none` is still recognised as a JWT, so it is refused rather than sent anywhere.
        let none = part(serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k"}));
        assert!(matches!(recognise(&format!("{none}.{p}.")), Some(Ok(_))));
        let no_iss = part(serde_json::json!({"sub": "uid:x"}));
        assert_eq!(
            recognise(&format!("{h}.{no_iss}.sig")),
            Some(Err(JwtRejection::Malformed))
        );
    }

    #[test]
    fn the_org_comes_from_the_tenant_key_and_agrees_with_the_kid() {
        let org = org_of(
            Some("core/falcontest1-core4sdb6/00DSG000009FYVd2AO"),
            Some("CORE_ATJWT.00DSG000009FYVd.1725579420125"),
        )
        .expect("org");
        assert_eq!(org.short(), "00DSG000009FYVd");
        assert!(org_of(None, Some("CORE_ATJWT.00DSG000009FYVd.1")).is_ok());
        assert_eq!(
            org_of(
                Some("core/x/00D5j00000AcMe1"),
                Some("CORE_ATJWT.00DSG000009FYVd.1")
            ),
            Err(JwtRejection::MissingIdentity)
        );
        assert_eq!(org_of(None, Some("k1")), Err(JwtRejection::MissingIdentity));
    }

    mod properties {
        use super::super::*;
        use jsonwebtoken::{EncodingKey, Header};
        use proptest::prelude::*;
        use std::sync::OnceLock;

        const ISSUER: &str = "https://acme.my.salesforce.com";

        /// A valid token and the key that verifies it (the emulator's unpublished test key).
        fn signed() -> &'static (String, DecodingKey) {
            static SIGNED: OnceLock<(String, DecodingKey)> = OnceLock::new();
            SIGNED.get_or_init(|| {
                // So that these properties hold for the verification the gateway uses.
                crate::salesforce::rs256::install();
                let pem = crate::salesforce::emulator::FOREIGN_KEY.as_bytes();
                let key = EncodingKey::from_rsa_pem(pem).expect("pem");
                let jwk =
                    jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some("k".into());
                header.typ = Some("JWT".into());
                header.extras.insert("tty", SFDC_TOKEN_TYPE);
                header.extras.insert("tnk", "core/x/00D5j00000AcMe1EAF");
                let now = now_secs();
                let claims = serde_json::json!({
                    "iss": ISSUER, "sub": "uid:0055j00000AlIcEAAV", "client_id": "me",
                    "nbf": now, "iat": now, "exp": now + 3600,
                });
                let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
                (token, DecodingKey::from_jwk(&jwk).expect("decoding key"))
            })
        }

        fn check(token: &str) -> Result<VerifiedJwt, JwtRejection> {
            verify(token, &signed().1, ISSUER, &["me".to_string()])
        }

        #[test]
        fn the_unaltered_token_verifies() {
            let verified = check(&signed().0).expect("valid");
            assert_eq!(verified.organization_id.short(), "00D5j00000AcMe1");
            assert_eq!(verified.user_id.short(), "0055j00000AlIcE");
        }

        const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// Any one character changed anywhere (header, payload or signature) is refused.
            #[test]
            fn any_altered_character_is_refused(at in any::<prop::sample::Index>(), with in 0..B64URL.len()) {
                let token = &signed().0;
                let positions: Vec<usize> = token
                    .char_indices()
                    .filter(|(_, c)| *c != '.')
                    .map(|(i, _)| i)
                    .collect();
                let i = at.index(positions.len());
                let replacement = B64URL[with] as char;
                prop_assume!(token.as_bytes()[i] as char != replacement);
                let mut altered = token.clone();
                altered.replace_range(i..=i, &replacement.to_string());
                prop_assert!(check(&altered).is_err());
            }

            /// A header naming any algorithm but RS256 is refused, whatever the signature.
            #[test]
            fn only_rs256_is_accepted(alg in prop::sample::select(vec![
                "none", "None", "HS256", "HS384", "HS512", "RS384", "RS512", "PS256", "ES256", "EdDSA", "rs256", "",
            ])) {
                let token = &signed().0;
                let mut parts = token.splitn(2, '.');
                let (_, rest) = (parts.next(), parts.next().unwrap_or_default());
                let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": "k", "tty": SFDC_TOKEN_TYPE, "tnk": "core/x/00D5j00000AcMe1EAF"});
                let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
                prop_assert!(check(&forged).is_err());
            }
        }
    }
}
