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
use crate::auth::{Authenticated, Authenticator, BrowserRejection, CredentialSource, Vouched};
use crate::config::Config;
use crate::domain::{CanonicalPath, PathPolicy};
use crate::middleware::Proxied;
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
    own.fallback(move |request: Request| {
        let gateway = gateway.clone();
        async move { proxy(&gateway, request, Via::Router).await }
    })
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
        let gateway = gateway.clone();
        Box::pin(async move { Ok(proxy(&gateway, request, Via::FastPath).await) })
            as Pin<Box<dyn Future<Output = _> + Send>>
    })
}

/// Authenticates (unless a skip-auth rule matches) and forwards.
async fn proxy(gw: &Gateway, request: Request, via: Via) -> Response {
    // The fast path takes only paths that are not sfgate's own, read with this same function
    // on this same path (`server::fast_path`'s rule): asked again, it would only cost a scan
    // of the route table per request.
    if via == Via::Router && (gw.is_own)(request.uri().path()) {
        return crate::error::not_found();
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
    let upgrading = upgrade.is_some();
    let mut response = authenticate_then_forward(gw, request, via, upgrade).await;
    if upgrading {
        counts::upgrade(response.status());
    }
    response.extensions_mut().insert(Proxied);
    response
}

/// `upgrade`: the protocol offered to the upstream, when the request asks for one
/// `UPGRADE_PROTOCOLS` allows.
async fn authenticate_then_forward(
    gw: &Gateway,
    request: Request,
    via: Via,
    upgrade: Option<HeaderValue>,
) -> Response {
    let (parts, body) = request.into_parts();
    let config = &gw.config.gateway;
    let policy = PathPolicy {
        allow_encoded_slashes: config.allow_encoded_slashes,
    };
    let path = match CanonicalPath::parse(parts.uri.path(), policy) {
        Ok(path) => path,
        Err(e) => {
            tracing::info!(reason = %e, "ambiguous request path refused");
            return ProxyError::from(e).into_response();
        }
    };
    if skips_auth(&config.skip_auth_routes, &parts.method, &path) {
        // Forwarded without a caller: the header rewrite also removes method overrides, as
        // the rule allowed this method only.
        return forward(gw, parts, body, None, via, upgrade).await;
    }
    let rejection = BrowserRejection::Login;
    gw.auth
        .serve(
            parts,
            RulePath::Checked(&path),
            rejection,
            |mut parts, caller| async move {
                if let Err(refused) = upgrade_origin(gw, &parts, &caller, upgrade.is_some()) {
                    tracing::info!(reason = %refused, "cross-site upgrade refused");
                    return refused.into_response();
                }
                if upgrade.is_some() {
                    // A tunnel it opens ends with this credential.
                    parts.extensions.insert(TunnelEnd::of(&gw.auth, &caller));
                }
                let vouched = gw.auth.vouch(&caller);
                forward(gw, parts, body, Some(&vouched), via, upgrade).await
            },
        )
        .await
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
