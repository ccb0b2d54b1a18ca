//! The shared identity cache: a second level behind each replica's own.
//!
//! On a local miss the validator looks here before calling Salesforce and stores what
//! Salesforce said, with the verdict's TTL, so N replicas make one `userinfo` call per token
//! per TTL instead of N. Identities are not secret, but the key is the token's digest, never
//! the token. A tombstone left by a revocation wins over a verdict.

use super::redis_store::PREFIX;
use super::revocation::tombstone_key;
use super::{hex, Digest, SharedStore};
use crate::domain::{InstanceUrl, OrgId, SalesforceId};
use crate::salesforce::Identity;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A verdict as stored in Redis: Salesforce's identity for the token, or its refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
pub enum SharedVerdict {
    Valid {
        user_id: String,
        org_id: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        display_name: Option<String>,
        email: Option<String>,
    },
    Invalid {
        reason: String,
    },
}

impl SharedVerdict {
    pub fn valid(identity: &Identity) -> Self {
        Self::Valid {
            user_id: identity.user_id.to_string(),
            org_id: identity.organization_id.to_string(),
            username: identity.username.clone(),
            display_name: identity.display_name.clone(),
            email: identity.email.clone(),
        }
    }

    /// The identity again, for the instance the key was made with. `None` if the stored ids
    /// do not parse (written by something else): treated as a miss.
    pub fn into_identity(self, instance: &InstanceUrl) -> Option<Result<Identity, String>> {
        match self {
            Self::Valid {
                user_id,
                org_id,
                username,
                display_name,
                email,
            } => Some(Ok(Identity {
                user_id: SalesforceId::parse(&user_id).ok()?,
                organization_id: OrgId::parse(&org_id).ok()?,
                username,
                display_name,
                email,
                instance_url: instance.clone(),
            })),
            Self::Invalid { reason } => Some(Err(reason)),
        }
    }
}

pub(super) fn verdict_key(digest: &Digest) -> String {
    format!("{PREFIX}identity:{}", hex(digest))
}

impl SharedStore {
    /// The shared verdict for a token digest, if another replica stored one, with the time it
    /// has left (keep it locally no longer). A revoked token reads as refused. `None` without
    /// Redis, on a miss, or when Redis fails.
    pub async fn shared_verdict(&self, digest: &Digest) -> Option<(SharedVerdict, Duration)> {
        let Self::Redis(store) = self else {
            return None;
        };
        let mut conn = store.conn();
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(verdict_key(digest))
            .cmd("PTTL")
            .arg(verdict_key(digest))
            .cmd("PTTL")
            .arg(tombstone_key(digest));
        let (verdict, verdict_ms, revoked_ms): (Option<String>, i64, i64) = store
            .run("identity_get", pipe.query_async(&mut conn))
            .await?;
        // PTTL is negative for a key that does not exist (or has no expiry: not ours).
        if revoked_ms > 0 {
            let reason = "the token was logged out".to_string();
            let left = Duration::from_millis(revoked_ms.unsigned_abs());
            return Some((SharedVerdict::Invalid { reason }, left));
        }
        let left = Duration::from_millis(verdict_ms.max(0).unsigned_abs());
        let found = verdict
            .filter(|_| !left.is_zero())
            .and_then(|v| serde_json::from_str(&v).ok())
            .map(|v| (v, left));
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("sfgate_redis_identity_total", "result" => result).increment(1);
        found
    }

    /// Stores a verdict for the others for `ttl`. Failures only cost them a Salesforce call.
    pub async fn share_verdict(&self, digest: &Digest, verdict: &SharedVerdict, ttl: Duration) {
        let Self::Redis(store) = self else {
            return;
        };
        let (Ok(json), false) = (serde_json::to_string(verdict), ttl.is_zero()) else {
            return;
        };
        let mut conn = store.conn();
        store
            .run(
                "identity_put",
                redis::cmd("SET")
                    .arg(verdict_key(digest))
                    .arg(json)
                    .arg("PX")
                    .arg(ttl.as_millis() as u64)
                    .query_async::<()>(&mut conn),
            )
            .await;
    }
}
