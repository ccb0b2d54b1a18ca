//! How the emulated Connected App and org behave: what a test or `sfgate demo` chooses when it
//! starts an emulator.

use crate::signing_keys::ConnectedApp;
use std::time::Duration;

/// How the emulated Connected App and org behave.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Callback URLs of the Connected App; `redirect_uri` must equal one exactly.
    pub redirect_uris: Vec<String>,
    /// The Connected App's "Require PKCE" setting.
    pub require_pkce: bool,
    /// Added before every API answer (token, userinfo, identity, revoke), like a round trip.
    pub latency: Duration,
    /// The org's session timeout: how long an access token lives.
    pub access_token_lifetime: Duration,
    /// The Connected App's "Issue JSON Web Token (JWT)-based access tokens" setting: access
    /// tokens are signed JWTs (published keys at `/id/keys`) instead of opaque strings.
    pub jwt_access_tokens: bool,
    /// A second Connected App whose tokens are always JWTs (password grant only), as demo
    /// mode offers it next to the main, opaque-token app.
    pub jwt_app: Option<ConnectedApp>,
    /// The Connected App's refresh-token rotation: each refresh answers with a new refresh
    /// token and the one used stops working.
    pub rotate_refresh_tokens: bool,
    /// Demo mode only: the password grant also issues a refresh token (scope
    /// `api refresh_token`), so a script can try `/oauth2/refresh` without a browser. Real
    /// Salesforce never issues one for that flow, so tests of sfgate itself leave this off.
    pub password_grant_refresh_token: bool,
    /// The Connected App's Canvas App URL: where `/canvas/host` POSTs its signed request.
    pub canvas_url: Option<String>,
}

impl EmulatorConfig {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris: Vec::new(),
            require_pkce: false,
            latency: Duration::ZERO,
            access_token_lifetime: Duration::from_secs(2 * 3600),
            jwt_access_tokens: false,
            jwt_app: None,
            rotate_refresh_tokens: false,
            password_grant_refresh_token: false,
            canvas_url: None,
        }
    }
}
