//! Validating a token at Salesforce, through a bounded TTL cache with single-flight.
//!
//! Each validation is a round trip of tens to hundreds of milliseconds, so verdicts are cached
//! (`IDENTITY_CACHE_TTL`, default 60 s; a revoked token may therefore keep working that long
//! unless it is logged out through sfgate, which evicts it). Concurrent requests with the same
//! uncached token share one call (moka's `try_get_with`). Salesforce's "no" is cached briefly
//! (`IDENTITY_NEGATIVE_TTL`) so a flood of bad tokens does not become a flood at Salesforce,
//! in a cache of its own so that it never takes a valid token's room ([`Verdicts`]);
//! timeouts and outages are never cached. Keys are SHA-256 digests of instance and token, so
//! the cache never holds a token.
//!
//! How a token is checked depends on its kind and `SF_TOKEN_VALIDATION` (see
//! docs/token-types.md): a JWT access token is verified locally against its issuer's published
//! keys (no call once the keys are cached), an opaque one via `userinfo`, or every token via
//! introspection. A verdict is never cached beyond the token's own `exp` when that is known.

use super::miss_budget::MissBudget;
use super::profiles::Profiles;
use super::{AuthError, Confirmed};
use crate::config::{CacheConfig, TokenValidation};
use crate::domain::Identity;
use crate::domain::{AllowedOrgs, InstanceUrl, SalesforceId, SiteUrl};
use crate::readiness::Readiness;
use crate::salesforce::jwt;
use crate::salesforce::{IdentityClient, SalesforceError};
use crate::store::{Shared, SharedStore, SharedVerdict, TombstoneFigures, Tombstones};
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod fetch;
mod verdict;

pub use fetch::TokenChecks;

/// A recognised JWT access token, parsed once per miss (or why it cannot be checked).
type LocalJwt = Result<jwt::Unverified, jwt::JwtRejection>;
use verdict::{
    cache_key, counters, Key, Method, Outage, Outcome, RawPrefix, TokenVerdict, TokenVerdictExpiry,
};

pub struct IdentityValidator {
    client: IdentityClient,
    readiness: Arc<Readiness>,
    cache: Option<Verdicts>,
    allowed_orgs: AllowedOrgs,
    miss_budget: MissBudget,
    /// Without them every token goes to `userinfo`.
    checks: Option<TokenChecks>,
    profiles: Profiles,
    /// How long an identity without its profile is cached, so the profile is retried soon.
    incomplete_ttl: Duration,
    /// JWT access tokens logged out through sfgate: revoked at Salesforce, but local
    /// validation would admit them again until `exp`.
    logged_out: Tombstones,
    /// Every token logged out or revoked here a moment ago, JWT or not: open tunnels watch
    /// it ([`Self::has_ended`]) and close within a poll.
    ended: moka::sync::Cache<Key, ()>,
    /// Replicas' shared state (`REDIS_URL`): revocations, and a second cache level.
    store: SharedStore,
    ttls: TokenVerdictExpiry,
}

/// The verdicts cached, kept apart by kind, so that a refusal never takes an admission's room.
///
/// Admissions are evicted least recently used first: a token just confirmed is in use, and a
/// full cache that turned it away (as a frequency-based admission policy does with a
/// newcomer) would send its next requests to Salesforce again. Only a caller with a valid
/// token can add an admission. Refusals are what anyone can add, with made-up tokens (a JWT
/// refused by its signature costs nothing to send), so they have their own, smaller cache,
/// whose frequency-based policy keeps the refusals that are asked for again.
struct Verdicts {
    admitted: Cache<Key, TokenVerdict>,
    refused: Cache<Key, TokenVerdict>,
}

impl Verdicts {
    /// `max` admissions (`IDENTITY_CACHE_MAX`), and a quarter as many refusals.
    fn new(max: u64, ttls: &TokenVerdictExpiry) -> Self {
        Self {
            admitted: Cache::builder()
                .max_capacity(max)
                .eviction_policy(EvictionPolicy::lru())
                .expire_after(ttls.clone())
                .build(),
            refused: Cache::builder()
                .max_capacity((max / 4).max(1))
                .expire_after(ttls.clone())
                .build(),
        }
    }
}

/// Why a check admitted nothing: refused (cached apart from admissions), or failed (a
/// timeout, an outage, the client's budget spent; never cached).
#[derive(Clone)]
enum Unadmitted {
    Refused(Arc<str>),
    Failed(AuthError),
}

impl From<AuthError> for Unadmitted {
    fn from(e: AuthError) -> Self {
        Self::Failed(e)
    }
}

/// However long a logout asks a token to be remembered, no longer than this: Salesforce's
/// longest session timeout, beyond which it accepts no access token.
pub const MAX_LOGOUT_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// How long a logged-out token is refused by memory: what the logout asks (`at_least`: as long
/// as the token could still be presented, since Salesforce may not confirm the revocation), at
/// most [`MAX_LOGOUT_MEMORY`]; for a JWT, until its `exp` plus the leeway, whatever was asked.
/// A JWT is refused everywhere once expired, locally and by Salesforce, and only a signed
/// token can be admitted, whose `exp` is signed: remembering it longer protects nothing and
/// only holds memory, while a logout held for less would let local validation admit it again.
fn logout_memory(token: &SecretString, at_least: Duration) -> Duration {
    let is_jwt = matches!(jwt::recognise(token.expose_secret()), Some(Ok(_)));
    match is_jwt
        .then(|| jwt::unverified_exp(token.expose_secret()))
        .flatten()
    {
        Some(exp) => {
            let left = exp
                .saturating_sub(jwt::now_secs())
                .saturating_add(jwt::LEEWAY.as_secs());
            Duration::from_secs(left).min(MAX_LOGOUT_MEMORY)
        }
        None => at_least.min(MAX_LOGOUT_MEMORY),
    }
}

/// How long a logout is remembered for [`IdentityValidator::has_ended`]: tunnels poll far
/// more often, and a new request with the token is refused by the validation itself.
const ENDED_MEMORY: Duration = Duration::from_secs(60);

impl IdentityValidator {
    /// A `cache.ttl` of zero disables the cache: every request asks Salesforce.
    pub fn new(
        client: IdentityClient,
        readiness: Arc<Readiness>,
        allowed_orgs: AllowedOrgs,
        cache: &CacheConfig,
    ) -> Self {
        let (ttl, negative_ttl, max) = (cache.ttl, cache.negative_ttl, cache.max);
        let ttls = TokenVerdictExpiry {
            valid: ttl,
            invalid: negative_ttl.min(ttl),
            outage: Arc::new(Outage::default()),
        };
        let cache = (!ttl.is_zero()).then(|| Verdicts::new(max, &ttls));
        Self {
            profiles: Profiles::new(client.clone(), ttl, max),
            client,
            readiness,
            cache,
            allowed_orgs,
            miss_budget: MissBudget::unlimited(),
            checks: None,
            incomplete_ttl: negative_ttl.min(ttl),
            logged_out: Tombstones::new(max, "access_tokens"),
            ended: moka::sync::Cache::builder()
                .max_capacity(max)
                .time_to_live(ENDED_MEMORY)
                .build(),
            store: SharedStore::Local,
            ttls,
        }
    }

    /// Shares revocations and verdicts with the other replicas through `store` (see
    /// `crate::store`). While this replica cannot hear revocations (Redis unreachable, the
    /// subscription lost, not caught up yet), it is *deaf*: the moment it becomes so, no
    /// admission cached before is served any more (a new [`Outage`] generation; refusals
    /// stay); while it is, verdicts are cached for at most
    /// `REDIS_OUTAGE_CACHE_TTL` and JWTs are checked at Salesforce instead of locally. So a
    /// logout on another replica (which revokes the token at Salesforce) holds here within
    /// that bound even though its message cannot arrive.
    pub fn with_store(mut self, store: SharedStore) -> Self {
        if let Some(ttl) = store.outage_cache_ttl() {
            let outage = self.ttls.outage.clone();
            outage.set_cache_ttl(ttl);
            store.on_hearing_change(move |hearing| outage.set_deaf(!hearing));
        }
        // A token revoked on another replica is forgotten here at once, as a logout here
        // forgets it: the mark that refuses it may be dropped to make room, and a verdict
        // cached before must not be served again then. (Open tunnels poll the mark within a
        // second, far sooner than a flood could drop it.)
        if let Some(admitted) = self.cache.as_ref().map(|c| c.admitted.clone()) {
            let forget = admitted.clone();
            store.on_token_revoked(move |key| {
                let cache = forget.clone();
                Box::pin(async move { cache.invalidate(&key).await })
            });
            // A revoked user's cached tokens are returned to be revoked as tokens (here and on
            // every replica), so that they stay refused once a new check would admit them.
            store.on_user_revoked(move |user, at_ms| {
                let mut digests = Vec::new();
                for (key, verdict) in admitted.iter() {
                    if let TokenVerdict::Valid(confirmed, ..) = &verdict {
                        if confirmed.user_id == *user && confirmed.checked_at_ms() < at_ms {
                            digests.push(*key);
                        }
                    }
                }
                // Marked revoked, and their cached verdicts forgotten, as the store hears them.
                digests
            });
        }
        self.store = store;
        self
    }

    /// Bounds the Salesforce calls each client can cause (`VALIDATION_MISSES_PER_MINUTE`).
    pub fn with_miss_budget(mut self, budget: MissBudget) -> Self {
        self.miss_budget = budget;
        self
    }

    pub fn miss_budget(&self) -> &MissBudget {
        &self.miss_budget
    }

    /// Enables local JWT validation and introspection as the configuration says.
    pub fn with_token_checks(mut self, checks: TokenChecks) -> Self {
        self.checks = Some(checks);
        self
    }

    /// The identity with its profile (username, display name, email), fetched from `userinfo`
    /// (cached per user) when the identity lacks it. For decisions that NEED profile fields:
    /// an error here must refuse the request (fail closed), unlike the best-effort completion
    /// every admitted JWT gets.
    pub async fn require_profile(
        &self,
        identity: &Identity,
        token: &SecretString,
    ) -> Result<Identity, AuthError> {
        self.profiles
            .require(identity, token)
            .await
            .map_err(|e| match e {
                SalesforceError::Rejected { description, .. } => {
                    AuthError::InvalidToken(description)
                }
                e => AuthError::Upstream(Arc::new(e)),
            })
    }

    /// Confirms the token with Salesforce (or the cache), then applies the org rules.
    pub async fn validate(
        &self,
        instance: &InstanceUrl,
        token: &SecretString,
    ) -> Result<Arc<Confirmed>, AuthError> {
        self.validate_at(instance, None, token).await
    }

    /// As [`Self::validate`], for a token issued through an Experience Cloud site: a check at
    /// Salesforce asks the site's `userinfo`. The verdict is the token's whatever the site, so
    /// the cache key stays the instance's and the token's.
    pub async fn validate_at(
        &self,
        instance: &InstanceUrl,
        site: Option<&SiteUrl>,
        token: &SecretString,
    ) -> Result<Arc<Confirmed>, AuthError> {
        let counters = counters();
        let prefix = RawPrefix::of(token);
        // A classic token names its org; one that names a refused org is refused without a call.
        if let Some(org) = prefix.refused_org(&self.allowed_orgs) {
            counters.org_refused.increment(1);
            return Err(AuthError::OrgNotAllowed(org));
        }
        let key = cache_key(instance, token);
        // Logged out here (JWTs, and tokens a logout asked to remember: Salesforce may not have
        // confirmed their revocation) or on any replica ([store], an in-memory check, no Redis
        // round trip).
        if self.is_logged_out(&key) {
            return Err(self.refuse_logged_out(&key).await);
        }
        let verdict = match &self.cache {
            None => {
                // No cache, no misses: the operator chose a call per request, so no budget.
                counters.cache_disabled.increment(1);
                let jwt = self.local_jwt(token);
                Box::pin(self.fetch(instance, site, token, jwt))
                    .await
                    .map_err(AuthError::from)
            }
            // A hit first, without building the miss path's future.
            Some(verdicts) => match verdicts.admitted.get(&key).await {
                Some(hit) if self.ttls.outage.serves(&hit) => {
                    counters.cache_hit.increment(1);
                    Ok(hit)
                }
                stale => match verdicts.refused.get(&key).await {
                    Some(refusal) => {
                        counters.cache_hit.increment(1);
                        Ok(refusal)
                    }
                    // Boxed: the miss path (Salesforce, Redis, the budget) is most of this
                    // future's state, and a hit, which never enters it, would otherwise carry
                    // (and copy) it on every request.
                    None => {
                        let miss = self.check_and_cache(
                            verdicts,
                            key,
                            stale.is_some(),
                            instance,
                            site,
                            token,
                        );
                        Box::pin(miss).await
                    }
                },
            },
        };
        let identity = match verdict {
            Ok(TokenVerdict::Valid(identity, ..)) => identity,
            Ok(TokenVerdict::Invalid(reason)) => {
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
        if prefix.contradicts(&identity.organization_id) {
            counters.invalid.increment(1);
            return Err(AuthError::InvalidToken(
                "the token's org prefix does not match the organization Salesforce reports".into(),
            ));
        }
        if self.revoked_user_holds(&identity, token) {
            counters.invalid.increment(1);
            revoked_user_refusal("token");
            return Err(AuthError::UserRevoked);
        }
        counters.valid.increment(1);
        Ok(identity)
    }

    /// A token in neither cache: checked once for every request waiting on it (single-flight),
    /// its admission cached, its refusal cached apart ([`Verdicts`]). `stale`: an admission
    /// from before this replica last became deaf is cached, and is checked again.
    async fn check_and_cache(
        &self,
        verdicts: &Verdicts,
        key: Key,
        stale: bool,
        instance: &InstanceUrl,
        site: Option<&SiteUrl>,
        token: &SecretString,
    ) -> Result<TokenVerdict, AuthError> {
        let Verdicts { admitted, refused } = verdicts;
        let counters = counters();
        if stale {
            admitted.invalidate(&key).await;
        }
        let missed = AtomicBool::new(false);
        // Only an admission is cached here; a refusal goes to its own cache and comes back as
        // an error, so that every request waiting on this check gets it.
        let result = admitted
            .try_get_with(key, async {
                missed.store(true, Ordering::Relaxed);
                let generation = self.ttls.outage.generation();
                // A miss that may call Salesforce is charged to the client that caused it
                // unless it confirms a valid token. A JWT access token checked against a cached
                // key costs Salesforce nothing: it is not charged, and skips the shared level
                // (Redis) too, since checking it here is cheaper than a round trip there.
                let jwt = self.local_jwt(token);
                let local = self.costs_no_call(instance, jwt.as_ref());
                let reservation = if local {
                    None
                } else {
                    Some(self.miss_budget.reserve()?)
                };
                // Boxed so that a cache hit does not carry a request's worth of state.
                let fetched = if local {
                    Box::pin(self.fetch(instance, site, token, jwt)).await
                } else {
                    Box::pin(self.fetch_shared(&key, instance, site, token, jwt)).await
                };
                if let (Ok(TokenVerdict::Valid(..)), Some(reservation)) = (&fetched, reservation) {
                    reservation.give_back();
                }
                match fetched.map_err(AuthError::from) {
                    Ok(TokenVerdict::Invalid(reason)) => {
                        refused
                            .insert(key, TokenVerdict::Invalid(reason.clone()))
                            .await;
                        Err(Unadmitted::Refused(reason))
                    }
                    Ok(valid) => Ok(valid.in_generation(generation)),
                    Err(e) => Err(e.into()),
                }
            })
            .await;
        if missed.load(Ordering::Relaxed) {
            counters.cache_miss.increment(1);
        } else {
            counters.cache_hit.increment(1);
        }
        // Revoked while it was being checked: the revocation's eviction ran before this verdict
        // was cached, so it is dropped here.
        if matches!(result, Ok(TokenVerdict::Valid(..))) && self.is_logged_out(&key) {
            return Err(self.refuse_logged_out(&key).await);
        }
        // `sfgate_identity_cache_entries` is set when /metrics is read, not here.
        match result.map_err(Arc::unwrap_or_clone) {
            Ok(verdict) => Ok(verdict),
            Err(Unadmitted::Refused(reason)) => Ok(TokenVerdict::Invalid(reason)),
            Err(Unadmitted::Failed(e)) => Err(e),
        }
    }

    /// Whether the token was logged out here (JWTs, and tokens a logout asked to remember:
    /// Salesforce may not have confirmed their revocation) or revoked on any replica (the
    /// store's set, an in-memory check, no Redis round trip).
    fn is_logged_out(&self, key: &Key) -> bool {
        self.logged_out.contains(key) || self.store.is_revoked(key)
    }

    /// Forgets the logged-out token's cached verdict, and says why it is refused.
    async fn refuse_logged_out(&self, key: &Key) -> AuthError {
        if let Some(cache) = &self.cache {
            cache.admitted.invalidate(key).await;
        }
        counters().invalid.increment(1);
        AuthError::InvalidToken("the token was logged out".into())
    }

    /// When `user` was revoked (`sfgate revoke-user`, on any replica), if it was. In memory.
    pub fn user_revoked_at(&self, user: &SalesforceId) -> Option<u64> {
        self.store.user_revoked_at(user)
    }

    /// Whether the token was issued or first checked here before its user was revoked: the
    /// verdict's time (a cached verdict predates the revocation; a new check does not), or a
    /// JWT's `iat` (signed, and only ever used to refuse). An opaque token first checked after
    /// the revocation cannot be told from a new one: Salesforce must refuse it (freeze the
    /// user there).
    fn revoked_user_holds(&self, identity: &Confirmed, token: &SecretString) -> bool {
        let Some(at_ms) = self.user_revoked_at(&identity.user_id) else {
            return false;
        };
        let iat_ms = jwt::unverified_iat(token.expose_secret()).map(|s| s.saturating_mul(1000));
        let issued_ms = iat_ms.map_or(identity.checked_at_ms(), |iat| {
            iat.min(identity.checked_at_ms())
        });
        issued_ms < at_ms
    }

    /// Forgets a token's verdict, so a logged-out token stops working at once, here and (with
    /// `REDIS_URL`) on every replica; says what became of the latter.
    pub async fn evict(&self, instance: &InstanceUrl, token: &SecretString) -> Shared {
        self.evict_for(instance, token, Duration::ZERO).await
    }

    /// [`Self::evict`], and the token refused for at least `at_least` (at most
    /// [`MAX_LOGOUT_MEMORY`]) whatever its kind: a logout asks this for as long as the token
    /// could still be presented, since Salesforce may not confirm the revocation and would
    /// then still accept the token.
    pub async fn evict_for(
        &self,
        instance: &InstanceUrl,
        token: &SecretString,
        at_least: Duration,
    ) -> Shared {
        let key = cache_key(instance, token);
        let keep = logout_memory(token, at_least);
        // [store] Refused here from this line on, and (once `told` runs) on every replica, for
        // as long as a JWT would pass local validation. With Redis the store's set of
        // revocations remembers it; alone, our own.
        let told = self.store.revoke(&key, keep);
        if !self.store.is_shared() {
            self.logged_out.insert(key, keep);
        }
        self.ended.insert(key, ());
        if let Some(cache) = &self.cache {
            cache.admitted.invalidate(&key).await;
        }
        told.await
    }

    /// Whether the token was logged out or revoked, here (within the last minute) or on any
    /// replica. In memory only: open tunnels ask it several times a second.
    pub fn has_ended(&self, instance: &InstanceUrl, token: &SecretString) -> bool {
        let key = cache_key(instance, token);
        self.ended.contains_key(&key) || self.store.is_revoked(&key)
    }

    /// The tokens logged out here that are still remembered (for `/metrics`).
    pub fn logged_out_figures(&self) -> TombstoneFigures {
        self.logged_out.figures()
    }

    /// The revocations of every replica held here (for `/metrics`); `None` without Redis.
    pub fn revoked_figures(&self) -> Option<TombstoneFigures> {
        self.store.revoked_figures()
    }

    pub fn cached_entries(&self) -> u64 {
        self.cache
            .as_ref()
            .map(|c| c.admitted.entry_count())
            .unwrap_or(0)
    }

    /// The token as a JWT access token to check locally (`SF_TOKEN_VALIDATION=auto`), or
    /// `None` when it goes to Salesforce (an opaque token, or another mode).
    ///
    /// While this replica cannot hear revocations, `None`: a JWT logged out on another replica
    /// would pass a local check until its `exp`, so it is checked at Salesforce (which the
    /// logout revoked it at) like an opaque token. Likewise while it holds fewer revocations
    /// than were made: a set of logouts that filled up dropped its shortest memories, and a
    /// dropped JWT would pass again. Either way a revocation is lost here, and Salesforce
    /// still has it.
    fn local_jwt(&self, token: &SecretString) -> Option<LocalJwt> {
        let checks = self.checks.as_ref()?;
        if checks.mode != TokenValidation::Auto
            || self.ttls.outage.is_deaf()
            || self.logged_out.forgot_any()
            || self.store.forgot_revocations()
        {
            return None;
        }
        jwt::recognise(token.expose_secret())
    }

    /// Whether checking this miss cannot call Salesforce: a JWT refused before any key is
    /// needed, or one whose issuer's key is cached. A JWT whose key must be fetched may cause
    /// a call (discovery and key set of an issuer the caller chose), so it is charged.
    fn costs_no_call(&self, instance: &InstanceUrl, jwt: Option<&LocalJwt>) -> bool {
        let (Some(checks), Some(jwt)) = (&self.checks, jwt) else {
            return false;
        };
        let Ok(unverified) = jwt else {
            return true;
        };
        match checks.policy.check(&unverified.issuer) {
            Ok(issuer) => issuer != *instance || checks.keys.is_cached(&issuer, &unverified.kid),
            Err(_) => true,
        }
    }

    /// [store] The shared level between the local cache and Salesforce: a verdict another
    /// replica fetched is used for what is left of its TTL; a fetched one is shared.
    async fn fetch_shared(
        &self,
        key: &Key,
        instance: &InstanceUrl,
        site: Option<&SiteUrl>,
        token: &SecretString,
        jwt: Option<LocalJwt>,
    ) -> Result<TokenVerdict, SalesforceError> {
        if let Some((shared, remaining)) = self.store.shared_verdict(key).await {
            match shared.into_identity(instance) {
                Some(Ok(identity)) => {
                    return Ok(TokenVerdict::valid(
                        identity,
                        Some(Instant::now() + remaining),
                    ))
                }
                Some(Err(reason)) => return Ok(TokenVerdict::invalid(reason)),
                None => {}
            }
        }
        let verdict = self.fetch(instance, site, token, jwt).await?;
        let (shared, ttl) = match &verdict {
            TokenVerdict::Valid(identity, until, _) => (
                SharedVerdict::valid(identity),
                until.map_or(self.ttls.valid, |u| {
                    self.ttls
                        .valid
                        .min(u.saturating_duration_since(Instant::now()))
                }),
            ),
            TokenVerdict::Invalid(reason) => (
                SharedVerdict::Invalid {
                    reason: reason.to_string(),
                },
                self.ttls.invalid,
            ),
        };
        if !ttl.is_zero() {
            self.store.share_verdict(key, &shared, ttl).await;
        }
        Ok(verdict)
    }

    /// `jwt`: what [`Self::local_jwt`] found in the token (parsed once per miss).
    async fn fetch(
        &self,
        instance: &InstanceUrl,
        site: Option<&SiteUrl>,
        token: &SecretString,
        jwt: Option<LocalJwt>,
    ) -> Result<TokenVerdict, SalesforceError> {
        let (method, result) = match &self.checks {
            // The calls to Salesforce are boxed, so that a JWT checked here (no call, the
            // common miss) does not carry an HTTP request's state in its future.
            Some(checks) if checks.mode == TokenValidation::Introspect => (
                Method::Introspect,
                Box::pin(self.fetch_introspect(checks, instance, site, token)).await,
            ),
            Some(checks) if checks.mode == TokenValidation::Auto => match jwt {
                Some(unverified) => (
                    Method::JwtLocal,
                    self.fetch_jwt(checks, instance, token, unverified).await,
                ),
                None => (
                    Method::Userinfo,
                    Box::pin(self.fetch_userinfo(instance, site, token)).await,
                ),
            },
            _ => (
                Method::Userinfo,
                Box::pin(self.fetch_userinfo(instance, site, token)).await,
            ),
        };
        let outcome = match &result {
            Ok(TokenVerdict::Valid(..)) => Outcome::Valid,
            Ok(TokenVerdict::Invalid(_)) => Outcome::Invalid,
            Err(_) => Outcome::UpstreamError,
        };
        counters().validation(method, outcome).increment(1);
        result
    }
}

/// Counts a credential refused because its user was revoked (`credential`: session, token or
/// tunnel).
pub fn revoked_user_refusal(credential: &'static str) {
    metrics::counter!("sfgate_revoked_user_refusals_total", "credential" => credential)
        .increment(1);
}

#[cfg(test)]
mod tests;
