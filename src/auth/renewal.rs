//! Renewing a session's tokens with its refresh token: once per session, however many requests
//! notice the expiry at the same moment.
//!
//! A page that loads its assets through the gateway sends many requests with the same cookie.
//! When its access token has expired, each of them would spend the refresh token; with
//! Salesforce's refresh-token rotation on, the first use spends it and every other request
//! loses the session. So renewals go through [`Renewals::renew`]:
//!
//! - **single-flight**: concurrent calls with the same refresh token share one call to
//!   Salesforce's token endpoint;
//! - **recent results**: a successful renewal is kept for `SESSION_RENEWAL_GRACE` (30 s by
//!   default), so a request that arrives a moment later with the *old* cookie gets the *new*
//!   tokens instead of spending a refresh token that rotation has already retired.
//!
//! Both are one moka cache (`try_get_with`: concurrent initialisations of a key are coalesced,
//! a successful value is kept until its time-to-live, a failure is handed to every waiter and
//! not kept). Keys are SHA-256 digests of the refresh token, never the token; the cache is
//! bounded ([`MAX_RENEWALS`]).
//!
//! **Where a shared store plugs in.** With several replicas, the same burst may reach different
//! processes. A cross-replica layer belongs inside [`Renewals::renew`]'s initialisation future
//! (`renew_once`): take a short lock in the shared store keyed by the same digest, look for an
//! encrypted result stored there by another replica, and only call Salesforce when there is
//! none, storing the (encrypted) result before releasing the lock. Callers keep using `renew`.
//!
//! **A logged-out session never comes back.** A logout marks the refresh tokens it covers
//! ([`Renewals::log_out`]) here and, with `REDIS_URL`, on every replica, before Salesforce is
//! asked to revoke them; a renewal with a marked refresh token is refused without calling
//! Salesforce. Salesforce may have timed out or failed the revocation and still accept the
//! token, so its answer is never what keeps an old cookie from being renewed.

use crate::domain::{InstancePolicy, InstanceUrl, SiteUrl};
use crate::salesforce::{SalesforceError, SalesforceOAuth, TokenSet};
use crate::store::{RenewalRun, Shared, SharedStore, TombstoneFigures, Tombstones};
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// At most this many recent renewals are remembered (least recently used go first).
pub const MAX_RENEWALS: u64 = 100_000;

/// The digest a renewal is keyed by: SHA-256 of the refresh token.
pub type RenewalKey = [u8; 32];

/// The outcome of one renewal, shared by every request that carried the same refresh token.
#[derive(Clone)]
pub struct RenewedTokens {
    pub access_token: SecretString,
    /// The refresh token to keep from now on: a new one when Salesforce rotated it, otherwise
    /// the one that was used.
    pub refresh_token: SecretString,
    /// Whether Salesforce answered with a new refresh token.
    pub rotated: bool,
    pub instance_url: InstanceUrl,
    /// The Experience Cloud site the tokens were issued through, if any.
    pub site: Option<SiteUrl>,
}

impl fmt::Debug for RenewedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenewedTokens")
            .field("instance_url", &self.instance_url)
            .field("rotated", &self.rotated)
            .finish_non_exhaustive()
    }
}

impl RenewedTokens {
    fn from_token_set(tokens: TokenSet, used: &SecretString) -> Self {
        let rotated = tokens
            .refresh_token
            .as_ref()
            .is_some_and(|t| t.expose_secret() != used.expose_secret());
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.unwrap_or_else(|| used.clone()),
            rotated,
            instance_url: tokens.instance_url,
            site: tokens.site,
        }
    }
}

/// Why a renewal gave no tokens.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenewalError {
    /// Salesforce said no to this refresh token (`invalid_grant`: revoked, expired, or spent
    /// by rotation): the session is over.
    #[error("Salesforce refused the refresh token ({error}): {description}")]
    Refused { error: String, description: String },
    /// Salesforce could not be asked, or its answer could not be used: the session may still
    /// be renewed later, so it is kept.
    #[error("{0}")]
    Unavailable(Arc<SalesforceError>),
}

impl RenewalError {
    /// Only Salesforce's "no" about the token the request holds ends a session.
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }
}

/// Whether [`Renewals::renew`] called Salesforce or reused a renewal already made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalSource {
    /// This call asked Salesforce.
    Salesforce,
    /// Another request's renewal (in flight or recent) answered.
    Shared,
}

/// Session renewals of this process: single-flight and recent results, keyed by digest.
pub struct Renewals {
    oauth: SalesforceOAuth,
    recent: Cache<RenewalKey, RenewedTokens>,
    /// [store] Replicas' shared state (`REDIS_URL`): one renewal across replicas.
    store: SharedStore,
    /// Re-checks the instance URL of a renewal another replica made.
    instance_policy: InstancePolicy,
    /// Refresh tokens logged out here, each until the session it belonged to would have ended
    /// (replicas sharing `store` learn them from it). Bounded like [`Self::recent`].
    logged_out: Tombstones,
}

/// [store] A renewal as replicas hand it to each other through the store, where it is sealed
/// with the session key and kept for seconds (`crate::store::renewal_lock`).
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedRenewal {
    #[serde(with = "super::secret_serde")]
    access_token: SecretString,
    #[serde(with = "super::secret_serde")]
    refresh_token: SecretString,
    rotated: bool,
    instance_url: String,
    /// Checked again through the instance policy when read back; absent from results shared
    /// by replicas that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    site_url: Option<String>,
}

impl Renewals {
    /// `grace`: how long a renewal's result answers requests that carry the old refresh token.
    pub fn new(oauth: SalesforceOAuth, grace: Duration) -> Self {
        Self {
            oauth,
            recent: Cache::builder()
                .max_capacity(MAX_RENEWALS)
                .time_to_live(grace)
                .build(),
            store: SharedStore::Local,
            instance_policy: InstancePolicy::default(),
            logged_out: Tombstones::new(MAX_RENEWALS, "refresh_tokens"),
        }
    }

    /// [store] Makes renewals single-flight across replicas sharing `store` (with
    /// `REDIS_URL`): one replica asks Salesforce, the others take its sealed result.
    pub fn with_store(mut self, store: SharedStore, instance_policy: InstancePolicy) -> Self {
        self.store = store;
        self.instance_policy = instance_policy;
        self
    }

    /// New tokens for `refresh_token`: from a renewal in flight or made in the last
    /// `SESSION_RENEWAL_GRACE` with the same refresh token, or else from one call to
    /// Salesforce shared by everyone who asks meanwhile.
    pub async fn renew(&self, refresh_token: &SecretString) -> Result<RenewedTokens, RenewalError> {
        self.renew_with_source(refresh_token)
            .await
            .map(|(tokens, _)| tokens)
    }

    /// [`Self::renew`], also saying whether this call asked Salesforce.
    pub async fn renew_with_source(
        &self,
        refresh_token: &SecretString,
    ) -> Result<(RenewedTokens, RenewalSource), RenewalError> {
        if self.is_logged_out(refresh_token) {
            metrics::counter!("sfgate_session_renewals_total", "outcome" => "logged_out")
                .increment(1);
            return Err(RenewalError::Refused {
                error: "invalid_grant".into(),
                description: "this session was logged out".into(),
            });
        }
        let asked = AtomicBool::new(false);
        let result = self
            .recent
            .try_get_with(renewal_key(refresh_token), async {
                asked.store(true, Ordering::Relaxed);
                // Boxed: the token call's future is large, and most requests never renew.
                Box::pin(self.renew_once(refresh_token)).await
            })
            .await
            .map_err(Arc::unwrap_or_clone);
        let source = if asked.load(Ordering::Relaxed) {
            RenewalSource::Salesforce
        } else {
            RenewalSource::Shared
        };
        let outcome = match (&result, source) {
            (Ok(_), RenewalSource::Salesforce) => "renewed",
            (Ok(_), RenewalSource::Shared) => "shared",
            (Err(RenewalError::Refused { .. }), _) => "refused",
            (Err(RenewalError::Unavailable(_)), _) => "unavailable",
        };
        metrics::counter!("sfgate_session_renewals_total", "outcome" => outcome).increment(1);
        result.map(|tokens| (tokens, source))
    }

    /// Forgets a renewal made with `refresh_token` (at logout: that session is over).
    pub async fn forget(&self, refresh_token: &SecretString) {
        self.recent.invalidate(&renewal_key(refresh_token)).await;
    }

    /// Ends `refresh_token` for sfgate, whatever Salesforce later answers about it: no renewal
    /// with it is made again, here or (with `REDIS_URL`) on any replica, for `keep` (the
    /// session's remaining life: a refresh token outlives any access token). Says what the
    /// other replicas were told.
    pub async fn log_out(&self, refresh_token: &SecretString, keep: Duration) -> Shared {
        let key = renewal_key(refresh_token);
        // Refused here from this line on: by the store's set with Redis, else by our own.
        let told = self.store.revoke_for(&key, keep);
        if !self.store.is_shared() {
            self.logged_out.insert(key, keep);
        }
        self.recent.invalidate(&key).await;
        told.await
    }

    /// Whether a logout (here, or on a replica sharing the store) ended `refresh_token`.
    /// In memory only.
    pub fn is_logged_out(&self, refresh_token: &SecretString) -> bool {
        let key = renewal_key(refresh_token);
        self.logged_out.contains(&key) || self.store.is_revoked(&key)
    }

    /// The refresh tokens logged out here that are still remembered (for `/metrics`).
    pub fn logged_out_figures(&self) -> TombstoneFigures {
        self.logged_out.figures()
    }

    /// The one renewal of this process for a refresh token. [store] With replicas sharing
    /// Redis, the one of all replicas: a result another replica made (or is making) is taken
    /// instead of spending the refresh token again, which rotation would refuse.
    async fn renew_once(
        &self,
        refresh_token: &SecretString,
    ) -> Result<RenewedTokens, RenewalError> {
        if matches!(self.store, SharedStore::Local) {
            return self.renew_at_salesforce(refresh_token).await;
        }
        let (shared, run) = self
            .store
            .renew_single_flight(&renewal_key(refresh_token), || async {
                let tokens = self.renew_at_salesforce(refresh_token).await?;
                Ok::<_, RenewalError>(SharedRenewal {
                    access_token: tokens.access_token,
                    refresh_token: tokens.refresh_token,
                    rotated: tokens.rotated,
                    instance_url: tokens.instance_url.as_str().to_string(),
                    site_url: tokens.site.as_ref().map(SiteUrl::as_string),
                })
            })
            .await;
        let shared = match (shared, run) {
            // Salesforce refused a refresh token that another replica may have just spent:
            // under rotation its renewal makes the token invalid, and with the store out of
            // reach its result could not be shared. The session is not ended on that answer:
            // 503, and a retry reaching the replica that renewed (or made once the store is
            // back, when the refusal is final) decides. Nothing is admitted meanwhile.
            (Err(RenewalError::Refused { error, description }), RenewalRun::Alone) => {
                metrics::counter!("sfgate_session_renewals_unconfirmed_total").increment(1);
                tracing::warn!(
                    error = %error,
                    "Salesforce refused a session's refresh token while replicas could not \
                     coordinate through Redis; the session is kept until that is known"
                );
                return Err(RenewalError::Unavailable(Arc::new(
                    SalesforceError::Rejected {
                        error,
                        description: format!(
                            "{description} (while the shared store was unreachable: another \
                         replica may have renewed this session; try again shortly)"
                        ),
                    },
                )));
            }
            (shared, _) => shared?,
        };
        let instance_url = self
            .instance_policy
            .check(&shared.instance_url)
            .map_err(|_| {
                RenewalError::Unavailable(Arc::new(SalesforceError::InstanceRefused(
                    shared.instance_url.clone(),
                )))
            })?;
        Ok(RenewedTokens {
            access_token: shared.access_token,
            refresh_token: shared.refresh_token,
            rotated: shared.rotated,
            instance_url,
            // A shared site that no longer passes the policy is dropped: the instance is asked.
            site: shared
                .site_url
                .as_deref()
                .and_then(|raw| SiteUrl::check(&self.instance_policy, raw).ok()),
        })
    }

    /// The one call to Salesforce behind a renewal.
    async fn renew_at_salesforce(
        &self,
        refresh_token: &SecretString,
    ) -> Result<RenewedTokens, RenewalError> {
        // The client records the call for readiness and trusts the instance it names.
        match self.oauth.refresh(refresh_token).await {
            Ok(tokens) => {
                metrics::counter!("sfgate_session_refreshes_total").increment(1);
                Ok(RenewedTokens::from_token_set(tokens, refresh_token))
            }
            Err(SalesforceError::Rejected { error, description }) => {
                Err(RenewalError::Refused { error, description })
            }
            Err(e) => Err(RenewalError::Unavailable(Arc::new(e))),
        }
    }
}

/// SHA-256 of the refresh token: what renewals are keyed by, so no token is held as a key.
pub fn renewal_key(refresh_token: &SecretString) -> RenewalKey {
    crate::crypto::sha256(&[refresh_token.expose_secret().as_bytes()])
}
