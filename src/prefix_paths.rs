//! The paths sfgate answers under its prefix (`PROXY_PREFIX`, default `/oauth2`). One value,
//! built once from the configuration and read by the router (`routes`), the login router
//! (`routes::oauth2`), the pages, the redirects and the configuration, which refuses an
//! `SF_REDIRECT_URI` whose path would collide with one of them.
//!
//! Everything sfgate needs in gateway mode lives under the prefix, as with oauth2-proxy: the
//! app behind owns every other path, `/` included. oauth2-proxy users move the prefix
//! (`--proxy-prefix=/sso`) when their app itself uses `/oauth2`; sfgate follows.
//!
//! The value is `&'static` (one per distinct prefix, kept for the life of the process), so the
//! paths are plain `&str` wherever they are needed: the hot path (is this request sfgate's or
//! the app's?) compares bytes and allocates nothing, and handlers and templates copy a pointer.

use std::sync::Mutex;

/// oauth2-proxy's default prefix, and sfgate's.
pub const DEFAULT_PREFIX: &str = "/oauth2";

/// sfgate's own paths under one prefix. Obtain one with [`PrefixPaths::parse`] or
/// [`PrefixPaths::default_paths`].
#[derive(Debug, PartialEq, Eq)]
pub struct PrefixPaths {
    /// sfgate's namespace (`PROXY_PREFIX`). In gateway mode nothing outside it is sfgate's.
    pub prefix: &'static str,
    pub authorize: &'static str,
    /// oauth2-proxy's name for the login start: `{prefix}/start?rd=/path` (as `return_to`).
    pub start: &'static str,
    pub token: &'static str,
    pub password: &'static str,
    pub refresh: &'static str,
    /// The Node.js app's password route; answered with a refusal that says why.
    pub login: &'static str,
    pub logout: &'static str,
    /// Where browsers land after logging in.
    pub welcome: &'static str,
    /// Forward authentication for nginx, Traefik, Caddy; Envoy appends the original path to it.
    pub forward_auth: &'static str,
    /// Envoy's spellings: `{forward_auth}/` and `{forward_auth}/{*original}` (router patterns).
    pub forward_auth_slash: &'static str,
    pub forward_auth_any: &'static str,
    /// The Canvas App URL: Salesforce POSTs its signed request here (`CANVAS_ENABLED`).
    pub canvas: &'static str,
    /// oauth2-proxy's sign-in page: sfgate's home page, in both modes.
    pub sign_in: &'static str,
    /// oauth2-proxy's sign-out: the logout, then a redirect to a same-site `rd`.
    pub sign_out: &'static str,
    /// The caller's identity as JSON (oauth2-proxy's `userinfo`; `/api/me` in standalone mode).
    pub userinfo: &'static str,
    /// Liveness and readiness, in both modes (standalone mode also keeps `/healthz`, `/readyz`).
    pub healthz: &'static str,
    pub readyz: &'static str,
    /// The public key of `X-Sfgate-Assertion`.
    pub jwks: &'static str,
    /// The stylesheet, script and icon of sfgate's pages live under it.
    pub assets: &'static str,
    pub asset_css: &'static str,
    pub asset_js: &'static str,
    pub asset_favicon: &'static str,
    /// The example callback path, `{prefix}/callback`, for messages and defaults.
    pub callback_example: &'static str,
}

/// Why a `PROXY_PREFIX` value was refused; the message names what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPrefix(String);

/// One leaked value per distinct prefix: a process normally has one; tests, a few.
static INTERNED: Mutex<Vec<&'static PrefixPaths>> = Mutex::new(Vec::new());

impl PrefixPaths {
    /// The paths under [`DEFAULT_PREFIX`].
    pub fn default_paths() -> &'static Self {
        Self::interned(DEFAULT_PREFIX)
    }

    /// Reads a `PROXY_PREFIX` value: one or more path segments starting with `/`, one trailing
    /// slash dropped. Refused: `/` itself (sfgate would own the app's whole site), empty
    /// segments, `.`/`..` segments, and `%`, `?`, `#`, `;`, `\`, whitespace, control and
    /// non-ASCII characters: each would be read differently by a browser, a front proxy or the
    /// router than by the byte comparison that decides what is sfgate's.
    pub fn parse(raw: &str) -> Result<&'static Self, BadPrefix> {
        let value = raw.strip_suffix('/').unwrap_or(raw);
        let bad = |why: &str| Err(BadPrefix(format!("{why}, got `{}`", raw.escape_debug())));
        if raw == "/" || value.is_empty() {
            return bad("must not be `/` or empty: the app would have no path of its own (use e.g. /oauth2 or /sso)");
        }
        if !value.starts_with('/') {
            return bad("must start with `/`, e.g. /sso");
        }
        if let Some(c) = value.chars().find(|c| {
            !c.is_ascii_graphic() || matches!(c, '%' | '?' | '#' | ';' | '\\' | '{' | '}' | '*')
        }) {
            return bad(&format!(
                "must be a plain path: `{}` is not allowed (no %, ?, #, ;, \\, braces, *, whitespace or control characters)",
                c.escape_debug()
            ));
        }
        if value[1..]
            .split('/')
            .any(|segment| matches!(segment, "" | "." | ".."))
        {
            return bad("must not contain empty, `.` or `..` segments");
        }
        Ok(Self::interned(value))
    }

    fn interned(prefix: &str) -> &'static Self {
        let mut all = INTERNED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = all.iter().find(|p| p.prefix == prefix) {
            return found;
        }
        let paths: &'static Self = Box::leak(Box::new(Self::build(prefix)));
        all.push(paths);
        paths
    }

    fn build(prefix: &str) -> Self {
        let at = |suffix: &str| -> &'static str {
            Box::leak(format!("{prefix}{suffix}").into_boxed_str())
        };
        Self {
            prefix: at(""),
            authorize: at("/authorize"),
            start: at("/start"),
            token: at("/token"),
            password: at("/password"),
            refresh: at("/refresh"),
            login: at("/login"),
            logout: at("/logout"),
            welcome: at("/welcome"),
            forward_auth: at("/auth"),
            forward_auth_slash: at("/auth/"),
            forward_auth_any: at("/auth/{*original}"),
            canvas: at("/canvas"),
            sign_in: at("/sign_in"),
            sign_out: at("/sign_out"),
            userinfo: at("/userinfo"),
            healthz: at("/healthz"),
            readyz: at("/readyz"),
            jwks: at("/jwks.json"),
            assets: at("/assets"),
            asset_css: at("/assets/sfgate.css"),
            asset_js: at("/assets/sfgate.js"),
            asset_favicon: at("/assets/favicon.svg"),
            callback_example: at("/callback"),
        }
    }

    /// Every fixed route; the callback (the path of `SF_REDIRECT_URI`) must be none of them.
    pub fn fixed(&self) -> [&'static str; 16] {
        [
            self.authorize,
            self.start,
            self.token,
            self.password,
            self.refresh,
            self.login,
            self.logout,
            self.welcome,
            self.forward_auth,
            self.canvas,
            self.sign_in,
            self.sign_out,
            self.userinfo,
            self.healthz,
            self.readyz,
            self.jwks,
        ]
    }

    /// Whether `path` is the prefix or under it, at a segment boundary (`/oauth2x` is not).
    pub fn is_under(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_path_is_under_the_prefix() {
        for paths in [
            PrefixPaths::default_paths(),
            PrefixPaths::parse("/sso").expect("valid"),
            PrefixPaths::parse("/a/b-c_d.e~f/").expect("valid"),
        ] {
            for path in paths
                .fixed()
                .iter()
                .chain([paths.assets, paths.asset_css].iter())
            {
                assert!(paths.is_under(path), "{path}");
            }
        }
        let paths = PrefixPaths::default_paths();
        for other in ["/", "/oauth2x", "/api/me", "/OAUTH2/auth", "/x/oauth2"] {
            assert!(!paths.is_under(other), "{other}");
        }
    }

    #[test]
    fn a_prefix_is_built_once_and_shared() {
        let a = PrefixPaths::parse("/sso/").expect("valid");
        let b = PrefixPaths::parse("/sso").expect("valid");
        assert!(std::ptr::eq(a, b));
        assert_eq!(a.start, "/sso/start");
        assert_eq!(PrefixPaths::default_paths().forward_auth, "/oauth2/auth");
    }
}
