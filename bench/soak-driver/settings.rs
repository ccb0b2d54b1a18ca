//! Names and paths the soak depends on, in one place: when sfgate moves its own routes (for
//! example under `/oauth2/` in gateway mode), change them here.

/// sfgate's liveness route, used to wait for a replica (and nginx in front of it); in gateway
/// mode sfgate owns only its `/oauth2` prefix.
pub(crate) const HEALTH_PATH: &str = "/oauth2/healthz";
/// sfgate's login start, callback and logout routes.
pub(crate) const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub(crate) const CALLBACK_PATH: &str = "/oauth2/callback";
pub(crate) const LOGOUT_PATH: &str = "/oauth2/logout";
/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "sfgate_session";

/// App paths the clients use (all proxied to the test app in gateway mode).
pub(crate) const APP_PAGE: &str = "/app/page";
pub(crate) const APP_API: &str = "/app/api/items";
pub(crate) const APP_WS: &str = "/ws";
/// The admin area `ROUTE_RULES` protects, case-insensitively as the docs advise for an app
/// that serves `/ADMIN` as `/admin`.
pub(crate) const ROUTE_RULES: &str = "^/(?i:admin)(/|$)=perm:Sfgate_Admin";

pub(crate) const CLIENT_ID: &str = "soak-client";
pub(crate) const CLIENT_SECRET: &str = "soak-client-secret";
pub(crate) const ACME: &str = "00D5j00000AcMe1";
pub(crate) const SESSION_SECRET: &str = "soak-session-secret-0123456789-abcdefghijklmnop";
/// Seconds sfgate waits for Salesforce (so a hanging emulator costs a request this long).
pub(crate) const SALESFORCE_TIMEOUT_SECS: u64 = 3;

/// The demo users: Alice has `Sfgate_Admin`, Bob does not, Carol's org is not allowed.
pub(crate) const ALICE: (&str, &str) = ("alice@acme.example", "alice-demo-1");
pub(crate) const BOB: (&str, &str) = ("bob@acme.example", "bob-demo-2");
pub(crate) const CAROL: (&str, &str) = ("carol@globex.example", "carol-demo-3");
