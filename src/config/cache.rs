//! The identity cache and the Salesforce calls its misses may cause.

use super::reader::Reader;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// `IDENTITY_CACHE_TTL`: how long a confirmed identity is reused; zero disables the cache.
    pub ttl: Duration,
    /// `IDENTITY_CACHE_MAX`: entries at most.
    pub max: u64,
    /// `IDENTITY_NEGATIVE_TTL`: how long Salesforce's "no" is remembered.
    pub negative_ttl: Duration,
    /// `VALIDATION_MISSES_PER_MINUTE`: Salesforce token validations one client may cause.
    pub misses_per_minute: u32,
}

pub(super) fn parse(r: &mut Reader<'_>) -> CacheConfig {
    let ttl = r.seconds("IDENTITY_CACHE_TTL", 60);
    let max = r.parse_or("IDENTITY_CACHE_MAX", 100_000u64, "a whole number");
    let negative_ttl = r.seconds("IDENTITY_NEGATIVE_TTL", 10);
    let misses_per_minute = r.parse_or("VALIDATION_MISSES_PER_MINUTE", 60u32, "a whole number");
    if misses_per_minute == 0 {
        r.problem("VALIDATION_MISSES_PER_MINUTE", "must be at least 1");
    }
    CacheConfig {
        ttl,
        max,
        negative_ttl,
        misses_per_minute,
    }
}
