//! Sending one request to the upstream app and bringing its answer back, both bodies streamed.
//!
//! The data path is hyper's connection-level client with idle connections kept per serving
//! thread ([`super::upstream_pool`]; keep-alive, HTTP/1.1, or HTTP/2 by setting):
//! the upstream's URI is the pre-parsed `UPSTREAM_URL` with the request's path and query
//! appended, so no URL is parsed per request, and no redirect or retry machinery runs (the
//! browser must see the upstream's redirects).
//!
//! Nothing here buffers a body: the request body goes out as the client sends it and the
//! response body comes back as the upstream sends it, so a 100 MB upload or download costs a
//! few chunks of memory. `UPSTREAM_TIMEOUT` bounds waiting, not transferring (like Go's
//! `ResponseHeaderTimeout`, which oauth2-proxy uses): the clock restarts whenever a chunk of the
//! request body goes out, so it measures how long the upstream takes to answer once the request
//! is sent; a long download is never cut off.

use super::error::ProxyError;
use super::fast_upstream::{FastUpstream, RequestHead};
use super::tunnel::Tunnels;
use super::upgrade::accepted_is_offered;
use super::upstream_pool::{UpstreamFailure, UpstreamPool};
use crate::auth::Vouched;
use crate::config::Config;
use crate::headers::rewrite::{self as headers, Forwarded, Outgoing};
use crate::headers::rule::UnderscoreHeaders;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use url::Url;

/// How sfgate talks to the upstream app.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamOptions {
    /// `UPSTREAM_TIMEOUT`: the longest wait for the upstream's response headers.
    pub timeout: Duration,
    /// `UPSTREAM_HTTP2`: HTTP/2 to the upstream (prior knowledge on `http://`, ALPN on
    /// `https://`, with HTTP/1.1 as the fallback there).
    pub http2: bool,
    /// `WEBSOCKET_IDLE_TIMEOUT`: an upgraded connection with no bytes either way this long
    /// is closed.
    pub websocket_idle: Duration,
    /// `UPSTREAM_IDLE_TIMEOUT`: a pooled connection unused this long is closed.
    pub idle_timeout: Duration,
}

/// The upstream app and the client that talks to it.
#[derive(Clone)]
pub struct Upstream {
    /// Connections per serving thread; upgrades get an HTTP/1.1 connection of their own.
    pool: Arc<UpstreamPool>,
    scheme: Scheme,
    authority: Authority,
    /// The path of `UPSTREAM_URL` without its trailing `/` (often empty).
    prefix: Arc<str>,
    timeout: Duration,
    tunnels: Tunnels,
    /// sfgate's own HTTP/1.1 client for the fast path's requests (`http://` upstreams
    /// without `UPSTREAM_HTTP2`).
    fast: Option<Arc<FastUpstream>>,
}

/// Which server read the request: the general one (hyper, through the router) or the
/// HTTP/1.1 fast path, whose bodiless requests go out on sfgate's own client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Router,
    FastPath,
}

/// Why the upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("UPSTREAM_URL has no host")]
    NoHost,
    #[error("UPSTREAM_URL is not a valid URI: {0}")]
    Uri(#[from] axum::http::Error),
}

impl Upstream {
    /// A client of its own, apart from the Salesforce one: no redirects followed, no overall
    /// timeout (it would cut long downloads), and a connect timeout so a dead upstream fails
    /// fast with 502.
    pub fn new(base: &Url, options: UpstreamOptions) -> Result<Self, UpstreamError> {
        let host = base.host_str().ok_or(UpstreamError::NoHost)?;
        let authority = match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let authority = Authority::try_from(authority.as_str()).map_err(axum::http::Error::from)?;
        let scheme = if base.scheme() == "https" {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let connect_timeout = options.timeout.min(Duration::from_secs(10));
        let origin = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()?;
        let pool = UpstreamPool::new(
            origin,
            connect_timeout,
            options.http2,
            scheme == Scheme::HTTPS,
            options.idle_timeout,
        );
        let fast = (!options.http2)
            .then(|| {
                FastUpstream::new(
                    base,
                    pool.host().clone(),
                    connect_timeout,
                    options.idle_timeout,
                )
            })
            .flatten()
            .map(Arc::new);
        Ok(Self {
            fast,
            pool: Arc::new(pool),
            scheme,
            authority,
            prefix: base.path().trim_end_matches('/').into(),
            timeout: options.timeout,
            tunnels: Tunnels::new(options.websocket_idle),
        })
    }

    /// The upgraded connections (WebSockets) this upstream has open.
    pub fn tunnels(&self) -> &Tunnels {
        &self.tunnels
    }

    /// `UPSTREAM_URL`'s path + the request's path and query, as sent. A path an upstream
    /// could read differently (dot segments, backslashes) is refused, so the upstream gets
    /// exactly the path the skip-auth rules saw (`/public/../admin` must not reach `/admin`
    /// past a rule for `^/public/`). sfgate's own client writes only this; hyper's takes the
    /// whole URI ([`Self::target`]).
    fn target_path(&self, uri: &Uri) -> Result<PathAndQuery, ProxyError> {
        // The path passed the one path rule (`domain::CanonicalPath`) before the proxy called
        // `forward`: no dot segment, backslash or encoded separator reaches the upstream.
        Ok(match (uri.path_and_query(), self.prefix.is_empty()) {
            (Some(pq), true) => pq.clone(),
            (Some(pq), false) => PathAndQuery::try_from(format!("{}{pq}", self.prefix))
                .map_err(|_| ProxyError::UnnormalizedPath)?,
            (None, true) => PathAndQuery::from_static("/"),
            (None, false) => PathAndQuery::try_from(format!("{}/", self.prefix))
                .map_err(|_| ProxyError::UnnormalizedPath)?,
        })
    }

    /// `UPSTREAM_URL` + [`Self::target_path`].
    fn target(&self, path_and_query: PathAndQuery) -> Result<Uri, ProxyError> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| ProxyError::UnnormalizedPath)
    }

    /// Forwards the request and returns the upstream's response, hop-by-hop headers removed.
    /// A protocol upgrade the upstream accepts (`101`) joins the two connections.
    /// `protocol`: the upgrade the request asks for, when `UPGRADE_PROTOCOLS` allows it
    /// (`UpgradeProtocols::choose`, never h2c); any other `Upgrade` is dropped below with the
    /// hop-by-hop headers (see `super::upgrade`).
    pub async fn forward(
        &self,
        config: &Config,
        mut parts: Parts,
        body: Body,
        auth: Option<&Vouched<'_>>,
        via: Via,
        protocol: Option<HeaderValue>,
    ) -> Result<Response, ProxyError> {
        let path_and_query = self.target_path(&parts.uri)?;
        // An upgrade needs the client's connection (HTTP/1.1 only); without it the request
        // is an ordinary one and `Upgrade` is dropped as the hop-by-hop header it is.
        let upgrade = protocol.and_then(|protocol| {
            parts
                .extensions
                .remove::<hyper::upgrade::OnUpgrade>()
                .map(|on| (protocol, on))
        });
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let outgoing = Outgoing {
            forwarded: Forwarded {
                client,
                host: parts.uri.authority().map(|a| a.as_str()),
                trust_proxy: config.server.trust_proxy,
            },
            underscores: config.gateway.underscore_headers,
            // Without a caller, a skip-auth rule let the request through for its own method:
            // the app must not be told to act as another one.
            drop_method_overrides: auth.is_none(),
            identity: auth.map(|a| a.identity_headers()),
            // Only sfgate signs assertions; a client's copy never reaches the app.
            assertion: auth.and_then(|a| a.assertion.as_ref()),
            access_token: auth
                .filter(|_| config.gateway.pass_access_token)
                .map(|a| (&a.caller.token, &a.caller.instance)),
        };

        if let Some(fast) = self.fast.as_deref().filter(|_| {
            via == Via::FastPath
                && upgrade.is_none()
                && (parts.method == Method::GET || parts.method == Method::HEAD)
                && body.is_end_stream()
                // Trace headers are set on a map (`spans::propagate`); traces turn the fast
                // path off anyway.
                && !crate::telemetry::otel::enabled()
        }) {
            let target = path_and_query.as_str();
            // The rewritten headers are written as the request head's lines: no second map.
            let mut head = RequestHead::new(&parts.method, target, parts.headers.len());
            headers::rewrite_request(&parts.headers, &outgoing, &mut head);
            let send = fast.send(&parts.method, head);
            return match tokio::time::timeout(self.timeout, send).await {
                Ok(Ok(answer)) => {
                    let (head, body) = answer.into_parts();
                    Ok(response_of(head, body))
                }
                Ok(Err(e)) => Err(classify(e)),
                Err(_) => Err(ProxyError::Timeout),
            };
        }

        let mut out = headers::upstream_request_headers(&parts.headers, &outgoing);
        // The upstream continues the request's trace, with sfgate's call as the parent.
        crate::telemetry::spans::propagate(&mut out);

        let mut request = Request::new(Body::empty());
        *request.method_mut() = parts.method;
        *request.uri_mut() = self.target(path_and_query)?;
        *request.version_mut() = Version::HTTP_11;

        if let Some((protocol, client_upgrade)) = upgrade {
            out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            out.insert(header::UPGRADE, protocol.clone());
            *request.headers_mut() = out;
            // Boxed: upgrades are rare, and their connect-and-handshake state would make every
            // request's future (moved whole on each request) larger.
            let send = Box::pin(self.pool.send_upgrade(request));
            let mut response = match tokio::time::timeout(self.timeout, send).await {
                Ok(result) => result.map_err(classify)?,
                Err(_) => return Err(ProxyError::Timeout),
            };
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                if !accepted_is_offered(response.headers().get(header::UPGRADE), &protocol) {
                    // Switched to something not offered: nothing sfgate may tunnel. The
                    // client's connection stays HTTP under sfgate's own parser.
                    tracing::warn!("the upstream switched to a protocol it was not offered");
                    return Err(ProxyError::Unreachable);
                }
                let upstream_upgrade = hyper::upgrade::on(&mut response);
                let websocket = protocol.as_bytes().eq_ignore_ascii_case(b"websocket");
                let slot = parts.extensions.remove::<crate::server::ConnectionSlot>();
                let end = parts.extensions.remove::<super::TunnelEnd>();
                // An upgraded HTTP/1 connection is the client's socket alone; only then may
                // the tunnel take the socket over (an HTTP/2 connection carries other streams).
                let own_socket = parts.version <= Version::HTTP_11;
                self.tunnels.open(
                    client_upgrade,
                    upstream_upgrade,
                    websocket,
                    slot,
                    end,
                    own_socket,
                );
                let (mut head, _) = response.into_parts();
                let accepted = head.headers.get(header::UPGRADE).cloned();
                headers::remove_hop_by_hop(&mut head.headers);
                headers::remove_own_cookie_settings(&mut head.headers);
                head.headers
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                head.headers
                    .insert(header::UPGRADE, accepted.unwrap_or(protocol));
                return Ok(Response::from_parts(head, Body::empty()));
            }
            return Ok(into_response(response));
        }

        *request.headers_mut() = out;
        // A bodiless request stays bodiless (no `Transfer-Encoding: chunked` on a GET), and
        // needs no progress watching: the timeout is one timer.
        if body.is_end_stream() || body.size_hint().exact() == Some(0) {
            let send = self.pool.send(request);
            return match tokio::time::timeout(self.timeout, send).await {
                Ok(result) => Ok(into_response(result.map_err(classify)?)),
                Err(_) => Err(ProxyError::Timeout),
            };
        }
        let progress = Arc::new(Notify::new());
        *request.body_mut() = Body::new(Watched {
            inner: body,
            progress: progress.clone(),
            underscores: config.gateway.underscore_headers,
        });
        let response = until_idle(self.pool.send(request), &progress, self.timeout).await?;
        Ok(into_response(response))
    }
}

/// A request body that tells the timeout each time a chunk goes out, and whose trailer fields
/// pass the same rule as the request's headers ([`headers::remove_request_trailers`]).
struct Watched {
    inner: Body,
    progress: Arc<Notify>,
    underscores: UnderscoreHeaders,
}

impl HttpBody for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let Poll::Ready(Some(Ok(frame))) = polled else {
            return polled;
        };
        self.progress.notify_one();
        match frame.into_trailers() {
            Ok(mut trailers) => {
                headers::remove_request_trailers(&mut trailers, self.underscores);
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            Err(data) => Poll::Ready(Some(Ok(data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Waits for the upstream's response headers, failing after `idle` without progress.
async fn until_idle<T>(
    send: impl Future<Output = Result<T, UpstreamFailure>>,
    progress: &Notify,
    idle: Duration,
) -> Result<T, ProxyError> {
    tokio::pin!(send);
    loop {
        tokio::select! {
            result = &mut send => return result.map_err(classify),
            _ = progress.notified() => {}
            _ = tokio::time::sleep(idle) => return Err(ProxyError::Timeout),
        }
    }
}

fn classify(e: impl std::error::Error) -> ProxyError {
    // Neither client's errors carry a URL, so no query string (codes, tokens) reaches the
    // log.
    tracing::warn!(error = %e, source = ?e.source(), "upstream request failed");
    ProxyError::Unreachable
}

/// hyper's answer as the proxy passes it on (see [`passed_on`] for the rules).
fn into_response<B>(upstream: hyper::Response<B>) -> Response
where
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (mut head, body) = upstream.into_parts();
    passed_on(&mut head.headers);
    response_of(head, body)
}

/// The answer's headers as the client gets them. The body's length as forwarded is the one
/// it was read by: with `Transfer-Encoding` (which the upstream's client decoded), a
/// `Content-Length` beside it is not the body's and is removed (RFC 9112 §6.3), else the
/// client would read the body by it; hop-by-hop headers are the upstream connection's; and
/// no `Set-Cookie` of the app's sets one of sfgate's cookies
/// ([`headers::remove_own_cookie_settings`]). sfgate's own client applies the same rules as
/// it reads the head (`super::fast_upstream`), so its answers need not be walked again.
pub(super) fn passed_on(headers: &mut HeaderMap) {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        headers.remove(header::CONTENT_LENGTH);
    }
    headers::remove_hop_by_hop_response(headers);
    headers::remove_own_cookie_settings(headers);
}

/// An answer whose headers are as passed on.
fn response_of<B>(mut head: axum::http::response::Parts, body: B) -> Response
where
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        // A 101 to a request that asked for no upgrade (or whose upgrade was not taken) would
        // leave the client's connection in an undefined state.
        tracing::warn!("the upstream switched protocols without being asked to");
        return ProxyError::Unreachable.into_response();
    }
    // A proxy answers in its own HTTP version, not the upstream's (RFC 9110 §6.2): an
    // HTTP/1.0 upstream does not make the client's HTTP/1.1 connection an HTTP/1.0 one.
    head.version = Version::HTTP_11;
    Response::from_parts(head, Body::new(body))
}
