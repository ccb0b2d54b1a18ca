//! The protected routes the Node.js app's users know: `/secured` and `/api/me`.
//!
//! They run the authenticator's `serve` themselves instead of sitting behind the
//! `require_identity` layer, with the same checks, rejections and session renewal. `/api/me`
//! is the route API clients poll: a `from_fn` layer clones the boxed service behind it,
//! boxes its future and stores the caller in the request's extensions on every request,
//! which was about a third of what the identity check added to a cached request (bench case
//! (b) against (a)). Routes added with `app_with_routes` keep using the layer.
//!
//! As behind the layer, the caller is checked before the method: they are mounted for every
//! method, so an unauthenticated caller gets 401 whatever the method, and only an admitted
//! one learns that the route answers `GET` alone (405).

use super::OwnRoutes;
use crate::access::RulePath;
use crate::auth::{Authenticator, BrowserRejection, Confirmed};
use crate::domain::Identity;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Json;
use std::future::ready;
use std::sync::Arc;

pub(super) fn router() -> OwnRoutes {
    OwnRoutes::new()
        .route("/secured", any(secured))
        .route("/api/me", any(me))
}

/// The Node.js app's answer, unchanged, so its clients keep working.
async fn secured(State(auth): State<Authenticator>, request: Request) -> Response {
    protect(&auth, request, |_| {
        "Accessing secured resource".into_response()
    })
    .await
}

/// The caller's identity as JSON.
async fn me(State(auth): State<Authenticator>, request: Request) -> Response {
    protect(&auth, request, render_me).await
}

/// `/oauth2/userinfo`, oauth2-proxy's route: the caller's identity as JSON, in both modes. No
/// caller gets 401 (never a redirect: pages call it from scripts).
pub(super) async fn userinfo(State(auth): State<Authenticator>, request: Request) -> Response {
    protect_with(&auth, request, BrowserRejection::Never, render_userinfo).await
}

/// Answers with `answer(identity)` for a caller the authenticator admits, as the identity
/// layer would (a renewed session cookie included), or with its rejection.
async fn protect(
    auth: &Authenticator,
    request: Request,
    answer: impl FnOnce(&Arc<Confirmed>) -> Response,
) -> Response {
    protect_with(
        auth,
        request,
        BrowserRejection::LoginWhenSessionEnds,
        answer,
    )
    .await
}

async fn protect_with(
    auth: &Authenticator,
    request: Request,
    rejection: BrowserRejection,
    answer: impl FnOnce(&Arc<Confirmed>) -> Response,
) -> Response {
    let (parts, _body) = request.into_parts();
    auth.serve(parts, RulePath::Request, rejection, |parts, caller| {
        ready(if matches!(parts.method, Method::GET | Method::HEAD) {
            answer(&caller.identity)
        } else {
            method_not_allowed()
        })
    })
    .await
}

/// What axum's router answers for a method a route does not serve.
fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, HeaderValue::from_static("GET,HEAD"))],
    )
        .into_response()
}

/// oauth2-proxy's `userinfo` fields (`user`, `preferredUsername`; `email` is the identity's own)
/// beside sfgate's (those of `/api/me`), so a page written for either reads it. `user` is the
/// Salesforce user id, as in `X-Forwarded-User`. Serialised straight to bytes, as `/api/me` is:
/// in gateway mode this is the identity route API clients poll.
#[derive(serde::Serialize)]
pub(crate) struct UserInfo<'a> {
    #[serde(flatten)]
    identity: &'a Identity,
    user: &'a crate::domain::SalesforceId,
    #[serde(rename = "preferredUsername")]
    preferred_username: Option<&'a str>,
}

impl<'a> UserInfo<'a> {
    pub(crate) fn new(identity: &'a Identity) -> Self {
        Self {
            identity,
            user: &identity.user_id,
            preferred_username: identity.username.as_deref(),
        }
    }
}

fn render_userinfo(confirmed: &Arc<Confirmed>) -> Response {
    let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let info = UserInfo::new(confirmed.identity());
    match serde_json::to_vec(&info) {
        Ok(json) => (
            [
                no_store,
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
            ],
            json,
        )
            .into_response(),
        Err(_) => ([no_store], Json(confirmed.identity())).into_response(),
    }
}

fn render_me(confirmed: &Arc<Confirmed>) -> Response {
    let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match Confirmed::json(confirmed) {
        Ok(json) => (
            [
                no_store,
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
            ],
            json,
        )
            .into_response(),
        // Strings only: serialising cannot fail, but if it ever did, axum's Json says so.
        Err(_) => ([no_store], Json(confirmed.identity())).into_response(),
    }
}
