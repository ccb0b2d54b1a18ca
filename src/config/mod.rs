//! Configuration, read once at start from the environment (and `.env` for local runs).
//!
//! Everything sfgate needs is validated here, and every problem is reported at once, naming the
//! variable: an operator fixing a Heroku deploy should not have to redeploy once per typo. Code
//! after [`Config::from_lookup`] trusts the values; nothing else reads the environment.
//!
//! One group per concern, each read by the `parse` function of its own file; the groups share
//! one [`reader::Reader`], which collects the problems of all of them.

mod access;
mod allowed_origins;
mod assertion;
mod cache;
mod canvas;
pub mod effective;
mod forward_auth_style;
mod gateway;
mod otel;
mod reader;
mod redis;
mod salesforce;
mod server;
mod session;
#[cfg(test)]
mod tests;
mod upgrade_protocols;
pub mod variables;
pub mod warnings;

pub use crate::unknown_variables::ALLOW_UNKNOWN_VARS;
pub use assertion::AssertionConfig;
pub use cache::CacheConfig;
pub use canvas::CanvasConfig;
pub use forward_auth_style::ForwardAuthStyle;
pub use gateway::GatewayConfig;
pub use otel::{OtelConfig, TraceSampler};
pub use redis::RedisConfig;
pub use salesforce::{SalesforceConfig, TokenValidation};
pub use server::{LogFormat, RateLimit, ServerConfig};
pub use session::SessionConfig;
pub use upgrade_protocols::UpgradeProtocols;
pub use variables::{Variable, VARIABLES};

use crate::prefix_paths::PrefixPaths;
use reader::Reader;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

#[derive(Debug, Clone)]
pub struct Config {
    pub salesforce: SalesforceConfig,
    pub session: SessionConfig,
    pub cache: CacheConfig,
    pub gateway: GatewayConfig,
    pub server: ServerConfig,
    /// Who may pass beyond the org check, globally and per route (docs/authorization.md).
    pub policy: crate::access::Policy,
    pub assertion: AssertionConfig,
    /// Canvas apps (`CANVAS_ENABLED`, `CANVAS_LANDING`).
    pub canvas: CanvasConfig,
    /// Shared state for replicas (`REDIS_URL`); `None` keeps everything in-process.
    pub redis: Option<RedisConfig>,
    /// Trace export over OTLP (`OTEL_EXPORTER_OTLP_ENDPOINT`); `None` keeps tracing off.
    pub otel: Option<OtelConfig>,
    /// Legacy Node.js variable names that were used, so start-up can say so once.
    pub legacy_names_used: Vec<&'static str>,
    /// `SFGATE_ALLOW_UNKNOWN_VARS`: start even when a variable looks like a misspelt sfgate
    /// variable (it then only warns). For environments shared with a program whose variables
    /// happen to be one letter from sfgate's.
    pub allow_unknown_vars: bool,
}

/// One problem with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// A variable sfgate reads, or a misspelt one it found in the environment.
    pub variable: String,
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

/// The callback is a route of its own: it must not be one of sfgate's fixed paths. In gateway
/// mode every path outside sfgate's prefix is the app's, so the callback must also be under it:
/// elsewhere the app would receive Salesforce's code instead of sfgate.
fn callback_path_is_free(r: &mut Reader<'_>, path: &str, paths: &PrefixPaths, gateway_mode: bool) {
    let example = paths.callback_example;
    if paths.fixed().contains(&path) {
        r.problem(
            "SF_REDIRECT_URI",
            format!("its path `{path}` is one of sfgate's own routes; use e.g. {example}"),
        );
    }
    if gateway_mode && (!paths.is_under(path) || path == paths.prefix) {
        let prefix = paths.prefix;
        r.problem(
            "SF_REDIRECT_URI",
            format!(
                "in gateway mode (UPSTREAM_URL set) its path must be under {prefix}/, such as {example}: every other path belongs to the app; got `{path}`"
            ),
        );
    }
}

impl Config {
    /// Reads the process environment (after `.env`, which never overrides real variables).
    /// A variable that looks like a misspelt sfgate variable is a problem too (see
    /// [`Self::from_names`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        let present: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        Self::from_names(&|name| std::env::var(name).ok(), &present)
    }

    /// For tests and demo mode: configuration from a map instead of the environment, with the
    /// same misspelling check over the map's names.
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let present: Vec<String> = map.keys().cloned().collect();
        Self::from_names(&|name| map.get(name).cloned(), &present)
    }

    /// [`Self::from_lookup`], plus a problem for each of `present` that looks like a misspelt
    /// sfgate variable ([`crate::unknown_variables::misspelt`]): a typo such as `SF_LOGIN_URI`
    /// would otherwise leave the default in force (a sandbox user sent to production) with
    /// nothing but a warning. `SFGATE_ALLOW_UNKNOWN_VARS=true` turns these back into warnings.
    pub fn from_names(
        lookup: &dyn Fn(&str) -> Option<String>,
        present: &[String],
    ) -> Result<Self, ConfigError> {
        let result = Self::from_lookup(lookup);
        if allows_unknown_vars(lookup) {
            return result;
        }
        let known = Self::known_variables();
        let misspelt: Vec<ConfigProblem> =
            crate::unknown_variables::misspelt(present.iter().map(String::as_str), &known)
                .into_iter()
                .map(|w| ConfigProblem {
                    variable: w.variable,
                    message: w.message,
                })
                .collect();
        match result {
            Ok(config) if misspelt.is_empty() => Ok(config),
            Ok(_) => Err(ConfigError(misspelt)),
            Err(ConfigError(mut problems)) => {
                problems.extend(misspelt);
                Err(ConfigError(problems))
            }
        }
    }

    /// Every name in [`VARIABLES`], legacy names included: what the misspelling check compares
    /// the environment's names with, so it reads the same table as help and `sfgate config`.
    pub fn known_variables() -> BTreeSet<String> {
        variables::known_names().map(str::to_string).collect()
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
        let scopes = salesforce::scopes(&mut r);
        let salesforce = salesforce::parse(&mut r, scopes.clone());
        let session = session::parse(&mut r);
        let gateway = gateway::parse(&mut r);
        let server = server::parse(&mut r);
        let cache = cache::parse(&mut r);
        let redis = redis::parse(&mut r);
        let otel = otel::parse(&mut r);
        let policy = access::parse(&mut r, &scopes);
        let assertion = assertion::parse(&mut r, gateway.upstream_url.as_ref());
        let canvas = canvas::parse(&mut r);
        // Spelt out (not `ALLOW_UNKNOWN_VARS`) so the documentation test finds it with the others.
        let allow_unknown_vars = r.flag("SFGATE_ALLOW_UNKNOWN_VARS");
        if let Some(sf) = &salesforce {
            let gateway_mode = gateway.upstream_url.is_some();
            callback_path_is_free(&mut r, sf.callback_path(), gateway.paths, gateway_mode);
        }
        let legacy_names_used = std::mem::take(&mut r.legacy);
        match (salesforce, session) {
            (Some(salesforce), Some(session)) if r.problems.is_empty() => Ok(Config {
                salesforce,
                session,
                cache,
                gateway,
                server,
                policy,
                assertion,
                canvas,
                redis,
                otel,
                legacy_names_used,
                allow_unknown_vars,
            }),
            _ => Err(ConfigError(r.problems)),
        }
    }

    /// See [`SalesforceConfig::callback_path`].
    pub fn callback_path(&self) -> &str {
        self.salesforce.callback_path()
    }

    /// See [`SalesforceConfig::is_https`].
    pub fn is_https(&self) -> bool {
        self.salesforce.is_https()
    }

    /// sfgate's home page: `/` when sfgate is the whole site, the sign-in page in gateway mode
    /// (where `/` is the app's). Where logout and a sessionless welcome page send browsers.
    pub fn home_path(&self) -> &'static str {
        if self.gateway.upstream_url.is_some() {
            self.gateway.paths.sign_in
        } else {
            "/"
        }
    }

    /// Where sfgate's pages and examples ask "who am I": `/api/me` when sfgate is the whole
    /// site, `{prefix}/userinfo` in gateway mode (where `/api/me` is the app's).
    pub fn identity_path(&self) -> &'static str {
        if self.gateway.upstream_url.is_some() {
            self.gateway.paths.userinfo
        } else {
            "/api/me"
        }
    }

    /// sfgate's own paths under `PROXY_PREFIX`.
    pub fn paths(&self) -> &'static PrefixPaths {
        self.gateway.paths
    }

    /// See [`SalesforceConfig::public_origin`].
    pub fn public_origin(&self) -> String {
        self.salesforce.public_origin()
    }
}

/// Whether `SFGATE_ALLOW_UNKNOWN_VARS` is on, read the way [`Config::from_lookup`] reads it (which
/// also reports a value that is neither true nor false).
pub(crate) fn allows_unknown_vars(lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    Reader {
        lookup,
        problems: Vec::new(),
        legacy: Vec::new(),
    }
    .flag(ALLOW_UNKNOWN_VARS)
}
