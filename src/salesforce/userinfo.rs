//! Asking Salesforce whose token this is.
//!
//! sfgate calls `{instance}/services/oauth2/userinfo` with the token, as Salesforce's own CLI
//! does: one round trip, and an invalid, expired or revoked token answers 403 `Bad_OAuth_Token`.
//! Only an [`InstanceUrl`] can be called, so the allowlist check cannot be skipped.

use super::SalesforceError;
use crate::domain::{Identity, InstancePolicy, InstanceUrl, OrgId, SalesforceId, SiteUrl};
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

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
    email_verified: Option<bool>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    user_type: Option<String>,
    /// The identity URL (userinfo's `sub`), where custom permissions are documented to appear.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    custom_permissions: Option<serde_json::Value>,
}

/// The part of the identity URL's answer sfgate reads when userinfo lacks custom permissions.
#[derive(Deserialize)]
struct IdentityUrlAnswer {
    user_id: String,
    organization_id: String,
    #[serde(default)]
    custom_permissions: Option<serde_json::Value>,
}

/// Salesforce documents `custom_permissions` as a map of API name to `true`/`false` (the
/// Mobile SDK reads it as a JSON object). A list of granted names is accepted too, so a
/// change of shape does not silently grant or drop anything: only `true` (or a listed name)
/// grants; anything else is "not granted". Sorted, for stable `/api/me` output.
fn granted_permissions(value: &serde_json::Value) -> Option<Vec<String>> {
    let mut granted: Vec<String> = match value {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, v)| {
                v.as_bool() == Some(true)
                    || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
            })
            .map(|(k, _)| k.clone())
            .collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return None,
    };
    granted.sort_unstable();
    granted.dedup();
    Some(granted)
}

/// A userinfo answer larger than this is not from Salesforce; refuse it rather than buffer it.
const MAX_BODY: usize = 256 * 1024;

#[derive(Clone)]
pub struct IdentityClient {
    http: reqwest::Client,
    /// Whether some rule needs custom permissions: then, when userinfo does not carry them,
    /// the identity URL is asked too (one more call, on cache misses only).
    want_permissions: Option<InstancePolicy>,
}

impl IdentityClient {
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            want_permissions: None,
        }
    }

    /// Fetch custom permissions from the identity URL when userinfo lacks them. The identity
    /// URL is called only on an origin `policy` allows, as every Salesforce call is.
    pub fn with_custom_permissions(mut self, policy: InstancePolicy) -> Self {
        self.want_permissions = Some(policy);
        self
    }

    pub async fn userinfo(
        &self,
        instance: &InstanceUrl,
        token: &SecretString,
    ) -> Result<Identity, SalesforceError> {
        self.userinfo_at(instance, None, token).await
    }

    /// As [`Self::userinfo`], asked at `site`'s `userinfo` when the token was issued through an
    /// Experience Cloud site (Salesforce serves a site's OAuth endpoints under its URL).
    pub async fn userinfo_at(
        &self,
        instance: &InstanceUrl,
        site: Option<&SiteUrl>,
        token: &SecretString,
    ) -> Result<Identity, SalesforceError> {
        let url = site.map_or_else(|| instance.userinfo_url(), SiteUrl::userinfo_url);
        super::timed("userinfo", self.userinfo_untimed(instance, url, token)).await
    }

    async fn userinfo_untimed(
        &self,
        instance: &InstanceUrl,
        url: String,
        token: &SecretString,
    ) -> Result<Identity, SalesforceError> {
        let response = self
            .http
            .get(url)
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
        // An inactive user is refused by the authorization policy (403), not here.
        let user_id =
            SalesforceId::parse(&info.user_id).map_err(|_| SalesforceError::Unparsable)?;
        let organization_id =
            OrgId::parse(&info.organization_id).map_err(|_| SalesforceError::Unparsable)?;
        let mut custom_permissions = info
            .custom_permissions
            .as_ref()
            .and_then(granted_permissions);
        if custom_permissions.is_none() {
            if let (Some(policy), Some(sub)) = (&self.want_permissions, &info.sub) {
                custom_permissions = Box::pin(self.identity_url_permissions(
                    policy,
                    sub,
                    token,
                    &user_id,
                    &organization_id,
                ))
                .await?;
            }
        }
        let username = info.preferred_username.filter(|u| !u.is_empty());
        let display_name = info
            .name
            .or(info.nickname)
            .filter(|n| !n.is_empty())
            .or_else(|| username.clone());
        Ok(Identity {
            user_id,
            organization_id,
            username: username.map(Into::into),
            display_name: display_name.map(Into::into),
            email: info.email.map(Into::into),
            email_verified: info.email_verified,
            user_type: info.user_type.map(Into::into),
            active: info.active,
            custom_permissions,
            instance_url: instance.clone(),
        })
    }

    /// Custom permissions from the identity URL (`GET {sub}` with the token), which Salesforce
    /// documents as carrying them with the `custom_permissions` scope. The URL comes from
    /// Salesforce's own answer, but is still called only on an allowed origin, and its answer
    /// must be about the same user and org.
    async fn identity_url_permissions(
        &self,
        policy: &InstancePolicy,
        identity_url: &str,
        token: &SecretString,
        user_id: &SalesforceId,
        org: &OrgId,
    ) -> Result<Option<Vec<String>>, SalesforceError> {
        let Ok(url) = url::Url::parse(identity_url) else {
            return Ok(None);
        };
        if policy.check(&url.origin().ascii_serialization()).is_err() {
            tracing::warn!("userinfo named an identity URL outside the allowed instances");
            return Ok(None);
        }
        let response = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SalesforceError::from_reqwest(&e))?;
        if !response.status().is_success() {
            // No permissions learned: permission rules refuse (fail closed).
            return Ok(None);
        }
        let body = read_limited(response).await?;
        let answer: IdentityUrlAnswer =
            serde_json::from_slice(&body).map_err(|_| SalesforceError::Unparsable)?;
        let same_user = SalesforceId::parse(&answer.user_id).is_ok_and(|id| id == *user_id)
            && OrgId::parse(&answer.organization_id).is_ok_and(|o| o == *org);
        if !same_user {
            return Err(SalesforceError::Unparsable);
        }
        Ok(answer
            .custom_permissions
            .as_ref()
            .and_then(granted_permissions))
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

#[cfg(test)]
mod tests {
    use super::granted_permissions;
    use serde_json::json;

    #[test]
    fn custom_permissions_are_read_from_the_documented_map_or_a_list() {
        let map = json!({"Sfgate_Admin": true, "Email_View": false, "Odd": "true", "Odder": 1});
        assert_eq!(
            granted_permissions(&map),
            Some(vec!["Odd".to_string(), "Sfgate_Admin".to_string()])
        );
        let list = json!(["B", "A", "A", 7]);
        assert_eq!(
            granted_permissions(&list),
            Some(vec!["A".to_string(), "B".to_string()])
        );
        assert_eq!(granted_permissions(&json!({})), Some(Vec::new()));
        assert_eq!(granted_permissions(&json!("Sfgate_Admin")), None);
        assert_eq!(granted_permissions(&json!(null)), None);
    }
}
