//! Asking Salesforce whose token this is.
//!
//! sfgate calls `{instance}/services/oauth2/userinfo` with the token, as Salesforce's own CLI
//! does: one round trip, and an invalid, expired or revoked token answers 403 `Bad_OAuth_Token`.
//! Only an [`InstanceUrl`] can be called, so the allowlist check cannot be skipped.

use super::SalesforceError;
use crate::domain::{InstanceUrl, OrgId, SalesforceId};
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Who is calling, as confirmed by Salesforce. Protected handlers receive this.
///
/// The ids and the instance are always known: they are what admits or refuses a caller. The
/// profile fields (username, display name, email) come from `userinfo`; a JWT access token
/// carries none of them, and when that call fails they stay `None` rather than becoming empty
/// strings that a rule or a header could mistake for a value. See [`Identity::has_profile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub user_id: SalesforceId,
    pub organization_id: OrgId,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub instance_url: InstanceUrl,
}

impl Identity {
    /// An identity known only by its ids, as a locally validated JWT gives it.
    pub fn without_profile(
        user_id: SalesforceId,
        organization_id: OrgId,
        instance_url: InstanceUrl,
    ) -> Self {
        Self {
            user_id,
            organization_id,
            username: None,
            display_name: None,
            email: None,
            instance_url,
        }
    }

    /// Whether the profile fields were filled in from `userinfo`.
    pub fn has_profile(&self) -> bool {
        self.username.is_some()
    }

    /// Fills the profile fields from a profile of the same user.
    pub fn with_profile(mut self, profile: &Profile) -> Self {
        self.username = Some(profile.username.clone());
        self.display_name = Some(profile.display_name.clone());
        self.email = profile.email.clone();
        self
    }

    /// What to call the user on a page: the display name, else the username, else the id.
    pub fn label(&self) -> &str {
        self.display_name
            .as_deref()
            .or(self.username.as_deref())
            .unwrap_or(self.user_id.as_str())
    }

    /// The profile part of an identity that has one.
    pub fn profile(&self) -> Option<Profile> {
        Some(Profile {
            user_id: self.user_id.clone(),
            username: self.username.clone()?,
            display_name: self
                .display_name
                .clone()
                .or_else(|| self.username.clone())?,
            email: self.email.clone(),
        })
    }
}

/// The descriptive part of an identity, from `userinfo`, cached per user (not per token): the
/// same user presenting a new token does not need it fetched again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user_id: SalesforceId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
}

#[derive(Deserialize)]
struct UserInfo {
    user_id: String,
    organization_id: String,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

/// A userinfo answer larger than this is not from Salesforce; refuse it rather than buffer it.
const MAX_BODY: usize = 256 * 1024;

#[derive(Clone)]
pub struct IdentityClient {
    http: reqwest::Client,
}

impl IdentityClient {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    pub async fn userinfo(
        &self,
        instance: &InstanceUrl,
        token: &SecretString,
    ) -> Result<Identity, SalesforceError> {
        let response = self
            .http
            .get(instance.userinfo_url())
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SalesforceError::from_reqwest(&e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let body = read_limited(response).await.unwrap_or_default();
            let reason = String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(64)
                .collect::<String>();
            return Err(SalesforceError::Rejected {
                error: "invalid_token".into(),
                description: if reason.is_empty() {
                    format!("HTTP {status}")
                } else {
                    reason
                },
            });
        }
        if !status.is_success() {
            return Err(SalesforceError::Status(status.as_u16()));
        }
        let body = read_limited(response).await?;
        let info: UserInfo =
            serde_json::from_slice(&body).map_err(|_| SalesforceError::Unparsable)?;
        if info.active == Some(false) {
            return Err(SalesforceError::Rejected {
                error: "invalid_token".into(),
                description: "the Salesforce user is inactive".into(),
            });
        }
        let user_id =
            SalesforceId::parse(&info.user_id).map_err(|_| SalesforceError::Unparsable)?;
        let organization_id =
            OrgId::parse(&info.organization_id).map_err(|_| SalesforceError::Unparsable)?;
        let username = info.preferred_username.filter(|u| !u.is_empty());
        let display_name = info
            .name
            .or(info.nickname)
            .filter(|n| !n.is_empty())
            .or_else(|| username.clone());
        Ok(Identity {
            user_id,
            organization_id,
            username,
            display_name,
            email: info.email,
            instance_url: instance.clone(),
        })
    }
}

async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>, SalesforceError> {
    read_at_most(response, MAX_BODY).await
}

/// Reads a body of at most `max` bytes; a longer one is refused rather than buffered.
pub(crate) async fn read_at_most(
    response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, SalesforceError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(SalesforceError::Unparsable);
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| SalesforceError::from_reqwest(&e))?;
        if body.len() + chunk.len() > max {
            return Err(SalesforceError::Unparsable);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
