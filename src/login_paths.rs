//! The fixed paths sfgate answers. One table, read by the router (`routes`), the login router
//! (`routes::oauth2`) and the configuration, which refuses an `SF_REDIRECT_URI` whose path would
//! collide with one of them.
//!
//! Everything sfgate needs in gateway mode lives under [`PREFIX`], as with oauth2-proxy: the
//! app behind owns every other path, `/` included.

/// sfgate's namespace (`PROXY_PREFIX`). In gateway mode nothing outside it is sfgate's.
pub const PREFIX: &str = "/oauth2";

pub const AUTHORIZE: &str = "/oauth2/authorize";
/// oauth2-proxy's name for the login start: `/oauth2/start?rd=/path` (as `return_to`).
pub const START: &str = "/oauth2/start";
pub const TOKEN: &str = "/oauth2/token";
pub const PASSWORD: &str = "/oauth2/password";
pub const REFRESH: &str = "/oauth2/refresh";
/// The Node.js app's password route; answered with a refusal that says why.
pub const LOGIN: &str = "/oauth2/login";
pub const LOGOUT: &str = "/oauth2/logout";
/// Where browsers land after logging in.
pub const WELCOME: &str = "/oauth2/welcome";
/// Forward authentication for nginx, Traefik, Caddy; Envoy appends the original path to it.
pub const FORWARD_AUTH: &str = "/oauth2/auth";
/// The Canvas App URL: Salesforce POSTs its signed request here (`CANVAS_ENABLED`).
pub const CANVAS: &str = "/oauth2/canvas";
/// oauth2-proxy's sign-in page: sfgate's home page, in both modes.
pub const SIGN_IN: &str = "/oauth2/sign_in";
/// oauth2-proxy's sign-out: the logout, then a redirect to a same-site `rd`.
pub const SIGN_OUT: &str = "/oauth2/sign_out";
/// The caller's identity as JSON (oauth2-proxy's `userinfo`; `/api/me` in standalone mode).
pub const USERINFO: &str = "/oauth2/userinfo";
/// Liveness and readiness, in both modes (standalone mode also keeps `/healthz`, `/readyz`).
pub const HEALTHZ: &str = "/oauth2/healthz";
pub const READYZ: &str = "/oauth2/readyz";
/// The public key of `X-Sfgate-Assertion`.
pub const JWKS: &str = "/oauth2/jwks.json";
/// The stylesheet, script and icon of sfgate's pages.
pub const ASSETS: &str = "/oauth2/assets";

/// Every fixed path; the callback (the path of `SF_REDIRECT_URI`) must be none of them.
pub const FIXED: &[&str] = &[
    AUTHORIZE,
    START,
    TOKEN,
    PASSWORD,
    REFRESH,
    LOGIN,
    LOGOUT,
    WELCOME,
    FORWARD_AUTH,
    CANVAS,
    SIGN_IN,
    SIGN_OUT,
    USERINFO,
    HEALTHZ,
    READYZ,
    JWKS,
];

/// Whether `path` is [`PREFIX`] or under it, at a segment boundary (`/oauth2x` is not).
pub fn under_prefix(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_path_is_under_the_prefix() {
        for path in FIXED.iter().chain([ASSETS].iter()) {
            assert!(under_prefix(path), "{path}");
        }
        for other in ["/", "/oauth2x", "/api/me", "/OAUTH2/auth", "/x/oauth2"] {
            assert!(!under_prefix(other), "{other}");
        }
    }
}
