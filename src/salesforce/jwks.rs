//! The signing keys of each issuer of JWT access tokens, fetched and cached.
//!
//! Rules, because an attacker chooses the token's `iss` and `kid`:
//! - keys are fetched only from an issuer that passed the instance policy ([`InstanceUrl`]
//!   cannot be made otherwise), and the `jwks_uri` a discovery document names must itself be
//!   an allowed origin; redirects are never followed (the Salesforce HTTP client), answers are
//!   size- and time-bounded;
//! - discovery is `{iss}/.well-known/openid-configuration` → `jwks_uri`; when that fails,
//!   `{iss}/id/keys` (where Salesforce's login hosts and My Domains publish them);
//! - an unknown `kid` triggers one refetch (keys rotate at least each release, "any time");
//!   further refetches for unknown kids happen at most once per [`UNKNOWN_KID_INTERVAL`] per
//!   issuer, so a flood of made-up kids costs Salesforce one request a minute;
//! - keys are refreshed in the background after [`MAX_AGE`] (so a withdrawn key stops being
//!   trusted), and a failed refresh keeps the keys already known: a JWKS outage does not
//!   refuse tokens signed with a cached key.

use super::rs256::Rs256Key;
use super::userinfo::read_at_most;
use super::SalesforceError;
use crate::domain::{InstancePolicy, InstanceUrl};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use url::Url;

/// At most one refetch for unknown kids per issuer in this interval.
pub const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(60);
/// Known keys are refreshed in the background after this long.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// After a failed fetch, callers get the failure without a new attempt for this long.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// Discovery documents and key sets are a few kilobytes.
const MAX_DOCUMENT: usize = 64 * 1024;
/// More keys than this in one set is not Salesforce.
const MAX_KEYS: usize = 50;
/// Issuers remembered at once.
const MAX_ISSUERS: u64 = 10_000;

/// Why no key could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// The issuer publishes no key with this id (after the allowed refetch).
    #[error("the issuer publishes no key with this id")]
    UnknownKid,
    /// The keys could not be fetched: Salesforce's problem, not the token's.
    #[error("the issuer's signing keys could not be fetched: {0}")]
    Unavailable(SalesforceError),
}

#[derive(Clone)]
pub struct KeySets {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    policy: InstancePolicy,
    issuers: moka::sync::Cache<InstanceUrl, Arc<IssuerKeys>>,
}

#[derive(Default)]
struct IssuerKeys {
    /// Read on every validation; written only by a fetch. Each key is prepared for
    /// verification once, when its set is fetched (see [`super::rs256`]).
    keys: RwLock<Arc<HashMap<String, Arc<Rs256Key>>>>,
    /// Serialises fetches for one issuer (single-flight) and holds their bookkeeping.
    fetch: tokio::sync::Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    jwks_uri: Option<Url>,
    fetched_at: Option<Instant>,
    unknown_kid_refetch_at: Option<Instant>,
    failed_at: Option<(Instant, SalesforceError)>,
}

impl KeySets {
    pub fn new(http: reqwest::Client, policy: InstancePolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                policy,
                issuers: moka::sync::Cache::builder()
                    .max_capacity(MAX_ISSUERS)
                    .build(),
            }),
        }
    }

    /// The issuer's key with this id: from the cache, or after at most one fetch.
    pub async fn key(&self, issuer: &InstanceUrl, kid: &str) -> Result<Arc<Rs256Key>, KeyError> {
        let keys = self
            .inner
            .issuers
            .get_with_by_ref(issuer, || Arc::new(IssuerKeys::default()));
        if let Some(key) = keys.lookup(kid) {
            self.refresh_if_stale(issuer, &keys);
            return Ok(key);
        }
        // Boxed: the fetch (a lock, discovery and the key set over HTTP) is rare, and every
        // first request with a new token awaits this function.
        Box::pin(self.fetch_missing(issuer, keys, kid)).await
    }

    /// [`Self::key`] when the set held here does not have `kid`: fetched once (the first time,
    /// or again for an unknown key id at most every `UNKNOWN_KID_INTERVAL`).
    async fn fetch_missing(
        &self,
        issuer: &InstanceUrl,
        keys: Arc<IssuerKeys>,
        kid: &str,
    ) -> Result<Arc<Rs256Key>, KeyError> {
        let mut state = keys.fetch.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = keys.lookup(kid) {
            return Ok(key);
        }
        let now = Instant::now();
        if state.fetched_at.is_some() {
            let recent = state
                .unknown_kid_refetch_at
                .is_some_and(|at| now.duration_since(at) < UNKNOWN_KID_INTERVAL);
            if recent {
                counter("unknown_kid_limited");
                return Err(KeyError::UnknownKid);
            }
            state.unknown_kid_refetch_at = Some(now);
        } else if let Some((at, error)) = &state.failed_at {
            if now.duration_since(*at) < FAILURE_BACKOFF {
                return Err(KeyError::Unavailable(error.clone()));
            }
        }
        match self.fetch(issuer, &keys, &mut state).await {
            Ok(()) => keys.lookup(kid).ok_or(KeyError::UnknownKid),
            Err(e) => Err(KeyError::Unavailable(e)),
        }
    }

    /// Whether the issuer's key with this id is known: then [`KeySets::key`] answers without
    /// a call at Salesforce (at most it starts a background refresh of an old set).
    pub fn is_cached(&self, issuer: &InstanceUrl, kid: &str) -> bool {
        self.inner
            .issuers
            .get(issuer)
            .is_some_and(|keys| keys.lookup(kid).is_some())
    }

    fn refresh_if_stale(&self, issuer: &InstanceUrl, keys: &Arc<IssuerKeys>) {
        let Ok(mut state) = keys.fetch.try_lock() else {
            return;
        };
        let stale = state.fetched_at.is_some_and(|at| at.elapsed() >= MAX_AGE);
        let backing_off = state
            .failed_at
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < FAILURE_BACKOFF);
        if !stale || backing_off {
            return;
        }
        // Marked now so that concurrent requests do not each start a refresh.
        state.fetched_at = Some(Instant::now());
        drop(state);
        let this = self.clone();
        let issuer = issuer.clone();
        let keys = keys.clone();
        tokio::spawn(async move {
            let mut state = keys.fetch.lock().await;
            if let Err(e) = this.fetch(&issuer, &keys, &mut state).await {
                tracing::warn!(issuer = %issuer, error = %e, "refreshing the issuer's signing keys failed; keeping the known keys");
            }
        });
    }

    /// Fetches the key set (via discovery, else `{iss}/id/keys`) and replaces the known keys.
    async fn fetch(
        &self,
        issuer: &InstanceUrl,
        keys: &IssuerKeys,
        state: &mut FetchState,
    ) -> Result<(), SalesforceError> {
        let started = Instant::now();
        let result = self.fetch_keys(issuer, state).await;
        metrics::histogram!("sfgate_salesforce_call_seconds", "endpoint" => "jwks")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(set) => {
                counter("ok");
                state.fetched_at = Some(Instant::now());
                state.failed_at = None;
                if let Ok(mut slot) = keys.keys.write() {
                    *slot = Arc::new(set);
                }
                Ok(())
            }
            Err(e) => {
                counter("error");
                tracing::warn!(issuer = %issuer, error = %e, "fetching the issuer's signing keys failed");
                state.failed_at = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    async fn fetch_keys(
        &self,
        issuer: &InstanceUrl,
        state: &mut FetchState,
    ) -> Result<HashMap<String, Arc<Rs256Key>>, SalesforceError> {
        let fallback = Url::parse(&format!("{}/id/keys", issuer.as_str()))
            .map_err(|_| SalesforceError::InstanceRefused(issuer.to_string()))?;
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover(issuer).await.unwrap_or(fallback.clone());
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        match self.get_json(&jwks_uri).await {
            Ok(doc) => parse_key_set(&doc),
            // A discovered location that stopped working: try the documented one once.
            Err(_) if jwks_uri != fallback => {
                let doc = self.get_json(&fallback).await?;
                state.jwks_uri = Some(fallback);
                parse_key_set(&doc)
            }
            Err(e) => Err(e),
        }
    }

    /// The `jwks_uri` of the issuer's discovery document, if it names an allowed origin.
    async fn discover(&self, issuer: &InstanceUrl) -> Option<Url> {
        let url = Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            issuer.as_str()
        ))
        .ok()?;
        let doc = self.get_json(&url).await.ok()?;
        let uri = Url::parse(doc.get("jwks_uri")?.as_str()?).ok()?;
        let origin = uri.origin().ascii_serialization();
        if self.inner.policy.check(&origin).is_err() {
            tracing::warn!(issuer = %issuer, "the discovery document names a jwks_uri outside the instance policy; ignored");
            return None;
        }
        Some(uri)
    }

    async fn get_json(&self, url: &Url) -> Result<serde_json::Value, SalesforceError> {
        let span = crate::telemetry::spans::salesforce("jwks");
        crate::telemetry::spans::in_call_span(span, self.get_json_untraced(url), Result::is_err)
            .await
    }

    async fn get_json_untraced(&self, url: &Url) -> Result<serde_json::Value, SalesforceError> {
        let response = self
            .inner
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SalesforceError::from_reqwest(&e))?;
        if !response.status().is_success() {
            return Err(SalesforceError::Status(response.status().as_u16()));
        }
        let body = read_at_most(response, MAX_DOCUMENT).await?;
        serde_json::from_slice(&body).map_err(|_| SalesforceError::Unparsable)
    }
}

impl IssuerKeys {
    fn lookup(&self, kid: &str) -> Option<Arc<Rs256Key>> {
        self.keys.read().ok()?.get(kid).cloned()
    }
}

/// The RSA signing keys of a JWK set, by key id, prepared for verification. Other key types
/// are skipped (only RS256 tokens are accepted), and so are RSA keys sfgate refuses to trust
/// (shorter than 2048 bits), with a warning: their tokens are refused as signed by an unknown
/// key.
fn parse_key_set(
    doc: &serde_json::Value,
) -> Result<HashMap<String, Arc<Rs256Key>>, SalesforceError> {
    let keys = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or(SalesforceError::Unparsable)?;
    let mut set = HashMap::new();
    for key in keys.iter().take(MAX_KEYS) {
        let field = |name: &str| key.get(name).and_then(|v| v.as_str());
        let usable = field("kty") == Some("RSA")
            && field("use").is_none_or(|u| u == "sig")
            && field("alg").is_none_or(|a| a == "RS256");
        let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else {
            continue;
        };
        if !usable {
            continue;
        }
        match Rs256Key::from_jwk(n, e) {
            Ok(prepared) => {
                set.insert(kid.to_string(), Arc::new(prepared));
            }
            Err(e) => {
                tracing::warn!(kid = %kid, error = %e, "a published signing key is not usable; ignored")
            }
        }
    }
    Ok(set)
}

fn counter(outcome: &'static str) {
    metrics::counter!("sfgate_jwks_fetches_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rsa_signing_keys_of_at_least_2048_bits_are_kept() {
        let pem = sfgate_emulator::FOREIGN_KEY;
        let (n, e, _) = crate::salesforce::rs256::tests::jwk_and_signature(pem, b"");
        let doc = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "use": "sig", "alg": "RS256", "n": n, "e": e},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": e},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": n, "e": e},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": n, "e": e},
            {"kty": "RSA", "kid": "short", "use": "sig", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "garbage", "use": "sig", "n": "!!", "e": "AQAB"}
        ]});
        let set = parse_key_set(&doc).expect("set");
        assert_eq!(set.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(set["a"].bits(), 2048);
        assert!(parse_key_set(&serde_json::json!({"nope": []})).is_err());
    }
}
