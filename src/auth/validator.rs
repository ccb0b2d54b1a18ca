//! Validating a token at Salesforce, through a bounded TTL cache with single-flight.
//!
//! Each validation is a round trip of tens to hundreds of milliseconds, so verdicts are cached
//! (`IDENTITY_CACHE_TTL`, default 60 s; a revoked token may therefore keep working that long
//! unless it is logged out through sfgate, which evicts it). Concurrent requests with the same
//! uncached token share one call (moka's `try_get_with`). Salesforce's "no" is cached briefly
//! (`IDENTITY_NEGATIVE_TTL`) so a flood of bad tokens does not become a flood at Salesforce;
//! timeouts and outages are never cached. Keys are SHA-256 digests of instance and token, so
//! the cache never holds a token.

use super::{AuthError, Confirmed};
use crate::domain::{AllowedOrgs, InstanceUrl, OrgId};
use crate::health::Readiness;
use crate::salesforce::{IdentityClient, SalesforceError};
use metrics::Counter;
use moka::future::Cache;
use moka::Expiry;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

type Key = [u8; 32];

#[derive(Clone)]
enum Verdict {
    Valid(Arc<Confirmed>),
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
    ) -> Result<Arc<Confirmed>, AuthError> {
        let counters = counters();
        let prefix = token_prefix(token);
        // A classic token names its org; one that names a refused org is refused without a call.
        if let TokenPrefix::Org(org) = &prefix {
            if !self.allowed_orgs.allows(org) {
                counters.org_refused.increment(1);
                return Err(AuthError::OrgNotAllowed(org.clone()));
            }
        }
        let verdict = match &self.cache {
            None => {
                counters.cache_disabled.increment(1);
                Box::pin(self.fetch(instance, token)).await
            }
            Some(cache) => {
                let missed = AtomicBool::new(false);
                let result = cache
                    .try_get_with(cache_key(instance, token), async {
                        missed.store(true, Ordering::Relaxed);
                        // Boxed so that a cache hit does not carry a request's worth of state.
                        Box::pin(self.fetch(instance, token)).await
                    })
                    .await;
                if missed.load(Ordering::Relaxed) {
                    counters.cache_miss.increment(1);
                } else {
                    counters.cache_hit.increment(1);
                }
                // `sfgate_identity_cache_entries` is set when /metrics is read, not here.
                result.map_err(Arc::unwrap_or_clone)
            }
        };
        let identity = match verdict {
            Ok(Verdict::Valid(identity)) => identity,
            Ok(Verdict::Invalid(reason)) => {
                counters.invalid.increment(1);
                return Err(AuthError::InvalidToken(reason.to_string()));
            }
            Err(e) => {
                counters.upstream_error.increment(1);
                return Err(AuthError::Upstream(Arc::new(e)));
            }
        };
        if !self.allowed_orgs.allows(&identity.organization_id) {
            counters.org_refused.increment(1);
            return Err(AuthError::OrgNotAllowed(identity.organization_id.clone()));
        }
        let contradicts = match &prefix {
            TokenPrefix::Absent => false,
            TokenPrefix::Org(org) => *org != identity.organization_id,
            TokenPrefix::Malformed => true,
        };
        if contradicts {
            counters.invalid.increment(1);
            return Err(AuthError::InvalidToken(
                "the token's org prefix does not match the organization Salesforce reports".into(),
            ));
        }
        counters.valid.increment(1);
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
        self.readiness
            .record_instance(instance, "userinfo", failure);
        match result {
            Ok(identity) => Ok(Verdict::Valid(Arc::new(Confirmed::new(identity)))),
            Err(SalesforceError::Rejected { description, .. }) => {
                Ok(Verdict::Invalid(description.into()))
            }
            Err(e) => Err(e),
        }
    }
}

/// Handles to the counters every validation touches, registered once: looking a counter up by
/// name and labels on each request costs more than the rest of a cache hit.
struct Counters {
    valid: Counter,
    invalid: Counter,
    org_refused: Counter,
    upstream_error: Counter,
    cache_hit: Counter,
    cache_miss: Counter,
    cache_disabled: Counter,
}

fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        // Handles taken before the recorder exists would count into nothing.
        crate::metrics::handle();
        let outcome = |o: &'static str| {
            metrics::counter!("sfgate_identity_validations_total", "outcome" => o)
        };
        let cache = |r: &'static str| metrics::counter!("sfgate_identity_cache_total", "result" => r);
        Counters {
            valid: outcome("valid"),
            invalid: outcome("invalid"),
            org_refused: outcome("org_refused"),
            upstream_error: outcome("upstream_error"),
            cache_hit: cache("hit"),
            cache_miss: cache("miss"),
            cache_disabled: cache("disabled"),
        }
    })
}

fn cache_key(instance: &InstanceUrl, token: &SecretString) -> Key {
    let mut hasher = Sha256::new();
    hasher.update(instance.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(token.expose_secret().as_bytes());
    hasher.finalize().into()
}

/// What a token says about its org before its `!`.
#[derive(Debug, PartialEq)]
enum TokenPrefix {
    /// JWT-style tokens have no `!` and no prefix.
    Absent,
    /// A classic token names its org.
    Org(OrgId),
    /// A `!` prefix that is not an org id cannot come from Salesforce.
    Malformed,
}

fn token_prefix(token: &SecretString) -> TokenPrefix {
    match token.expose_secret().split_once('!') {
        None => TokenPrefix::Absent,
        Some((prefix, _)) => OrgId::parse(prefix).map_or(TokenPrefix::Malformed, TokenPrefix::Org),
    }
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
        let TokenPrefix::Org(org) = token_prefix(&classic) else {
            panic!("a classic token names its org");
        };
        assert_eq!(org.short(), "00D5j00000AcMe1");
        let jwt = SecretString::from("eyJhbGciOiJSUzI1NiJ9.e30.sig".to_string());
        assert_eq!(token_prefix(&jwt), TokenPrefix::Absent);
        assert_eq!(
            token_prefix(&SecretString::from("junk!abc".to_string())),
            TokenPrefix::Malformed
        );
    }
}
