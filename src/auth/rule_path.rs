//! The path route rules are matched against, in every mode: the request's own, or (forward
//! auth) the original request's ([`super::original_request`]). Either is read by
//! the one path rule ([`CanonicalPath`]) the trust boundary applies, with the same
//! `ALLOW_ENCODED_SLASHES`, so rules judge exactly the paths the proxy forwards, in every
//! reading an upstream may give them ([`crate::policy::Policy::check_path`]).

use super::{AuthError, Authenticator};
use crate::domain::{CanonicalPath, PathError};

impl Authenticator {
    /// `raw` (a request path without its query) under the one path rule; `None` when there
    /// are no route rules (no path is needed, and nothing is refused here).
    pub fn path_for_rules(&self, raw: &str) -> Result<Option<CanonicalPath>, AuthError> {
        if self.policy().routes.is_empty() {
            return Ok(None);
        }
        CanonicalPath::parse(raw, self.path_policy())
            .map(Some)
            .map_err(unmatchable)
    }
}

fn unmatchable(why: PathError) -> AuthError {
    AuthError::BadHeader(format!(
        "the request path cannot be matched against the route rules: {why}"
    ))
}
