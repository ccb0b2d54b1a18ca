//! What the validator caches: verdicts and their lifetimes, keys, and the counters every
//! validation touches.

use super::super::Confirmed;
use crate::domain::Identity;
use crate::domain::{AllowedOrgs, InstanceUrl, OrgId};
use metrics::Counter;
use moka::Expiry;
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub(super) type Key = [u8; 32];

#[derive(Clone)]
pub(super) enum TokenVerdict {
    /// `until`: the verdict must not be cached past this (the token's `exp`, or a short time
    /// for an identity still missing its profile). The `u64` is the [`Outage`] generation the
    /// check started in: a verdict from before the replica last became deaf is not served.
    Valid(Arc<Confirmed>, Option<Instant>, u64),
    Invalid(Arc<str>),
}

impl TokenVerdict {
    pub(super) fn valid(identity: Identity, until: Option<Instant>) -> Self {
        Self::Valid(Arc::new(Confirmed::new(identity)), until, 0)
    }

    /// The verdict as checked in `generation` (see [`Outage::generation`]).
    pub(super) fn in_generation(self, generation: u64) -> Self {
        match self {
            Self::Valid(confirmed, until, _) => Self::Valid(confirmed, until, generation),
            invalid => invalid,
        }
    }

    pub(super) fn invalid(reason: impl Into<Arc<str>>) -> Self {
        Self::Invalid(reason.into())
    }
}

#[derive(Clone)]
pub(super) struct TokenVerdictExpiry {
    pub(super) valid: Duration,
    pub(super) invalid: Duration,
    /// Whether this replica hears revocations; while it does not, verdicts are cached only
    /// for `REDIS_OUTAGE_CACHE_TTL`.
    pub(super) outage: Arc<Outage>,
}

/// While a replica cannot hear revocations (Redis unreachable or its subscription lost),
/// what it caches must not outlive a logout made elsewhere by more than a short bound.
#[derive(Default)]
pub(super) struct Outage {
    deaf: AtomicBool,
    /// How many times this replica became deaf: a cached admission checked in an earlier
    /// generation was made before the current outage began, and is not served.
    generation: AtomicU64,
    /// `REDIS_OUTAGE_CACHE_TTL`, in milliseconds.
    cache_ttl_ms: AtomicU64,
}

impl Outage {
    pub(super) fn is_deaf(&self) -> bool {
        self.deaf.load(Ordering::Relaxed)
    }

    /// Becoming deaf starts a new generation (before the flag is set, so a check that sees
    /// the flag also sees the generation).
    pub(super) fn set_deaf(&self, deaf: bool) {
        if deaf && !self.deaf.load(Ordering::Acquire) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.deaf.store(deaf, Ordering::Release);
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a cached verdict may be served: refusals always, admissions only from the
    /// present generation. One atomic load: this runs on every cache hit.
    pub(super) fn serves(&self, verdict: &TokenVerdict) -> bool {
        match verdict {
            TokenVerdict::Valid(_, _, generation) => *generation == self.generation(),
            TokenVerdict::Invalid(_) => true,
        }
    }

    pub(super) fn set_cache_ttl(&self, ttl: Duration) {
        self.cache_ttl_ms
            .store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    /// `ttl`, or the outage bound if shorter while deaf.
    fn cap(&self, ttl: Duration) -> Duration {
        if self.is_deaf() {
            ttl.min(Duration::from_millis(
                self.cache_ttl_ms.load(Ordering::Relaxed),
            ))
        } else {
            ttl
        }
    }
}

impl Expiry<Key, TokenVerdict> for TokenVerdictExpiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &TokenVerdict,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(self.outage.cap(match value {
            TokenVerdict::Valid(_, None, _) => self.valid,
            TokenVerdict::Valid(_, Some(until), _) => {
                self.valid.min(until.saturating_duration_since(created_at))
            }
            TokenVerdict::Invalid(_) => self.invalid,
        }))
    }
}

/// Handles to the counters every validation touches, registered once: looking a counter up by
/// name and labels on each request costs more than the rest of a cache hit.
pub(super) struct Counters {
    pub(super) valid: Counter,
    pub(super) invalid: Counter,
    pub(super) org_refused: Counter,
    pub(super) upstream_error: Counter,
    pub(super) cache_hit: Counter,
    pub(super) cache_miss: Counter,
    pub(super) cache_disabled: Counter,
    /// `sfgate_token_validations_total`, indexed by [`Method`] then [`Outcome`]: counted on
    /// every miss, where a lookup by name would cost as much as the rest of the bookkeeping.
    validations: [[Counter; 3]; 3],
}

/// How a token was validated (the `method` label of `sfgate_token_validations_total`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Method {
    JwtLocal = 0,
    Userinfo = 1,
    Introspect = 2,
}

/// What the validation concluded (the `outcome` label).
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    Valid = 0,
    Invalid = 1,
    UpstreamError = 2,
}

impl Counters {
    pub(super) fn validation(&self, method: Method, outcome: Outcome) -> &Counter {
        &self.validations[method as usize][outcome as usize]
    }
}

pub(super) fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| {
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
            validations: ["jwt_local", "userinfo", "introspect"].map(|method| {
                ["valid", "invalid", "upstream_error"].map(|outcome| {
                    metrics::counter!(
                        "sfgate_token_validations_total",
                        "method" => method,
                        "outcome" => outcome
                    )
                })
            }),
        }
    })
}

pub(super) fn cache_key(instance: &InstanceUrl, token: &SecretString) -> Key {
    crate::crypto::sha256(&[
        instance.as_str().as_bytes(),
        &[0u8],
        token.expose_secret().as_bytes(),
    ])
}

/// What a token says about its org before its `!`.
#[derive(Debug, PartialEq)]
pub(super) enum TokenPrefix {
    /// JWT-style tokens have no `!` and no prefix.
    Absent,
    /// A classic token names its org.
    Org(OrgId),
    /// A `!` prefix that is not an org id cannot come from Salesforce.
    Malformed,
}

/// A token's `!` prefix, as its bytes: read into a [`TokenPrefix`] (an org id parsed, its
/// checksum computed) only when a check cannot be settled by comparing bytes. Every request
/// with a classic token asks both checks below, a cached one included; the prefix Salesforce
/// writes is the org's 15-character form, so comparing it with the org's own 15-character
/// form settles both almost always, at the cost of a 15-byte comparison. The answers are
/// exactly the parsed reading's: an org id's 18-character form is always its 15-character
/// form with that form's checksum appended (`OrgId::parse`), so a prefix equal to an org's
/// 15-character form parses to that org.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawPrefix<'t>(Option<&'t str>);

impl<'t> RawPrefix<'t> {
    pub(super) fn of(token: &'t SecretString) -> Self {
        Self(
            token
                .expose_secret()
                .split_once('!')
                .map(|(prefix, _)| prefix),
        )
    }

    /// The full reading.
    pub(super) fn read(self) -> TokenPrefix {
        match self.0 {
            None => TokenPrefix::Absent,
            Some(prefix) => OrgId::parse(prefix).map_or(TokenPrefix::Malformed, TokenPrefix::Org),
        }
    }

    /// The org the prefix names when `allowed` does not allow it (refused without a call).
    pub(super) fn refused_org(self, allowed: &AllowedOrgs) -> Option<OrgId> {
        let prefix = self.0?;
        match allowed {
            AllowedOrgs::Any => None,
            AllowedOrgs::Only(orgs) if orgs.iter().any(|org| org.has_short_form(prefix)) => None,
            AllowedOrgs::Only(_) => match self.read() {
                TokenPrefix::Org(org) if !allowed.allows(&org) => Some(org),
                _ => None,
            },
        }
    }

    /// Whether the prefix contradicts the org Salesforce reports for the token: it names
    /// another org, or it is not an org id at all.
    pub(super) fn contradicts(self, org: &OrgId) -> bool {
        match self.0 {
            None => false,
            Some(prefix) if org.has_short_form(prefix) => false,
            Some(_) => match self.read() {
                TokenPrefix::Absent => false,
                TokenPrefix::Org(named) => named != *org,
                TokenPrefix::Malformed => true,
            },
        }
    }
}
