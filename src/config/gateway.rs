//! Gateway mode: the upstream app behind sfgate and the rules for what reaches it.

use super::forward_auth_style::ForwardAuthStyle;
use super::reader::Reader;
use super::upgrade_protocols::UpgradeProtocols;
use crate::access::SkipAuthRule;
use crate::headers::UnderscoreHeaders;
use crate::prefix_paths::PrefixPaths;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `UPSTREAM_URL`: the app requests are proxied to; `None` runs sfgate without a proxy.
    pub upstream_url: Option<Url>,
    pub upstream_timeout: Duration,
    /// `UPSTREAM_HTTP2`: HTTP/2 to the upstream (h2c prior knowledge, or ALPN over TLS).
    pub upstream_http2: bool,
    /// `WEBSOCKET_IDLE_TIMEOUT`: an upgraded connection quiet this long is closed.
    pub websocket_idle_timeout: Duration,
    /// `UPSTREAM_IDLE_TIMEOUT`: a pooled connection to the upstream unused this long is closed.
    pub upstream_idle_timeout: Duration,
    pub pass_access_token: bool,
    pub skip_auth_routes: Vec<SkipAuthRule>,
    // Trust boundary (docs/security.md).
    /// `PROXY_UNDERSCORE_HEADERS`: request header names with `_` dropped (default) or kept.
    pub underscore_headers: UnderscoreHeaders,
    /// `ALLOW_ENCODED_SLASHES`: let `%2F` through in proxied paths (dot segments stay refused).
    pub allow_encoded_slashes: bool,
    /// `UPGRADE_PROTOCOLS`: protocols tunnelled besides WebSocket (never h2c).
    pub upgrade_protocols: UpgradeProtocols,
    /// `WEBSOCKET_ALLOWED_ORIGINS`: origins besides sfgate's own whose pages may open a
    /// WebSocket with the session cookie (as `scheme://host[:port]`).
    pub websocket_allowed_origins: Vec<String>,
    /// `FORWARD_AUTH_STYLE`: which front proxy's convention names the original request.
    pub forward_auth_style: ForwardAuthStyle,
    /// `PROXY_PREFIX`: sfgate's own paths, in both modes (the app owns the rest in gateway mode).
    pub paths: &'static PrefixPaths,
}

pub(super) fn parse(r: &mut Reader<'_>) -> GatewayConfig {
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
    let paths = proxy_prefix(r);
    let upstream_timeout = r.seconds("UPSTREAM_TIMEOUT", 30);
    if upstream_timeout.is_zero() {
        r.problem("UPSTREAM_TIMEOUT", "must be at least 1 second");
    }
    let upstream_http2 = r.flag("UPSTREAM_HTTP2");
    let websocket_idle_timeout = r.seconds("WEBSOCKET_IDLE_TIMEOUT", 600);
    if websocket_idle_timeout.is_zero() {
        r.problem("WEBSOCKET_IDLE_TIMEOUT", "must be at least 1 second");
    }
    let upstream_idle_timeout = r.seconds("UPSTREAM_IDLE_TIMEOUT", 60);
    if upstream_idle_timeout.is_zero() {
        r.problem("UPSTREAM_IDLE_TIMEOUT", "must be at least 1 second");
    }
    let pass_access_token = r.flag("PASS_ACCESS_TOKEN");
    let skip_auth_routes = skip_auth_routes(r);
    let underscore_headers = r.parse_or(
        "PROXY_UNDERSCORE_HEADERS",
        UnderscoreHeaders::Drop,
        "`drop` or `keep`",
    );
    let allow_encoded_slashes = r.flag("ALLOW_ENCODED_SLASHES");
    let upgrade_protocols = upgrade_protocols(r);
    let websocket_allowed_origins = super::reader::list(
        r,
        "WEBSOCKET_ALLOWED_ORIGINS",
        super::allowed_origins::parse_origin,
    );
    let forward_auth_style = r.parse_or(
        "FORWARD_AUTH_STYLE",
        ForwardAuthStyle::Auto,
        "`auto`, `nginx`, `traefik`, `caddy` or `envoy`",
    );
    GatewayConfig {
        upstream_url,
        upstream_timeout,
        upstream_http2,
        websocket_idle_timeout,
        upstream_idle_timeout,
        pass_access_token,
        skip_auth_routes,
        underscore_headers,
        allow_encoded_slashes,
        upgrade_protocols,
        websocket_allowed_origins,
        forward_auth_style,
        paths,
    }
}

fn upgrade_protocols(r: &mut Reader<'_>) -> UpgradeProtocols {
    let raw = r.get("UPGRADE_PROTOCOLS").unwrap_or_default();
    let entries: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    UpgradeProtocols::parse(&entries).unwrap_or_else(|problem| {
        r.problem("UPGRADE_PROTOCOLS", problem);
        UpgradeProtocols::default()
    })
}

/// `PROXY_PREFIX`: sfgate's namespace (oauth2-proxy's `--proxy-prefix`). A bad value is refused
/// with the reason rather than replaced by the default, so nobody believes a path moved when it
/// did not.
fn proxy_prefix(r: &mut Reader<'_>) -> &'static PrefixPaths {
    let Some(raw) = r.get("PROXY_PREFIX") else {
        return PrefixPaths::default_paths();
    };
    PrefixPaths::parse(raw.trim()).unwrap_or_else(|problem| {
        r.problem("PROXY_PREFIX", problem.to_string());
        PrefixPaths::default_paths()
    })
}

fn skip_auth_routes(r: &mut Reader<'_>) -> Vec<SkipAuthRule> {
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
        if sets_case_insensitive(pattern) {
            r.problem(
                "SKIP_AUTH_ROUTES",
                format!(
                    "`{pattern}` turns on case-insensitive matching; a rule that skips \
                     authentication matches the exact spelling only (list each spelling instead)"
                ),
            );
            continue;
        }
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

/// Whether `pattern` turns on case-insensitive matching anywhere (`(?i)`, `(?i:...)`, `(?mi)`).
/// A skip rule removes requirements, so it must never match more spellings than written:
/// `(?i)^/public/` would also skip authentication for `/PUBLIC/`, which a case-sensitive app
/// serves as a different resource (and `ROUTE_RULES`, which match every case, never see it).
/// A pattern the parser refuses is left to `Regex::new` to report.
fn sets_case_insensitive(pattern: &str) -> bool {
    use regex_syntax::ast::{Ast, Flag};
    struct Finder;
    impl regex_syntax::ast::Visitor for Finder {
        type Output = ();
        type Err = ();
        fn finish(self) -> Result<(), ()> {
            Ok(())
        }
        fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
            let flags = match ast {
                Ast::Flags(set) => Some(&set.flags),
                Ast::Group(group) => group.flags(),
                _ => None,
            };
            match flags.and_then(|f| f.flag_state(Flag::CaseInsensitive)) {
                Some(true) => Err(()),
                _ => Ok(()),
            }
        }
    }
    regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .is_ok_and(|ast| regex_syntax::ast::visit(&ast, Finder).is_err())
}

#[cfg(test)]
mod tests {
    use super::sets_case_insensitive;

    #[test]
    fn case_insensitive_flags_are_found_wherever_they_are() {
        for yes in [
            "(?i)^/public/",
            "^/(?i:public)/",
            "(?mi)^/a",
            "^/a(?i)b",
            "^/(?s-m:x(?i)y)",
        ] {
            assert!(sets_case_insensitive(yes), "{yes}");
        }
        for no in [
            "^/public/",
            r"^/\(\?i\)",
            "^/[(?i)]",
            "(?-i)^/a",
            "(?m)^/a",
            "^/(?:x)",
        ] {
            assert!(!sets_case_insensitive(no), "{no}");
        }
    }
}
