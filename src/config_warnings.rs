//! Start-up advice about configuration that is valid but probably not what the operator meant:
//! a misspelt variable (silently ignored otherwise, so the default or a "missing" error hides the
//! real mistake) and a login host that cannot serve OAuth.
//!
//! These are warnings, not errors: an unknown variable may belong to another program sharing the
//! environment, and sfgate cannot be sure a host is wrong.

use crate::config::Config;
use std::collections::BTreeSet;
use std::fmt;

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

/// First name segments sfgate's variables share with other software (the Node.js app's legacy
/// names, CGI's `REQUEST_METHOD`, Heroku Redis's `REDIS_TLS_URL`, Rust's own `RUST_BACKTRACE`,
/// OpenTelemetry's `OTEL_*`, set for every instrumented program of a deployment):
/// an unknown name starting with one of these is not flagged unless it is a near miss.
const SHARED_SEGMENTS: &[&str] = &[
    "CLIENT", "REDIRECT", "LOG", "REQUEST", "RUST", "REDIS", "PASS", "TRUST", "HTTP", "DATABASE",
    "OTEL",
];

/// Variables read outside [`Config`] (by the log filter, the Rust runtime, and the OpenTelemetry
/// SDK's batch processor and resource).
const READ_ELSEWHERE: &[&str] = &[
    "RUST_LOG",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_RESOURCE_ATTRIBUTES",
];

/// Names shorter than this are only flagged with an sfgate prefix: `HOME` is one letter from
/// `HOST` and is not a typo.
const MIN_NEAR_MISS_LEN: usize = 8;
/// Most edits between a misspelt name and the variable it was meant to be.
const MAX_EDITS: usize = 2;

/// The warnings for this process: unknown variables in the environment (which includes `.env`,
/// loaded before this runs) and, when the configuration is valid, questionable values.
pub fn from_env(config: Option<&Config>) -> Vec<Warning> {
    let known = Config::variable_names(&|name| std::env::var(name).ok());
    let present: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    let mut warnings = unknown_variables(present.iter().map(String::as_str), &known);
    warnings.extend(config.and_then(login_url));
    warnings
}

/// Variables in `present` that look like sfgate's (an sfgate name prefix, or a near miss of a
/// known name) but are not among `known`, each with the closest known name when one is close.
pub fn unknown_variables<'a>(
    present: impl IntoIterator<Item = &'a str>,
    known: &BTreeSet<String>,
) -> Vec<Warning> {
    let prefixes = sfgate_prefixes(known);
    let mut names: Vec<&str> = present.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter(|name| !known.contains(*name) && !READ_ELSEWHERE.contains(name))
        .filter_map(|name| {
            let upper = name.to_ascii_uppercase();
            let suggestion = closest(&upper, known);
            let ours = prefixes.iter().any(|p| upper.starts_with(p.as_str()));
            let near_miss = suggestion.is_some() && name.len() >= MIN_NEAR_MISS_LEN;
            if !ours && !near_miss {
                return None;
            }
            let message = match suggestion {
                Some(s) if s == upper => {
                    format!("is not read (names are case-sensitive): did you mean {s}?")
                }
                Some(s) => format!("is not a variable sfgate reads: did you mean {s}?"),
                None => "is not a variable sfgate reads (see docs/configuration.md for the list)"
                    .to_string(),
            };
            Some(Warning {
                variable: name.to_string(),
                message,
            })
        })
        .collect()
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

/// Lightning Experience hosts (`*.lightning.force.com`) serve the UI, not OAuth: a login started
/// there fails at Salesforce with a confusing page. The My Domain host of the same org does.
pub fn login_url(config: &Config) -> Option<Warning> {
    let host = config.salesforce.login_url.host_str()?.to_ascii_lowercase();
    let org = host.strip_suffix(".lightning.force.com")?;
    Some(Warning {
        variable: "SF_LOGIN_URL".to_string(),
        message: format!(
            "{host} is a Lightning Experience host, which cannot serve OAuth logins: \
             use https://{org}.my.salesforce.com (your My Domain), or https://login.salesforce.com"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn known() -> BTreeSet<String> {
        Config::variable_names(&|_| None)
    }

    fn warned(present: &[&str]) -> Vec<Warning> {
        unknown_variables(present.iter().copied(), &known())
    }

    #[test]
    fn a_misspelt_variable_gets_the_name_it_was_meant_to_be() {
        let w = warned(&["SF_ALLOWED_ORG", "SESION_SECRET", "IDENTITY_CACHE_TTLS"]);
        let by_name: HashMap<_, _> = w
            .iter()
            .map(|w| (w.variable.as_str(), w.message.as_str()))
            .collect();
        assert!(by_name["SF_ALLOWED_ORG"].ends_with("did you mean SF_ALLOWED_ORGS?"));
        assert!(by_name["SESION_SECRET"].ends_with("did you mean SESSION_SECRET?"));
        assert!(by_name["IDENTITY_CACHE_TTLS"].ends_with("did you mean IDENTITY_CACHE_TTL?"));
    }

    #[test]
    fn an_unknown_name_with_an_sfgate_prefix_is_warned_without_a_guess() {
        let w = warned(&["SF_SOMETHING_ELSE_ENTIRELY"]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains("not a variable sfgate reads"),
            "{w:?}"
        );
        assert!(!w[0].message.contains("did you mean"), "{w:?}");
    }

    #[test]
    fn a_lowercase_name_is_pointed_at_its_uppercase_spelling() {
        let w = warned(&["sf_allowed_orgs"]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("case-sensitive"), "{w:?}");
        assert!(w[0].message.contains("SF_ALLOWED_ORGS"), "{w:?}");
    }

    #[test]
    fn known_and_unrelated_variables_are_left_alone() {
        let w = warned(&[
            "SF_ALLOWED_ORGS",
            "CLIENT_ID",
            "RUST_LOG",
            "HOME",
            "PATH",
            "HOSTNAME",
            "TERM",
            "DYNO",
            "REQUEST_METHOD",
            "REDIS_TLS_URL",
            "LOG_LEVEL",
            "CARGO_HOME",
        ]);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn prefixes_come_from_the_names_the_configuration_reads() {
        let p = sfgate_prefixes(&known());
        for prefix in ["SF_", "SESSION_", "IDENTITY_", "UPSTREAM_", "SALESFORCE_"] {
            assert!(p.contains(prefix), "{prefix} missing from {p:?}");
        }
        assert!(!p.contains("CLIENT_") && !p.contains("RUST_"), "{p:?}");
    }

    fn config_with_login(url: &str) -> Config {
        let env: HashMap<String, String> = [
            ("SF_CLIENT_ID", "client"),
            ("SF_CLIENT_SECRET", "secret-value-123"),
            ("SF_REDIRECT_URI", "https://gw.example.com/oauth2/callback"),
            ("SF_ALLOWED_ORGS", "00D5j00000AcMe1"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
            ("SF_LOGIN_URL", url),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Config::from_map(&env).expect("valid")
    }

    #[test]
    fn a_lightning_login_host_is_pointed_at_its_my_domain_host() {
        let w = login_url(&config_with_login("https://acme.lightning.force.com")).expect("warned");
        assert_eq!(w.variable, "SF_LOGIN_URL");
        assert!(w.message.contains("https://acme.my.salesforce.com"), "{w}");
        let w = login_url(&config_with_login(
            "https://acme--dev.sandbox.lightning.force.com/",
        ))
        .expect("warned");
        assert!(
            w.message
                .contains("https://acme--dev.sandbox.my.salesforce.com"),
            "{w}"
        );
    }

    #[test]
    fn oauth_capable_login_hosts_are_not_warned() {
        for url in [
            "https://login.salesforce.com",
            "https://test.salesforce.com",
            "https://acme.my.salesforce.com",
        ] {
            assert!(login_url(&config_with_login(url)).is_none(), "{url}");
        }
    }
}
