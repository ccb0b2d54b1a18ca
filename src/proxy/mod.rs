//! Gateway mode: with `UPSTREAM_URL` set, every request outside sfgate's own routes passes the
//! identity layer and is then proxied to the upstream app, which learns who the caller is from
//! headers only sfgate can set (as with oauth2-proxy).
//!
//! The proxy is a fallback service outside the body limit and request timeout of sfgate's own
//! routes: proxied bodies stream at any size, and `UPSTREAM_TIMEOUT` governs the upstream.

mod counts;
mod error;
mod fast_upstream;
mod forward;
mod per_thread;
mod tunnel;
mod tunnel_end;
mod tunnel_threads;
mod upgrade;
mod upstream_pool;

pub use error::ProxyError;
pub use forward::{Upstream, UpstreamError, UpstreamOptions, Via};
pub use tunnel::Tunnels;
pub use tunnel_end::TunnelEnd;

use crate::access::{skips_auth, RulePath};
use crate::auth::{
    with_renewal, Authenticated, Authenticator, BrowserRejection, CredentialSource, Vouched,
};
use crate::config::Config;
use crate::domain::{CanonicalPath, PathPolicy};
use crate::middleware::Proxied;
use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What the proxy works with, taken from the application once at start.
pub struct Gateway {
    pub auth: Authenticator,
    pub config: Config,
    pub upstream: Upstream,
    /// Whether a path is sfgate's own (the router's table): answered 404, never proxied.
    pub is_own: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

/// Makes the proxy answer everything `own` (sfgate's own routes) does not. Mounted only in
/// gateway mode, as the router's fallback itself rather than a router of its own, which would
/// be routed (and its boxed fallback cloned) a second time on every proxied request.
pub fn behind(own: Router, gateway: Arc<Gateway>) -> Router {
    own.fallback(move |request: Request| proxy(gateway.clone(), request, Via::Router))
}

/// The proxy as a service of its own, as the router's fallback answers: for the HTTP/1.1 fast
/// path (`crate::server::fast_path`), which answers requests for paths that are not sfgate's
/// own without the router. Its future is boxed here, at the bottom of the middleware stack:
/// it is several kilobytes (the upstream call's state), and every layer above returns the
/// future below it by value, so unboxed it was copied once per layer (measured with callgrind:
/// ~8 000 instructions of copying per request).
pub fn service(
    gateway: Arc<Gateway>,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = Pin<Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send>>,
> + Clone
       + Send {
    tower::service_fn(move |request: Request| {
        // The proxy's future itself is boxed, with no block around it that would hold the
        // request a second time.
        let answer = proxy(gateway.clone(), request, Via::FastPath);
        Box::pin(futures_util::FutureExt::map(answer, Ok))
            as Pin<Box<dyn Future<Output = _> + Send>>
    })
}

/// Authenticates (unless a skip-auth rule matches) and forwards.
///
/// One sequence in one function: the caller is admitted ([`admitted`]) before the upstream
/// call starts, so the admission's state and the upstream call's share the space of this
/// future, which is allocated and moved for every proxied request. Awaited inside the
/// authenticator's `serve` closure, as the router's protected routes are, the upstream call
/// was nested in the admission's future and the two took their sum. For the same reason the
/// request and its parts are only moved here, never borrowed (a local that is borrowed keeps
/// its space for the whole upstream call): [`opened`] and [`admitted`] read them.
async fn proxy(gw: Arc<Gateway>, request: Request, via: Via) -> Response {
    let (parts, body, upgrade) = match opened(&gw, request, via) {
        Ok(opened) => opened,
        Err(answer) => return answer,
    };
    let upgrading = upgrade.is_some();
    let (parts, caller) = match admitted(&gw, parts, upgrading).await {
        Ok(admitted) => admitted,
        Err(refused) => return proxied(refused, upgrading),
    };
    let answer = match caller {
        // Forwarded without a caller: the header rewrite also removes method overrides, as
        // the skip-auth rule allowed this method only.
        None => forward(&gw, parts, body, None, via, upgrade).await,
        Some(caller) => {
            let vouched = gw.auth.vouch(&caller);
            let answer = forward(&gw, parts, body, Some(&vouched), via, upgrade).await;
            with_renewal(caller.renewed_session, answer)
        }
    };
    proxied(answer, upgrading)
}

/// What the proxy decides before it awaits anything: sfgate's own paths are not proxied (a
/// 404), and the protocol to offer the upstream when the request asks for one
/// `UPGRADE_PROTOCOLS` allows. A function of its own so that the request is read here and
/// only moved in [`proxy`], whose future would otherwise keep a second copy of it.
fn opened(
    gw: &Gateway,
    request: Request,
    via: Via,
) -> Result<(Parts, Body, Option<HeaderValue>), Response> {
    // The fast path calls the proxy only for paths that are not sfgate's own, read with this
    // same function on this same path (`server::fast_path::FastPath`; the others go to the
    // router): asked again, it would only cost a scan of the route table per request.
    if via == Via::Router && (gw.is_own)(request.uri().path()) {
        return Err(crate::error::not_found());
    }
    // The tests' builds hold the fast path to that rule (no layer between it and here may
    // change the path).
    debug_assert!(via == Via::Router || !(gw.is_own)(request.uri().path()));
    // Chosen once, here: the counter, the origin check, the tunnel's end and the upstream
    // request all follow this one choice.
    let upgrade = gw
        .config
        .gateway
        .upgrade_protocols
        .choose(request.headers());
    let (parts, body) = request.into_parts();
    Ok((parts, body, upgrade))
}

/// Every answer of the proxy's, refusals included: counted when the request asked for an
/// upgrade, and marked as the proxy's ([`Proxied`]) for the layers above.
fn proxied(mut answer: Response, upgrading: bool) -> Response {
    if upgrading {
        counts::upgrade(answer.status());
    }
    answer.extensions_mut().insert(Proxied);
    answer
}

/// The path rule, then, unless a skip-auth rule matches the path, the caller's credentials,
/// the route rules and, for an upgrade (`upgrading`), the origin rule. The request's parts
/// (carrying, for an admitted upgrade, the credential's [`TunnelEnd`]) and its caller (`None`
/// on a skip-auth route), or the refusal to answer.
async fn admitted(
    gw: &Gateway,
    mut parts: Parts,
    upgrading: bool,
) -> Result<(Parts, Option<Authenticated>), Response> {
    let config = &gw.config.gateway;
    let policy = PathPolicy {
        allow_encoded_slashes: config.allow_encoded_slashes,
    };
    let path = match CanonicalPath::parse(parts.uri.path(), policy) {
        Ok(path) => path,
        Err(e) => {
            tracing::info!(reason = %e, "ambiguous request path refused");
            return Err(ProxyError::from(e).into_response());
        }
    };
    if skips_auth(&config.skip_auth_routes, &parts.method, &path) {
        return Ok((parts, None));
    }
    let caller = gw
        .auth
        .let_in(&parts, RulePath::Checked(&path), BrowserRejection::Login)
        .await?;
    if let Err(refused) = upgrade_origin(gw, &parts, &caller, upgrading) {
        tracing::info!(reason = %refused, "cross-site upgrade refused");
        // Admitted all the same: a session renewed on the way in keeps its new cookie.
        let renewed = caller.renewed_session.clone();
        return Err(with_renewal(renewed, refused.into_response()));
    }
    if upgrading {
        // A tunnel it opens ends with this credential.
        parts.extensions.insert(TunnelEnd::of(&gw.auth, &caller));
    }
    Ok((parts, Some(caller)))
}

/// A tunnelled upgrade (WebSocket) authenticated by the session cookie must come from
/// sfgate's own origin or a listed one ([`crate::auth::origin::require_websocket_origin`]).
fn upgrade_origin(
    gw: &Gateway,
    parts: &Parts,
    caller: &Authenticated,
    upgrading: bool,
) -> Result<(), crate::auth::origin::CrossSiteRequest> {
    let config = &gw.config.gateway;
    if caller.source != CredentialSource::Session || !upgrading {
        return Ok(());
    }
    crate::auth::origin::require_websocket_origin(
        &parts.headers,
        &gw.config.public_origin(),
        &config.websocket_allowed_origins,
    )
}

/// Forwards to the upstream and counts the answer.
async fn forward(
    gw: &Gateway,
    parts: Parts,
    body: axum::body::Body,
    caller: Option<&Vouched<'_>>,
    via: Via,
    upgrade: Option<HeaderValue>,
) -> Response {
    // Branched here rather than wrapped: with tracing off the forwarding future is awaited as
    // it is. The traced branch is boxed so that this future stays the size it is without
    // tracing (the state of both branches shares one space, the largest; measured with
    // callgrind, an unboxed wrapper added ~8 KB of copying per proxied request).
    let forwarded = if crate::telemetry::otel::enabled() {
        // No `let` for the forwarding future: a binding would keep its space in this future.
        Box::pin(crate::telemetry::spans::upstream_call(
            parts.method.clone(),
            gw.upstream
                .forward(&gw.config, parts, body, caller, via, upgrade),
        ))
        .await
    } else {
        gw.upstream
            .forward(&gw.config, parts, body, caller, via, upgrade)
            .await
    };
    let response = match forwarded {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    counts::proxied(response.status());
    response
}
