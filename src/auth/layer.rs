//! The identity layer and the `Identity` extractor.
//!
//! `require_identity` protects a whole router: a request reaches the handler only with an
//! identity Salesforce confirmed, from an allowed org, on an allowed instance. Handlers outside
//! such a router can take [`Identity`] as an extractor and get the same checks. Both reach the
//! [`Authenticator`] through `FromRef`, so any state that holds one can use them.

use super::{Authenticated, Authenticator, BrowserRejection, Confirmed, RefreshPolicy};
use crate::access::RulePath;
use crate::domain::Identity;
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Middleware: protects everything behind it.
pub async fn require_identity(
    State(auth): State<Authenticator>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let rejection = BrowserRejection::LoginWhenSessionEnds;
    auth.serve(parts, RulePath::Request, rejection, |mut parts, caller| {
        parts.extensions.insert(caller);
        next.run(Request::from_parts(parts, body))
    })
    .await
}

impl<S> FromRequestParts<S> for Identity
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let confirmed = confirmed(parts, &Authenticator::from_ref(state)).await?;
        Ok(confirmed.identity().clone())
    }
}

/// The caller's [`Confirmed`] identity as the cache holds it, without copying it: for hot
/// handlers that only read it or answer with its JSON ([`Confirmed::json`]).
pub struct SharedIdentity(pub Arc<Confirmed>);

impl<S> FromRequestParts<S> for SharedIdentity
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        confirmed(parts, &Authenticator::from_ref(state))
            .await
            .map(Self)
    }
}

/// What the layer already confirmed, or the same checks now for handlers outside the layer
/// (without session renewal: an extractor cannot send the renewed cookie back).
async fn confirmed(parts: &mut Parts, auth: &Authenticator) -> Result<Arc<Confirmed>, Response> {
    if let Some(caller) = parts.extensions.get::<Authenticated>() {
        return Ok(caller.identity.clone());
    }
    match auth
        .admit(parts, RulePath::Request, RefreshPolicy::Never)
        .await
    {
        Ok(caller) => {
            let identity = caller.identity.clone();
            parts.extensions.insert(caller);
            Ok(identity)
        }
        Err(e) => Err(auth.reject(
            &parts.headers,
            &parts.uri,
            &e,
            BrowserRejection::LoginWhenSessionEnds,
        )),
    }
}
