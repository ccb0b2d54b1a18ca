//! Validating a token at Salesforce, through a bounded TTL cache with single-flight.
//!
//! Each validation is a round trip of tens to hundreds of milliseconds, so verdicts are cached
//! (`IDENTITY_CACHE_TTL`, default 60 s; a revoked token may therefore keep working that long
//! unless it is logged out through sfgate, which evicts it). Concurrent requests with the same
//! uncached token share one call (moka's `try_get_with`). Salesforce's "no" is cached briefly
//! (`IDENTITY_NEGATIVE_TTL`) so a flood of bad tokens does not become a flood at Salesforce;
//! timeouts and outages are never cached. Keys are SHA-256 digests of instance and token, so
//! the cache never holds a token.

use super::AuthError;
use crate::domain::{AllowedOrgs, InstanceUrl, OrgId};
use crate::health::Readiness;
use crate::salesforce::{Identity, IdentityClient, SalesforceError};
use moka::future::Cache;
use moka::Expiry;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Key = [u8; 32];

#[derive(Clone)]
enum Verdict {
    Valid(Arc<Identity>),
    Invalid(Arc<str>),
}

struct VerdictExpiry {
    valid: Duration,
    invalid: Duration,
}

impl Expiry<Key, Verdict> for VerdictExpiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Verdict,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Verdict::Valid(_) => self.valid,
            Verdict::Invalid(_) => self.invalid,
        })
    }
}

pub struct IdentityValidator {
    client: IdentityClient,
    readiness: Arc<Readiness>,
    cache: Option<Cache<Key, Verdict>>,
    allowed_orgs: AllowedOrgs,
}

impl IdentityValidator {
    /// A `ttl` of zero disables the cache: every request asks Salesforce.
    pub fn new(
        client: IdentityClient,
        readiness: Arc<Readiness>,
        allowed_orgs: AllowedOrgs,
        ttl: Duration,
        negative_ttl: Duration,
        max: u64,
    ) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(max)
                .expire_after(VerdictExpiry {
                    valid: ttl,
                    invalid: negative_ttl.min(ttl),
                })
                .build()
        });
        Self {
            client,
            readiness,
            cache,
            allowed_orgs,
        }
    }

    /// Confirms the token with Salesforce (or the cache), then applies the org rules.
    pub async fn validate(
        &self,
        instance: &InstanceUrl,
        token: &SecretString,
    ) -> Result<Arc<Identity>, AuthError> {
        let prefix_org = token_org(token);
        // A classic token names its org; one that names a refused org is refused without a call.
        if let Some(org) = &prefix_org {
            if !self.allowed_orgs.allows(org) {
                record("org_refused");
                return Err(AuthError::OrgNotAllowed(org.clone()));
            }
        }
        let verdict = match &self.cache {
            None => {
                metrics::counter!("sfgate_identity_cache_total", "result" => "disabled")
                    .increment(1);
                self.fetch(instance, token).await
            }
            Some(cache) => {
                let missed = AtomicBool::new(false);
                let result = cache
                    .try_get_with(cache_key(instance, token), async {
                        missed.store(true, Ordering::Relaxed);
                        self.fetch(instance, token).await
                    })
                    .await;
                let result_label = if missed.load(Ordering::Relaxed) {
                    "miss"
                } else {
                    "hit"
                };
                metrics::counter!("sfgate_identity_cache_total", "result" => result_label)
                    .increment(1);
                metrics::gauge!("sfgate_identity_cache_entries").set(cache.entry_count() as f64);
                result.map_err(Arc::unwrap_or_clone)
            }
        };
        let identity = match verdict {
            Ok(Verdict::Valid(identity)) => identity,
            Ok(Verdict::Invalid(reason)) => {
                record("invalid");
                return Err(AuthError::InvalidToken(reason.to_string()));
            }
            Err(e) => {
                record("upstream_error");
                return Err(AuthError::Upstream(Arc::new(e)));
            }
        };
        if !self.allowed_orgs.allows(&identity.organization_id) {
            record("org_refused");
            return Err(AuthError::OrgNotAllowed(identity.organization_id.clone()));
        }
        if prefix_org.is_some_and(|org| org != identity.organization_id)
            || prefix_is_malformed(token)
        {
            record("invalid");
            return Err(AuthError::InvalidToken(
                "the token's org prefix does not match the organization Salesforce reports".into(),
            ));
        }
        record("valid");
        Ok(identity)
    }

    /// Forgets a token's verdict, so a logged-out token stops working at once.
    pub async fn evict(&self, instance: &InstanceUrl, token: &SecretString) {
        if let Some(cache) = &self.cache {
            cache.invalidate(&cache_key(instance, token)).await;
        }
    }

    pub fn cached_entries(&self) -> u64 {
        self.cache.as_ref().map(|c| c.entry_count()).unwrap_or(0)
    }

    async fn fetch(
        &self,
        instance: &InstanceUrl,
        token: &SecretString,
    ) -> Result<Verdict, SalesforceError> {
        let started = Instant::now();
        let result = self.client.userinfo(instance, token).await;
        metrics::histogram!("sfgate_salesforce_call_seconds", "endpoint" => "userinfo")
            .record(started.elapsed().as_secs_f64());
        let failure = match &result {
            Err(e) if e.is_transient() => Some(e.to_string()),
            _ => None,
        };
        self.readiness.record("userinfo", failure);
        match result {
            Ok(identity) => Ok(Verdict::Valid(Arc::new(identity))),
            Err(SalesforceError::Rejected { description, .. }) => {
                Ok(Verdict::Invalid(description.into()))
            }
            Err(e) => Err(e),
        }
    }
}

fn record(outcome: &'static str) {
    metrics::counter!("sfgate_identity_validations_total", "outcome" => outcome).increment(1);
}

fn cache_key(instance: &InstanceUrl, token: &SecretString) -> Key {
    let mut hasher = Sha256::new();
    hasher.update(instance.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(token.expose_secret().as_bytes());
    hasher.finalize().into()
}

/// The org a classic token names before its `!`. JWT-style tokens have no `!` and no prefix.
fn token_org(token: &SecretString) -> Option<OrgId> {
    let (prefix, _) = token.expose_secret().split_once('!')?;
    OrgId::parse(prefix).ok()
}

/// A `!` prefix that is not an org id cannot come from Salesforce.
fn prefix_is_malformed(token: &SecretString) -> bool {
    token
        .expose_secret()
        .split_once('!')
        .is_some_and(|(prefix, _)| OrgId::parse(prefix).is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_depend_on_instance_and_token() {
        let policy = crate::domain::InstancePolicy::default();
        let a = policy.check("https://a.my.salesforce.com").expect("ok");
        let b = policy.check("https://b.my.salesforce.com").expect("ok");
        let t1 = SecretString::from("00D5j00000AcMe1!one".to_string());
        let t2 = SecretString::from("00D5j00000AcMe1!two".to_string());
        assert_eq!(cache_key(&a, &t1), cache_key(&a, &t1));
        assert_ne!(cache_key(&a, &t1), cache_key(&b, &t1));
        assert_ne!(cache_key(&a, &t1), cache_key(&a, &t2));
    }

    #[test]
    fn token_prefixes_are_read_only_when_present() {
        let classic = SecretString::from("00D5j00000AcMe1!abc".to_string());
        assert_eq!(
            token_org(&classic).map(|o| o.short().to_string()),
            Some("00D5j00000AcMe1".into())
        );
        let jwt = SecretString::from("eyJhbGciOiJSUzI1NiJ9.e30.sig".to_string());
        assert!(token_org(&jwt).is_none());
        assert!(!prefix_is_malformed(&jwt));
        assert!(prefix_is_malformed(&SecretString::from(
            "junk!abc".to_string()
        )));
    }
}
