//! Users' profiles (username, display name, email), cached per user rather than per token.
//!
//! A JWT access token proves who the caller is but says nothing of their name or email. Those
//! come from `userinfo`, at most once per user per IDENTITY_CACHE_TTL, and only after the
//! token was admitted: a known user's new token costs no call at all. A failed fetch never
//! refuses a valid token; the identity then simply lacks the profile (see
//! [`Identity::has_profile`]) and callers that need it ask [`Profiles::require`], which fails.

use crate::domain::{Identity, Profile};
use crate::salesforce::{IdentityClient, SalesforceError};
use moka::future::Cache;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

pub(super) struct Profiles {
    client: IdentityClient,
    cache: Option<Cache<String, Arc<Profile>>>,
}

impl Profiles {
    /// A `ttl` of zero disables the cache, like the identity cache.
    pub(super) fn new(client: IdentityClient, ttl: Duration, max: u64) -> Self {
        let cache =
            (!ttl.is_zero()).then(|| Cache::builder().max_capacity(max).time_to_live(ttl).build());
        Self { client, cache }
    }

    /// Remembers the profile of an identity that has one (from a `userinfo` validation).
    pub(super) async fn remember(&self, identity: &Identity) {
        if let (Some(cache), Some(profile)) = (&self.cache, identity.profile()) {
            cache
                .insert(identity.user_id.as_str().to_string(), Arc::new(profile))
                .await;
        }
    }

    /// The identity with its profile filled in when one can be had; unchanged (and the gap
    /// logged) when not.
    pub(super) async fn complete(&self, identity: Identity, token: &SecretString) -> Identity {
        if identity.has_profile() {
            return identity;
        }
        match self.get(&identity, token).await {
            Ok(profile) => identity.with_profile(&profile),
            Err(e) => {
                metrics::counter!("sfgate_profile_fetch_failures_total").increment(1);
                tracing::warn!(
                    user_id = %identity.user_id,
                    error = %e,
                    "could not fetch the user's profile: admitted without it, so the username and email headers are left out"
                );
                identity
            }
        }
    }

    /// The identity with its profile, or an error: for decisions that need profile fields.
    pub(super) async fn require(
        &self,
        identity: &Identity,
        token: &SecretString,
    ) -> Result<Identity, SalesforceError> {
        if identity.has_profile() {
            return Ok(identity.clone());
        }
        let profile = self.get(identity, token).await?;
        Ok(identity.clone().with_profile(&profile))
    }

    async fn get(
        &self,
        identity: &Identity,
        token: &SecretString,
    ) -> Result<Arc<Profile>, SalesforceError> {
        // A known user first, looked up by reference: the fetch's future (a Salesforce call's
        // worth of state) and its owned key are only built when the profile is missing, which
        // is once per user per TTL, while every new token of a known user comes here.
        if let Some(cache) = &self.cache {
            if let Some(profile) = cache.get(identity.user_id.as_str()).await {
                return Ok(profile);
            }
        }
        Box::pin(self.fetch(identity, token)).await
    }

    /// The profile from `userinfo`, through the cache's single-flight when there is one.
    async fn fetch(
        &self,
        identity: &Identity,
        token: &SecretString,
    ) -> Result<Arc<Profile>, SalesforceError> {
        let fetch = async {
            let answer = self.client.userinfo(&identity.instance_url, token).await?;
            // The profile must be the token's own user: it is cached under that user's id.
            if answer.user_id != identity.user_id {
                return Err(SalesforceError::Unparsable);
            }
            answer
                .profile()
                .map(Arc::new)
                .ok_or(SalesforceError::Unparsable)
        };
        match &self.cache {
            None => fetch.await,
            Some(cache) => cache
                .try_get_with(identity.user_id.as_str().to_string(), fetch)
                .await
                .map_err(Arc::unwrap_or_clone),
        }
    }
}
