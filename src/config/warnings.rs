//! Start-up advice: the unknown variables in the environment that are not errors, and values
//! that are valid but probably not what the operator meant. Misspelt names themselves are
//! judged by `src/unknown_variables.rs`, whose errors stop the configuration from loading.

use super::Config;
pub use crate::unknown_variables::Warning;
use crate::unknown_variables::{all_unknown, unknown_variables};

/// The warnings for this process: unknown variables in the environment (which includes `.env`,
/// loaded before this runs) and, when the configuration is valid, questionable values. Misspelt
/// names are errors (already reported by the configuration) unless `SFGATE_ALLOW_UNKNOWN_VARS`
/// is on, in which case they are listed here.
pub fn from_env(config: Option<&Config>) -> Vec<Warning> {
    let lookup = |name: &str| std::env::var(name).ok();
    let known = Config::known_variables();
    let present: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    let allowed = config.map_or_else(
        || super::allows_unknown_vars(&lookup),
        |c| c.allow_unknown_vars,
    );
    let mut warnings = if allowed {
        all_unknown(present.iter().map(String::as_str), &known)
    } else {
        unknown_variables(present.iter().map(String::as_str), &known)
    };
    warnings.extend(config.and_then(login_url));
    warnings.extend(config.and_then(redirect_port));
    warnings
}

/// A loopback redirect URI names this machine, so its port must be the one sfgate listens on:
/// otherwise Salesforce sends the browser back to a port where nothing (or something else)
/// answers. Elsewhere a proxy may well listen on another port, so nothing is said.
pub fn redirect_port(config: &Config) -> Option<Warning> {
    let uri = &config.salesforce.redirect_uri;
    let loopback = match uri.host()? {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    let port = uri.port_or_known_default()?;
    let listening = config.server.port;
    if !loopback || listening == 0 || port == listening {
        return None;
    }
    Some(Warning {
        variable: "SF_REDIRECT_URI".to_string(),
        message: format!(
            "its port is {port} but sfgate listens on PORT={listening}: after login the browser \
             comes back to port {port}; set PORT={port}, or change the redirect URI here and in \
             the Connected App"
        ),
    })
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

    fn config_with(redirect_uri: &str, port: &str) -> Config {
        let env: HashMap<String, String> = [
            ("SF_CLIENT_ID", "client"),
            ("SF_CLIENT_SECRET", "secret-value-123"),
            ("SF_REDIRECT_URI", redirect_uri),
            ("SF_ALLOWED_ORGS", "00D5j00000AcMe1"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
            ("PORT", port),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Config::from_map(&env).expect("valid")
    }

    #[test]
    fn a_loopback_redirect_uri_on_another_port_than_port_is_warned() {
        let w = redirect_port(&config_with(
            "http://localhost:3000/oauth2/callback",
            "3100",
        ))
        .expect("warned");
        assert_eq!(w.variable, "SF_REDIRECT_URI");
        assert!(w.message.contains("PORT=3100"), "{w}");
        assert!(w.message.contains("set PORT=3000"), "{w}");
        let w = redirect_port(&config_with("http://127.0.0.1/oauth2/callback", "3000"));
        assert!(w.is_some_and(|w| w.message.contains("port is 80")));
        for (uri, port) in [
            ("http://localhost:3000/oauth2/callback", "3000"),
            ("http://[::1]:3000/oauth2/callback", "3000"),
            ("http://127.0.0.1:3000/oauth2/callback", "0"),
            // A proxy in front listens on 443; sfgate elsewhere.
            ("https://gw.example.com/oauth2/callback", "3000"),
        ] {
            assert!(
                redirect_port(&config_with(uri, port)).is_none(),
                "{uri} {port}"
            );
        }
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
