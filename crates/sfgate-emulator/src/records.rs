//! The rows of the emulator's tables: an authorization code, an access or refresh token as
//! stored, and the token response handed out. Plain data, so the state that holds them and the
//! code that issues them both depend on this file and not on each other.

use serde::{Deserialize, Serialize};

/// A token response as the emulator issues it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenGrant {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub instance_url: String,
    pub id: String,
    pub issued_at: String,
    pub signature: String,
    pub scope: String,
    pub token_type: String,
    /// `jwt` for a JWT-based access token, as Salesforce says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_format: Option<String>,
    /// On a grant through the Experience Cloud site: the site's URL and id, as Salesforce
    /// adds them (see [`CommunityFields`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfdc_community_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfdc_community_id: Option<String>,
}

/// What a token response through the site says about the site.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CommunityFields {
    /// `sfdc_community_url` (the site's URL) and `sfdc_community_id`, as Salesforce sends them.
    #[default]
    Site,
    /// Neither field, as from orgs that do not send them.
    Omitted,
    /// This URL as `sfdc_community_url` (and the id), whatever it is.
    Url(String),
}

/// The emulated site's id (an Experience Cloud site's `Network` id, key prefix `0DB`).
pub const SITE_ID: &str = "0DB5j000000SitEAAA";

pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user: usize,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub expires_ms: u64,
}

pub(crate) struct AccessGrant {
    pub(crate) user: usize,
    pub(crate) scope: String,
    pub(crate) expires_ms: u64,
    pub(crate) revoked: bool,
    pub(crate) refresh: Option<String>,
}

pub(crate) struct RefreshGrant {
    pub(crate) user: usize,
    pub(crate) scope: String,
    pub(crate) revoked: bool,
}
