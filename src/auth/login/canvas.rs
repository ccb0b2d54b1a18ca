//! Canvas sign-in (`POST /oauth2/canvas`, `CANVAS_ENABLED`). Salesforce shows the app in an
//! iframe on its own pages and POSTs a signed request to the Canvas App URL; a valid one
//! starts a session without a login click.
//!
//! The order is the login's: the signature first (nothing in the context is believed before
//! it), then the embedded token exactly as a bearer call is checked (instance allowlist,
//! `userinfo` or local JWT check, org allowlist, user rules), then the session. Any refusal
//! creates nothing: no cookie, no cached grant beyond the token's own verdict.

use super::{Login, LoginError};
use crate::auth::session::{now_ms, now_secs, Session, SessionUser};
use crate::auth::Confirmed;
use crate::domain::{OrgId, ReturnTo, SalesforceId};
use crate::salesforce::canvas::{self, CanvasRequest};
use axum::http::HeaderValue;
use secrecy::ExposeSecret;
use std::sync::Arc;

impl Login {
    /// The signed request's signature, checked with the client secret; nothing in it is
    /// believed before.
    pub fn verify_canvas(&self, signed_request: &str) -> Result<CanvasRequest, LoginError> {
        let secret = self.settings().client_secret.expose_secret();
        Ok(canvas::verify(signed_request, secret.as_bytes())?)
    }

    /// Where a Canvas session lands: `CANVAS_LANDING`, or a same-origin `rd` when one is
    /// given. An `rd` that is not a plain path on this origin is refused rather than ignored:
    /// it was asked for.
    pub fn canvas_landing(&self, rd: Option<&str>) -> Result<ReturnTo, LoginError> {
        match rd {
            None => Ok(self.settings().canvas_landing.clone()),
            Some(rd) => ReturnTo::parse(rd).ok_or_else(|| {
                LoginError::BadRequest("`rd` must be a path on this origin, e.g. /app".into())
            }),
        }
    }

    /// The session a verified signed request starts: its token confirmed as a bearer call's,
    /// then sealed into a session cookie (`Set-Cookie` value).
    pub async fn canvas_session(&self, request: CanvasRequest) -> Result<HeaderValue, LoginError> {
        let identity = self.confirm_canvas(&request).await?;
        let session = Session {
            access_token: request.oauth_token,
            refresh_token: request.refresh_token,
            instance_url: identity.instance_url.as_str().to_string(),
            user: SessionUser::from(&**identity),
            login_at: now_secs(),
            login_ms: Some(now_ms()),
            embedded: true,
            site_url: None,
        };
        let sealed = self.auth().cookies().seal_session(&session).map_err(|_| {
            LoginError::BadRequest("the session cookie could not be created".into())
        })?;
        super::confirm::login_completed(&identity);
        metrics::counter!("sfgate_canvas_requests_total", "result" => "session").increment(1);
        Ok(sealed.cookie)
    }

    /// The embedded token, checked exactly as a bearer call's; then the rules that need no
    /// path. The token must belong to the user and org the signed context names.
    async fn confirm_canvas(&self, request: &CanvasRequest) -> Result<Arc<Confirmed>, LoginError> {
        let auth = self.auth();
        let instance = auth
            .instance_policy()
            .check(&request.instance_url)
            .map_err(crate::auth::AuthError::from)?;
        let identity = auth
            .validator()
            .validate(&instance, &request.oauth_token)
            .await?;
        let same_user = request
            .user_id
            .as_deref()
            .is_none_or(|u| SalesforceId::parse(u).is_ok_and(|u| u == identity.user_id));
        let same_org = request
            .org_id
            .as_deref()
            .is_none_or(|o| OrgId::parse(o).is_ok_and(|o| o == identity.organization_id));
        if !same_user || !same_org {
            return Err(LoginError::CanvasMismatch);
        }
        auth.authorize_user(&identity, &request.oauth_token).await?;
        Ok(identity)
    }
}
