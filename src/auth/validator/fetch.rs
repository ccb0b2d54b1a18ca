//! How one token is checked at the source, by kind: a JWT locally against its issuer's keys,
//! any token by introspection, an opaque one at `userinfo`.

use super::verdict::TokenVerdict;
use super::IdentityValidator;
use crate::config::{Config, TokenValidation};
use crate::domain::Identity;
use crate::domain::{InstancePolicy, InstanceUrl, SiteUrl};
use crate::salesforce::introspect::Introspector;
use crate::salesforce::jwks::{KeyError, KeySets};
use crate::salesforce::jwt::{self, JwtRejection, Unverified};
use crate::salesforce::{transient_failure, SalesforceError};
use secrecy::SecretString;
use std::time::{Duration, Instant};

/// How tokens are checked besides `userinfo`: built from the configuration once.
pub struct TokenChecks {
    pub(super) mode: TokenValidation,
    pub(super) keys: KeySets,
    pub(super) introspector: Introspector,
    pub(super) policy: InstancePolicy,
    /// sfgate's own client id first, then SF_ACCEPTED_CLIENT_IDS.
    pub(super) accepted_client_ids: Vec<String>,
}

impl TokenChecks {
    pub fn from_config(config: &Config, http: reqwest::Client) -> Self {
        let mut accepted_client_ids = vec![config.salesforce.client_id.clone()];
        accepted_client_ids.extend(config.salesforce.accepted_client_ids.iter().cloned());
        Self {
            mode: config.salesforce.token_validation,
            keys: KeySets::new(http.clone(), config.salesforce.instance_policy.clone()),
            introspector: Introspector::new(
                http,
                &config.salesforce.login_url,
                config.salesforce.client_id.clone(),
                config.salesforce.client_secret.clone(),
            ),
            policy: config.salesforce.instance_policy.clone(),
            accepted_client_ids,
        }
    }
}

impl IdentityValidator {
    /// A JWT access token, checked locally. The issuer passes the instance policy and must be
    /// the instance the caller names before anything is fetched from it; after the first
    /// request for an issuer, a token of a user seen before costs no call at all.
    pub(super) async fn fetch_jwt(
        &self,
        checks: &TokenChecks,
        instance: &InstanceUrl,
        token: &SecretString,
        unverified: Result<Unverified, JwtRejection>,
    ) -> Result<TokenVerdict, SalesforceError> {
        let unverified = match unverified {
            Ok(u) => u,
            Err(rejection) => return Ok(TokenVerdict::invalid(rejection.to_string())),
        };
        let Ok(issuer) = checks.policy.check(&unverified.issuer) else {
            return Ok(TokenVerdict::invalid(
                "the JWT access token's issuer is not an allowed Salesforce instance",
            ));
        };
        if issuer != *instance {
            return Ok(TokenVerdict::invalid(
                "the JWT access token's issuer is not the instance URL the request names",
            ));
        }
        let key = match checks.keys.key(&issuer, &unverified.kid).await {
            Ok(key) => key,
            Err(KeyError::UnknownKid) => {
                return Ok(TokenVerdict::invalid(JwtRejection::UnknownKey.to_string()))
            }
            Err(KeyError::Unavailable(e)) => {
                self.readiness
                    .record_instance(&issuer, "jwks", Some(e.to_string()));
                return Err(e);
            }
        };
        let verified = match unverified.verify(&key, issuer.as_str(), &checks.accepted_client_ids) {
            Ok(v) => v,
            Err(rejection) => return Ok(TokenVerdict::invalid(rejection.to_string())),
        };
        let now = Instant::now();
        let mut until = now + verified.remaining();
        let identity =
            Identity::without_profile(verified.user_id, verified.organization_id, issuer);
        // A refused org is refused by `validate`; its users' profiles are not worth a call.
        let identity = if self.allowed_orgs.allows(&identity.organization_id) {
            self.profiles.complete(identity, token).await
        } else {
            identity
        };
        if !identity.has_profile() {
            until = until.min(now + self.incomplete_ttl);
        }
        Ok(TokenVerdict::valid(identity, Some(until)))
    }

    /// Any token, via introspection at the login host with sfgate's client credentials. The
    /// verdict lives until `min(IDENTITY_CACHE_TTL, exp)`.
    pub(super) async fn fetch_introspect(
        &self,
        checks: &TokenChecks,
        instance: &InstanceUrl,
        site: Option<&SiteUrl>,
        token: &SecretString,
    ) -> Result<TokenVerdict, SalesforceError> {
        let started = Instant::now();
        let result = checks.introspector.introspect(token).await;
        let failure = transient_failure(&result);
        self.readiness.record("introspect", failure);
        let Some(answer) = result? else {
            return Ok(TokenVerdict::invalid(
                "Salesforce reports the token is not active",
            ));
        };
        let until = answer
            .expires_at
            .map(|exp| started + Duration::from_secs(exp.saturating_sub(jwt::now_secs())));
        if until.is_some_and(|u| u <= Instant::now()) {
            return Ok(TokenVerdict::invalid("the token has expired"));
        }
        let identity = match (answer.user_id, answer.organization_id) {
            (Some(user_id), Some(org)) => {
                let mut identity = Identity::without_profile(user_id, org, instance.clone());
                let complete = self.profiles.complete(identity.clone(), token).await;
                if complete.has_profile() {
                    complete
                } else {
                    identity.username = answer.username.map(Into::into);
                    identity
                }
            }
            // Introspection did not name the org: userinfo completes the identity.
            _ => match self.fetch_userinfo(instance, site, token).await? {
                TokenVerdict::Valid(confirmed, ..) => confirmed.identity().clone(),
                invalid => return Ok(invalid),
            },
        };
        Ok(TokenVerdict::valid(identity, until))
    }

    /// `site`: the Experience Cloud site the token was issued through, whose `userinfo` is
    /// asked instead of the instance's.
    pub(super) async fn fetch_userinfo(
        &self,
        instance: &InstanceUrl,
        site: Option<&SiteUrl>,
        token: &SecretString,
    ) -> Result<TokenVerdict, SalesforceError> {
        let result = self.client.userinfo_at(instance, site, token).await;
        let failure = transient_failure(&result);
        self.readiness
            .record_instance(instance, "userinfo", failure);
        match result {
            Ok(identity) => {
                self.profiles.remember(&identity).await;
                Ok(TokenVerdict::valid(identity, None))
            }
            Err(SalesforceError::Rejected { description, .. }) => {
                Ok(TokenVerdict::Invalid(description.into()))
            }
            Err(e) => Err(e),
        }
    }
}
