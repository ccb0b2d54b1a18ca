//! The emulator's data: users, orgs, codes, tokens, counters, faults and its clock.

use crate::config::EmulatorConfig;
use crate::faults::{self, Fault};
use crate::records::{AccessGrant, CodeGrant, CommunityFields, RefreshGrant, TokenGrant, SITE_ID};
use crate::signing_keys::JwtKeys;
use crate::users::UserProfile;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    Authorize,
    Token,
    UserInfo,
    Identity,
    Revoke,
    Discovery,
    Jwks,
    Introspect,
}

impl Endpoint {
    pub(crate) const API: [Endpoint; 7] = [
        Endpoint::Token,
        Endpoint::UserInfo,
        Endpoint::Identity,
        Endpoint::Revoke,
        Endpoint::Discovery,
        Endpoint::Jwks,
        Endpoint::Introspect,
    ];

    fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "authorize" => Self::Authorize,
            "token" => Self::Token,
            "userinfo" => Self::UserInfo,
            "identity" => Self::Identity,
            "revoke" => Self::Revoke,
            "discovery" => Self::Discovery,
            "jwks" => Self::Jwks,
            "introspect" => Self::Introspect,
            _ => return None,
        })
    }
}

/// Requests received per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub authorize: u64,
    pub token: u64,
    pub userinfo: u64,
    pub identity: u64,
    pub revoke: u64,
    /// Token calls with `grant_type=refresh_token`.
    #[serde(default)]
    pub refresh: u64,
    #[serde(default)]
    pub discovery: u64,
    #[serde(default)]
    pub jwks: u64,
    #[serde(default)]
    pub introspect: u64,
}

impl Stats {
    /// Every request the emulator received, at any endpoint.
    pub fn total(&self) -> u64 {
        self.authorize
            + self.token
            + self.userinfo
            + self.identity
            + self.revoke
            + self.discovery
            + self.jwks
            + self.introspect
    }
}

pub(crate) struct EmulatorState {
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub require_pkce: bool,
    pub password_grant_refresh_token: bool,
    pub(crate) lifetime: Duration,
    pub(crate) redirect_uris: RwLock<Vec<String>>,
    pub(crate) canvas_url: RwLock<Option<String>>,
    pub(crate) latency_ms: AtomicU64,
    pub(crate) clock_offset_ms: AtomicU64,
    pub(crate) counters: [AtomicU64; 8],
    pub(crate) refresh_calls: AtomicU64,
    /// Requests under the Experience Cloud site's path.
    pub(crate) site_calls: AtomicU64,
    /// The same, per endpoint.
    pub(crate) site_counters: [AtomicU64; 8],
    /// What token responses through the site say about it.
    pub(crate) community_fields: RwLock<CommunityFields>,
    pub(crate) rotate_refresh_tokens: AtomicBool,
    pub(crate) faults: Mutex<HashMap<Endpoint, Fault>>,
    pub(crate) codes: Mutex<HashMap<String, CodeGrant>>,
    pub(crate) access: Mutex<HashMap<String, AccessGrant>>,
    pub(crate) refresh: Mutex<HashMap<String, RefreshGrant>>,
    pub(crate) profiles: Mutex<HashMap<usize, UserProfile>>,
    pub shutdown: watch::Receiver<bool>,
    pub(crate) jwt: JwtKeys,
}

/// Code lifetime documented by Salesforce.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(15 * 60);

impl EmulatorState {
    pub(crate) fn new(
        config: EmulatorConfig,
        base_url: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            jwt: JwtKeys::new(config.jwt_access_tokens, config.jwt_app.clone()),
            base_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            require_pkce: config.require_pkce,
            password_grant_refresh_token: config.password_grant_refresh_token,
            lifetime: config.access_token_lifetime,
            redirect_uris: RwLock::new(config.redirect_uris),
            canvas_url: RwLock::new(config.canvas_url),
            latency_ms: AtomicU64::new(config.latency.as_millis() as u64),
            clock_offset_ms: AtomicU64::new(0),
            counters: Default::default(),
            refresh_calls: AtomicU64::new(0),
            site_calls: AtomicU64::new(0),
            site_counters: Default::default(),
            community_fields: RwLock::new(CommunityFields::default()),
            rotate_refresh_tokens: AtomicBool::new(config.rotate_refresh_tokens),
            faults: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            access: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            profiles: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    pub(crate) fn canvas_url(&self) -> Option<String> {
        self.canvas_url.read().ok().and_then(|u| u.clone())
    }

    pub(crate) fn set_canvas_url(&self, url: &str) {
        if let Ok(mut u) = self.canvas_url.write() {
            *u = Some(url.to_string());
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        real + self.clock_offset_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn advance_time(&self, by: Duration) {
        self.clock_offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_redirect_uri(&self, uri: &str) {
        if let Ok(mut uris) = self.redirect_uris.write() {
            uris.push(uri.to_string());
        }
    }

    pub(crate) fn redirect_uri_registered(&self, uri: &str) -> bool {
        self.redirect_uris
            .read()
            .map(|u| u.iter().any(|r| r == uri))
            .unwrap_or(false)
    }

    pub(crate) fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        if let Ok(mut faults) = self.faults.lock() {
            faults.insert(endpoint, fault);
        }
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        self.latency_ms
            .store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    pub(crate) fn calls(&self, endpoint: Endpoint) -> u64 {
        self.counters[endpoint.index()].load(Ordering::SeqCst)
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            authorize: self.calls(Endpoint::Authorize),
            token: self.calls(Endpoint::Token),
            userinfo: self.calls(Endpoint::UserInfo),
            identity: self.calls(Endpoint::Identity),
            revoke: self.calls(Endpoint::Revoke),
            discovery: self.calls(Endpoint::Discovery),
            jwks: self.calls(Endpoint::Jwks),
            introspect: self.calls(Endpoint::Introspect),
            refresh: self.refresh_calls(),
        }
    }

    pub(crate) fn refresh_calls(&self) -> u64 {
        self.refresh_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn count_refresh_call(&self) {
        self.refresh_calls.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn set_rotation(&self, on: bool) {
        self.rotate_refresh_tokens.store(on, Ordering::SeqCst);
    }

    pub(crate) fn reset_stats(&self) {
        self.refresh_calls.store(0, Ordering::SeqCst);
        for c in self.counters.iter().chain(&self.site_counters) {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// Counts a request under the site's path; `path` is the part after it.
    pub(crate) fn count_site_call(&self, path: &str) {
        self.site_calls.fetch_add(1, Ordering::Relaxed);
        let path = path.strip_prefix(crate::SITE_PATH).unwrap_or(path);
        let endpoint = match path.trim_end_matches('/') {
            "/services/oauth2/authorize" => Endpoint::Authorize,
            "/services/oauth2/token" => Endpoint::Token,
            "/services/oauth2/userinfo" => Endpoint::UserInfo,
            "/services/oauth2/revoke" => Endpoint::Revoke,
            "/services/oauth2/introspect" => Endpoint::Introspect,
            _ => return,
        };
        self.site_counters[endpoint.index()].fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn site_calls_to(&self, endpoint: Endpoint) -> u64 {
        self.site_counters[endpoint.index()].load(Ordering::SeqCst)
    }

    pub(crate) fn set_community_fields(&self, fields: CommunityFields) {
        if let Ok(mut f) = self.community_fields.write() {
            *f = fields;
        }
    }

    /// A grant as the token endpoint answers it: through the site, with the site's fields
    /// (as [`Self::community_fields`] says), as Salesforce adds them to a site login's.
    pub(crate) fn through_site(&self, mut grant: TokenGrant, at_site: bool) -> TokenGrant {
        if !at_site {
            return grant;
        }
        let fields = self
            .community_fields
            .read()
            .map(|f| f.clone())
            .unwrap_or_default();
        let url = match fields {
            CommunityFields::Site => format!("{}{}", self.base_url, crate::SITE_PATH),
            CommunityFields::Omitted => return grant,
            CommunityFields::Url(url) => url,
        };
        grant.sfdc_community_url = Some(url);
        grant.sfdc_community_id = Some(SITE_ID.to_string());
        grant
    }

    /// Counts the call, waits the configured latency and applies the endpoint's fault.
    /// `Some(response)` means the fault answers instead of the endpoint.
    pub(crate) async fn enter(&self, endpoint: Endpoint) -> Option<Response> {
        self.counters[endpoint.index()].fetch_add(1, Ordering::SeqCst);
        if endpoint == Endpoint::Authorize {
            return None;
        }
        let latency = self.latency_ms.load(Ordering::Relaxed);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let fault = self
            .faults
            .lock()
            .ok()
            .and_then(|f| f.get(&endpoint).cloned())
            .unwrap_or_default();
        faults::apply(&fault, self.shutdown.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> EmulatorState {
        let (_tx, rx) = watch::channel(false);
        EmulatorState::new(
            EmulatorConfig::new("id", "secret"),
            "http://127.0.0.1:1".into(),
            rx,
        )
    }

    #[test]
    fn grants_through_the_site_name_it_unless_switched_off() {
        let state = state();
        let grant = || state.issue(0, "api", false);
        let plain = state.through_site(grant(), false);
        assert_eq!(plain.sfdc_community_url, None);
        let site = state.through_site(grant(), true);
        assert_eq!(
            site.sfdc_community_url.as_deref(),
            Some("http://127.0.0.1:1/partners")
        );
        assert_eq!(site.sfdc_community_id.as_deref(), Some(SITE_ID));
        state.set_community_fields(CommunityFields::Omitted);
        let omitted = state.through_site(grant(), true);
        assert_eq!(omitted.sfdc_community_url, None);
        assert_eq!(omitted.sfdc_community_id, None);
        state.set_community_fields(CommunityFields::Url("https://elsewhere.example/x".into()));
        let named = state.through_site(grant(), true);
        assert_eq!(
            named.sfdc_community_url.as_deref(),
            Some("https://elsewhere.example/x")
        );
    }

    #[test]
    fn calls_under_the_site_are_counted_per_endpoint() {
        let state = state();
        state.count_site_call("/services/oauth2/userinfo");
        state.count_site_call("/partners/services/oauth2/userinfo/");
        state.count_site_call("/services/oauth2/token");
        state.count_site_call("/elsewhere");
        assert_eq!(state.site_calls_to(Endpoint::UserInfo), 2);
        assert_eq!(state.site_calls_to(Endpoint::Token), 1);
        assert_eq!(state.site_calls.load(Ordering::Relaxed), 4);
        state.reset_stats();
        assert_eq!(state.site_calls_to(Endpoint::UserInfo), 0);
    }
}
