//! Applying the authorization policy to a confirmed caller, in every mode.
//!
//! Each protected entry point (sfgate's own protected routes, gateway mode, forward auth)
//! calls [`Authenticator::authorize`] right after [`Authenticator::authenticate`] succeeds (through
//! [`Authenticator::admit`]), with the path
//! the request is for. The path is the canonical one the rules were written for; see
//! [`super::rule_path`].

use super::{AuthError, Authenticated, Authenticator, Confirmed};
use crate::domain::CanonicalPath;
use crate::policy::Refusal;
use crate::salesforce::Identity;
use secrecy::SecretString;

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
        self.judge(&auth.identity, &auth.token, |identity| {
            self.policy().check_path(identity, path)
        })
        .await
    }

    /// The rules that need no path ([`crate::policy::Policy::check_user`]), for the login: a
    /// user they refuse gets no session.
    pub async fn authorize_user(
        &self,
        identity: &Confirmed,
        token: &SecretString,
    ) -> Result<(), AuthError> {
        self.judge(identity, token, |identity| {
            self.policy().check_user(identity)
        })
        .await
    }

    /// Completes the profile when a rule needs it, applies `check`, and logs and counts a
    /// refusal.
    async fn judge(
        &self,
        identity: &Confirmed,
        token: &SecretString,
        check: impl Fn(&Identity) -> Result<(), Refusal>,
    ) -> Result<(), AuthError> {
        let verdict = if self.needs_profile() && !identity.has_profile() {
            let complete = self.validator().require_profile(identity, token).await?;
            check(&complete)
        } else {
            check(identity)
        };
        verdict.map_err(|refusal| refused(identity, refusal))
    }
}

fn refused(identity: &Identity, refusal: Refusal) -> AuthError {
    metrics::counter!("sfgate_authorization_refusals_total", "rule" => refusal.label())
        .increment(1);
    tracing::info!(
        user_id = %identity.user_id,
        rule = refusal.label(),
        "access denied by the authorization policy"
    );
    AuthError::AccessDenied(refusal)
}
