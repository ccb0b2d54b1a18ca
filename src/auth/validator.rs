//! Validating a token at Salesforce, through a bounded TTL cache with single-flight.
//!
//! Each validation is a round trip of tens to hundreds of milliseconds, so verdicts are cached
//! (`IDENTITY_CACHE_TTL`, default 60 s; a revoked token may therefore keep working that long
//! unless it is logged out through sfgate, which evicts it). Concurrent requests with the same
//! uncached token share one call (moka's `try_get_with`). Salesforce's "no" is cached briefly
//! (`IDENTITY_NEGATIVE_TTL`) so a flood of bad tokens does not become a flood at Salesforce;
//! timeouts and outages are never cached. Keys are SHA-256 digests of instance and token, so
//! the cache never holds a token.

use super::miss_budget::MissBudget;
use super::{AuthError, Confirmed};
use crate::domain::{AllowedOrgs, InstanceUrl, OrgId};
use crate::health::Readiness;
use crate::salesforce::{IdentityClient, SalesforceError};
use crate::store::{SharedStore, SharedVerdict};
use metrics::Counter;
use moka::future::Cache;
use moka::Expiry;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

type Key = [u8; 32];

#[derive(Clone)]
enum Verdict {
    Valid(Arc<Confirmed>),
    Invalid(Arc<str>),
}

#[derive(Clone)]
struct VerdictExpiry {
    valid: Duration,
    invalid: Duration,
    /// [store] What is left of verdicts read from the shared level, so a verdict is not kept
    /// longer in all than its TTL. Taken out when the verdict enters the local cache.
    shared_remaining: Arc<Mutex<HashMap<Key, Duration>>>,
}

impl Expiry<Key, Verdict> for VerdictExpiry {
    fn expire_after_create(
        &self,
        key: &Key,
        value: &Verdict,
        _created_at: Instant,
    ) -> Option<Duration> {
        let ttl = match value {
            Verdict::Valid(_) => self.valid,
            Verdict::Invalid(_) => self.invalid,
        };
        let remaining = self
            .shared_remaining
            .lock()
            .ok()
            .and_then(|mut m| m.remove(key));
        Some(remaining.map_or(ttl, |r| r.min(ttl)))
    }
}

pub struct IdentityValidator {
    client: IdentityClient,
    readiness: Arc<Readiness>,
    cache: Option<Cache<Key, Verdict>>,
    allowed_orgs: AllowedOrgs,
    miss_budget: MissBudget,
    /// Replicas' shared state (`REDIS_URL`): revocations, and a second cache level.
    store: SharedStore,
    ttls: VerdictExpiry,
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
        let ttls = VerdictExpiry {
            valid: ttl,
            invalid: negative_ttl.min(ttl),
            shared_remaining: Arc::default(),
        };
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(max)
                .expire_after(ttls.clone())
                .build()
        });
        Self {
            client,
            readiness,
            cache,
            allowed_orgs,
            miss_budget: MissBudget::unlimited(),
            store: SharedStore::Local,
            ttls,
        }
    }

    /// Bounds the Salesforce calls each client can cause (`VALIDATION_MISSES_PER_MINUTE`).
    pub fn with_miss_budget(mut self, budget: MissBudget) -> Self {
        self.miss_budget = budget;
        self
    }

    pub fn miss_budget(&self) -> &MissBudget {
        &self.miss_budget
    }

    /// Shares revocations and verdicts with the other replicas through `store` (see
    /// `crate::store`). Whenever the revocation feed restarts, the local cache is cleared.
    pub fn with_store(mut self, store: SharedStore) -> Self {
        if let Some(cache) = &self.cache {
            let cache = cache.clone();
            store.on_resubscribe(move || cache.invalidate_all());
        }
        self.store = store;
        self
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
                // No cache, no misses: the operator chose a call per request, so no budget.
                counters.cache_disabled.increment(1);
                Box::pin(self.fetch(instance, token))
                    .await
                    .map_err(AuthError::from)
            }
            Some(cache) => {
                let key = cache_key(instance, token);
                // [store] Logged out on any replica: an in-memory check, no Redis round trip.
                if self.store.is_revoked(&key) {
                    cache.invalidate(&key).await;
                    counters.invalid.increment(1);
                    return Err(AuthError::InvalidToken("the token was logged out".into()));
                }
                let missed = AtomicBool::new(false);
                let result = cache
                    .try_get_with(key, async {
                        missed.store(true, Ordering::Relaxed);
                        // A miss is a Salesforce call, charged to the client that caused it
                        // unless it confirms a valid token.
                        let reservation = self.miss_budget.reserve()?;
                        // Boxed so that a cache hit does not carry a request's worth of state.
                        let fetched = Box::pin(self.fetch_shared(&key, instance, token)).await;
                        if let Ok(Verdict::Valid(_)) = &fetched {
                            reservation.give_back();
                        }
                        fetched.map_err(AuthError::from)
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
                if matches!(e, AuthError::Upstream(_)) {
                    counters.upstream_error.increment(1);
                }
                return Err(e);
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
        let key = cache_key(instance, token);
        if let Some(cache) = &self.cache {
            cache.invalidate(&key).await;
        }
        // [store] ...and on every replica (a no-op without REDIS_URL).
        self.store.revoke(&key).await;
    }

    pub fn cached_entries(&self) -> u64 {
        self.cache.as_ref().map(|c| c.entry_count()).unwrap_or(0)
    }

    /// [store] A local miss: the verdict another replica shared, or else Salesforce's, shared.
    async fn fetch_shared(
        &self,
        key: &Key,
        instance: &InstanceUrl,
        token: &SecretString,
    ) -> Result<Verdict, SalesforceError> {
        if let Some((shared, remaining)) = self.store.shared_verdict(key).await {
            if let Ok(mut m) = self.ttls.shared_remaining.lock() {
                // Entries leave as verdicts enter the cache; this only bounds a leftover.
                if m.len() >= 10_000 {
                    m.clear();
                }
                m.insert(*key, remaining);
            }
            match shared.into_identity(instance) {
                Some(Ok(identity)) => {
                    return Ok(Verdict::Valid(Arc::new(Confirmed::new(identity))))
                }
                Some(Err(reason)) => return Ok(Verdict::Invalid(reason.into())),
                None => {}
            }
        }
        let verdict = self.fetch(instance, token).await?;
        let (shared, ttl) = match &verdict {
            Verdict::Valid(identity) => (SharedVerdict::valid(identity), self.ttls.valid),
            Verdict::Invalid(reason) => (
                SharedVerdict::Invalid {
                    reason: reason.to_string(),
                },
                self.ttls.invalid,
            ),
        };
        self.store.share_verdict(key, &shared, ttl).await;
        Ok(verdict)
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
