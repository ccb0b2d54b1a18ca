//! The fixed paths of the login flow. One table, read by the login router
//! (`routes::login`) and by the configuration, which refuses an `SF_REDIRECT_URI` whose path
//! would collide with one of them.

pub const AUTHORIZE: &str = "/oauth2/authorize";
pub const TOKEN: &str = "/oauth2/token";
pub const PASSWORD: &str = "/oauth2/password";
pub const REFRESH: &str = "/oauth2/refresh";
/// The Node.js app's password route; answered with a refusal that says why.
pub const LOGIN: &str = "/oauth2/login";
pub const LOGOUT: &str = "/oauth2/logout";
/// Where browsers land after logging in.
pub const WELCOME: &str = "/oauth2/welcome";
/// Forward authentication for nginx and Traefik.
pub const FORWARD_AUTH: &str = "/oauth2/auth";
/// The Canvas App URL: Salesforce POSTs its signed request here (`CANVAS_ENABLED`).
pub const CANVAS: &str = "/oauth2/canvas";

/// Every fixed path; the callback (the path of `SF_REDIRECT_URI`) must be none of them.
pub const FIXED: &[&str] = &[
    AUTHORIZE,
    TOKEN,
    PASSWORD,
    REFRESH,
    LOGIN,
    LOGOUT,
    WELCOME,
    FORWARD_AUTH,
    CANVAS,
];
