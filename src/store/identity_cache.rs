//! The shared identity cache: a second level behind each replica's own.
//!
//! On a local miss the validator looks here before calling Salesforce and stores what
//! Salesforce said, with the verdict's TTL, so N replicas make one `userinfo` call per token
//! per TTL instead of N. The key is a keyed hash of the token's digest and the verdict is
//! sealed under that key (see `keys.rs`): a verdict planted in Redis, or copied there from
//! another token's key, is a miss, never an admission. A tombstone left by a revocation wins
//! over a verdict.

use super::keys::Purpose;
use super::{Digest, SharedStore};
use crate::domain::Identity;
use crate::domain::{InstanceUrl, OrgId, SalesforceId};
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
        /// What authorization rules read; absent in verdicts stored by older replicas, which
        /// rules then treat as unknown (and refuse when they need them).
        #[serde(default)]
        email_verified: Option<bool>,
        #[serde(default)]
        user_type: Option<String>,
        #[serde(default)]
        active: Option<bool>,
        #[serde(default)]
        custom_permissions: Option<Vec<String>>,
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
            username: identity.username.as_deref().map(str::to_owned),
            display_name: identity.display_name.as_deref().map(str::to_owned),
            email: identity.email.as_deref().map(str::to_owned),
            email_verified: identity.email_verified,
            user_type: identity.user_type.as_deref().map(str::to_owned),
            active: identity.active,
            custom_permissions: identity.custom_permissions.clone(),
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
                email_verified,
                user_type,
                active,
                custom_permissions,
            } => Some(Ok(Identity {
                user_id: SalesforceId::parse(&user_id).ok()?,
                organization_id: OrgId::parse(&org_id).ok()?,
                username: username.map(Into::into),
                display_name: display_name.map(Into::into),
                email: email.map(Into::into),
                email_verified,
                user_type: user_type.map(Into::into),
                active,
                custom_permissions,
                instance_url: instance.clone(),
            })),
            Self::Invalid { reason } => Some(Err(reason)),
        }
    }
}

impl SharedStore {
    /// The shared verdict for a token digest, if another replica stored one, with the time it
    /// has left (keep it locally no longer). A revoked token reads as refused. `None` without
    /// Redis, on a miss, when Redis fails, or when the value is not sealed by this deployment
    /// (planted, altered or moved from another key: counted, see `keys.rs`).
    pub async fn shared_verdict(&self, digest: &Digest) -> Option<(SharedVerdict, Duration)> {
        let Self::Redis(store) = self else {
            return None;
        };
        let mut conn = store.conn();
        let mut pipe = redis::pipe();
        // Under the current secret's names, then the previous one's (a rotation).
        let names: Vec<String> = store
            .keys
            .all()
            .map(|keys| keys.name(Purpose::Identity, digest))
            .collect();
        for (keys, name) in store.keys.all().zip(&names) {
            pipe.cmd("GET")
                .arg(name)
                .cmd("PTTL")
                .arg(name)
                .cmd("PTTL")
                .arg(keys.name(Purpose::Tombstone, digest));
        }
        let found: Vec<(Option<String>, i64, i64)> = store
            .run("identity_get", pipe.query_async(&mut conn))
            .await?;
        // PTTL is negative for a key that does not exist (or has no expiry: not ours).
        if let Some(revoked_ms) = found.iter().map(|f| f.2).find(|ms| *ms > 0) {
            let reason = "the token was logged out".to_string();
            let left = Duration::from_millis(revoked_ms.unsigned_abs());
            return Some((SharedVerdict::Invalid { reason }, left));
        }
        let found = names
            .iter()
            .zip(found)
            .find_map(|(name, (sealed, verdict_ms, _))| {
                let left = Duration::from_millis(verdict_ms.max(0).unsigned_abs());
                let json = store.keys.open("identity", name, sealed?)?;
                let verdict = serde_json::from_str(&json).ok()?;
                (!left.is_zero()).then_some((verdict, left))
            });
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("sfgate_redis_identity_total", "result" => result).increment(1);
        found
    }

    /// Stores a verdict for the others for `ttl`, sealed under its key name with the current
    /// secret. Failures only cost them a Salesforce call.
    pub async fn share_verdict(&self, digest: &Digest, verdict: &SharedVerdict, ttl: Duration) {
        let Self::Redis(store) = self else {
            return;
        };
        let name = store.keys.current.name(Purpose::Identity, digest);
        let sealed = serde_json::to_string(verdict)
            .ok()
            .and_then(|json| store.keys.current.sealer.seal(&name, json));
        let (Some(sealed), false) = (sealed, ttl.is_zero()) else {
            return;
        };
        let mut conn = store.conn();
        store
            .run(
                "identity_put",
                redis::cmd("SET")
                    .arg(name)
                    .arg(sealed)
                    .arg("PX")
                    .arg(ttl.as_millis() as u64)
                    .query_async::<()>(&mut conn),
            )
            .await;
    }
}
