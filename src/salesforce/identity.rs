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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub user_id: SalesforceId,
    pub organization_id: OrgId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub instance_url: InstanceUrl,
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
        let username = info.preferred_username.unwrap_or_default();
        let display_name = info
            .name
            .or(info.nickname)
            .unwrap_or_else(|| username.clone());
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
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(SalesforceError::Unparsable);
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| SalesforceError::from_reqwest(&e))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(SalesforceError::Unparsable);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
