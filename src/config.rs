//! Configuration, read once at start from the environment (and `.env` for local runs).
//!
//! Everything sfgate needs is validated here, and every problem is reported at once, naming the
//! variable: an operator fixing a Heroku deploy should not have to redeploy once per typo. Code
//! after [`Config::from_lookup`] trusts the values; nothing else reads the environment.

use crate::domain::{AllowedOrgs, InstancePolicy};
use secrecy::{ExposeSecret, SecretString};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use url::Url;

/// How log lines are written: `text` for people, `json` for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The key material for cookie encryption. At least 32 bytes, so it can key AES-256-GCM through
/// HKDF; shorter secrets are refused at start rather than weakening every session.
#[derive(Clone)]
pub struct SessionSecret(SecretString);

impl SessionSecret {
    pub const MIN_LEN: usize = 32;

    pub fn parse(raw: String) -> Result<Self, String> {
        if raw.len() < Self::MIN_LEN {
            return Err(format!(
                "must be at least {} bytes, got {} (generate one with `openssl rand -base64 48`)",
                Self::MIN_LEN,
                raw.len()
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret([REDACTED])")
    }
}

/// One rule of `SKIP_AUTH_ROUTES`: an optional method and a path regex, as in oauth2-proxy.
#[derive(Debug, Clone)]
pub struct SkipAuthRule {
    pub method: Option<axum::http::Method>,
    pub path: regex::Regex,
}

/// Requests per period per client address on a rate-limited route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: Url,
    pub login_url: Url,
    pub scopes: Vec<String>,
    pub allowed_orgs: AllowedOrgs,
    pub instance_policy: InstancePolicy,
    pub session_secret: SessionSecret,
    pub session_ttl: Duration,
    pub host: IpAddr,
    pub port: u16,
    pub identity_cache_ttl: Duration,
    pub identity_cache_max: u64,
    pub identity_negative_ttl: Duration,
    pub salesforce_timeout: Duration,
    pub request_timeout: Duration,
    pub upstream_url: Option<Url>,
    pub upstream_timeout: Duration,
    /// `UPSTREAM_HTTP2`: HTTP/2 to the upstream (h2c prior knowledge, or ALPN over TLS).
    pub upstream_http2: bool,
    /// `WEBSOCKET_IDLE_TIMEOUT`: an upgraded connection quiet this long is closed.
    pub websocket_idle_timeout: Duration,
    pub pass_access_token: bool,
    pub skip_auth_routes: Vec<SkipAuthRule>,
    pub enable_password_flow: bool,
    pub log_format: LogFormat,
    pub metrics_token: Option<SecretString>,
    pub trust_proxy: bool,
    pub rate_limit: RateLimit,
    /// Who may pass beyond the org check, globally and per route (docs/authorization.md).
    pub policy: crate::policy::Policy,
    /// `ASSERTION_KEY`: signs `X-Sfgate-Assertion` when set.
    pub assertion_key: Option<crate::policy::AssertionKey>,
    /// The assertion's `aud`: `ASSERTION_AUDIENCE`, else the origin of `UPSTREAM_URL`.
    pub assertion_audience: Option<String>,
    // Trust boundary (docs/security.md).
    /// `PROXY_UNDERSCORE_HEADERS`: request header names with `_` dropped (default) or kept.
    pub underscore_headers: crate::proxy::header_rule::UnderscoreHeaders,
    /// `ALLOW_ENCODED_SLASHES`: let `%2F` through in proxied paths (dot segments stay refused).
    pub allow_encoded_slashes: bool,
    /// `MAX_CONNECTIONS`: open client connections at most; beyond it new ones wait.
    pub max_connections: usize,
    /// `HEADER_READ_TIMEOUT`: time to send a request's headers, and the longest a connection
    /// (HTTP/1 or HTTP/2) may stay open without a request in progress.
    pub header_read_timeout: Duration,
    /// `VALIDATION_MISSES_PER_MINUTE`: Salesforce token validations one client may cause.
    pub validation_misses_per_minute: u32,
    /// Absolute lifetime of a browser session from its login (`SESSION_MAX_AGE`): renewal
    /// never extends a session past it.
    pub session_max_age: Duration,
    /// How long a session renewal's result is reused for requests that still carry the cookie
    /// from before it (`SESSION_RENEWAL_GRACE`).
    pub session_renewal_grace: Duration,
    /// Shared state for replicas (`REDIS_URL`); `None` keeps everything in-process.
    pub redis: Option<RedisConfig>,
    /// Legacy Node.js variable names that were used, so start-up can say so once.
    pub legacy_names_used: Vec<&'static str>,
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

/// Where the replicas' shared store is and how long sfgate waits for it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The URL as the Redis client reads it; secret because it carries the password.
    pub url: SecretString,
    /// Each Redis call gives up after this long; the request then goes on with local state.
    pub timeout: Duration,
}

/// One problem with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: &'static str,
    pub message: String,
}

/// Every problem found, printed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let noun = if n == 1 { "problem" } else { "problems" };
        writeln!(f, "invalid configuration ({n} {noun}):")?;
        for p in &self.0 {
            writeln!(f, "  {}: {}", p.variable, p.message)?;
        }
        Ok(())
    }
}

/// Reads variables and collects problems, so that one pass reports all of them.
struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
    legacy: Vec<&'static str>,
}

impl Reader<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    fn problem(&mut self, variable: &'static str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            variable,
            message: message.into(),
        });
    }

    fn required(&mut self, name: &'static str, legacy: Option<&'static str>) -> Option<String> {
        if let Some(v) = self.get(name) {
            return Some(v);
        }
        if let Some(old) = legacy {
            if let Some(v) = self.get(old) {
                self.legacy.push(old);
                return Some(v);
            }
        }
        let also = legacy
            .map(|l| format!(" (or legacy {l})"))
            .unwrap_or_default();
        self.problem(name, format!("is required{also} but not set"));
        None
    }

    fn parse_or<T: std::str::FromStr>(&mut self, name: &'static str, default: T, what: &str) -> T {
        match self.get(name) {
            None => default,
            Some(v) => match v.trim().parse() {
                Ok(parsed) => parsed,
                Err(_) => {
                    self.problem(name, format!("must be {what}, got `{}`", v.trim()));
                    default
                }
            },
        }
    }

    fn seconds(&mut self, name: &'static str, default: u64) -> Duration {
        Duration::from_secs(self.parse_or(name, default, "a whole number of seconds"))
    }

    fn flag(&mut self, name: &'static str) -> bool {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => false,
            Some(v) => {
                self.problem(name, format!("must be true or false, got `{v}`"));
                false
            }
        }
    }

    fn url(&mut self, name: &'static str, raw: &str) -> Option<Url> {
        match Url::parse(raw.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                self.problem(
                    name,
                    format!("must be an absolute http(s) URL, got `{raw}`"),
                );
                None
            }
        }
    }
}

/// Loopback hosts may use plain http (the emulator, local development); everything else must
/// use https, because tokens and codes travel over these connections.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl LogFormat {
    /// Part of [`Config`]: logging starts only once the configuration is valid; problems with
    /// the configuration itself are printed to stderr, not logged.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        match lookup("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Self::Text),
            Some(v) if v.is_empty() || v == "text" => Ok(Self::Text),
            Some(v) if v == "json" => Ok(Self::Json),
            Some(v) => Err(format!("must be `text` or `json`, got `{v}`")),
        }
    }
}

impl Config {
    /// Reads the process environment (after `.env`, which never overrides real variables).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// For tests and demo mode: configuration from a map instead of the environment.
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| map.get(name).cloned())
    }

    /// Every variable name the configuration reads, found by recording what [`Self::from_lookup`]
    /// asks for: once against `lookup` (names read only when another is set) and once against an
    /// empty environment (fallback names read only when the preferred one is missing). Deriving
    /// the list this way keeps it complete as variables are added, with no second list to
    /// maintain; start-up uses it to point out misspelt variables.
    pub fn variable_names(lookup: &dyn Fn(&str) -> Option<String>) -> BTreeSet<String> {
        let asked = RefCell::new(BTreeSet::new());
        let _ = Self::from_lookup(&|name| {
            asked.borrow_mut().insert(name.to_string());
            lookup(name)
        });
        let _ = Self::from_lookup(&|name| {
            asked.borrow_mut().insert(name.to_string());
            None
        });
        asked.into_inner()
    }

    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut r = Reader {
            lookup,
            problems: Vec::new(),
            legacy: Vec::new(),
        };

        let client_id = r.required("SF_CLIENT_ID", Some("CLIENT_ID"));
        let client_secret = r.required("SF_CLIENT_SECRET", Some("CLIENT_SECRET_ID"));
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
        let login_raw = r
            .get("SF_LOGIN_URL")
            .unwrap_or_else(|| "https://login.salesforce.com".into());
        let login_url = r.url("SF_LOGIN_URL", &login_raw);
        if let Some(u) = &login_url {
            if u.scheme() != "https" && !is_loopback(u) {
                r.problem("SF_LOGIN_URL", "must use https unless the host is loopback");
            }
        }
        let scopes: Vec<String> = r
            .get("SF_SCOPES")
            .unwrap_or_else(|| "api refresh_token".into())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let allowed_orgs = match r.get("SF_ALLOWED_ORGS") {
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
        };
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
        let session_secret =
            r.required("SESSION_SECRET", None)
                .and_then(|raw| match SessionSecret::parse(raw) {
                    Ok(s) => Some(s),
                    Err(m) => {
                        r.problem("SESSION_SECRET", m);
                        None
                    }
                });
        let session_ttl = r.seconds("SESSION_TTL", 8 * 3600);
        if session_ttl.is_zero() {
            r.problem("SESSION_TTL", "must be at least 1 second");
        }
        let port = r.parse_or("PORT", 3000u16, "a port number (0-65535)");
        let host = r.parse_or(
            "HOST",
            IpAddr::from([0, 0, 0, 0]),
            "an IP address such as 0.0.0.0 or 127.0.0.1",
        );
        let identity_cache_ttl = r.seconds("IDENTITY_CACHE_TTL", 60);
        let identity_cache_max = r.parse_or("IDENTITY_CACHE_MAX", 100_000u64, "a whole number");
        let identity_negative_ttl = r.seconds("IDENTITY_NEGATIVE_TTL", 10);
        let salesforce_timeout = r.seconds("SALESFORCE_TIMEOUT", 5);
        if salesforce_timeout.is_zero() {
            r.problem("SALESFORCE_TIMEOUT", "must be at least 1 second");
        }
        let request_timeout = r.seconds("REQUEST_TIMEOUT", 30);
        if request_timeout.is_zero() {
            r.problem("REQUEST_TIMEOUT", "must be at least 1 second");
        }
        let upstream_url = r
            .get("UPSTREAM_URL")
            .and_then(|raw| r.url("UPSTREAM_URL", &raw));
        if let Some(u) = &upstream_url {
            if u.query().is_some() || u.fragment().is_some() {
                r.problem("UPSTREAM_URL", "must not contain a query or fragment");
            }
            if !u.username().is_empty() || u.password().is_some() {
                // It would be logged and sent as Basic auth on every request; say so instead.
                r.problem("UPSTREAM_URL", "must not contain a user name or password");
            }
        }
        let upstream_timeout = r.seconds("UPSTREAM_TIMEOUT", 30);
        if upstream_timeout.is_zero() {
            r.problem("UPSTREAM_TIMEOUT", "must be at least 1 second");
        }
        let upstream_http2 = r.flag("UPSTREAM_HTTP2");
        let websocket_idle_timeout = r.seconds("WEBSOCKET_IDLE_TIMEOUT", 600);
        if websocket_idle_timeout.is_zero() {
            r.problem("WEBSOCKET_IDLE_TIMEOUT", "must be at least 1 second");
        }
        let pass_access_token = r.flag("PASS_ACCESS_TOKEN");
        let skip_auth_routes = parse_skip_auth_routes(&mut r);
        let enable_password_flow = r.flag("SF_ENABLE_PASSWORD_FLOW");
        let log_format = match LogFormat::from_lookup(lookup) {
            Ok(f) => f,
            Err(m) => {
                r.problem("LOG_FORMAT", m);
                LogFormat::Text
            }
        };
        let metrics_token = r.get("METRICS_TOKEN").map(SecretString::from);
        let trust_proxy = r.flag("TRUST_PROXY");
        let rate_limit = RateLimit {
            burst: r.parse_or("RATE_LIMIT_BURST", 20u32, "a whole number"),
            per_minute: r.parse_or("RATE_LIMIT_PER_MINUTE", 60u32, "a whole number"),
        };
        if rate_limit.burst == 0 {
            r.problem("RATE_LIMIT_BURST", "must be at least 1");
        }
        if rate_limit.per_minute == 0 {
            r.problem("RATE_LIMIT_PER_MINUTE", "must be at least 1");
        }
        // Trust boundary (docs/security.md).
        let underscore_headers = r.parse_or(
            "PROXY_UNDERSCORE_HEADERS",
            crate::proxy::header_rule::UnderscoreHeaders::Drop,
            "`drop` or `keep`",
        );
        let allow_encoded_slashes = r.flag("ALLOW_ENCODED_SLASHES");
        let max_connections = r.parse_or("MAX_CONNECTIONS", 10_000usize, "a whole number");
        if max_connections == 0 {
            r.problem("MAX_CONNECTIONS", "must be at least 1");
        }
        let header_read_timeout = r.seconds("HEADER_READ_TIMEOUT", 10);
        if header_read_timeout.is_zero() {
            r.problem("HEADER_READ_TIMEOUT", "must be at least 1 second");
        }
        let validation_misses_per_minute =
            r.parse_or("VALIDATION_MISSES_PER_MINUTE", 60u32, "a whole number");
        if validation_misses_per_minute == 0 {
            r.problem("VALIDATION_MISSES_PER_MINUTE", "must be at least 1");
        }

        let token_validation = match r
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
        };
        let accepted_client_ids: Vec<String> = r
            .get("SF_ACCEPTED_CLIENT_IDS")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if accepted_client_ids
            .iter()
            .any(|id| id.len() > 256 || !id.bytes().all(|b| b.is_ascii_graphic()))
        {
            r.problem(
                "SF_ACCEPTED_CLIENT_IDS",
                "must be a comma-separated list of Connected App consumer keys",
            );
        }
        // Sessions (issue 11, 12): absolute lifetime and the renewal's reuse window.
        let session_max_age = r.seconds("SESSION_MAX_AGE", 7 * 24 * 3600);
        if session_max_age.is_zero() {
            r.problem("SESSION_MAX_AGE", "must be at least 1 second");
        }
        let session_renewal_grace = r.seconds("SESSION_RENEWAL_GRACE", 30);
        if session_renewal_grace.is_zero() || session_renewal_grace > Duration::from_secs(300) {
            r.problem("SESSION_RENEWAL_GRACE", "must be 1 to 300 seconds");
        }
        if let Some(u) = &redirect_uri {
            if crate::routes::login::FIXED_ROUTES.contains(&u.path()) {
                r.problem(
                    "SF_REDIRECT_URI",
                    format!(
                        "its path `{}` is one of sfgate's own routes; use e.g. /oauth2/callback",
                        u.path()
                    ),
                );
            }
        }

        let redis = parse_redis(&mut r);
        let policy = parse_policy(&mut r, &scopes);
        let (assertion_key, assertion_audience) = parse_assertion(&mut r, upstream_url.as_ref());

        let legacy_names_used = std::mem::take(&mut r.legacy);
        match (
            client_id,
            client_secret,
            redirect_uri,
            login_url,
            allowed_orgs,
            session_secret,
        ) {
            (
                Some(client_id),
                Some(secret),
                Some(redirect_uri),
                Some(login_url),
                Some(allowed_orgs),
                Some(session_secret),
            ) if r.problems.is_empty() => Ok(Config {
                client_id,
                client_secret: SecretString::from(secret),
                redirect_uri,
                login_url,
                scopes,
                allowed_orgs,
                instance_policy: InstancePolicy::default().with_extra_origins(&extra_origins),
                session_secret,
                session_ttl,
                host,
                port,
                identity_cache_ttl,
                identity_cache_max,
                identity_negative_ttl,
                salesforce_timeout,
                request_timeout,
                upstream_url,
                upstream_timeout,
                upstream_http2,
                websocket_idle_timeout,
                pass_access_token,
                skip_auth_routes,
                enable_password_flow,
                log_format,
                metrics_token,
                trust_proxy,
                rate_limit,
                policy,
                assertion_key,
                assertion_audience,
                underscore_headers,
                allow_encoded_slashes,
                max_connections,
                header_read_timeout,
                validation_misses_per_minute,
                session_max_age,
                session_renewal_grace,
                redis,
                legacy_names_used,
                token_validation,
                accepted_client_ids,
            }),
            _ => Err(ConfigError(r.problems)),
        }
    }

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

/// `REDIS_URL` (`redis://` or `rediss://`, as Heroku sets it), `REDIS_TLS_VERIFY` and
/// `REDIS_TIMEOUT_MS`. Heroku Key-Value Store presents a self-signed certificate, so its users
/// set `REDIS_TLS_VERIFY=false` (the client's `#insecure` URL fragment, added here) rather
/// than editing a URL Heroku rotates. The URL is never echoed: it holds the password.
fn parse_redis(r: &mut Reader<'_>) -> Option<RedisConfig> {
    // Verified unless explicitly turned off (`flag` reports a value that is not a boolean).
    let verify = r.get("REDIS_TLS_VERIFY").is_none() || r.flag("REDIS_TLS_VERIFY");
    let timeout_ms = r.parse_or("REDIS_TIMEOUT_MS", 500u64, "a whole number of milliseconds");
    if !(10..=10_000).contains(&timeout_ms) {
        r.problem("REDIS_TIMEOUT_MS", "must be between 10 and 10000");
    }
    let raw = r.get("REDIS_URL")?;
    let raw = raw.trim();
    let scheme_ok = raw.starts_with("redis://") || raw.starts_with("rediss://");
    let mut url = raw.to_string();
    if !verify && raw.starts_with("rediss://") && !raw.contains('#') {
        url.push_str("#insecure");
    }
    if !scheme_ok || redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
        r.problem(
            "REDIS_URL",
            "must be a redis:// or rediss:// URL such as redis://:password@host:6379 \
             (the value is not shown: it holds a password)",
        );
        return None;
    }
    Some(RedisConfig {
        url: SecretString::from(url),
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// Comma-separated values of one variable, each parsed; every bad value is reported.
fn list<T>(
    r: &mut Reader<'_>,
    name: &'static str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let raw = r.get(name).unwrap_or_default();
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match parse(entry) {
            Ok(v) => out.push(v),
            Err(m) => r.problem(name, m),
        }
    }
    out
}

/// `SF_ALLOWED_USERS`, `SF_ALLOWED_EMAIL_DOMAINS`, `SF_ALLOWED_USER_TYPES`,
/// `SF_REQUIRED_PERMISSIONS` and `ROUTE_RULES`.
fn parse_policy(r: &mut Reader<'_>, scopes: &[String]) -> crate::policy::Policy {
    use crate::policy::{self, Policy, Requirements, UserTypes};
    let users = list(r, "SF_ALLOWED_USERS", policy::UserRef::parse);
    let email_domains = list(r, "SF_ALLOWED_EMAIL_DOMAINS", policy::parse_email_domain);
    let user_types = match r.get("SF_ALLOWED_USER_TYPES") {
        Some(v) if v.trim() == "*" => UserTypes::Any,
        Some(_) => UserTypes::Only(list(r, "SF_ALLOWED_USER_TYPES", policy::parse_user_type)),
        None => Policy::default().global.user_types,
    };
    let permissions = list(r, "SF_REQUIRED_PERMISSIONS", policy::parse_permission);
    let routes = match r.get("ROUTE_RULES") {
        None => Vec::new(),
        Some(raw) => policy::parse_route_rules(&raw).unwrap_or_else(|problems| {
            for p in problems {
                r.problem("ROUTE_RULES", p);
            }
            Vec::new()
        }),
    };
    let policy = Policy {
        global: Requirements {
            users,
            email_domains,
            user_types,
            permissions,
        },
        routes,
    };
    // Salesforce reports custom permissions only to a login that asked for this scope.
    if policy.needs_permissions() && !scopes.iter().any(|s| s == "custom_permissions") {
        r.problem(
            "SF_SCOPES",
            "must include custom_permissions when SF_REQUIRED_PERMISSIONS or a perm: route rule is set",
        );
    }
    policy
}

/// `ASSERTION_KEY` and `ASSERTION_AUDIENCE`.
fn parse_assertion(
    r: &mut Reader<'_>,
    upstream: Option<&Url>,
) -> (Option<crate::policy::AssertionKey>, Option<String>) {
    let audience = match r.get("ASSERTION_AUDIENCE") {
        Some(raw) => r.url("ASSERTION_AUDIENCE", &raw).and_then(|u| {
            if matches!(u.path(), "" | "/") && u.query().is_none() {
                Some(u.origin().ascii_serialization())
            } else {
                r.problem(
                    "ASSERTION_AUDIENCE",
                    format!("`{raw}` must be an origin (scheme://host[:port])"),
                );
                None
            }
        }),
        None => upstream.map(|u| u.origin().ascii_serialization()),
    };
    let Some(pem) = r.get("ASSERTION_KEY") else {
        return (None, audience);
    };
    let key = match crate::policy::AssertionKey::parse(&pem) {
        Ok(k) => Some(k),
        Err(m) => {
            r.problem("ASSERTION_KEY", m);
            None
        }
    };
    if audience.is_none() {
        r.problem(
            "ASSERTION_AUDIENCE",
            "is required with ASSERTION_KEY when UPSTREAM_URL is not set (the app's origin, e.g. https://app.example.com)",
        );
    }
    (key, audience)
}

fn parse_skip_auth_routes(r: &mut Reader<'_>) -> Vec<SkipAuthRule> {
    let Some(raw) = r.get("SKIP_AUTH_ROUTES") else {
        return Vec::new();
    };
    let mut rules = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (method, pattern) = match entry.split_once('=') {
            Some((m, p)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic()) => {
                match axum::http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                    Ok(method) => (Some(method), p),
                    Err(_) => {
                        r.problem("SKIP_AUTH_ROUTES", format!("`{m}` is not an HTTP method"));
                        continue;
                    }
                }
            }
            _ => (None, entry),
        };
        match regex::Regex::new(pattern) {
            Ok(path) => rules.push(SkipAuthRule { method, path }),
            Err(e) => r.problem(
                "SKIP_AUTH_ROUTES",
                format!("`{pattern}` is not a valid regex: {e}"),
            ),
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        [
            ("SF_CLIENT_ID", "client"),
            ("SF_CLIENT_SECRET", "secret-value-123"),
            ("SF_REDIRECT_URI", "https://gw.example.com/oauth2/callback"),
            ("SF_ALLOWED_ORGS", "00D5j00000AcMe1"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn minimal_configuration_gets_documented_defaults() {
        let c = Config::from_map(&base()).expect("valid");
        assert_eq!(c.login_url.as_str(), "https://login.salesforce.com/");
        assert_eq!(c.scopes, ["api", "refresh_token"]);
        assert_eq!(c.port, 3000);
        assert_eq!(c.host.to_string(), "0.0.0.0");
        assert_eq!(c.identity_cache_ttl, Duration::from_secs(60));
        assert_eq!(c.identity_cache_max, 100_000);
        assert_eq!(c.salesforce_timeout, Duration::from_secs(5));
        assert_eq!(c.callback_path(), "/oauth2/callback");
        assert!(c.is_https());
        assert!(c.legacy_names_used.is_empty());
    }

    #[test]
    fn session_lifetimes_default_and_are_validated_together() {
        let c = Config::from_map(&base()).expect("valid");
        assert_eq!(c.session_max_age, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(c.session_renewal_grace, Duration::from_secs(30));
        let mut env = base();
        env.insert("SESSION_MAX_AGE".into(), "0".into());
        env.insert("SESSION_RENEWAL_GRACE".into(), "301".into());
        env.insert(
            "SF_REDIRECT_URI".into(),
            "https://gw.example.com/oauth2/welcome".into(),
        );
        let err = Config::from_map(&env).expect_err("invalid");
        let vars: Vec<_> = err.0.iter().map(|p| p.variable).collect();
        for v in [
            "SESSION_MAX_AGE",
            "SESSION_RENEWAL_GRACE",
            "SF_REDIRECT_URI",
        ] {
            assert!(vars.contains(&v), "{v} missing from {vars:?}");
        }
    }

    #[test]
    fn empty_environment_names_every_missing_variable() {
        let err = Config::from_map(&HashMap::new()).expect_err("invalid");
        let vars: Vec<_> = err.0.iter().map(|p| p.variable).collect();
        for v in [
            "SF_CLIENT_ID",
            "SF_CLIENT_SECRET",
            "SF_REDIRECT_URI",
            "SF_ALLOWED_ORGS",
            "SESSION_SECRET",
        ] {
            assert!(vars.contains(&v), "{v} missing from {vars:?}");
        }
    }

    #[test]
    fn legacy_node_names_are_accepted_and_remembered() {
        let mut env = base();
        env.remove("SF_CLIENT_ID");
        env.remove("SF_CLIENT_SECRET");
        env.remove("SF_REDIRECT_URI");
        env.insert("CLIENT_ID".into(), "old".into());
        env.insert("CLIENT_SECRET_ID".into(), "old-secret".into());
        env.insert(
            "REDIRECT_URI".into(),
            "https://gw.example.com/oauth2/success".into(),
        );
        let c = Config::from_map(&env).expect("valid");
        assert_eq!(c.client_id, "old");
        assert_eq!(c.callback_path(), "/oauth2/success");
        assert_eq!(
            c.legacy_names_used,
            ["CLIENT_ID", "CLIENT_SECRET_ID", "REDIRECT_URI"]
        );
    }

    #[test]
    fn bad_values_are_all_reported_and_secrets_are_not_echoed() {
        let mut env = base();
        env.insert("SESSION_SECRET".into(), "short-secret-value".into());
        env.insert("PORT".into(), "eighty".into());
        env.insert("SF_LOGIN_URL".into(), "http://login.salesforce.com".into());
        env.insert("SF_ALLOWED_ORGS".into(), "00D5j00000AcMe1,nope".into());
        env.insert("IDENTITY_CACHE_TTL".into(), "-1".into());
        env.insert("LOG_FORMAT".into(), "xml".into());
        env.insert("SKIP_AUTH_ROUTES".into(), "GET=^/health$,([".into());
        env.insert("SF_REDIRECT_URI".into(), "http://gw.example.com/cb".into());
        let err = Config::from_map(&env).expect_err("invalid");
        let text = err.to_string();
        for v in [
            "SESSION_SECRET",
            "PORT",
            "SF_LOGIN_URL",
            "SF_ALLOWED_ORGS",
            "IDENTITY_CACHE_TTL",
            "LOG_FORMAT",
            "SKIP_AUTH_ROUTES",
            "SF_REDIRECT_URI",
        ] {
            assert!(text.contains(v), "{v} not reported in:\n{text}");
        }
        assert!(!text.contains("short-secret-value"), "{text}");
    }

    #[test]
    fn one_problem_is_counted_in_the_singular() {
        let mut env = base();
        env.remove("SESSION_SECRET");
        let err = Config::from_map(&env).expect_err("invalid").to_string();
        assert!(
            err.starts_with("invalid configuration (1 problem):"),
            "{err}"
        );
        env.remove("SF_CLIENT_ID");
        let err = Config::from_map(&env).expect_err("invalid").to_string();
        assert!(
            err.starts_with("invalid configuration (2 problems):"),
            "{err}"
        );
    }

    #[test]
    fn variable_names_lists_what_the_configuration_reads() {
        let names = Config::variable_names(&|_| None);
        for v in [
            "SF_CLIENT_ID",
            "CLIENT_ID",
            "SF_ALLOWED_ORGS",
            "SESSION_SECRET",
            "SESSION_TTL",
            "IDENTITY_CACHE_TTL",
            "UPSTREAM_URL",
            "LOG_FORMAT",
            "PORT",
        ] {
            assert!(names.contains(v), "{v} missing from {names:?}");
        }
        // Not written as a call argument: tests/cli.rs scans this file for such calls.
        let misspelt = "SF_ALLOWED_ORG";
        assert!(!names.contains(misspelt));
    }

    #[test]
    fn loopback_may_use_http() {
        let mut env = base();
        env.insert(
            "SF_REDIRECT_URI".into(),
            "http://127.0.0.1:3000/oauth2/callback".into(),
        );
        env.insert("SF_LOGIN_URL".into(), "http://127.0.0.1:9999".into());
        env.insert("SF_INSTANCE_ORIGINS".into(), "http://127.0.0.1:9999".into());
        let c = Config::from_map(&env).expect("valid");
        assert!(!c.is_https());
        assert_eq!(
            c.login_endpoint("/services/oauth2/token"),
            "http://127.0.0.1:9999/services/oauth2/token"
        );
        assert_eq!(c.instance_policy.extra_origins(), ["http://127.0.0.1:9999"]);
    }

    #[test]
    fn trust_boundary_settings_have_safe_defaults_and_bad_values_are_all_reported() {
        use crate::proxy::header_rule::UnderscoreHeaders;
        let c = Config::from_map(&base()).expect("valid");
        assert_eq!(c.underscore_headers, UnderscoreHeaders::Drop);
        assert!(!c.allow_encoded_slashes);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.validation_misses_per_minute, 60);
        let mut env = base();
        env.insert("PROXY_UNDERSCORE_HEADERS".into(), "KEEP".into());
        let c = Config::from_map(&env).expect("valid");
        assert_eq!(c.underscore_headers, UnderscoreHeaders::Keep);
        for (k, v) in [
            ("PROXY_UNDERSCORE_HEADERS", "sometimes"),
            ("ALLOW_ENCODED_SLASHES", "maybe"),
            ("MAX_CONNECTIONS", "0"),
            ("HEADER_READ_TIMEOUT", "0"),
            ("VALIDATION_MISSES_PER_MINUTE", "0"),
        ] {
            env.insert(k.into(), v.into());
        }
        let err = Config::from_map(&env).expect_err("invalid");
        let vars: Vec<_> = err.0.iter().map(|p| p.variable).collect();
        assert_eq!(
            vars,
            [
                "PROXY_UNDERSCORE_HEADERS",
                "ALLOW_ENCODED_SLASHES",
                "MAX_CONNECTIONS",
                "HEADER_READ_TIMEOUT",
                "VALIDATION_MISSES_PER_MINUTE"
            ]
        );
    }

    #[test]
    fn rate_limits_default_to_20_at_once_and_60_a_minute_and_refuse_zero() {
        let c = Config::from_map(&base()).expect("valid");
        assert_eq!(
            c.rate_limit,
            RateLimit {
                burst: 20,
                per_minute: 60
            }
        );
        assert!(!c.trust_proxy);
        assert!(c.metrics_token.is_none());
        let mut env = base();
        env.insert("RATE_LIMIT_BURST".into(), "0".into());
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
        let err = Config::from_map(&env).expect_err("invalid");
        let vars: Vec<_> = err.0.iter().map(|p| p.variable).collect();
        assert!(vars.contains(&"RATE_LIMIT_BURST") && vars.contains(&"RATE_LIMIT_PER_MINUTE"));
    }

    #[test]
    fn skip_auth_rules_take_an_optional_method() {
        let mut env = base();
        env.insert("SKIP_AUTH_ROUTES".into(), "GET=^/public/,^/health$".into());
        let c = Config::from_map(&env).expect("valid");
        assert_eq!(c.skip_auth_routes.len(), 2);
        assert_eq!(c.skip_auth_routes[0].method, Some(axum::http::Method::GET));
        assert!(c.skip_auth_routes[1].method.is_none());
    }

    #[test]
    fn gateway_settings_are_read_and_checked() {
        let c = Config::from_map(&base()).expect("valid");
        assert!(c.upstream_url.is_none());
        assert_eq!(c.upstream_timeout, Duration::from_secs(30));
        assert!(!c.pass_access_token);

        let mut env = base();
        env.insert("UPSTREAM_URL".into(), "http://127.0.0.1:8080/app".into());
        env.insert("UPSTREAM_TIMEOUT".into(), "5".into());
        env.insert("PASS_ACCESS_TOKEN".into(), "true".into());
        let c = Config::from_map(&env).expect("valid");
        assert_eq!(
            c.upstream_url.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:8080/app")
        );
        assert_eq!(c.upstream_timeout, Duration::from_secs(5));
        assert!(c.pass_access_token);

        let mut env = base();
        env.insert("UPSTREAM_URL".into(), "http://user:pw@app:8080".into());
        env.insert("UPSTREAM_TIMEOUT".into(), "0".into());
        let err = Config::from_map(&env).expect_err("invalid").to_string();
        assert!(err.contains("UPSTREAM_URL"), "{err}");
        assert!(err.contains("UPSTREAM_TIMEOUT"), "{err}");
        assert!(!err.contains("pw"), "{err}");
    }

    #[test]
    fn authorization_settings_are_read_and_every_problem_reported() {
        let c = Config::from_map(&base()).expect("valid");
        assert_eq!(
            c.policy.global.user_types,
            crate::policy::UserTypes::Only(vec!["STANDARD".into()])
        );
        assert!(c.policy.routes.is_empty() && c.assertion_key.is_none());

        let mut env = base();
        env.insert("SF_SCOPES".into(), "api custom_permissions".into());
        env.insert(
            "SF_ALLOWED_USERS".into(),
            "0055j00000AlIcE, Bob@Acme.example".into(),
        );
        env.insert("SF_ALLOWED_EMAIL_DOMAINS".into(), "ACME.example".into());
        env.insert("SF_ALLOWED_USER_TYPES".into(), "*".into());
        env.insert("SF_REQUIRED_PERMISSIONS".into(), "Sfgate_User".into());
        env.insert("ROUTE_RULES".into(), "/admin/=perm:Sfgate_Admin".into());
        let c = Config::from_map(&env).expect("valid");
        assert_eq!(c.policy.global.users.len(), 2);
        assert_eq!(c.policy.global.email_domains, ["acme.example"]);
        assert_eq!(c.policy.global.user_types, crate::policy::UserTypes::Any);
        assert!(c.policy.needs_permissions() && c.policy.needs_profile());

        let mut env = base();
        env.insert("SF_ALLOWED_USERS".into(), "00D5j00000AcMe1".into());
        env.insert("SF_ALLOWED_EMAIL_DOMAINS".into(), "*.acme.example".into());
        env.insert("SF_ALLOWED_USER_TYPES".into(), "STANDARD,bad type".into());
        env.insert("SF_REQUIRED_PERMISSIONS".into(), "Sfgate_Admin".into());
        env.insert("ROUTE_RULES".into(), "/a=perm:A;/b=prem:B".into());
        env.insert("ASSERTION_KEY".into(), "not a key".into());
        let err = Config::from_map(&env).expect_err("invalid").to_string();
        for v in [
            "SF_ALLOWED_USERS",
            "SF_ALLOWED_EMAIL_DOMAINS",
            "SF_ALLOWED_USER_TYPES",
            "SF_SCOPES",
            "ROUTE_RULES: rule 2 (`/b=prem:B`), at character 4",
            "ASSERTION_KEY",
            "ASSERTION_AUDIENCE",
        ] {
            assert!(err.contains(v), "{v} not reported in:\n{err}");
        }
    }

    #[test]
    fn upstream_http2_and_websocket_idle_timeout_are_read_and_checked() {
        let c = Config::from_map(&base()).expect("valid");
        assert!(!c.upstream_http2);
        assert_eq!(c.websocket_idle_timeout, Duration::from_secs(600));

        let mut env = base();
        env.insert("UPSTREAM_HTTP2".into(), "true".into());
        env.insert("WEBSOCKET_IDLE_TIMEOUT".into(), "45".into());
        let c = Config::from_map(&env).expect("valid");
        assert!(c.upstream_http2);
        assert_eq!(c.websocket_idle_timeout, Duration::from_secs(45));

        let mut env = base();
        env.insert("UPSTREAM_HTTP2".into(), "sometimes".into());
        env.insert("WEBSOCKET_IDLE_TIMEOUT".into(), "0".into());
        let err = Config::from_map(&env).expect_err("invalid").to_string();
        assert!(err.contains("UPSTREAM_HTTP2"), "{err}");
        assert!(err.contains("WEBSOCKET_IDLE_TIMEOUT"), "{err}");
    }

    #[test]
    fn token_validation_and_accepted_client_ids() {
        let c = Config::from_map(&base()).expect("valid");
        assert_eq!(c.token_validation, TokenValidation::Auto);
        assert!(c.accepted_client_ids.is_empty());
        let mut env = base();
        env.insert("SF_TOKEN_VALIDATION".into(), " Introspect ".into());
        env.insert("SF_ACCEPTED_CLIENT_IDS".into(), "a, b,,c ".into());
        let c = Config::from_map(&env).expect("valid");
        assert_eq!(c.token_validation, TokenValidation::Introspect);
        assert_eq!(c.accepted_client_ids, ["a", "b", "c"]);
        env.insert("SF_TOKEN_VALIDATION".into(), "local".into());
        env.insert("SF_ACCEPTED_CLIENT_IDS".into(), "ok, has space".into());
        let err = Config::from_map(&env).expect_err("invalid");
        let named: Vec<_> = err.0.iter().map(|p| p.variable).collect();
        assert!(named.contains(&"SF_TOKEN_VALIDATION"), "{err}");
        assert!(named.contains(&"SF_ACCEPTED_CLIENT_IDS"), "{err}");
    }

    // [redis] REDIS_URL and its companions.
    #[test]
    fn redis_settings_are_optional_checked_and_never_echoed() {
        let c = Config::from_map(&base()).expect("valid");
        assert!(
            c.redis.is_none(),
            "without REDIS_URL everything stays in-process"
        );

        let mut env = base();
        env.insert(
            "REDIS_URL".into(),
            "rediss://:p4ss@ec2-1-2-3-4.compute-1.amazonaws.com:6380".into(),
        );
        let c = Config::from_map(&env).expect("valid");
        let redis = c.redis.expect("redis");
        assert_eq!(redis.timeout, Duration::from_millis(500));
        assert!(!redis.url.expose_secret().ends_with("#insecure"));

        // Heroku's self-signed certificate: verification off through a variable.
        env.insert("REDIS_TLS_VERIFY".into(), "false".into());
        env.insert("REDIS_TIMEOUT_MS".into(), "250".into());
        let redis = Config::from_map(&env).expect("valid").redis.expect("redis");
        assert!(redis.url.expose_secret().ends_with("#insecure"));
        assert_eq!(redis.timeout, Duration::from_millis(250));
        assert!(!format!("{redis:?}").contains("p4ss"));

        let mut env = base();
        env.insert(
            "REDIS_URL".into(),
            "http://:s3cret@redis.example.com:6379".into(),
        );
        env.insert("REDIS_TLS_VERIFY".into(), "maybe".into());
        env.insert("REDIS_TIMEOUT_MS".into(), "0".into());
        let err = Config::from_map(&env).expect_err("invalid").to_string();
        assert!(err.contains("REDIS_URL"), "{err}");
        assert!(err.contains("REDIS_TLS_VERIFY"), "{err}");
        assert!(err.contains("REDIS_TIMEOUT_MS"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
