//! Enforcing the access policy on a confirmed caller, in every mode: the rule that applies is
//! decided in [`crate::access::route_decision`]; here the caller's profile is completed when a
//! rule needs it, and a refusal is logged, counted and turned into 403 `access_denied`.
//!
//! Each protected entry point (sfgate's own protected routes, gateway mode, forward auth)
//! calls [`Authenticator::authorize`] right after [`Authenticator::authenticate`] succeeds
//! (through [`Authenticator::admit`]), with the path the request is for ([`RulePath`]).

use super::{AuthError, Authenticated, Authenticator, Confirmed};
use crate::access::{path_for_rules, Refusal, RulePath};
use crate::domain::Identity;
use crate::domain::{CanonicalPath, PathError};
use secrecy::SecretString;
use std::borrow::Cow;

/// Whether the caller may have `path` (`None`: unknown, e.g. forward auth without a trusted
/// original URI). Refusals are logged with the rule, counted, and become 403 `access_denied`.
/// An identity confirmed without its profile (a locally validated JWT) gets it first when a
/// rule needs it; if it cannot be had, the request fails closed.
impl Authenticator {
    /// The path `rules` names, under the one path rule, for [`Self::authorize`]: `raw` is the
    /// request's own path (without its query).
    pub fn rule_path<'a>(
        &self,
        rules: RulePath<'a>,
        raw: &str,
    ) -> Result<Option<Cow<'a, CanonicalPath>>, AuthError> {
        Ok(match rules {
            RulePath::Checked(path) => Some(Cow::Borrowed(path)),
            RulePath::Original(path) => path.map(Cow::Borrowed),
            RulePath::Request => self.path_for_rules(raw)?.map(Cow::Owned),
        })
    }

    /// `raw` (a request path without its query) under the one path rule; `None` when there
    /// are no route rules (no path is needed, and nothing is refused here).
    pub fn path_for_rules(&self, raw: &str) -> Result<Option<CanonicalPath>, AuthError> {
        path_for_rules(self.policy(), self.path_policy(), raw).map_err(unmatchable)
    }

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

    /// The rules that need no path ([`crate::access::Policy::check_user`]), for the login: a
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
            // Boxed: a profile call is rare, and every authorized request's future would
            // otherwise carry its state.
            let complete = Box::pin(self.validator().require_profile(identity, token)).await?;
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

fn unmatchable(why: PathError) -> AuthError {
    AuthError::BadHeader(format!(
        "the request path cannot be matched against the route rules: {why}"
    ))
}
