//! The steps every new grant shares: confirm who the new tokens belong to (refusing, and
//! revoking, a user the rules refuse), and count the login.

use super::{Login, LoginError};
use crate::auth::{AuthError, Confirmed};
use crate::domain::Identity;
use crate::salesforce::TokenSet;
use std::sync::Arc;

impl Login {
    /// Asks Salesforce who the new token belongs to (which also warms the identity cache for
    /// the first protected call) and applies the org allowlist. The signed `id` in the token
    /// response must name the same org.
    pub(super) async fn confirm_identity(
        &self,
        tokens: &TokenSet,
    ) -> Result<Arc<Confirmed>, LoginError> {
        let identity = self
            .auth()
            .validator()
            .validate_at(
                &tokens.instance_url,
                tokens.site.as_ref(),
                &tokens.access_token,
            )
            .await?;
        if identity.organization_id != tokens.org_id || identity.user_id != tokens.user_id {
            return Err(LoginError::IdentityMismatch);
        }
        self.refuse_unless_allowed(&identity, tokens).await?;
        Ok(identity)
    }

    /// The authorization rules that need no path (`SF_ALLOWED_*`, `SF_REQUIRED_PERMISSIONS`,
    /// inactive users), applied at login: a refused user gets the refusal page now, and no
    /// session cookie. The tokens Salesforce just issued are revoked, so no usable grant is
    /// left behind.
    async fn refuse_unless_allowed(
        &self,
        identity: &Confirmed,
        tokens: &TokenSet,
    ) -> Result<(), LoginError> {
        let auth = self.auth();
        let refusal = match auth.authorize_user(identity, &tokens.access_token).await {
            Ok(()) => return Ok(()),
            Err(refusal @ AuthError::AccessDenied(_)) => refusal,
            // The profile a rule needs could not be had: fail closed, the grant is left as is.
            Err(e) => return Err(e.into()),
        };
        // Revoking the refresh token revokes the access tokens issued with it.
        let grant = tokens
            .refresh_token
            .as_ref()
            .unwrap_or(&tokens.access_token);
        if let Err(e) = auth.oauth().revoke(grant).await {
            tracing::warn!(error = %e, "could not revoke the tokens of a refused login");
        }
        auth.validator()
            .evict(&tokens.instance_url, &tokens.access_token)
            .await;
        Err(LoginError::Auth(refusal))
    }
}

/// Counts the login and names the user in the request's log span from here on.
pub(super) fn login_completed(identity: &Identity) {
    metrics::counter!("sfgate_logins_total", "result" => "completed").increment(1);
    crate::auth::record_caller(identity);
    tracing::info!(user_id = %identity.user_id, org_id = %identity.organization_id, "login completed");
}
