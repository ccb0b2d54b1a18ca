//! Token introspection (RFC 7662): `POST {login}/services/oauth2/introspect`.
//!
//! Salesforce answers `{active, scope, client_id, username, sub, token_type, exp, iat, nbf}`
//! (`{"active": false}` for a token that is not valid) and needs the Connected App's client
//! credentials, sent in the body as for the token endpoint. It is the one endpoint that tells
//! a token's `exp`, so a verdict can be cached no longer than the token lives. `sub` is the
//! identity URL (`.../id/<org id>/<user id>`), which names the org; when it does not, the
//! validator completes the identity with `userinfo`.

use super::userinfo::read_at_most;
use super::SalesforceError;
use crate::domain::{OrgId, SalesforceId};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const MAX_BODY: usize = 64 * 1024;

/// What introspection says about an active token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    pub username: Option<String>,
    /// Both come from `sub` when it is an identity URL.
    pub user_id: Option<SalesforceId>,
    pub organization_id: Option<OrgId>,
    /// Seconds since the epoch, when given.
    pub expires_at: Option<u64>,
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
}

#[derive(Clone)]
pub struct Introspector {
    http: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: SecretString,
}

impl Introspector {
    pub fn new(
        http: reqwest::Client,
        login_url: &url::Url,
        client_id: String,
        client_secret: SecretString,
    ) -> Self {
        let base = login_url.as_str().trim_end_matches('/');
        Self {
            http,
            endpoint: format!("{base}/services/oauth2/introspect"),
            client_id,
            client_secret,
        }
    }

    /// `Ok(None)` is `active: false`: the token is not valid.
    pub async fn introspect(
        &self,
        token: &SecretString,
    ) -> Result<Option<Introspection>, SalesforceError> {
        super::timed("introspect", self.introspect_untimed(token)).await
    }

    async fn introspect_untimed(
        &self,
        token: &SecretString,
    ) -> Result<Option<Introspection>, SalesforceError> {
        let form = [
            ("token", token.expose_secret()),
            ("token_type_hint", "access_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        let response = self
            .http
            .post(&self.endpoint)
            .form(&form)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SalesforceError::from_reqwest(&e))?;
        let status = response.status();
        if !status.is_success() {
            // A refusal of sfgate's own credentials is a configuration problem, not the
            // caller's: it must not read as "your token is invalid".
            return Err(SalesforceError::Status(status.as_u16()));
        }
        let body = read_at_most(response, MAX_BODY).await?;
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|_| SalesforceError::Unparsable)?;
        if !answer.active {
            return Ok(None);
        }
        let (organization_id, user_id) = answer
            .sub
            .as_deref()
            .map(ids_of_identity_url)
            .unwrap_or((None, None));
        Ok(Some(Introspection {
            username: answer.username.filter(|u| !u.is_empty()),
            user_id,
            organization_id,
            expires_at: answer.exp,
        }))
    }
}

/// Org and user from an identity URL `https://host/id/<org>/<user>`.
fn ids_of_identity_url(sub: &str) -> (Option<OrgId>, Option<SalesforceId>) {
    let mut parts = sub.trim_end_matches('/').rsplit('/');
    let user = parts.next();
    let org = parts.next();
    let marker = parts.next();
    if marker != Some("id") {
        return (None, None);
    }
    (
        org.and_then(|o| OrgId::parse(o).ok()),
        user.and_then(|u| SalesforceId::parse(u).ok()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_urls_name_org_and_user() {
        let (org, user) =
            ids_of_identity_url("https://login.salesforce.com/id/00D5j00000AcMe1/0055j00000AlIcE");
        assert_eq!(org.expect("org").short(), "00D5j00000AcMe1");
        assert_eq!(user.expect("user").short(), "0055j00000AlIcE");
        assert_eq!(ids_of_identity_url("0055j00000AlIcE"), (None, None));
        assert_eq!(
            ids_of_identity_url("https://x/other/00D5j00000AcMe1/0055j00000AlIcE"),
            (None, None)
        );
    }
}
