//! The Connected App and the Salesforce side: who sfgate is at Salesforce, where users log in,
//! which orgs and instances are trusted, and how access tokens are checked.

use super::reader::{is_loopback, Reader};
use crate::domain::{AllowedOrgs, InstancePolicy};
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: Url,
    pub login_url: Url,
    pub scopes: Vec<String>,
    pub allowed_orgs: AllowedOrgs,
    pub instance_policy: InstancePolicy,
    /// `SALESFORCE_TIMEOUT`: each call to Salesforce gives up after this long.
    pub timeout: Duration,
    /// `SF_ENABLE_PASSWORD_FLOW`: the username-password grant at `/oauth2/token`.
    pub enable_password_flow: bool,
    /// How access tokens are checked (`SF_TOKEN_VALIDATION`).
    pub token_validation: TokenValidation,
    /// Connected Apps besides sfgate's own whose JWT access tokens are accepted
    /// (`SF_ACCEPTED_CLIENT_IDS`).
    pub accepted_client_ids: Vec<String>,
}

/// How sfgate checks an access token (`SF_TOKEN_VALIDATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenValidation {
    /// JWT access tokens locally against the org's published keys, opaque ones via `userinfo`.
    Auto,
    /// Every token via `userinfo`, JWTs included (revocation seen within IDENTITY_CACHE_TTL).
    UserInfo,
    /// Every token via `/services/oauth2/introspect` with sfgate's client credentials.
    Introspect,
}

impl SalesforceConfig {
    /// The callback route is the path of the redirect URI, so the Node.js app's
    /// `/oauth2/success` keeps working by setting the URI.
    pub fn callback_path(&self) -> &str {
        self.redirect_uri.path()
    }

    /// Cookies get `Secure` (and pages HSTS) when users reach sfgate over https.
    pub fn is_https(&self) -> bool {
        self.redirect_uri.scheme() == "https"
    }

    /// Where users reach sfgate, for links and the curl example on the success page.
    pub fn public_origin(&self) -> String {
        self.redirect_uri.origin().ascii_serialization()
    }

    pub fn login_endpoint(&self, path: &str) -> String {
        format!("{}{}", self.login_url.as_str().trim_end_matches('/'), path)
    }
}

/// `SF_SCOPES`, read on its own because authorization rules check it too.
pub(super) fn scopes(r: &mut Reader<'_>) -> Vec<String> {
    r.get("SF_SCOPES")
        .unwrap_or_else(|| "api refresh_token".into())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The `SF_*` variables and `SALESFORCE_TIMEOUT`; `None` when a required one is missing or bad
/// (the problem is in `r`).
pub(super) fn parse(r: &mut Reader<'_>, scopes: Vec<String>) -> Option<SalesforceConfig> {
    let client_id = r.required("SF_CLIENT_ID", Some("CLIENT_ID"));
    let client_secret = r.required("SF_CLIENT_SECRET", Some("CLIENT_SECRET_ID"));
    let redirect_uri = redirect_uri(r);
    let login_raw = r
        .get("SF_LOGIN_URL")
        .unwrap_or_else(|| "https://login.salesforce.com".into());
    let login_url = r.url("SF_LOGIN_URL", &login_raw);
    if let Some(u) = &login_url {
        if u.scheme() != "https" && !is_loopback(u) {
            r.problem("SF_LOGIN_URL", "must use https unless the host is loopback");
        }
        // A path is an Experience Cloud site's (`https://acme.my.site.com/partners`): every
        // OAuth endpoint is under it. A query or fragment would end up inside those URLs.
        if u.query().is_some() || u.fragment().is_some() {
            r.problem(
                "SF_LOGIN_URL",
                "must not contain a query or fragment (a site's path is fine)",
            );
        }
    }
    let allowed_orgs = allowed_orgs(r);
    let instance_policy = instance_policy(r);
    let timeout = r.seconds("SALESFORCE_TIMEOUT", 5);
    if timeout.is_zero() {
        r.problem("SALESFORCE_TIMEOUT", "must be at least 1 second");
    }
    let enable_password_flow = r.flag("SF_ENABLE_PASSWORD_FLOW");
    let token_validation = token_validation(r);
    let accepted_client_ids = accepted_client_ids(r);
    Some(SalesforceConfig {
        client_id: client_id?,
        client_secret: SecretString::from(client_secret?),
        redirect_uri: redirect_uri?,
        login_url: login_url?,
        scopes,
        allowed_orgs: allowed_orgs?,
        instance_policy,
        timeout,
        enable_password_flow,
        token_validation,
        accepted_client_ids,
    })
}

fn redirect_uri(r: &mut Reader<'_>) -> Option<Url> {
    let redirect_uri = r
        .required("SF_REDIRECT_URI", Some("REDIRECT_URI"))
        .and_then(|raw| r.url("SF_REDIRECT_URI", &raw));
    if let Some(u) = &redirect_uri {
        if u.scheme() != "https" && !is_loopback(u) {
            r.problem(
                "SF_REDIRECT_URI",
                "must use https unless the host is loopback",
            );
        }
        if u.query().is_some() || u.fragment().is_some() {
            r.problem("SF_REDIRECT_URI", "must not contain a query or fragment");
        }
        if matches!(u.path(), "" | "/") {
            r.problem(
                "SF_REDIRECT_URI",
                "needs a path for the callback route, e.g. /oauth2/callback",
            );
        }
    }
    redirect_uri
}

fn allowed_orgs(r: &mut Reader<'_>) -> Option<AllowedOrgs> {
    match r.get("SF_ALLOWED_ORGS") {
        None => {
            r.problem(
                "SF_ALLOWED_ORGS",
                "is required: comma-separated org ids, or `*` to accept any org",
            );
            None
        }
        Some(raw) => match AllowedOrgs::parse(&raw) {
            Ok(orgs) => Some(orgs),
            Err(problems) => {
                for p in problems {
                    r.problem("SF_ALLOWED_ORGS", p);
                }
                None
            }
        },
    }
}

fn instance_policy(r: &mut Reader<'_>) -> InstancePolicy {
    let mut extra_origins = Vec::new();
    for raw in r
        .get("SF_INSTANCE_ORIGINS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(u) = r.url("SF_INSTANCE_ORIGINS", raw) {
            if !matches!(u.path(), "" | "/") || u.query().is_some() {
                r.problem(
                    "SF_INSTANCE_ORIGINS",
                    format!("`{raw}` must be an origin (scheme://host[:port])"),
                );
            } else {
                extra_origins.push(u);
            }
        }
    }
    InstancePolicy::default().with_extra_origins(&extra_origins)
}

fn token_validation(r: &mut Reader<'_>) -> TokenValidation {
    match r
        .get("SF_TOKEN_VALIDATION")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => TokenValidation::Auto,
        Some(v) if v == "auto" => TokenValidation::Auto,
        Some(v) if v == "userinfo" => TokenValidation::UserInfo,
        Some(v) if v == "introspect" => TokenValidation::Introspect,
        Some(v) => {
            r.problem(
                "SF_TOKEN_VALIDATION",
                format!("must be auto, userinfo or introspect, got `{v}`"),
            );
            TokenValidation::Auto
        }
    }
}

fn accepted_client_ids(r: &mut Reader<'_>) -> Vec<String> {
    let ids: Vec<String> = r
        .get("SF_ACCEPTED_CLIENT_IDS")
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if ids
        .iter()
        .any(|id| id.len() > 256 || !id.bytes().all(|b| b.is_ascii_graphic()))
    {
        r.problem(
            "SF_ACCEPTED_CLIENT_IDS",
            "must be a comma-separated list of Connected App consumer keys",
        );
    }
    ids
}
