//! Tokens for API clients: a code an app obtained itself (the Node.js app's `/oauth2/token`),
//! and the username-password flow (testing only, off by default). Both are confirmed as a
//! browser login's are.

use super::{Login, LoginError};
use crate::salesforce::TokenSet;
use secrecy::SecretString;

impl Login {
    /// Exchanges a code obtained by an app that ran the authorize step itself, for the
    /// configured redirect URI, keeping the client secret on the server.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<TokenSet, LoginError> {
        let tokens = self.auth().oauth().exchange_code(code, verifier).await;
        let tokens = tokens?;
        let identity = self.confirm_identity(&tokens).await?;
        super::confirm::login_completed(&identity);
        Ok(tokens)
    }

    /// Refuses the username-password flow unless `SF_ENABLE_PASSWORD_FLOW` is on (checked
    /// before the body is read).
    pub fn require_password_flow(&self) -> Result<(), LoginError> {
        if self.settings().password_flow {
            Ok(())
        } else {
            Err(LoginError::PasswordFlowDisabled)
        }
    }

    /// The username-password flow.
    pub async fn password_grant(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<TokenSet, LoginError> {
        self.require_password_flow()?;
        let tokens = self.auth().oauth().password(username, password).await;
        let tokens = tokens?;
        let identity = self.confirm_identity(&tokens).await?;
        super::confirm::login_completed(&identity);
        Ok(tokens)
    }
}
