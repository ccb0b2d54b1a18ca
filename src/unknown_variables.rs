//! Start-up checks of the variable names in the environment: which unknown names stop the
//! configuration from loading, and which only earn a warning (`config/warnings.rs`).
//!
//! It imports nothing of the configuration, which uses it: the configuration refuses to load
//! with a misspelt name.
//!
//! A misspelt variable is silently ignored otherwise, so the default or a "missing" error hides
//! the real mistake (`SF_LOGIN_URI` leaves the production login host in force for a sandbox
//! user). The rule, in one place ([`classify`]):
//! - a name one or two edits from a name sfgate reads (at least [`MIN_NEAR_MISS_LEN`] long, so
//!   `HOME` is not taken for `HOST`), or an unknown name in sfgate's own namespaces `SF_` and
//!   `SFGATE_`, is an error: the configuration refuses to load ([`crate::config::Config::from_names`])
//!   unless `SFGATE_ALLOW_UNKNOWN_VARS=true`, which turns it into a warning;
//! - any other unknown name with the first segment of an sfgate variable (`SESSION_`,
//!   `IDENTITY_`, ...) is a warning: those segments are common words other programs use too;
//! - everything else (`PATH`, `DATABASE_URL`, `RUST_LOG`, `DYNO`, `OTEL_*`, ...) is left alone.

use std::collections::BTreeSet;
use std::fmt;

/// The variable that turns misspelt-variable errors into warnings.
pub const ALLOW_UNKNOWN_VARS: &str = "SFGATE_ALLOW_UNKNOWN_VARS";

/// One piece of advice about one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub variable: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// How sure sfgate is that an unknown name was meant for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    /// A near miss of a name sfgate reads, or in its own namespace: stops the start.
    Misspelt,
    /// Only shares a first segment with sfgate's names: a warning.
    Unknown,
}

/// sfgate's own namespaces: nothing else is expected to use them, so an unknown name there is a
/// mistake even when it is far from every known name.
const OWN_PREFIXES: &[&str] = &["SF_", "SFGATE_"];

/// First name segments sfgate's variables share with other software (the Node.js app's legacy
/// names, CGI's `REQUEST_METHOD`, Heroku Redis's `REDIS_TLS_URL`, Rust's own `RUST_BACKTRACE`):
/// an unknown name starting with one of these is not flagged unless it is a near miss.
const SHARED_SEGMENTS: &[&str] = &[
    "CLIENT", "REDIRECT", "LOG", "REQUEST", "RUST", "REDIS", "PASS", "TRUST", "HTTP", "DATABASE",
];

/// Namespaces of other software that sfgate's environment routinely carries: never flagged,
/// even one letter from an sfgate name. OpenTelemetry SDKs read dozens of `OTEL_*` variables
/// (the standard's, whichever sfgate itself reads).
const FOREIGN_PREFIXES: &[&str] = &["OTEL_"];

/// Variables read outside [`Config`] (by the log filter and the Rust runtime).
const READ_ELSEWHERE: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "RUST_LIB_BACKTRACE"];

/// Names shorter than this are only flagged with an sfgate prefix: `HOME` is one letter from
/// `HOST` and is not a typo.
const MIN_NEAR_MISS_LEN: usize = 8;
/// Most edits between a misspelt name and the variable it was meant to be.
const MAX_EDITS: usize = 2;

/// Names in `present` that are near misses of `known` names or unknown in sfgate's own
/// namespaces: configuration errors, each with the closest known name when one is close.
pub(crate) fn misspelt<'a>(
    present: impl IntoIterator<Item = &'a str>,
    known: &BTreeSet<String>,
) -> Vec<Warning> {
    findings(present, known)
        .into_iter()
        .filter(|(_, s)| *s == Severity::Misspelt)
        .map(|(mut w, _)| {
            w.message.push_str(&format!(
                " (if it belongs to another program, set {ALLOW_UNKNOWN_VARS}=true)"
            ));
            w
        })
        .collect()
}

/// Names in `present` that look like sfgate's but are neither known nor misspelt: warnings.
pub(crate) fn unknown_variables<'a>(
    present: impl IntoIterator<Item = &'a str>,
    known: &BTreeSet<String>,
) -> Vec<Warning> {
    findings(present, known)
        .into_iter()
        .filter(|(_, s)| *s == Severity::Unknown)
        .map(|(w, _)| w)
        .collect()
}

/// Every name [`misspelt`] and [`unknown_variables`] list, all as warnings: what is shown when
/// `SFGATE_ALLOW_UNKNOWN_VARS` turns the errors into warnings.
pub(crate) fn all_unknown<'a>(
    present: impl IntoIterator<Item = &'a str>,
    known: &BTreeSet<String>,
) -> Vec<Warning> {
    findings(present, known)
        .into_iter()
        .map(|(w, _)| w)
        .collect()
}

fn findings<'a>(
    present: impl IntoIterator<Item = &'a str>,
    known: &BTreeSet<String>,
) -> Vec<(Warning, Severity)> {
    let prefixes = sfgate_prefixes(known);
    let mut names: Vec<&str> = present.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| classify(name, known, &prefixes))
        .collect()
}

/// The rule of this module for one name (see the module documentation).
fn classify(
    name: &str,
    known: &BTreeSet<String>,
    prefixes: &BTreeSet<String>,
) -> Option<(Warning, Severity)> {
    let upper = name.to_ascii_uppercase();
    if known.contains(name)
        || READ_ELSEWHERE.contains(&name)
        || FOREIGN_PREFIXES.iter().any(|p| upper.starts_with(p))
    {
        return None;
    }
    let suggestion = closest(&upper, known);
    let own = OWN_PREFIXES.iter().any(|p| upper.starts_with(p));
    let near_miss = suggestion.is_some() && name.len() >= MIN_NEAR_MISS_LEN;
    if !near_miss && is_service_link(&upper) {
        return None;
    }
    let shares_segment = prefixes.iter().any(|p| upper.starts_with(p.as_str()));
    let severity = if own || near_miss {
        Severity::Misspelt
    } else if shares_segment {
        Severity::Unknown
    } else {
        return None;
    };
    let message = match suggestion {
        Some(s) if s == upper => {
            format!("is not read (names are case-sensitive): did you mean {s}?")
        }
        Some(s) => format!("is not a variable sfgate reads: did you mean {s}?"),
        None => {
            "is not a variable sfgate reads (see docs/configuration.md for the list)".to_string()
        }
    };
    let warning = Warning {
        variable: name.to_string(),
        message,
    };
    Some((warning, severity))
}

/// Kubernetes gives every pod `<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT[_<PORT NAME>]`,
/// `<SERVICE>_PORT` and `<SERVICE>_PORT_<N>_<PROTOCOL>[_PROTO|_PORT|_ADDR]` for each service of
/// its namespace: a service named `sfgate` must not stop sfgate. (A near miss of a known name is
/// still one.)
fn is_service_link(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST") || name.ends_with("_PORT") || name.contains("_SERVICE_PORT")
    {
        return true;
    }
    name.split_once("_PORT_").is_some_and(|(_, rest)| {
        let mut parts = rest.split('_');
        let number = parts
            .next()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        number
            && parts
                .next()
                .is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"))
    })
}

/// `SF_`, `SESSION_`, `IDENTITY_`, ...: the first segment of every known name, except segments
/// other software uses too.
fn sfgate_prefixes(known: &BTreeSet<String>) -> BTreeSet<String> {
    known
        .iter()
        .filter_map(|name| name.split_once('_').map(|(first, _)| first))
        .filter(|first| !SHARED_SEGMENTS.contains(first))
        .map(|first| format!("{first}_"))
        .collect()
}

fn closest<'k>(name: &str, known: &'k BTreeSet<String>) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(edits, _)| *edits <= MAX_EDITS)
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, k)| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::HashMap;

    fn known() -> BTreeSet<String> {
        Config::known_variables()
    }

    fn errors(present: &[&str]) -> Vec<Warning> {
        misspelt(present.iter().copied(), &known())
    }

    fn warned(present: &[&str]) -> Vec<Warning> {
        unknown_variables(present.iter().copied(), &known())
    }

    fn by_name(w: &[Warning]) -> HashMap<&str, &str> {
        w.iter()
            .map(|w| (w.variable.as_str(), w.message.as_str()))
            .collect()
    }

    #[test]
    fn a_misspelt_variable_is_an_error_naming_the_one_it_was_meant_to_be() {
        let typos = [
            ("SF_ALLOWED_ORG", "SF_ALLOWED_ORGS"),
            ("SESION_SECRET", "SESSION_SECRET"),
            ("IDENTITY_CACHE_TTLS", "IDENTITY_CACHE_TTL"),
            ("SF_LOGIN_URI", "SF_LOGIN_URL"),
            ("UPSTREAM_UR", "UPSTREAM_URL"),
            ("REDIS_ULR", "REDIS_URL"),
            ("SKIP_AUTH_ROUTE", "SKIP_AUTH_ROUTES"),
            ("SF_REDIRECT_URL", "SF_REDIRECT_URI"),
        ];
        let present: Vec<&str> = typos.iter().map(|(typo, _)| *typo).collect();
        let w = errors(&present);
        let by_name = by_name(&w);
        assert_eq!(w.len(), typos.len(), "{w:?}");
        for (typo, meant) in typos {
            assert!(
                by_name[typo].contains(&format!("did you mean {meant}?")),
                "{typo}: {w:?}"
            );
            assert!(by_name[typo].contains(ALLOW_UNKNOWN_VARS), "{typo}: {w:?}");
        }
        assert!(warned(&present).is_empty(), "errors are not warned twice");
    }

    #[test]
    fn an_unknown_name_in_sfgates_namespaces_is_an_error_without_a_guess() {
        for name in ["SF_SOMETHING_ELSE_ENTIRELY", "SFGATE_WHATEVER", "SF_X"] {
            let w = errors(&[name]);
            assert_eq!(w.len(), 1, "{name}: {w:?}");
            assert!(
                w[0].message.contains("not a variable sfgate reads"),
                "{w:?}"
            );
            assert!(!w[0].message.contains("did you mean"), "{w:?}");
        }
    }

    #[test]
    fn an_unknown_name_sharing_only_a_first_segment_is_a_warning() {
        let w = warned(&["SESSION_TIMEOUT", "IDENTITY_SOMETHING_NEW"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(errors(&["SESSION_TIMEOUT", "IDENTITY_SOMETHING_NEW"]).is_empty());
    }

    #[test]
    fn a_lowercase_name_is_pointed_at_its_uppercase_spelling() {
        let w = errors(&["sf_allowed_orgs"]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("case-sensitive"), "{w:?}");
        assert!(w[0].message.contains("SF_ALLOWED_ORGS"), "{w:?}");
    }

    /// Variables that shells, container platforms, Heroku, CI systems, proxies and
    /// OpenTelemetry put in the environment: none of them is sfgate's business.
    const OTHER_PROGRAMS: &[&str] = &[
        "PATH",
        "HOME",
        "USER",
        "SHELL",
        "TERM",
        "LANG",
        "LC_ALL",
        "TZ",
        "PWD",
        "OLDPWD",
        "HOSTNAME",
        "LOGNAME",
        "TMPDIR",
        "EDITOR",
        "DISPLAY",
        "SSH_AUTH_SOCK",
        "SHLVL",
        "_",
        "DATABASE_URL",
        "RUST_LOG",
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "CARGO_TARGET_DIR",
        "PORT",
        "DYNO",
        "WEB_CONCURRENCY",
        "MEMORY_AVAILABLE",
        "HEROKU_APP_NAME",
        "HEROKU_SLUG_COMMIT",
        "SOURCE_VERSION",
        "STACK",
        "REDIS_TLS_URL",
        "REDISCLOUD_URL",
        "REQUEST_METHOD",
        "LOG_LEVEL",
        "NODE_ENV",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "KUBERNETES_PORT",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "ALL_PROXY",
        "CI",
        "GITHUB_ACTIONS",
        "GITHUB_TOKEN",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "DEBIAN_FRONTEND",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "LISTEN_PID",
        "FLY_APP_NAME",
        "FLY_REGION",
        "RENDER_SERVICE_NAME",
        "RAILWAY_ENVIRONMENT",
        "DOCKER_HOST",
        "MALLOC_CONF",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_LOGS_EXPORTER",
        "OTEL_SDK_DISABLED",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "GOOGLE_APPLICATION_CREDENTIALS",
        // Kubernetes service links, for services named sfgate and redis.
        "SFGATE_SERVICE_HOST",
        "SFGATE_SERVICE_PORT",
        "SFGATE_SERVICE_PORT_HTTP",
        "SFGATE_PORT",
        "SFGATE_PORT_3000_TCP",
        "SFGATE_PORT_3000_TCP_PROTO",
        "SFGATE_PORT_3000_TCP_PORT",
        "SFGATE_PORT_3000_TCP_ADDR",
        "REDIS_SERVICE_HOST",
        "REDIS_PORT",
        "REDIS_PORT_6379_TCP_ADDR",
    ];

    #[test]
    fn known_and_unrelated_variables_are_left_alone() {
        let mut present = vec!["SF_ALLOWED_ORGS", "CLIENT_ID", ALLOW_UNKNOWN_VARS];
        present.extend_from_slice(OTHER_PROGRAMS);
        let found = findings(present.iter().copied(), &known());
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn prefixes_come_from_the_names_the_configuration_reads() {
        let p = sfgate_prefixes(&known());
        for prefix in ["SF_", "SESSION_", "IDENTITY_", "UPSTREAM_", "SALESFORCE_"] {
            assert!(p.contains(prefix), "{prefix} missing from {p:?}");
        }
        assert!(!p.contains("CLIENT_") && !p.contains("RUST_"), "{p:?}");
    }
}
