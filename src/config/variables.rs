//! Every environment variable sfgate reads: the one list of known names. `sfgate --help`,
//! `sfgate serve --help` and `sfgate config` print from it, and the configuration reader
//! refuses (in debug builds) to read a name that is not here, so a variable cannot be added
//! without its line of help. A test also checks the converse: every listed name is read.

/// What a variable is for, as help shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Salesforce,
    Session,
    Listener,
    Gateway,
    Cache,
    Authorization,
    Redis,
    Logs,
    Traces,
}

impl Group {
    pub const ALL: [Group; 9] = [
        Group::Salesforce,
        Group::Session,
        Group::Listener,
        Group::Gateway,
        Group::Cache,
        Group::Authorization,
        Group::Redis,
        Group::Logs,
        Group::Traces,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Group::Salesforce => "Salesforce",
            Group::Session => "Browser sessions",
            Group::Listener => "Listener, limits and metrics",
            Group::Gateway => "Gateway mode",
            Group::Cache => "Identity cache",
            Group::Authorization => "Authorization",
            Group::Redis => "Shared state (Redis)",
            Group::Logs => "Logs",
            Group::Traces => "Traces (OpenTelemetry)",
        }
    }
}

/// One variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// The default as people write it; `required` or `unset` where there is none.
    pub default: &'static str,
    /// One line of help.
    pub about: &'static str,
    /// Its value is never printed (`sfgate config` shows `<redacted>`).
    pub secret: bool,
    /// The Node.js app's name for it, still read when the new one is unset.
    pub legacy: Option<&'static str>,
    pub group: Group,
}

const fn var(
    group: Group,
    name: &'static str,
    default: &'static str,
    about: &'static str,
) -> Variable {
    Variable {
        name,
        default,
        about,
        secret: false,
        legacy: None,
        group,
    }
}

const fn secret(mut v: Variable) -> Variable {
    v.secret = true;
    v
}

const fn legacy(mut v: Variable, old: &'static str) -> Variable {
    v.legacy = Some(old);
    v
}

use Group::*;

/// Every variable, in the order help lists them.
pub const VARIABLES: &[Variable] = &[
    legacy(var(Salesforce, "SF_CLIENT_ID", "required", "Connected App consumer key"), "CLIENT_ID"),
    secret(legacy(var(Salesforce, "SF_CLIENT_SECRET", "required", "Connected App consumer secret"), "CLIENT_SECRET_ID")),
    legacy(var(Salesforce, "SF_REDIRECT_URI", "required", "callback URL registered in the Connected App; its path is the callback route (under PROXY_PREFIX in gateway mode)"), "REDIRECT_URI"),
    var(Salesforce, "SF_ALLOWED_ORGS", "required", "comma-separated org ids allowed in, or * for any org"),
    var(Salesforce, "SF_LOGIN_URL", "https://login.salesforce.com", "login host: test.salesforce.com for sandboxes, your My Domain URL, or an Experience Cloud site URL with its path"),
    var(Salesforce, "SF_SCOPES", "api refresh_token", "scopes requested at login"),
    var(Salesforce, "SF_INSTANCE_ORIGINS", "empty", "extra instance origins allowed (comma-separated), e.g. a custom domain"),
    var(Salesforce, "SF_TOKEN_VALIDATION", "auto", "how access tokens are checked: auto, userinfo or introspect"),
    var(Salesforce, "SF_ACCEPTED_CLIENT_IDS", "empty", "other Connected Apps whose JWT access tokens are accepted"),
    var(Salesforce, "SALESFORCE_TIMEOUT", "5", "seconds to wait for Salesforce before failing closed"),
    var(Salesforce, "SF_ENABLE_PASSWORD_FLOW", "false", "enable POST {PROXY_PREFIX}/password (testing only)"),
    var(Salesforce, "CANVAS_ENABLED", "false", "accept Canvas signed requests at POST {PROXY_PREFIX}/canvas (docs/salesforce.md)"),
    var(Salesforce, "CANVAS_LANDING", "/", "where the Canvas iframe lands once its session starts"),
    secret(var(Session, "SESSION_SECRET", "required", "at least 32 bytes; keys the session cookies' encryption")),
    secret(var(Session, "SESSION_SECRET_PREVIOUS", "unset", "the secret being rotated out; still read, never used for new values")),
    var(Session, "SESSION_TTL", "28800", "seconds a browser session lasts without use"),
    var(Session, "SESSION_MAX_AGE", "604800", "seconds a session may last from its login, renewals included"),
    var(Session, "SESSION_RENEWAL_GRACE", "30", "seconds a renewal's result is reused for requests with the old cookie"),
    var(Listener, "PORT", "3000", "listening port"),
    var(Listener, "HOST", "0.0.0.0", "listening address"),
    var(Listener, "REQUEST_TIMEOUT", "30", "seconds before sfgate's own routes answer 504"),
    var(Listener, "TRUST_PROXY", "false", "trust X-Forwarded-* from the proxy in front (client address, original URI)"),
    var(Listener, "RATE_LIMIT_BURST", "20", "login-route requests a client may make at once"),
    var(Listener, "RATE_LIMIT_PER_MINUTE", "60", "sustained login-route requests per client per minute"),
    var(Listener, "MAX_CONNECTIONS", "10000", "client connections served at once"),
    var(Listener, "HEADER_READ_TIMEOUT", "10", "seconds to send a request's headers; idle connection limit"),
    var(Listener, "SERVER_THREADS", "one per core", "serving threads, each with its own event loop and listener"),
    var(Listener, "HTTP1_FAST_PATH", "true", "read and answer bodiless HTTP/1.1 GET and HEAD requests on sfgate's own lean HTTP/1.1 path"),
    var(Listener, "METRICS_ADDR", "unset", "own listener for /metrics, e.g. 127.0.0.1:9100 (gateway mode serves metrics only there)"),
    secret(var(Listener, "METRICS_TOKEN", "unset", "bearer token required to read /metrics")),
    var(Gateway, "UPSTREAM_URL", "unset", "gateway mode: the app every path outside PROXY_PREFIX is proxied to"),
    var(Gateway, "PROXY_PREFIX", "/oauth2", "sfgate's own paths, in both modes (e.g. /sso when the app uses /oauth2)"),
    var(Gateway, "UPSTREAM_TIMEOUT", "30", "seconds to wait for the upstream's response headers"),
    var(Gateway, "UPSTREAM_HTTP2", "false", "HTTP/2 to the upstream"),
    var(Gateway, "UPSTREAM_IDLE_TIMEOUT", "60", "seconds a pooled connection to the upstream may stay unused before it is closed"),
    var(Gateway, "WEBSOCKET_IDLE_TIMEOUT", "600", "seconds a proxied WebSocket may stay silent"),
    var(Gateway, "PASS_ACCESS_TOKEN", "false", "forward the caller's token and instance URL to the upstream"),
    var(Gateway, "SKIP_AUTH_ROUTES", "empty", "METHOD=regex rules the upstream serves without login"),
    var(Gateway, "PROXY_UNDERSCORE_HEADERS", "drop", "request header names with _: drop or keep"),
    var(Gateway, "ALLOW_ENCODED_SLASHES", "false", "let %2F through in proxied paths"),
    var(Gateway, "UPGRADE_PROTOCOLS", "empty", "protocols tunnelled besides WebSocket (never h2c)"),
    var(Gateway, "WEBSOCKET_ALLOWED_ORIGINS", "empty", "origins besides sfgate's own that may open cookie WebSockets"),
    var(Gateway, "FORWARD_AUTH_STYLE", "auto", "front proxy asking {PROXY_PREFIX}/auth: auto, nginx, traefik, caddy or envoy"),
    secret(var(Gateway, "ASSERTION_KEY", "unset", "PEM EC P-256 key signing X-Sfgate-Assertion")),
    var(Gateway, "ASSERTION_AUDIENCE", "origin of UPSTREAM_URL", "the assertion's aud"),
    var(Cache, "IDENTITY_CACHE_TTL", "60", "seconds a validated token is trusted; 0 disables the cache"),
    var(Cache, "IDENTITY_CACHE_MAX", "100000", "most cached identities"),
    var(Cache, "IDENTITY_NEGATIVE_TTL", "10", "seconds a refused token stays refused"),
    var(Cache, "VALIDATION_MISSES_PER_MINUTE", "60", "unconfirmed token validations per client per minute before 429"),
    var(Authorization, "SF_ALLOWED_USERS", "empty", "user ids or usernames allowed; empty: any user"),
    var(Authorization, "SF_ALLOWED_EMAIL_DOMAINS", "empty", "email domains allowed (verified addresses)"),
    var(Authorization, "SF_ALLOWED_USER_TYPES", "STANDARD", "Salesforce user types allowed, or *"),
    var(Authorization, "SF_REQUIRED_PERMISSIONS", "empty", "custom permissions every user must have"),
    var(Authorization, "ROUTE_RULES", "empty", "extra requirements per path, first match wins"),
    secret(var(Redis, "REDIS_URL", "unset", "shared state for replicas: redis:// or rediss://")),
    var(Redis, "REDIS_TLS_VERIFY", "true", "false skips checking the Redis server's certificate"),
    var(Redis, "REDIS_TIMEOUT_MS", "500", "milliseconds one Redis call may take"),
    var(Redis, "REDIS_OUTAGE_CACHE_TTL", "1", "seconds a verdict is cached while revocations cannot be heard"),
    var(Redis, "REDIS_REVOCATIONS_MAX", "100000", "most revocations each replica holds and the shared log keeps"),
    var(Logs, "LOG_FORMAT", "text", "text or json"),
    var(Logs, "RUST_LOG", "info", "log filter (read by the logger)"),
    var(Traces, "OTEL_EXPORTER_OTLP_ENDPOINT", "unset", "collector to export traces to (OTLP/HTTP); /v1/traces is appended"),
    var(Traces, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "unset", "the full traces URL instead (nothing appended)"),
    var(Traces, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "the only protocol spoken"),
    secret(var(Traces, "OTEL_EXPORTER_OTLP_HEADERS", "empty", "name=value,... headers on every export")),
    var(Traces, "OTEL_EXPORTER_OTLP_TIMEOUT", "10000", "milliseconds one export may take"),
    var(Traces, "OTEL_SERVICE_NAME", "sfgate", "service.name of the spans"),
    var(Traces, "OTEL_TRACES_SAMPLER", "parentbased_always_on", "which traces are kept"),
    var(Traces, "OTEL_TRACES_SAMPLER_ARG", "1.0", "the ratio for the traceidratio samplers"),
    var(Traces, "OTEL_RECORD_USER", "false", "the caller's user id on the request span (enduser.id)"),
    var(Logs, "SFGATE_ALLOW_UNKNOWN_VARS", "false", "true: a variable that looks like a misspelt sfgate variable warns instead of stopping the start"),
];

/// Names read by something other than the configuration reader (the logger).
pub const READ_ELSEWHERE: &[&str] = &["RUST_LOG"];

/// The variable named `name` (a current or legacy name).
pub fn find(name: &str) -> Option<&'static Variable> {
    VARIABLES
        .iter()
        .find(|v| v.name == name || v.legacy == Some(name))
}

/// Whether sfgate reads `name` (current or legacy).
pub fn is_known(name: &str) -> bool {
    find(name).is_some()
}

/// Every known name, legacy ones included.
pub fn known_names() -> impl Iterator<Item = &'static str> {
    VARIABLES
        .iter()
        .flat_map(|v| std::iter::once(v.name).chain(v.legacy))
}

/// The help text: every variable with its default and one line, by group.
pub fn help() -> String {
    use std::fmt::Write as _;
    let mut out = String::from("Environment variables (also read from .env):\n");
    for group in Group::ALL {
        let _ = writeln!(out, "\n  {}:", group.title());
        for v in VARIABLES.iter().filter(|v| v.group == group) {
            let legacy = v.legacy.map(|l| format!(" (or {l})")).unwrap_or_default();
            let _ = writeln!(
                out,
                "    {:<29} {} [default: {}]{legacy}",
                v.name, v.about, v.default
            );
        }
    }
    out.push_str(
        "\nSee docs/configuration.md for details; `sfgate config` prints the effective values.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::BTreeSet;

    #[test]
    fn every_variable_the_configuration_reads_is_listed_and_every_listed_one_is_read() {
        // Gateway mode, Redis and an assertion key switch on the reads that depend on them.
        let read = Config::variable_names(&|name| match name {
            "UPSTREAM_URL" => Some("http://127.0.0.1:9".into()),
            "REDIS_URL" => Some("redis://127.0.0.1:6379".into()),
            _ => None,
        });
        let listed: BTreeSet<String> = known_names().map(str::to_string).collect();
        let unlisted: Vec<&String> = read.iter().filter(|n| !listed.contains(*n)).collect();
        assert!(unlisted.is_empty(), "read but not listed: {unlisted:?}");
        let unread: Vec<&String> = listed
            .iter()
            .filter(|n| !read.contains(*n) && !READ_ELSEWHERE.contains(&n.as_str()))
            .collect();
        assert!(unread.is_empty(), "listed but never read: {unread:?}");
    }

    #[test]
    fn names_are_unique_and_help_lists_each_with_its_default() {
        let names: Vec<&str> = known_names().collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len());
        let help = help();
        for v in VARIABLES {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", v.name)))
                .unwrap_or_else(|| panic!("{} missing from help", v.name));
            assert!(
                line.contains(&format!("[default: {}]", v.default)),
                "{line}"
            );
        }
    }
}
