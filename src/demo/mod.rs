//! The gateway's side of demo mode: the demo Connected Apps' credentials, the configuration
//! `sfgate demo` runs the gateway with, and the sample app it can put behind it. Starting the
//! emulator is the binary's part (src/cli/demo.rs), so the library never depends on it.

pub mod sample_app;

use std::collections::HashMap;

pub const DEMO_CLIENT_ID: &str = "sfgate-demo-client";
pub const DEMO_CLIENT_SECRET: &str = "sfgate-demo-client-secret";
/// The demo's second Connected App, whose access tokens are JWTs (docs/token-types.md).
pub const DEMO_JWT_CLIENT_ID: &str = "sfgate-demo-jwt-client";
pub const DEMO_JWT_CLIENT_SECRET: &str = "sfgate-demo-jwt-client-secret";

/// The configuration demo mode runs with: the emulator as login host and instance, a fresh
/// random session secret, one allowed org, the password flow on.
pub fn environment(
    emulator_url: &str,
    redirect_uri: &str,
    allowed_org: &str,
) -> HashMap<String, String> {
    use rand::Rng;
    let secret: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    [
        ("SF_CLIENT_ID", DEMO_CLIENT_ID.to_string()),
        ("SF_CLIENT_SECRET", DEMO_CLIENT_SECRET.to_string()),
        ("SF_REDIRECT_URI", redirect_uri.to_string()),
        ("SF_LOGIN_URL", emulator_url.to_string()),
        ("SF_INSTANCE_ORIGINS", emulator_url.to_string()),
        ("SF_ALLOWED_ORGS", allowed_org.to_string()),
        ("SF_ENABLE_PASSWORD_FLOW", "true".to_string()),
        ("SF_ACCEPTED_CLIENT_IDS", DEMO_JWT_CLIENT_ID.to_string()),
        ("CANVAS_ENABLED", "true".to_string()),
        ("SESSION_SECRET", secret),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
