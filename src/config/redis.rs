//! The replicas' shared store (`REDIS_URL`).

use super::reader::Reader;
use secrecy::SecretString;
use std::time::Duration;

/// Where the replicas' shared store is and how long sfgate waits for it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The URL as the Redis client reads it; secret because it carries the password.
    pub url: SecretString,
    /// Each Redis call gives up after this long; the request then goes on with local state.
    pub timeout: Duration,
    /// `REDIS_OUTAGE_CACHE_TTL`: while this replica cannot hear revocations, verdicts are
    /// cached no longer than this, so a logout on another replica takes effect within it.
    pub outage_cache_ttl: Duration,
    /// `REDIS_REVOCATIONS_MAX`: how many revocations (of every replica) each replica holds in
    /// memory and the shared log keeps. Beyond it the ones nearest their end are dropped, and
    /// a replica that dropped one still in force checks JWTs at Salesforce until it would
    /// have ended.
    pub revocations_max: u64,
}

/// Default of `REDIS_OUTAGE_CACHE_TTL`, in seconds.
const OUTAGE_CACHE_TTL_SECS: u64 = 1;
/// Default of `REDIS_REVOCATIONS_MAX`: about 8 MiB held per replica when full.
const REVOCATIONS_MAX: u64 = 100_000;
/// Bounds of `REDIS_REVOCATIONS_MAX`: one per shard of the set at least; the log is read back
/// whole on every catch-up, so not without end either.
const REVOCATIONS_MAX_RANGE: std::ops::RangeInclusive<u64> = 8..=10_000_000;

/// `REDIS_URL` (`redis://` or `rediss://`, as Heroku sets it), `REDIS_TLS_VERIFY` and
/// `REDIS_TIMEOUT_MS`. Heroku Key-Value Store presents a self-signed certificate, so its users
/// set `REDIS_TLS_VERIFY=false` (the client's `#insecure` URL fragment, added here) rather
/// than editing a URL Heroku rotates. The URL is never echoed: it holds the password.
pub(super) fn parse(r: &mut Reader<'_>) -> Option<RedisConfig> {
    // Verified unless explicitly turned off.
    let verify = r.flag_or("REDIS_TLS_VERIFY", true);
    let timeout_ms = r.parse_or("REDIS_TIMEOUT_MS", 500u64, "a whole number of milliseconds");
    if !(10..=10_000).contains(&timeout_ms) {
        r.problem("REDIS_TIMEOUT_MS", "must be between 10 and 10000");
    }
    let outage_cache_ttl = r.seconds("REDIS_OUTAGE_CACHE_TTL", OUTAGE_CACHE_TTL_SECS);
    if outage_cache_ttl > Duration::from_secs(60) {
        r.problem("REDIS_OUTAGE_CACHE_TTL", "must be 0 to 60 seconds");
    }
    let revocations_max = r.parse_or("REDIS_REVOCATIONS_MAX", REVOCATIONS_MAX, "a whole number");
    if !REVOCATIONS_MAX_RANGE.contains(&revocations_max) {
        r.problem("REDIS_REVOCATIONS_MAX", "must be between 8 and 10000000");
    }
    let raw = r.get("REDIS_URL")?;
    let raw = raw.trim();
    let scheme_ok = raw.starts_with("redis://") || raw.starts_with("rediss://");
    let mut url = raw.to_string();
    if !verify && raw.starts_with("rediss://") && !raw.contains('#') {
        url.push_str("#insecure");
    }
    if !scheme_ok || redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
        r.problem(
            "REDIS_URL",
            "must be a redis:// or rediss:// URL such as redis://:password@host:6379 \
             (the value is not shown: it holds a password)",
        );
        return None;
    }
    Some(RedisConfig {
        url: SecretString::from(url),
        timeout: Duration::from_millis(timeout_ms),
        outage_cache_ttl,
        revocations_max,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::base;
    use super::super::Config;
    use secrecy::ExposeSecret;
    use std::time::Duration;

    // [redis] REDIS_URL and its companions.
    #[test]
    fn redis_settings_are_optional_checked_and_never_echoed() {
        let c = Config::from_map(&base()).expect("valid");
        assert!(
            c.redis.is_none(),
            "without REDIS_URL everything stays in-process"
        );

        let mut env = base();
        env.insert(
            "REDIS_URL".into(),
            "rediss://:p4ss@ec2-1-2-3-4.compute-1.amazonaws.com:6380".into(),
        );
        let c = Config::from_map(&env).expect("valid");
        let redis = c.redis.expect("redis");
        assert_eq!(redis.timeout, Duration::from_millis(500));
        assert_eq!(redis.outage_cache_ttl, Duration::from_secs(1));
        assert_eq!(redis.revocations_max, 100_000);
        assert!(!redis.url.expose_secret().ends_with("#insecure"));

        // Heroku's self-signed certificate: verification off through a variable.
        env.insert("REDIS_TLS_VERIFY".into(), "false".into());
        env.insert("REDIS_TIMEOUT_MS".into(), "250".into());
        let redis = Config::from_map(&env).expect("valid").redis.expect("redis");
        assert!(redis.url.expose_secret().ends_with("#insecure"));
        assert_eq!(redis.timeout, Duration::from_millis(250));
        assert!(!format!("{redis:?}").contains("p4ss"));

        let mut env = base();
        env.insert(
            "REDIS_URL".into(),
            "http://:s3cret@redis.example.com:6379".into(),
        );
        env.insert("REDIS_TLS_VERIFY".into(), "maybe".into());
        env.insert("REDIS_TIMEOUT_MS".into(), "0".into());
        env.insert("REDIS_OUTAGE_CACHE_TTL".into(), "61".into());
        env.insert("REDIS_REVOCATIONS_MAX".into(), "7".into());
        let err = Config::from_map(&env).expect_err("invalid").to_string();
        assert!(err.contains("REDIS_URL"), "{err}");
        assert!(err.contains("REDIS_TLS_VERIFY"), "{err}");
        assert!(err.contains("REDIS_TIMEOUT_MS"), "{err}");
        assert!(err.contains("REDIS_OUTAGE_CACHE_TTL"), "{err}");
        assert!(err.contains("REDIS_REVOCATIONS_MAX"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
