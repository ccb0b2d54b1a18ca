//! Applying the authorization policy to a confirmed caller, in every mode.
//!
//! Each protected entry point (sfgate's own protected routes, gateway mode, forward auth)
//! calls [`Authenticator::authorize`] right after [`Authenticator::authenticate`] succeeds (through
//! [`Authenticator::admit`]), with the path
//! the request is for. The path is the canonical one the rules were written for; see
//! [`super::rule_path`].

use super::{AuthError, Authenticated, Authenticator};
use crate::domain::CanonicalPath;
use crate::policy::Refusal;

/// Whether the caller may have `path` (`None`: unknown, e.g. forward auth without a trusted
/// original URI). Refusals are logged with the rule, counted, and become 403 `access_denied`.
/// An identity confirmed without its profile (a locally validated JWT) gets it first when a
/// rule needs it; if it cannot be had, the request fails closed.
impl Authenticator {
    pub async fn authorize(
        &self,
        auth: &Authenticated,
        path: Option<&CanonicalPath>,
    ) -> Result<(), AuthError> {
        if self.needs_profile() && !auth.identity.has_profile() {
            let complete = self
                .validator
                .require_profile(&auth.identity, &auth.token)
                .await?;
            return self
                .policy
                .check_path(&complete, path)
                .map_err(|refusal| refused(auth, refusal));
        }
        self.policy
            .check_path(&auth.identity, path)
            .map_err(|refusal| refused(auth, refusal))
    }
}

fn refused(auth: &Authenticated, refusal: Refusal) -> AuthError {
    metrics::counter!("sfgate_authorization_refusals_total", "rule" => refusal.label())
        .increment(1);
    tracing::info!(
        user_id = %auth.identity.user_id,
        rule = refusal.label(),
        "access denied by the authorization policy"
    );
    AuthError::AccessDenied(refusal)
}
