//! The OAuth 2.0 web-server flow against Salesforce's token endpoint, through the `oauth2` crate.
//!
//! Every token response is checked before any of it is used: the signature over `id` and
//! `issued_at` must verify with the client secret, and the instance URL must pass the instance
//! policy. A response that fails either is discarded whole.

use super::{http_client_error, verify_signature, SalesforceError};
use crate::config::SalesforceConfig;
use crate::domain::{InstancePolicy, InstanceUrl, OrgId, SalesforceId, SiteUrl};
use crate::readiness::Readiness;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::sync::Arc;
use url::Url;

/// Salesforce's additions to the standard token response.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SalesforceFields {
    instance_url: String,
    id: String,
    #[serde(deserialize_with = "string_or_number")]
    issued_at: String,
    signature: String,
    #[serde(default)]
    id_token: Option<String>,
    /// The Experience Cloud site the user logged in through (with `sfdc_community_id`, which
    /// sfgate does not need). Only on site logins, and not from every org.
    #[serde(default)]
    sfdc_community_url: Option<String>,
    /// The same under the name some clients read it by; both are tolerated, the former wins.
    #[serde(default)]
    sfdc_site_url: Option<String>,
}

impl ExtraTokenFields for SalesforceFields {}

/// Salesforce documents `issued_at` as a string; tolerate a number too.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(u64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::N(n) => n.to_string(),
    })
}

type SalesforceTokenResponse = StandardTokenResponse<SalesforceFields, BasicTokenType>;
type SalesforceClient = oauth2::Client<
    BasicErrorResponse,
    SalesforceTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A verified token response. Tokens are wrapped so they cannot reach a log by accident.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    pub instance_url: InstanceUrl,
    pub id: String,
    pub issued_at: String,
    pub scope: Option<String>,
    pub token_type: String,
    pub org_id: OrgId,
    pub user_id: SalesforceId,
    /// The Experience Cloud site the tokens were issued through, when they were: their
    /// `userinfo` is the site's (see [`SalesforceOAuth::site_of`]).
    pub site: Option<SiteUrl>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("instance_url", &self.instance_url)
            .field("org_id", &self.org_id)
            .field("user_id", &self.user_id)
            .field("scope", &self.scope)
            .field("site", &self.site)
            .finish_non_exhaustive()
    }
}

/// A started login: where to send the browser, and what must come back with it.
pub struct AuthorizeRedirect {
    pub url: Url,
    pub state: String,
    pub pkce_verifier: String,
}

/// The Connected App's side of the OAuth flow.
#[derive(Clone)]
pub struct SalesforceOAuth {
    client: SalesforceClient,
    http: reqwest::Client,
    client_secret: SecretString,
    scopes: Vec<String>,
    policy: InstancePolicy,
    revocation_url: Url,
    /// `SF_LOGIN_URL` when it is an Experience Cloud site on an allowed origin.
    site: Option<SiteUrl>,
    /// Every call's outcome, for `/readyz`; instances named in verified responses are trusted.
    readiness: Arc<Readiness>,
}

impl SalesforceOAuth {
    pub fn new(
        config: &SalesforceConfig,
        http: reqwest::Client,
        readiness: Arc<Readiness>,
    ) -> Result<Self, url::ParseError> {
        let client: SalesforceClient = oauth2::Client::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                config.client_secret.expose_secret().to_string(),
            ))
            // Salesforce documents client_secret_post for the web-server flow.
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(AuthUrl::new(
                config.login_endpoint("/services/oauth2/authorize"),
            )?)
            .set_token_uri(TokenUrl::new(
                config.login_endpoint("/services/oauth2/token"),
            )?)
            .set_redirect_uri(RedirectUrl::from_url(config.redirect_uri.clone()));
        Ok(Self {
            client,
            http,
            client_secret: config.client_secret.clone(),
            scopes: config.scopes.clone(),
            policy: config.instance_policy.clone(),
            revocation_url: Url::parse(&config.login_endpoint("/services/oauth2/revoke"))?,
            site: configured_site(config),
            readiness,
        })
    }

    /// A fresh `state` (256 random bits) and PKCE pair for one login.
    pub fn authorize_redirect(
        &self,
        prompt: Option<&str>,
        login_hint: Option<&str>,
    ) -> AuthorizeRedirect {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(|| CsrfToken::new_random_len(32))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(prompt) = prompt {
            request = request.add_extra_param("prompt", prompt.to_string());
        }
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_string());
        }
        let (url, state) = request.url();
        AuthorizeRedirect {
            url,
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<TokenSet, SalesforceError> {
        self.observed(self.exchange_code_inner(code, verifier).await)
    }

    async fn exchange_code_inner(
        &self,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<TokenSet, SalesforceError> {
        let mut request = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(v) = verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(v.to_string()));
        }
        let response = super::timed("token", request.request_async(&self.http))
            .await
            .map_err(map_token_error)?;
        self.verify(response, None)
    }

    /// Salesforce answers a refresh without a new refresh token unless rotation is on; the old
    /// one is kept in that case, and replaced when a new one comes back.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, SalesforceError> {
        self.observed(self.refresh_inner(refresh_token).await)
    }

    async fn refresh_inner(
        &self,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, SalesforceError> {
        let token = RefreshToken::new(refresh_token.expose_secret().to_string());
        let request = self.client.exchange_refresh_token(&token);
        let response = super::timed("token", request.request_async(&self.http))
            .await
            .map_err(map_token_error)?;
        self.verify(response, Some(refresh_token))
    }

    pub async fn password(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<TokenSet, SalesforceError> {
        self.observed(self.password_inner(username, password).await)
    }

    async fn password_inner(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<TokenSet, SalesforceError> {
        let user = ResourceOwnerUsername::new(username.to_string());
        let pass = ResourceOwnerPassword::new(password.expose_secret().to_string());
        let request = self.client.exchange_password(&user, &pass);
        let response = super::timed("token", request.request_async(&self.http))
            .await
            .map_err(map_token_error)?;
        self.verify(response, None)
    }

    /// Revokes an access or refresh token at `/services/oauth2/revoke`.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), SalesforceError> {
        let result = self.revoke_inner(token).await;
        self.readiness
            .record("revoke", super::transient_failure(&result));
        result
    }

    async fn revoke_inner(&self, token: &SecretString) -> Result<(), SalesforceError> {
        // Posted directly rather than through the `oauth2` crate: its revocation request refuses
        // any non-https endpoint, which would rule out the loopback emulator used in demo mode.
        let request = self
            .http
            .post(self.revocation_url.clone())
            .form(&[("token", token.expose_secret())])
            .send();
        let response = super::timed("revoke", request)
            .await
            .map_err(|e| SalesforceError::from_reqwest(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error() {
            return Err(SalesforceError::Status(status.as_u16()));
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let field = |name: &str| {
            body.get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Err(SalesforceError::Rejected {
            error: match field("error") {
                e if e.is_empty() => format!("http_{}", status.as_u16()),
                e => e,
            },
            description: field("error_description"),
        })
    }

    /// Records a token call for readiness; a verified response's instance is trusted from now
    /// on (Salesforce named it in a signed response, so its failures are real ones).
    fn observed(
        &self,
        result: Result<TokenSet, SalesforceError>,
    ) -> Result<TokenSet, SalesforceError> {
        self.readiness
            .record("token", super::transient_failure(&result));
        if let Ok(tokens) = &result {
            self.readiness.trust_instance(&tokens.instance_url);
        }
        result
    }

    fn verify(
        &self,
        response: SalesforceTokenResponse,
        previous_refresh: Option<&SecretString>,
    ) -> Result<TokenSet, SalesforceError> {
        let extra = response.extra_fields();
        if !verify_signature(
            self.client_secret.expose_secret().as_bytes(),
            &extra.id,
            &extra.issued_at,
            &extra.signature,
        ) {
            return Err(SalesforceError::BadSignature);
        }
        let instance_url = self
            .policy
            .check(&extra.instance_url)
            .map_err(|e| SalesforceError::InstanceRefused(e.to_string()))?;
        let (org_id, user_id) =
            ids_from_identity_url(&extra.id).ok_or(SalesforceError::Unparsable)?;
        let refresh_token = response
            .refresh_token()
            .map(|t| SecretString::from(t.secret().clone()))
            .or_else(|| previous_refresh.cloned());
        Ok(TokenSet {
            access_token: SecretString::from(response.access_token().secret().clone()),
            refresh_token,
            id_token: extra.id_token.clone().map(SecretString::from),
            instance_url,
            id: extra.id.clone(),
            issued_at: extra.issued_at.clone(),
            scope: response
                .scopes()
                .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
            token_type: "Bearer".to_string(),
            org_id,
            user_id,
            site: self.site_of(extra),
        })
    }

    /// The site a token response's tokens belong to: the one Salesforce names
    /// (`sfdc_community_url`) when it passes the instance policy, else the configured site
    /// (`SF_LOGIN_URL` with a path), else none (their `userinfo` is the instance's). A named
    /// site that fails the policy is never called: the configured one is used instead.
    fn site_of(&self, extra: &SalesforceFields) -> Option<SiteUrl> {
        let named = extra
            .sfdc_community_url
            .as_deref()
            .or(extra.sfdc_site_url.as_deref())
            .filter(|raw| !raw.is_empty());
        match named.map(|raw| SiteUrl::check(&self.policy, raw)) {
            Some(Ok(site)) => Some(site),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "the token response named a site outside the allowed instances; using the configured one");
                self.site.clone()
            }
            None => self.site.clone(),
        }
    }
}

/// `SF_LOGIN_URL` as a site, when it has a path and its origin passes the instance policy (a
/// site on a custom domain is listed in `SF_INSTANCE_ORIGINS`, as its instance must be).
fn configured_site(config: &SalesforceConfig) -> Option<SiteUrl> {
    if matches!(config.login_url.path(), "" | "/") {
        return None;
    }
    SiteUrl::check(&config.instance_policy, config.login_url.as_str())
        .inspect_err(|e| {
            tracing::warn!(error = %e, "SF_LOGIN_URL is a site whose origin is not an allowed instance; its users' tokens are checked at their instance");
        })
        .ok()
}

/// `https://login.salesforce.com/id/<org>/<user>`: the signed part of a token response that
/// names the org and the user.
fn ids_from_identity_url(id: &str) -> Option<(OrgId, SalesforceId)> {
    let url = Url::parse(id).ok()?;
    let mut segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let user = SalesforceId::parse(segments.pop()?).ok()?;
    let org = OrgId::parse(segments.pop()?).ok()?;
    (segments.pop()? == "id").then_some((org, user))
}

fn map_token_error<TE: oauth2::ErrorResponse + ErrorFields + 'static>(
    e: RequestTokenError<oauth2::HttpClientError<reqwest::Error>, TE>,
) -> SalesforceError {
    match e {
        RequestTokenError::ServerResponse(body) => SalesforceError::Rejected {
            error: body.code(),
            description: body.description(),
        },
        RequestTokenError::Request(e) => http_client_error(&e),
        RequestTokenError::Parse(..) => SalesforceError::Unparsable,
        RequestTokenError::Other(_) => SalesforceError::Unparsable,
    }
}

/// Reads the OAuth error code and description from either of the crate's error types.
pub(super) trait ErrorFields {
    fn code(&self) -> String;
    fn description(&self) -> String;
}

impl<T: oauth2::ErrorResponseType + AsRef<str>> ErrorFields for oauth2::StandardErrorResponse<T> {
    fn code(&self) -> String {
        self.error().as_ref().to_string()
    }
    fn description(&self) -> String {
        self.error_description().cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
