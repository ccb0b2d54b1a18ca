//! Who is calling: the identity Salesforce confirmed for a token, as every layer above the
//! Salesforce client sees it (route rules, identity headers, caches, the session cookie).
//!
//! It lives here, below the configuration and the Salesforce client, because rules parsed by
//! the configuration are judged against it: defined in the client, it tied the configuration
//! to the code that reads it.

use super::{InstanceUrl, OrgId, SalesforceId};
use serde::Serialize;

/// Who is calling, as confirmed by Salesforce. Protected handlers receive this.
///
/// The ids and the instance are always known: they are what admits or refuses a caller. The
/// profile fields (username, display name, email) come from `userinfo`; a JWT access token
/// carries none of them, and when that call fails they stay `None` rather than becoming empty
/// strings that a rule or a header could mistake for a value. See [`Identity::has_profile`].
///
/// Every cached token holds one, so its text fields are boxed strings (no spare capacity, 8
/// bytes less each than a `String`) and its instance URL is shared: with the cache entry
/// around it, that keeps an identity in a smaller allocation class (docs/benchmark.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub user_id: SalesforceId,
    pub organization_id: OrgId,
    pub username: Option<Box<str>>,
    pub display_name: Option<Box<str>>,
    pub email: Option<Box<str>>,
    /// Salesforce's `email_verified`: an email-domain rule admits only verified addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `STANDARD` for internal users; portal, partner and guest users have their own types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_type: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// The custom permissions (API names) granted to the user, among those associated with the
    /// Connected App; `None` when Salesforce said nothing (the `custom_permissions` scope was
    /// not granted), which a permission rule treats as "not granted".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_permissions: Option<Vec<String>>,
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
            email_verified: None,
            user_type: None,
            active: None,
            custom_permissions: None,
            instance_url,
        }
    }

    /// Whether the profile fields were filled in from `userinfo`.
    pub fn has_profile(&self) -> bool {
        self.username.is_some()
    }

    /// Fills the profile fields from a profile of the same user.
    pub fn with_profile(mut self, profile: &Profile) -> Self {
        self.username = Some(profile.username.as_str().into());
        self.display_name = Some(profile.display_name.as_str().into());
        self.email = profile.email.as_deref().map(Into::into);
        self.email_verified = profile.email_verified;
        self.user_type = profile.user_type.as_deref().map(Into::into);
        self.active = profile.active;
        self.custom_permissions = profile.custom_permissions.clone();
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
            username: self.username.as_deref()?.to_owned(),
            display_name: self
                .display_name
                .as_deref()
                .or(self.username.as_deref())?
                .to_owned(),
            email: self.email.as_deref().map(str::to_owned),
            email_verified: self.email_verified,
            user_type: self.user_type.as_deref().map(str::to_owned),
            active: self.active,
            custom_permissions: self.custom_permissions.clone(),
        })
    }
}

/// oauth2-proxy's `userinfo` shape of an identity (its `/oauth2/userinfo` answer): `user`
/// and `preferredUsername` beside sfgate's own fields (those of `/api/me`), so a page written
/// for either reads it. `user` is the Salesforce user id, as in `X-Forwarded-User`.
#[derive(Serialize)]
pub struct UserInfo<'a> {
    #[serde(flatten)]
    identity: &'a Identity,
    user: &'a SalesforceId,
    #[serde(rename = "preferredUsername")]
    preferred_username: Option<&'a str>,
}

impl<'a> UserInfo<'a> {
    pub fn new(identity: &'a Identity) -> Self {
        Self {
            identity,
            user: &identity.user_id,
            preferred_username: identity.username.as_deref(),
        }
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
    pub email_verified: Option<bool>,
    pub user_type: Option<String>,
    pub active: Option<bool>,
    pub custom_permissions: Option<Vec<String>>,
}
