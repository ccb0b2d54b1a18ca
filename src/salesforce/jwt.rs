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
//!
//! Why not a JOSE crate's `decode`: its verification API takes the key's raw components on
//! every call, so each token paid again for preparing the RSA modulus (see [`super::rs256`]),
//! and it decoded and parsed the header and payload a second time after [`recognise`]. For one
//! fixed algorithm the compact serialisation is small: three base64url parts, the signature
//! over the first two exactly as received. Each token is decoded and parsed once, here; the
//! RSA arithmetic and the hash are AWS-LC's. Tests: the unit tests below (every altered
//! character refused, every other `alg` refused) and tests/api/jwt.rs.

use super::rs256::Rs256Key;
use crate::domain::{OrgId, SalesforceId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
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

/// The only algorithm accepted.
const RS256: &str = "RS256";

/// A JWT access token, decoded and parsed once, not yet verified: its `kid` and `issuer` are
/// enough to find the key, and nothing here may admit anyone before [`Unverified::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub kid: String,
    pub issuer: String,
    header: HeaderView,
    claims: ClaimsView,
    /// The base64url header, `.` and base64url payload, exactly as received: what is signed.
    signed: String,
    signature: Vec<u8>,
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct HeaderView {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    tty: Option<String>,
    #[serde(default)]
    tnk: Option<String>,
    /// Extensions the recipient must understand (RFC 7515 4.1.11): sfgate understands none,
    /// so a token that names any is refused.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The claims sfgate reads; any other claim is skipped. A claim of the wrong type (an `exp`
/// that is not a whole number) makes the token malformed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct ClaimsView {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
}

/// The header of a JWT access token, when `token` is one.
fn header_of(token: &str) -> Option<(HeaderView, &str, &str, &str)> {
    // Classic tokens contain `!`, which base64url never does: the common case is one scan.
    if token.contains('!') {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let view: HeaderView = decode_json(header)?;
    let is_sfdc = view.tty.as_deref() == Some(SFDC_TOKEN_TYPE);
    let is_jwt = view
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("JWT"));
    (is_sfdc || (is_jwt && view.kid.is_some())).then_some((view, header, payload, signature))
}

/// `None` when the token is not a JWT access token (an opaque token, which only Salesforce can
/// judge). A JWT is three base64url parts whose header says `tty: sfdc-core-token`, or at
/// least `typ: JWT` with a `kid`. `Some(Err)` is a JWT that cannot be checked.
pub fn recognise(token: &str) -> Option<Result<Unverified, JwtRejection>> {
    let (header, header_part, payload_part, signature_part) = header_of(token)?;
    Some(parse(header, header_part, payload_part, signature_part))
}

fn parse(
    mut header: HeaderView,
    header_part: &str,
    payload_part: &str,
    signature_part: &str,
) -> Result<Unverified, JwtRejection> {
    if header.tty.as_deref().is_some_and(|t| t != SFDC_TOKEN_TYPE) {
        return Err(JwtRejection::Malformed);
    }
    // Moved out, not copied: `Unverified` keeps them as `kid` and `issuer`.
    let kid = header
        .kid
        .take()
        .filter(|k| !k.is_empty() && k.len() <= 256)
        .ok_or(JwtRejection::Malformed)?;
    let mut claims: ClaimsView = decode_json(payload_part).ok_or(JwtRejection::Malformed)?;
    let issuer = claims.iss.take().ok_or(JwtRejection::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_part)
        .map_err(|_| JwtRejection::Malformed)?;
    // The two parts and the dot between them, as they stand in the token.
    let signed = format!("{header_part}.{payload_part}");
    Ok(Unverified {
        kid,
        issuer,
        header,
        claims,
        signed,
        signature,
    })
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

/// The `iat` of a JWT, unverified: only for decisions that can refuse, never admit (whether
/// it was issued before its user was revoked).
pub fn unverified_iat(token: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Iat {
        iat: u64,
    }
    decode_json::<Iat>(token.split('.').nth(1)?).map(|e| e.iat)
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

impl Unverified {
    /// Checks the algorithm (RS256 only), the signature with `key`, `exp`/`nbf` with
    /// [`LEEWAY`], `iss` and `client_id`, and reads the user and org. The signature is checked
    /// before any claim, so an unsigned token learns nothing about which claim was wrong.
    pub fn verify(
        &self,
        key: &Rs256Key,
        issuer: &str,
        accepted_client_ids: &[String],
    ) -> Result<VerifiedJwt, JwtRejection> {
        if self.header.alg.as_deref() != Some(RS256) {
            return Err(JwtRejection::Algorithm);
        }
        if self.header.crit.is_some() {
            return Err(JwtRejection::Malformed);
        }
        if !key.verify(self.signed.as_bytes(), &self.signature) {
            return Err(JwtRejection::Signature);
        }
        let claims = &self.claims;
        let (Some(exp), Some(sub)) = (claims.exp, claims.sub.as_deref()) else {
            return Err(JwtRejection::Malformed);
        };
        let now = now_secs();
        let leeway = LEEWAY.as_secs();
        if exp.saturating_add(leeway) < now {
            return Err(JwtRejection::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(JwtRejection::NotYetValid);
        }
        if self.issuer != issuer {
            return Err(JwtRejection::Issuer);
        }
        let client_id = claims.client_id.as_ref().ok_or(JwtRejection::ClientId)?;
        if !accepted_client_ids.contains(client_id) {
            return Err(JwtRejection::ClientId);
        }
        let user_id = sub
            .strip_prefix("uid:")
            .and_then(|id| SalesforceId::parse(id).ok())
            .ok_or(JwtRejection::MissingIdentity)?;
        // The header is covered by the signature, so its tenant key can be trusted now.
        let organization_id = org_of(self.header.tnk.as_deref(), Some(&self.kid))?;
        Ok(VerifiedJwt {
            user_id,
            organization_id,
            client_id: client_id.clone(),
            expires_at: exp,
        })
    }
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
mod tests;
