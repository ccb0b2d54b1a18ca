//! The identity layer and the `Identity` extractor.
//!
//! `require_identity` protects a whole router: a request reaches the handler only with an
//! identity Salesforce confirmed, from an allowed org, on an allowed instance. Handlers outside
//! such a router can take [`Identity`] as an extractor and get the same checks.

use super::{extract_credentials, AuthError, Confirmed, CredentialSource, Session};
use crate::auth::renewal::{RenewalError, RenewalSource, RenewedTokens};
use crate::auth::session::SESSION_COOKIE;
use crate::domain::InstanceUrl;
use crate::error::wants_html;
use crate::salesforce::Identity;
use crate::state::AppState;
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use std::sync::Arc;

/// Whether an expired session token may be renewed with the session's refresh token. Only the
/// layer can, because only it can send the renewed cookie back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPolicy {
    Allowed,
    Never,
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
}

/// Extracts, checks and validates the request's credentials.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    refresh: RefreshPolicy,
) -> Result<Authenticated, AuthError> {
    let credentials =
        extract_credentials(headers, &state.cookies)?.ok_or(AuthError::NoCredentials)?;
    let instance = state
        .config
        .salesforce
        .instance_policy
        .check(&credentials.instance)
        .inspect_err(|_| {
            metrics::counter!("sfgate_identity_validations_total", "outcome" => "instance_refused")
                .increment(1);
        })?;
    let result = state
        .validator
        .validate(&instance, &credentials.token)
        .await;
    match (result, credentials.session) {
        (Ok(identity), _) => Ok(Authenticated {
            identity,
            token: credentials.token,
            instance,
            source: credentials.source,
            renewed_session: None,
            session_expires_at: None,
        }),
        (Err(AuthError::InvalidToken(_)), Some(session)) => match refresh {
            // Boxed: the renewal's future is large and rarely needed; inline, it would make
            // every request's future (moved and allocated on each call) that large too.
            RefreshPolicy::Allowed if session.refresh_token.is_some() => {
                Box::pin(renew_session(state, &session)).await
            }
            _ => Err(AuthError::SessionExpired),
        },
        (Err(e), _) => Err(e),
    }
}

/// Renews `session` through [`crate::auth::Renewals`]: requests carrying the same session at
/// the same moment (or the old cookie shortly after) share one refresh call. Only Salesforce
/// refusing the refresh token this request holds ends the session; Salesforce being
/// unavailable answers 503 and keeps the cookie, so the session can be renewed later.
pub async fn renew_session(
    state: &AppState,
    session: &Session,
) -> Result<Authenticated, AuthError> {
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
    let (renewed, identity) = match renew_and_confirm(state, refresh_token).await {
        // A renewal reused from a moment ago whose token is already refused (revoked, or
        // expired since): this request's own refresh token may still work, so ask Salesforce.
        Err((AuthError::InvalidToken(_), RenewalSource::Shared)) => {
            state.renewals.forget(refresh_token).await;
            renew_and_confirm(state, refresh_token)
                .await
                .map_err(over)?
        }
        other => other.map_err(over)?,
    };
    let next = session.renewed(
        renewed.access_token.clone(),
        renewed.refresh_token.clone(),
        renewed.instance_url.as_str(),
        &identity,
    );
    // `None`: the session reached SESSION_MAX_AGE; renewal never extends it.
    let sealed = state
        .cookies
        .seal_session(&next)
        .ok_or(AuthError::SessionExpired)?;
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
    })
}

/// One renewal and the identity of its access token. Errors say whether the renewal was this
/// call's own or a shared one.
async fn renew_and_confirm(
    state: &AppState,
    refresh_token: &SecretString,
) -> Result<(RenewedTokens, Arc<Confirmed>), (AuthError, RenewalSource)> {
    let (renewed, source) = match state.renewals.renew_with_source(refresh_token).await {
        Ok(renewed) => renewed,
        Err(RenewalError::Refused { .. }) => {
            return Err((AuthError::SessionExpired, RenewalSource::Salesforce))
        }
        Err(RenewalError::Unavailable(e)) => {
            return Err((AuthError::RenewalUnavailable(e), RenewalSource::Salesforce))
        }
    };
    match state
        .validator
        .validate(&renewed.instance_url, &renewed.access_token)
        .await
    {
        Ok(identity) => Ok((renewed, identity)),
        Err(AuthError::InvalidToken(reason)) => Err((AuthError::InvalidToken(reason), source)),
        Err(AuthError::Upstream(e)) => Err((AuthError::RenewalUnavailable(e), source)),
        Err(e) => Err((e, source)),
    }
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
    /// Forward auth: the answer goes to nginx or Traefik, which need the status, never a
    /// redirect or an HTML page.
    Never,
}

/// The response for a refused request: the error (JSON, or HTML through `error::negotiate`);
/// for session problems also the cookie's removal, and browsers go back to the login (with
/// the request's path and query as `return_to`).
pub fn reject(state: &AppState, headers: &HeaderMap, uri: &Uri, error: &AuthError) -> Response {
    reject_as(
        state,
        headers,
        uri,
        error,
        BrowserRejection::LoginWhenSessionEnds,
    )
}

/// [`reject`], with the browser behaviour chosen by the caller.
pub fn reject_as(
    state: &AppState,
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
            BrowserRejection::Never => false,
        };
    let mut response = if to_login {
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        let location = crate::domain::ReturnTo::login_href(path_and_query);
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    } else {
        let mut r = error.to_error_response().into_response();
        if browsers == BrowserRejection::Never {
            // Without it, `error::negotiate` leaves the JSON alone.
            r.extensions_mut().remove::<crate::error::ErrorResponse>();
        }
        r
    };
    if error.ends_session() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.cookies.removal(SESSION_COOKIE));
    }
    response
}

/// Puts the caller on the request's log span.
pub fn record_identity(auth: &Authenticated) {
    let span = tracing::Span::current();
    span.record("user_id", tracing::field::display(&auth.identity.user_id));
    span.record(
        "org_id",
        tracing::field::display(&auth.identity.organization_id),
    );
}

/// Middleware: protects everything behind it.
pub async fn require_identity(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let authorized = async {
        let auth = authenticate(&state, &parts.headers, RefreshPolicy::Allowed).await?;
        let path = super::path_for_rules(&state, parts.uri.path())?;
        super::authorize(&state, &auth, path.as_deref()).await?;
        Ok::<_, AuthError>(auth)
    };
    match authorized.await {
        Ok(auth) => {
            record_identity(&auth);
            let renewed = auth.renewed_session.clone();
            parts.extensions.insert(auth);
            let mut response = next.run(Request::from_parts(parts, body)).await;
            if let Some(cookie) = renewed {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => reject(&state, &parts.headers, &parts.uri, &e),
    }
}

impl<S> FromRequestParts<S> for Identity
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let confirmed = confirmed(parts, &AppState::from_ref(state)).await?;
        Ok(confirmed.identity().clone())
    }
}

/// The caller's [`Confirmed`] identity as the cache holds it, without copying it: for hot
/// handlers such as `/api/me`, which answers with the identity's pre-rendered JSON.
pub struct SharedIdentity(pub Arc<Confirmed>);

impl<S> FromRequestParts<S> for SharedIdentity
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        confirmed(parts, &AppState::from_ref(state)).await.map(Self)
    }
}

/// What the layer already confirmed, or the same checks now for handlers outside the layer
/// (without session renewal: an extractor cannot send the renewed cookie back).
async fn confirmed(parts: &mut Parts, state: &AppState) -> Result<Arc<Confirmed>, Response> {
    if let Some(auth) = parts.extensions.get::<Authenticated>() {
        return Ok(auth.identity.clone());
    }
    let authorized = async {
        let auth = authenticate(state, &parts.headers, RefreshPolicy::Never).await?;
        let path = super::path_for_rules(state, parts.uri.path())?;
        super::authorize(state, &auth, path.as_deref()).await?;
        Ok::<_, AuthError>(auth)
    };
    match authorized.await {
        Ok(auth) => {
            let identity = auth.identity.clone();
            parts.extensions.insert(auth);
            Ok(identity)
        }
        Err(e) => Err(reject(state, &parts.headers, &parts.uri, &e)),
    }
}
