//! Reading variables one by one while collecting every problem, so one pass reports them all.

use super::ConfigProblem;
use std::time::Duration;
use url::Url;

/// Reads variables and collects problems, so that one pass reports all of them.
pub(super) struct Reader<'a> {
    pub(super) lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(super) problems: Vec<ConfigProblem>,
    pub(super) legacy: Vec<&'static str>,
}

impl Reader<'_> {
    pub(super) fn get(&self, name: &str) -> Option<String> {
        // Every name read must be in the table help and `sfgate config` print from.
        debug_assert!(
            super::variables::is_known(name),
            "{name} is read but not listed in config::VARIABLES"
        );
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    pub(super) fn problem(&mut self, variable: &'static str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            variable: variable.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn required(
        &mut self,
        name: &'static str,
        legacy: Option<&'static str>,
    ) -> Option<String> {
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

    pub(super) fn parse_or<T: std::str::FromStr>(
        &mut self,
        name: &'static str,
        default: T,
        what: &str,
    ) -> T {
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

    pub(super) fn seconds(&mut self, name: &'static str, default: u64) -> Duration {
        Duration::from_secs(self.parse_or(name, default, "a whole number of seconds"))
    }

    /// A boolean that is off unless set.
    pub(super) fn flag(&mut self, name: &'static str) -> bool {
        self.flag_or(name, false)
    }

    /// A boolean that is `default` unless set. A value that is not a boolean is a problem (the
    /// configuration is refused, so what is returned then is never used).
    pub(super) fn flag_or(&mut self, name: &'static str, default: bool) -> bool {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => default,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => false,
            Some(v) => {
                self.problem(name, format!("must be true or false, got `{v}`"));
                default
            }
        }
    }

    pub(super) fn url(&mut self, name: &'static str, raw: &str) -> Option<Url> {
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
pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Comma-separated values of one variable, each parsed; every bad value is reported.
pub(super) fn list<T>(
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
