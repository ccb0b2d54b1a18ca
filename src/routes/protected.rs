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
use crate::auth::{Authenticator, BrowserRejection, Confirmed, JsonShape};
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
    protect(&auth, request, |c| render(c, JsonShape::Identity)).await
}

/// `/oauth2/userinfo`, oauth2-proxy's route: the caller's identity as JSON, in both modes. No
/// caller gets 401 (never a redirect: pages call it from scripts).
pub(super) async fn userinfo(State(auth): State<Authenticator>, request: Request) -> Response {
    protect_with(&auth, request, BrowserRejection::Never, |c| {
        render(c, JsonShape::UserInfo)
    })
    .await
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

/// The identity as JSON in `shape`, from the serving thread's copy when it has one
/// ([`Confirmed::json_as`]): these are the routes API clients poll.
fn render(confirmed: &Arc<Confirmed>, shape: JsonShape) -> Response {
    let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match Confirmed::json_as(confirmed, shape) {
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
