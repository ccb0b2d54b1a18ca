//! [`Authenticator`]: everything "who is calling" needs, in one value that handlers, the
//! identity layer, forward auth and the proxy reach through `FromRef` (so `auth` never sees the
//! application's state).
//!
//! Every protected entry point runs the same sequence through [`Authenticator::serve`]:
//! authenticate (renewing an expired session once), apply the authorization policy to the path
//! the rules judge, name the caller on the request's log span, produce the answer, and append
//! the renewed session cookie to it. A refusal gets [`Authenticator::reject`]'s answer.

use super::renewal::{RenewalError, RenewalSource, RenewedTokens};
use super::session::SESSION_COOKIE;
use super::{
    extract_credentials, AuthError, Confirmed, CookieSealer, CredentialSource, IdentityValidator,
    Renewals, Session,
};
use crate::access::{Policy, RulePath};
use crate::domain::Identity;
use crate::domain::{InstancePolicy, InstanceUrl, PathPolicy, SiteUrl};
use crate::error::wants_html;
use crate::headers::AssertionSigner;
use crate::readiness::{LastCall, Readiness};
use crate::salesforce::SalesforceOAuth;
use crate::store::TombstoneFigures;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use std::future::Future;
use std::sync::Arc;

/// The parts an [`Authenticator`] is built from.
pub struct AuthParts {
    /// Who may pass beyond the org check, globally and per route.
    pub policy: Policy,
    /// Which instance URLs a caller may name (checked before any network call).
    pub instance_policy: InstancePolicy,
    /// The one path rule's options (`ALLOW_ENCODED_SLASHES`), as the proxy applies them.
    pub path_policy: PathPolicy,
    pub validator: IdentityValidator,
    pub cookies: CookieSealer,
    pub oauth: SalesforceOAuth,
    pub renewals: Renewals,
    pub readiness: Arc<Readiness>,
    /// sfgate's own paths (`PROXY_PREFIX`): where browsers are sent to log in.
    pub paths: &'static crate::prefix_paths::PrefixPaths,
    /// Signs `X-Sfgate-Assertion` for the callers it vouches for, when `ASSERTION_KEY` is set.
    pub assertion: Option<Arc<AssertionSigner>>,
}

/// Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Authenticator(Arc<Inner>);

struct Inner {
    parts: AuthParts,
    /// [`Policy::needs_profile`], computed once: it walks every rule.
    needs_profile: bool,
    /// Digests of refresh tokens of revoked users' sessions already revoked at Salesforce.
    refresh_revoked: moka::sync::Cache<[u8; 32], ()>,
}

/// How many revoked sessions' refresh tokens are remembered as already revoked, and how long.
const REFRESH_REVOKED_MAX: u64 = 10_000;
const REFRESH_REVOKED_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether an expired session token may be renewed with the session's refresh token. Only
/// entry points that can send the renewed cookie back may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPolicy {
    Allowed,
    Never,
}

/// How a refusal answers a browser (a client whose `Accept` prefers `text/html`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserRejection {
    /// sfgate's own protected routes: an error page with a login link; straight back to the
    /// login only when the session ended (the user was logged in a moment ago).
    LoginWhenSessionEnds,
    /// Gateway mode: the upstream's pages are what the user came for, so a browser without a
    /// usable session goes to the login at once, as with oauth2-proxy.
    Login,
    /// Forward auth for nginx and Envoy, which act on the status themselves: never a
    /// redirect or an HTML page.
    Never,
    /// Forward auth for Traefik and Caddy, which hand the answer to the browser as is: a
    /// browser without a usable session goes to `{prefix}/start?rd=<the request's path and
    /// query>` (302), anything else gets the status as JSON.
    Start,
}

/// A request whose caller Salesforce confirmed. Stored in request extensions by the layer.
#[derive(Clone)]
pub struct Authenticated {
    pub identity: Arc<Confirmed>,
    pub token: SecretString,
    pub instance: InstanceUrl,
    pub source: CredentialSource,
    /// A renewed session cookie to send back, when the session's token was refreshed.
    pub renewed_session: Option<HeaderValue>,
    /// When the renewed cookie expires (seconds since the epoch), with `renewed_session`.
    pub session_expires_at: Option<u64>,
    /// For a session: when it reaches `SESSION_MAX_AGE` (seconds since the epoch), which
    /// ends anything it opened (tunnels) too.
    pub session_ends_at: Option<u64>,
}

/// What the authenticator hands the code that passes an admitted caller on to an app
/// (gateway mode's proxy, forward auth): the caller, whose identity headers the app reads,
/// and the signed `X-Sfgate-Assertion` that vouches for them (`ASSERTION_KEY`).
pub struct Vouched<'a> {
    pub caller: &'a Authenticated,
    pub assertion: Option<HeaderValue>,
}

impl Vouched<'_> {
    /// The identity headers (built once per cached identity).
    pub fn identity_headers(&self) -> &HeaderMap {
        self.caller.identity.headers()
    }
}

impl Authenticator {
    pub fn new(parts: AuthParts) -> Self {
        let needs_profile = parts.policy.needs_profile();
        Self(Arc::new(Inner {
            parts,
            needs_profile,
            refresh_revoked: moka::sync::Cache::builder()
                .max_capacity(REFRESH_REVOKED_MAX)
                .time_to_live(REFRESH_REVOKED_TTL)
                .build(),
        }))
    }

    /// Vouches for an admitted caller: the assertion is signed (or reused while fresh, see
    /// [`AssertionSigner::header_in`]) only here, for the entry points that pass the caller on.
    pub fn vouch<'a>(&self, caller: &'a Authenticated) -> Vouched<'a> {
        let assertion = self.0.parts.assertion.as_ref().and_then(|signer| {
            signer.header_in(caller.identity.assertion_slot(), &caller.identity)
        });
        Vouched { caller, assertion }
    }

    /// Whether some rule reads a field only the user's profile has.
    pub fn needs_profile(&self) -> bool {
        self.0.needs_profile
    }

    /// The session cookie the request carries: `None` without one, an error when it is there
    /// but cannot be opened (forged, expired, sealed with an unknown secret).
    pub fn session(&self, headers: &HeaderMap) -> Result<Option<Session>, super::CookieError> {
        self.0.parts.cookies.open_session(headers)
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn session_removal(&self) -> HeaderValue {
        self.0.parts.cookies.removal(SESSION_COOKIE)
    }

    /// How many identities the validation cache holds (for `/healthz` and `/metrics`).
    pub fn cached_identities(&self) -> u64 {
        self.0.parts.validator.cached_entries()
    }

    /// What this process remembers of logouts and revocations, by set (for `/metrics`): the
    /// memory that grows with the rate of logouts, for up to a session's maximum age.
    pub fn remembered_logouts(&self) -> Vec<(&'static str, TombstoneFigures)> {
        let parts = &self.0.parts;
        let mut sets = vec![
            ("access_tokens", parts.validator.logged_out_figures()),
            ("refresh_tokens", parts.renewals.logged_out_figures()),
        ];
        if let Some(revoked) = parts.validator.revoked_figures() {
            sets.push(("revoked_anywhere", revoked));
        }
        sets
    }

    /// The outcome of the last real call to Salesforce (for `/readyz`).
    pub fn last_salesforce_call(&self) -> Option<LastCall> {
        self.0.parts.readiness.last()
    }

    /// The identity validator, for checks made outside a request: a tunnel that asks whether
    /// its credential ended, and tests.
    pub fn validator(&self) -> &IdentityValidator {
        &self.0.parts.validator
    }

    // What the rest of `auth` (authorization, the login) reads; nothing outside `auth` does.

    /// Who may pass beyond the org check, globally and per route.
    pub(in crate::auth) fn policy(&self) -> &Policy {
        &self.0.parts.policy
    }

    /// The path rule's options, as the proxy applies them.
    pub(in crate::auth) fn path_policy(&self) -> PathPolicy {
        self.0.parts.path_policy
    }

    /// Which instance URLs a caller may name.
    pub(in crate::auth) fn instance_policy(&self) -> &InstancePolicy {
        &self.0.parts.instance_policy
    }

    /// Seals and opens sfgate's cookies.
    pub(in crate::auth) fn cookies(&self) -> &CookieSealer {
        &self.0.parts.cookies
    }

    /// The Connected App's side of the OAuth flow.
    pub(in crate::auth) fn oauth(&self) -> &SalesforceOAuth {
        &self.0.parts.oauth
    }

    /// Session renewals and logged-out refresh tokens.
    pub(in crate::auth) fn renewals(&self) -> &Renewals {
        &self.0.parts.renewals
    }

    /// The whole sequence for a protected request: admits the caller (see [`Self::let_in`]),
    /// lets `then` answer, and appends the renewed session cookie ([`with_renewal`]).
    pub async fn serve<F, Fut>(
        &self,
        parts: Parts,
        rules: RulePath<'_>,
        browsers: BrowserRejection,
        then: F,
    ) -> Response
    where
        F: FnOnce(Parts, Authenticated) -> Fut,
        Fut: Future<Output = Response>,
    {
        match self.let_in(&parts, rules, browsers).await {
            Ok(caller) => {
                let renewed = caller.renewed_session.clone();
                with_renewal(renewed, then(parts, caller).await)
            }
            Err(refused) => refused,
        }
    }

    /// The first half of [`Self::serve`], for a caller that awaits its own work next rather
    /// than inside a closure: admits the caller (see [`Self::admit`]) and names it on the log
    /// span, or answers the refusal as [`Self::reject`] shapes it for `browsers`. The answer
    /// to an admitted caller must then go through [`with_renewal`].
    ///
    /// Why both: the proxy's future is allocated for every proxied request, and work awaited
    /// inside `serve`'s closure is nested in its future (the two are alive together), while
    /// work awaited after this one returns shares its space.
    pub async fn let_in(
        &self,
        parts: &Parts,
        rules: RulePath<'_>,
        browsers: BrowserRejection,
    ) -> Result<Authenticated, Response> {
        match self.admit(parts, rules, RefreshPolicy::Allowed).await {
            Ok(caller) => {
                record_identity(&caller);
                Ok(caller)
            }
            Err(e) => Err(self.reject(&parts.headers, &parts.uri, &e, browsers)),
        }
    }

    /// Authenticates the request, then applies the authorization policy to the path `rules`
    /// names.
    pub async fn admit(
        &self,
        parts: &Parts,
        rules: RulePath<'_>,
        refresh: RefreshPolicy,
    ) -> Result<Authenticated, AuthError> {
        let auth = self.authenticate(&parts.headers, refresh).await?;
        let path = self.rule_path(rules, parts.uri.path())?;
        self.authorize(&auth, path.as_deref()).await?;
        Ok(auth)
    }

    /// Extracts, checks and validates the request's credentials.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        refresh: RefreshPolicy,
    ) -> Result<Authenticated, AuthError> {
        let credentials =
            extract_credentials(headers, self.cookies())?.ok_or(AuthError::NoCredentials)?;
        // Before the token is checked: a revoked user's session must not be renewed either.
        if let Some(session) = &credentials.session {
            self.refuse_revoked_session(session)?;
        }
        let instance = self
            .instance_policy()
            .check(&credentials.instance)
            .inspect_err(|_| {
                metrics::counter!("sfgate_identity_validations_total", "outcome" => "instance_refused")
                    .increment(1);
            })?;
        let site = session_site(credentials.session.as_ref(), self.instance_policy());
        let result = self
            .validator()
            .validate_at(&instance, site.as_ref(), &credentials.token)
            .await;
        match (result, credentials.session) {
            (Ok(identity), session) => Ok(Authenticated {
                identity,
                token: credentials.token,
                instance,
                source: credentials.source,
                renewed_session: None,
                session_expires_at: None,
                session_ends_at: session.map(|s| self.cookies().session_ends_at(&s)),
            }),
            (Err(AuthError::InvalidToken(_)), Some(session)) => match refresh {
                // Boxed: the renewal's future is large and rarely needed; inline, it would make
                // every request's future (moved and allocated on each call) that large too.
                RefreshPolicy::Allowed if session.refresh_token.is_some() => {
                    Box::pin(self.renew_session(&session)).await
                }
                _ => Err(AuthError::SessionExpired),
            },
            (Err(e), _) => Err(e),
        }
    }

    /// Refuses a session that began before its user was revoked (`sfgate revoke-user`), and
    /// revokes its refresh token at Salesforce as a logout does (once per refresh token: a
    /// client that keeps sending the cookie does not cause a call each time).
    fn refuse_revoked_session(&self, session: &Session) -> Result<(), AuthError> {
        let Ok(user) = crate::domain::SalesforceId::parse(&session.user.user_id) else {
            return Ok(());
        };
        let Some(at_ms) = self.validator().user_revoked_at(&user) else {
            return Ok(());
        };
        if session.login_ms() >= at_ms {
            return Ok(());
        }
        super::revoked_user_refusal("session");
        if let Some(refresh_token) = session.refresh_token.clone() {
            let digest = super::renewal::renewal_key(&refresh_token);
            if self.0.refresh_revoked.get(&digest).is_none() {
                self.0.refresh_revoked.insert(digest, ());
                let auth = self.clone();
                tokio::spawn(async move {
                    auth.renewals().forget(&refresh_token).await;
                    match auth.oauth().revoke(&refresh_token).await {
                        Ok(()) => tracing::info!(
                            user_id = %user,
                            "revoked user: the session's refresh token was revoked at Salesforce"
                        ),
                        Err(e) => tracing::warn!(
                            user_id = %user,
                            error = %e,
                            "revoked user: the session's refresh token could not be revoked at Salesforce"
                        ),
                    }
                });
            }
        }
        Err(AuthError::UserRevoked)
    }

    /// Renews `session` through [`Renewals`]: requests carrying the same session at the same
    /// moment (or the old cookie shortly after) share one refresh call. Only Salesforce
    /// refusing the refresh token this request holds ends the session; Salesforce being
    /// unavailable answers 503 and keeps the cookie, so the session can be renewed later.
    pub async fn renew_session(&self, session: &Session) -> Result<Authenticated, AuthError> {
        let refresh_token = session
            .refresh_token
            .as_ref()
            .ok_or(AuthError::SessionExpired)?;
        // A freshly renewed token that Salesforce refuses at once (revoked at logout a moment
        // ago) means the session is over.
        let over = |(e, _): (AuthError, RenewalSource)| match e {
            AuthError::InvalidToken(_) => AuthError::SessionExpired,
            e => e,
        };
        let (renewed, identity) = match self.renew_and_confirm(refresh_token).await {
            // A renewal reused from a moment ago whose token is already refused (revoked, or
            // expired since): this request's own refresh token may still work, so ask again.
            Err((AuthError::InvalidToken(_), RenewalSource::Shared)) => {
                self.renewals().forget(refresh_token).await;
                self.renew_and_confirm(refresh_token).await.map_err(over)?
            }
            other => other.map_err(over)?,
        };
        let next = session
            .renewed(
                renewed.access_token.clone(),
                renewed.refresh_token.clone(),
                renewed.instance_url.as_str(),
                &identity,
            )
            .with_site(renewed.site.as_ref());
        // Past SESSION_MAX_AGE: renewal never extends a session.
        let sealed = self
            .cookies()
            .seal_session(&next)
            .map_err(|_| AuthError::SessionExpired)?;
        tracing::info!(
            user_id = %identity.user_id,
            rotated = renewed.rotated,
            "session token renewed with its refresh token"
        );
        Ok(Authenticated {
            identity,
            token: renewed.access_token,
            instance: renewed.instance_url,
            source: CredentialSource::Session,
            renewed_session: Some(sealed.cookie),
            session_expires_at: Some(sealed.expires_at),
            session_ends_at: Some(self.cookies().session_ends_at(session)),
        })
    }

    /// One renewal and the identity of its access token. Errors say whether the renewal was
    /// this call's own or a shared one.
    async fn renew_and_confirm(
        &self,
        refresh_token: &SecretString,
    ) -> Result<(RenewedTokens, Arc<Confirmed>), (AuthError, RenewalSource)> {
        let (renewed, source) = match self.renewals().renew_with_source(refresh_token).await {
            Ok(renewed) => renewed,
            Err(RenewalError::Refused { .. }) => {
                return Err((AuthError::SessionExpired, RenewalSource::Salesforce))
            }
            Err(RenewalError::Unavailable(e)) => {
                return Err((AuthError::RenewalUnavailable(e), RenewalSource::Salesforce))
            }
        };
        match self
            .validator()
            .validate_at(
                &renewed.instance_url,
                renewed.site.as_ref(),
                &renewed.access_token,
            )
            .await
        {
            Ok(identity) => Ok((renewed, identity)),
            Err(AuthError::InvalidToken(reason)) => Err((AuthError::InvalidToken(reason), source)),
            Err(AuthError::Upstream(e)) => Err((AuthError::RenewalUnavailable(e), source)),
            Err(e) => Err((e, source)),
        }
    }

    /// The response for a refused request: the error (JSON, or HTML through
    /// `error::negotiate`); for session problems also the cookie's removal; browsers go back
    /// to the login (with the request's path and query as `return_to`) as `browsers` says.
    pub fn reject(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        error: &AuthError,
        browsers: BrowserRejection,
    ) -> Response {
        let to_login = wants_html(headers)
            && match browsers {
                BrowserRejection::LoginWhenSessionEnds => error.ends_session(),
                BrowserRejection::Login => {
                    error.ends_session() || matches!(error, AuthError::NoCredentials)
                }
                BrowserRejection::Start => {
                    error.ends_session() || matches!(error, AuthError::NoCredentials)
                }
                BrowserRejection::Never => false,
            };
        let mut response = if to_login {
            let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
            let (status, location) = if browsers == BrowserRejection::Start {
                (
                    StatusCode::FOUND,
                    crate::domain::ReturnTo::start_href(self.0.parts.paths, path_and_query),
                )
            } else {
                (
                    StatusCode::SEE_OTHER,
                    crate::domain::ReturnTo::login_href(self.0.parts.paths, path_and_query),
                )
            };
            let mut r = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        } else {
            let mut r = error.to_error_response().into_response();
            if matches!(browsers, BrowserRejection::Never | BrowserRejection::Start) {
                // Without it, `error::negotiate` leaves the JSON alone.
                r.extensions_mut().remove::<crate::error::ErrorResponse>();
            }
            r
        };
        if error.ends_session() {
            response
                .headers_mut()
                .append(header::SET_COOKIE, self.cookies().removal(SESSION_COOKIE));
        }
        response
    }
}

/// `response` with the renewed session cookie appended, when the caller's session was
/// renewed on the way in (`renewed`, taken from [`Authenticated::renewed_session`]): every
/// answer to that request carries it, whatever answered.
pub fn with_renewal(renewed: Option<HeaderValue>, mut response: Response) -> Response {
    if let Some(cookie) = renewed {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Puts the caller on the request's log span.
pub fn record_identity(auth: &Authenticated) {
    record_caller(&auth.identity);
}

/// Names `identity` on the request's log span (`user_id`, `org_id`): every line logged for the
/// request from here on says who made it.
pub fn record_caller(identity: &Identity) {
    let span = tracing::Span::current();
    span.record("user_id", tracing::field::display(&identity.user_id));
    span.record("org_id", tracing::field::display(&identity.organization_id));
    crate::telemetry::spans::record_user_id(&identity.user_id);
}

/// The Experience Cloud site a session's tokens were issued through, read back through the
/// instance policy: a site that no longer passes it is not called (the instance is asked).
fn session_site(session: Option<&Session>, policy: &InstancePolicy) -> Option<SiteUrl> {
    let raw = session?.site_url.as_deref()?;
    SiteUrl::check(policy, raw)
        .inspect_err(
            |e| tracing::warn!(error = %e, "a session names a site outside the allowed instances"),
        )
        .ok()
}
