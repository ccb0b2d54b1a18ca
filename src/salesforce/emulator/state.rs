//! The emulator's data: users, orgs, codes, tokens, counters, faults and its clock.

use super::faults::{self, Fault};
use super::EmulatorConfig;
use crate::domain::SalesforceId;
use axum::response::Response;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// A demo user of one of the two demo orgs.
#[derive(Debug, Clone, Copy)]
pub struct DemoUser {
    pub username: &'static str,
    pub password: &'static str,
    pub display_name: &'static str,
    pub email: &'static str,
    /// 15-character user id.
    pub user_id: &'static str,
    /// 15-character org id.
    pub org_id: &'static str,
    pub org_name: &'static str,
}

const USERS: [DemoUser; 3] = [
    DemoUser {
        username: "alice@acme.example",
        password: "alice-demo-1",
        display_name: "Alice Admin",
        email: "alice@acme.example",
        user_id: "0055j00000AlIcE",
        org_id: "00D5j00000AcMe1",
        org_name: "Acme",
    },
    DemoUser {
        username: "bob@acme.example",
        password: "bob-demo-2",
        display_name: "Bob Builder",
        email: "bob@acme.example",
        user_id: "0055j00000BoB01",
        org_id: "00D5j00000AcMe1",
        org_name: "Acme",
    },
    DemoUser {
        username: "carol@globex.example",
        password: "carol-demo-3",
        display_name: "Carol Chen",
        email: "carol@globex.example",
        user_id: "0055j00000CaRoL",
        org_id: "00D5j00000GlBx2",
        org_name: "Globex",
    },
];

/// Alice and Bob in Acme, Carol in Globex.
pub fn demo_users() -> &'static [DemoUser] {
    &USERS
}

pub(super) fn user_index(username: &str) -> Option<usize> {
    USERS
        .iter()
        .position(|u| u.username.eq_ignore_ascii_case(username.trim()))
}

pub(super) fn user(index: usize) -> &'static DemoUser {
    &USERS[index % USERS.len()]
}

pub(super) fn long_id(short: &str) -> String {
    SalesforceId::parse(short)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| short.to_string())
}

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
    pub(super) const API: [Endpoint; 7] = [
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

    pub(super) fn from_name(name: &str) -> Option<Self> {
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
}

pub(super) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user: usize,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub expires_ms: u64,
}

struct AccessGrant {
    user: usize,
    expires_ms: u64,
    revoked: bool,
    refresh: Option<String>,
}

struct RefreshGrant {
    user: usize,
    scope: String,
    revoked: bool,
}

pub(super) struct EmulatorState {
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub require_pkce: bool,
    pub password_grant_refresh_token: bool,
    lifetime: Duration,
    redirect_uris: RwLock<Vec<String>>,
    latency_ms: AtomicU64,
    clock_offset_ms: AtomicU64,
    counters: [AtomicU64; 8],
    refresh_calls: AtomicU64,
    rotate_refresh_tokens: AtomicBool,
    faults: Mutex<HashMap<Endpoint, Fault>>,
    codes: Mutex<HashMap<String, CodeGrant>>,
    access: Mutex<HashMap<String, AccessGrant>>,
    refresh: Mutex<HashMap<String, RefreshGrant>>,
    pub shutdown: watch::Receiver<bool>,
    pub(super) jwt: super::jwt::JwtKeys,
}

/// Code lifetime documented by Salesforce.
pub(super) const CODE_LIFETIME: Duration = Duration::from_secs(15 * 60);

impl EmulatorState {
    pub(super) fn new(
        config: EmulatorConfig,
        base_url: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            jwt: super::jwt::JwtKeys::new(config.jwt_access_tokens, config.jwt_app.clone()),
            base_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            require_pkce: config.require_pkce,
            password_grant_refresh_token: config.password_grant_refresh_token,
            lifetime: config.access_token_lifetime,
            redirect_uris: RwLock::new(config.redirect_uris),
            latency_ms: AtomicU64::new(config.latency.as_millis() as u64),
            clock_offset_ms: AtomicU64::new(0),
            counters: Default::default(),
            refresh_calls: AtomicU64::new(0),
            rotate_refresh_tokens: AtomicBool::new(config.rotate_refresh_tokens),
            faults: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            access: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        real + self.clock_offset_ms.load(Ordering::Relaxed)
    }

    pub(super) fn advance_time(&self, by: Duration) {
        self.clock_offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) fn add_redirect_uri(&self, uri: &str) {
        if let Ok(mut uris) = self.redirect_uris.write() {
            uris.push(uri.to_string());
        }
    }

    pub(super) fn redirect_uri_registered(&self, uri: &str) -> bool {
        self.redirect_uris
            .read()
            .map(|u| u.iter().any(|r| r == uri))
            .unwrap_or(false)
    }

    pub(super) fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        if let Ok(mut faults) = self.faults.lock() {
            faults.insert(endpoint, fault);
        }
    }

    pub(super) fn set_latency(&self, latency: Duration) {
        self.latency_ms
            .store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) fn calls(&self, endpoint: Endpoint) -> u64 {
        self.counters[endpoint.index()].load(Ordering::SeqCst)
    }

    pub(super) fn stats(&self) -> Stats {
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

    pub(super) fn refresh_calls(&self) -> u64 {
        self.refresh_calls.load(Ordering::SeqCst)
    }

    pub(super) fn count_refresh_call(&self) {
        self.refresh_calls.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn set_rotation(&self, on: bool) {
        self.rotate_refresh_tokens.store(on, Ordering::SeqCst);
    }

    pub(super) fn reset_stats(&self) {
        self.refresh_calls.store(0, Ordering::SeqCst);
        for c in &self.counters {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// Counts the call, waits the configured latency and applies the endpoint's fault.
    /// `Some(response)` means the fault answers instead of the endpoint.
    pub(super) async fn enter(&self, endpoint: Endpoint) -> Option<Response> {
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

    pub(super) fn store_code(&self, grant: CodeGrant) -> String {
        let code = format!("aPrx{}", random(48));
        if let Ok(mut codes) = self.codes.lock() {
            codes.insert(code.clone(), grant);
        }
        code
    }

    /// Removes the code: a code is consumed by its first use, even a failed one.
    pub(super) fn take_code(&self, code: &str) -> Option<CodeGrant> {
        self.codes.lock().ok()?.remove(code)
    }

    pub(super) fn identity_url(&self, user: usize) -> String {
        let u = self::user(user);
        format!(
            "{}/id/{}/{}",
            self.base_url,
            long_id(u.org_id),
            long_id(u.user_id)
        )
    }

    /// Issues an access token (and a refresh token when asked), signed like Salesforce's.
    pub(super) fn issue(&self, user: usize, scope: &str, with_refresh: bool) -> TokenGrant {
        let refresh = with_refresh.then(|| format!("5Aep861{}", random(80)));
        if let (Some(rt), Ok(mut map)) = (&refresh, self.refresh.lock()) {
            map.insert(
                rt.clone(),
                RefreshGrant {
                    user,
                    scope: scope.to_string(),
                    revoked: false,
                },
            );
        }
        self.issue_access(user, scope, refresh)
    }

    fn issue_access(&self, user: usize, scope: &str, refresh: Option<String>) -> TokenGrant {
        let client_id = self.client_id.clone();
        self.issue_access_as(user, scope, refresh, &client_id, self.jwt.enabled())
    }

    /// An access token issued to `client_id`: a JWT-based one when `jwt`, else opaque.
    pub(super) fn issue_access_as(
        &self,
        user: usize,
        scope: &str,
        refresh: Option<String>,
        client_id: &str,
        jwt: bool,
    ) -> TokenGrant {
        let now = self.now_ms();
        let access_token = if jwt {
            self.mint_jwt(user, scope, client_id)
        } else {
            format!("{}!{}", self::user(user).org_id, random(96))
        };
        if let Ok(mut map) = self.access.lock() {
            map.insert(
                access_token.clone(),
                AccessGrant {
                    user,
                    expires_ms: now + self.lifetime.as_millis() as u64,
                    revoked: false,
                    refresh: refresh.clone(),
                },
            );
        }
        let id = self.identity_url(user);
        let issued_at = now.to_string();
        TokenGrant {
            signature: sign(&self.client_secret, &id, &issued_at),
            access_token,
            refresh_token: refresh,
            instance_url: self.base_url.clone(),
            id,
            issued_at,
            scope: scope.to_string(),
            token_type: "Bearer".to_string(),
            token_format: jwt.then(|| "jwt".to_string()),
        }
    }

    /// A new access token for a valid refresh token. Without rotation no new refresh token
    /// comes back, as at Salesforce; with rotation a new one does, and the one used is spent
    /// (checked and spent under one lock, so two concurrent uses cannot both succeed).
    pub(super) fn refresh(&self, refresh_token: &str) -> Option<TokenGrant> {
        let rotate = self.rotate_refresh_tokens.load(Ordering::SeqCst);
        let (user, scope, next) = {
            let mut map = self.refresh.lock().ok()?;
            let grant = map.get_mut(refresh_token).filter(|g| !g.revoked)?;
            let (user, scope) = (grant.user, grant.scope.clone());
            let next = rotate.then(|| {
                grant.revoked = true;
                format!("5Aep861{}", random(80))
            });
            if let Some(next) = &next {
                map.insert(
                    next.clone(),
                    RefreshGrant {
                        user,
                        scope: scope.clone(),
                        revoked: false,
                    },
                );
            }
            (user, scope, next)
        };
        match next {
            Some(next) => Some(self.issue_access(user, &scope, Some(next))),
            None => {
                let mut grant = self.issue_access(user, &scope, Some(refresh_token.to_string()));
                grant.refresh_token = None;
                Some(grant)
            }
        }
    }

    /// The user of a live access token.
    pub(super) fn access_user(&self, token: &str) -> Option<usize> {
        let now = self.now_ms();
        let map = self.access.lock().ok()?;
        map.get(token)
            .filter(|g| !g.revoked && g.expires_ms > now)
            .map(|g| g.user)
    }

    /// The user and expiry (ms) of a live access token.
    pub(super) fn live_access(&self, token: &str) -> Option<(usize, u64)> {
        let now = self.now_ms();
        let map = self.access.lock().ok()?;
        map.get(token)
            .filter(|g| !g.revoked && g.expires_ms > now)
            .map(|g| (g.user, g.expires_ms))
    }

    /// How long access tokens live (the org's session timeout).
    pub(super) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub(super) fn expire_access_tokens(&self) {
        let now = self.now_ms();
        if let Ok(mut map) = self.access.lock() {
            for grant in map.values_mut() {
                grant.expires_ms = grant.expires_ms.min(now);
            }
        }
    }

    /// Revokes an access or refresh token; a refresh token takes its access tokens with it.
    pub(super) fn revoke(&self, token: &str) -> bool {
        if let Ok(mut map) = self.access.lock() {
            if let Some(grant) = map.get_mut(token) {
                grant.revoked = true;
                return true;
            }
        }
        let found = match self.refresh.lock() {
            Ok(mut map) => match map.get_mut(token) {
                Some(grant) => {
                    grant.revoked = true;
                    true
                }
                None => false,
            },
            Err(_) => false,
        };
        if found {
            if let Ok(mut map) = self.access.lock() {
                for grant in map
                    .values_mut()
                    .filter(|g| g.refresh.as_deref() == Some(token))
                {
                    grant.revoked = true;
                }
            }
        }
        found
    }

    pub(super) fn is_revoked(&self, token: &str) -> bool {
        if let Some(g) = self
            .access
            .lock()
            .ok()
            .and_then(|m| m.get(token).map(|g| g.revoked))
        {
            return g;
        }
        self.refresh
            .lock()
            .ok()
            .and_then(|m| m.get(token).map(|g| g.revoked))
            .unwrap_or(false)
    }
}

pub(super) fn random(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

pub(super) fn sign(secret: &str, id: &str, issued_at: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// base64url(SHA-256(verifier)) without padding, as RFC 7636 S256.
pub(super) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
