//! The connections to the upstream app: hyper's connection-level client, with the idle
//! connections kept per serving thread.
//!
//! Each serving thread (src/server/threads.rs) has its own queue of idle HTTP/1.1
//! connections to the upstream (and its own HTTP/2 connection, when that is used), so taking
//! and returning a connection touches no lock, no atomic shared with another thread and no
//! task: a request takes the most recently used idle connection, or opens one; its response
//! body, once read to the end, puts the connection back (a connection still sending a request
//! body stays queued but is skipped until it is ready). A connection whose response was not
//! read to the end (the client went away) is not reused, and one the upstream closed while
//! idle is dropped when next looked at.
//!
//! An idle connection unused for `UPSTREAM_IDLE_TIMEOUT` is closed by its own task, whether
//! or not its thread serves another request: a queue is only looked at when its thread
//! proxies, and a thread that went quiet after a burst would otherwise keep the burst's
//! connections (and their descriptors, on both ends) open for good. Each connection's task
//! waits on the connection and on a timer that wakes once per timeout; taking and returning
//! a connection only stores a time in an atomic ([`IdleMark`]). An HTTP/2 connection is idle
//! while no stream is open on it: each request holds a [`Stream`] from its sending until its
//! response body is dropped.
//!
//! A request sent on an idle connection that turns out to be closed before the request was
//! written (the upstream's keep-alive timeout raced it) is sent again on a new connection:
//! nothing of it reached the upstream.
//!
//! Protocol upgrades (WebSockets) always get a new HTTP/1.1 connection of their own, which
//! the tunnel then takes over.

use super::per_thread::{new_pool_id, with_queue, Queues, MAX_IDLE_PER_THREAD};
use axum::body::Body;
use axum::http::uri::PathAndQuery;
use axum::http::{header, HeaderValue, Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::ServiceExt;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

thread_local! {
    /// This thread's idle connections, per pool.
    static IDLE: Queues<ThreadIdle> = const { RefCell::new(Vec::new()) };
}

#[derive(Default)]
struct ThreadIdle {
    h1: VecDeque<H1>,
    h2: Option<H2>,
}

/// A thread's HTTP/2 connection: the handle its requests are sent on, and its open streams,
/// which its task reads to close it once none has been open for the idle timeout.
#[derive(Clone)]
struct H2 {
    sender: http2::SendRequest<Body>,
    streams: Arc<Streams>,
}

#[derive(Debug)]
struct Streams {
    open: AtomicUsize,
    idle: IdleMark,
}

/// One request on an HTTP/2 connection, from its sending until its response body is dropped:
/// the connection is busy while any is held.
struct Stream(Arc<Streams>);

impl Stream {
    fn open(streams: &Arc<Streams>) -> Self {
        if streams.open.fetch_add(1, Ordering::Relaxed) == 0 {
            streams.idle.busy();
        }
        Self(streams.clone())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle.idle();
        }
    }
}

/// A pooled HTTP/1.1 connection: the handle requests are sent on, and the mark its task
/// reads to close it once idle too long.
struct H1 {
    sender: http1::SendRequest<Body>,
    idle: Arc<IdleMark>,
}

/// Since when a pooled connection has been idle, shared with the task that drives it.
#[derive(Debug)]
struct IdleMark {
    opened: Instant,
    /// Milliseconds from `opened` to the moment it went idle, plus one; 0 while in use.
    since: AtomicU64,
}

impl IdleMark {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            since: AtomicU64::new(0),
        }
    }

    fn busy(&self) {
        self.since.store(0, Ordering::Relaxed);
    }

    fn idle(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.since.store(ms + 1, Ordering::Relaxed);
    }

    /// How long the connection has been idle; `None` while in use.
    fn idle_for(&self) -> Option<Duration> {
        match self.since.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.opened
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms - 1)),
            ),
        }
    }

    /// Completes once the connection has been idle for `timeout` (checked once per
    /// `timeout` at most, and again when it would have run out).
    async fn expired(&self, timeout: Duration) {
        loop {
            let wait = match self.idle_for() {
                Some(idle) if idle >= timeout => return,
                Some(idle) => timeout - idle,
                None => timeout,
            };
            tokio::time::sleep(wait).await;
        }
    }
}

fn with_idle<R>(pool: u64, f: impl FnOnce(&mut ThreadIdle) -> R) -> Option<R> {
    with_queue(&IDLE, pool, f)
}

/// How one upstream is reached.
pub(super) struct UpstreamPool {
    id: u64,
    /// `scheme://authority` of the upstream: what the connector dials.
    origin: Uri,
    /// The `Host` header of HTTP/1.1 requests that carry none: the upstream's authority.
    host: HeaderValue,
    connector: Connector,
    /// HTTP/1.1 only (upgrades); the same as `connector` unless HTTP/2 is on.
    h1_connector: Connector,
    /// Prior-knowledge HTTP/2 (`UPSTREAM_HTTP2` with an `http://` upstream).
    h2_prior_knowledge: bool,
    /// `UPSTREAM_IDLE_TIMEOUT`.
    idle_timeout: Duration,
}

/// Why the upstream could not be asked. Carries no URL (no query string reaches the log).
#[derive(Debug)]
pub(super) enum UpstreamFailure {
    Connect(Box<dyn std::error::Error + Send + Sync>),
    Http(hyper::Error),
}

impl fmt::Display for UpstreamFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UpstreamFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) => e.source(),
            Self::Http(e) => std::error::Error::source(e),
        }
    }
}

/// A freshly opened connection, HTTP/1.1 or HTTP/2 as negotiated.
enum Fresh {
    H1(H1),
    H2(H2),
}

impl UpstreamPool {
    pub(super) fn new(
        origin: Uri,
        connect_timeout: Duration,
        http2: bool,
        https: bool,
        idle_timeout: Duration,
    ) -> Self {
        let connector = connector(connect_timeout, http2 && https);
        let h1_connector = if http2 && https {
            self::connector(connect_timeout, false)
        } else {
            connector.clone()
        };
        let host = origin
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .unwrap_or_else(|| HeaderValue::from_static("localhost"));
        Self {
            id: new_pool_id(),
            origin,
            host,
            connector,
            h1_connector,
            h2_prior_knowledge: http2 && !https,
            idle_timeout,
        }
    }

    /// The `Host` header of requests that carry none.
    pub(super) fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// Sends `request` on an idle connection of this thread, or a new one.
    pub(super) async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<Response<UpstreamBody>, UpstreamFailure> {
        let mut request = request;
        if let Some((mut sender, stream)) = self.idle_h2() {
            // HTTP/2 takes `:scheme` and `:authority` from the absolute URI.
            return sender
                .send_request(request)
                .await
                .map(|r| r.map(|body| UpstreamBody::on_stream(body, stream)))
                .map_err(UpstreamFailure::Http);
        }
        let absolute = request.uri().clone();
        self.http1_form(&mut request);
        while let Some(mut conn) = self.idle_h1() {
            match conn.sender.try_send_request(request).await {
                Ok(response) => return Ok(self.pooled(response, conn)),
                Err(mut e) => match e.take_message() {
                    // Never written: the connection was closed under it. Try another.
                    Some(unsent) => request = unsent,
                    None => return Err(UpstreamFailure::Http(e.into_error())),
                },
            }
        }
        // Boxed: a new connection is the rare case, and its state (connector, TLS, handshake)
        // would otherwise make every request's future, moved and copied whole on each
        // request, several kilobytes larger.
        match Box::pin(self.connect(&self.connector, self.h2_prior_knowledge)).await? {
            Fresh::H2(h2) => {
                let stream = Stream::open(&h2.streams);
                let mut sender = h2.sender.clone();
                with_idle(self.id, |idle| idle.h2 = Some(h2));
                *request.uri_mut() = absolute;
                request.headers_mut().remove(header::HOST);
                sender
                    .send_request(request)
                    .await
                    .map(|r| r.map(|body| UpstreamBody::on_stream(body, stream)))
                    .map_err(UpstreamFailure::Http)
            }
            Fresh::H1(mut conn) => {
                let response = conn
                    .sender
                    .send_request(request)
                    .await
                    .map_err(UpstreamFailure::Http)?;
                Ok(self.pooled(response, conn))
            }
        }
    }

    /// Sends a protocol-upgrade request on a new HTTP/1.1 connection of its own; a `101`
    /// answer leaves the connection to `hyper::upgrade::on`.
    pub(super) async fn send_upgrade(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<UpstreamBody>, UpstreamFailure> {
        self.http1_form(&mut request);
        let io = self
            .h1_connector
            .clone()
            .oneshot(self.origin.clone())
            .await
            .map_err(UpstreamFailure::Connect)?;
        let (mut sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(UpstreamFailure::Http)?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(UpstreamFailure::Http)?;
        Ok(response.map(UpstreamBody::unpooled))
    }

    /// What hyper-util's client did for HTTP/1.1: a `Host` header when the request has none,
    /// and the request target in origin form (`/path?query`; authority form for CONNECT).
    fn http1_form(&self, request: &mut Request<Body>) {
        request
            .headers_mut()
            .entry(header::HOST)
            .or_insert_with(|| self.host.clone());
        let target = if request.method() == Method::CONNECT {
            request.uri().authority().cloned().map(Uri::from)
        } else {
            Some(Uri::from(
                request
                    .uri()
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
            ))
        };
        if let Some(target) = target {
            *request.uri_mut() = target;
        }
    }

    /// This thread's HTTP/2 connection with a stream opened on it (so that its task does not
    /// close it under the request), unless there is none or it closed.
    fn idle_h2(&self) -> Option<(http2::SendRequest<Body>, Stream)> {
        with_idle(self.id, |idle| match &idle.h2 {
            Some(h2) if !h2.sender.is_closed() => {
                Some((h2.sender.clone(), Stream::open(&h2.streams)))
            }
            Some(_) => {
                idle.h2 = None;
                None
            }
            None => None,
        })
        .flatten()
    }

    /// The most recently used idle connection that is ready for a request. Closed ones are
    /// dropped; busy ones stay (an upstream that answered before the request body was all
    /// sent still has the rest of it to take): waiting for one would make this request wait
    /// for another client's upload.
    fn idle_h1(&self) -> Option<H1> {
        with_idle(self.id, |idle| {
            let mut i = idle.h1.len();
            while i > 0 {
                i -= 1;
                let conn = &idle.h1[i];
                if conn.sender.is_closed() {
                    idle.h1.remove(i);
                } else if conn.sender.is_ready() {
                    let conn = idle.h1.remove(i);
                    if let Some(conn) = &conn {
                        conn.idle.busy();
                    }
                    return conn;
                }
            }
            None
        })
        .flatten()
    }

    fn pooled(&self, response: Response<Incoming>, conn: H1) -> Response<UpstreamBody> {
        let pool = self.id;
        response.map(|body| UpstreamBody::pooled(body, pool, conn))
    }

    async fn connect(&self, connector: &Connector, h2: bool) -> Result<Fresh, UpstreamFailure> {
        let io = connector
            .clone()
            .oneshot(self.origin.clone())
            .await
            .map_err(UpstreamFailure::Connect)?;
        if h2 || io.connected().is_negotiated_h2() {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(UpstreamFailure::Http)?;
            let streams = Arc::new(Streams {
                open: AtomicUsize::new(0),
                idle: IdleMark::new(),
            });
            let watched = streams.clone();
            let timeout = self.idle_timeout;
            tokio::spawn(async move {
                tokio::select! {
                    ended = connection => if let Err(e) = ended {
                        tracing::debug!(error = %e, "upstream connection ended with an error");
                    },
                    // As for HTTP/1.1 below: dropping the connection closes it, and the
                    // thread's handle then reads as closed.
                    () = watched.idle.expired(timeout) => {
                        tracing::debug!("idle upstream HTTP/2 connection closed");
                    }
                }
            });
            return Ok(Fresh::H2(H2 { sender, streams }));
        }
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(UpstreamFailure::Http)?;
        let idle = Arc::new(IdleMark::new());
        let mark = idle.clone();
        let timeout = self.idle_timeout;
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                },
                // Dropping the connection closes it; its handle in the queue then reads
                // as closed and is dropped when next looked at.
                () = mark.expired(timeout) => {
                    tracing::debug!("idle upstream connection closed");
                }
            }
        });
        Ok(Fresh::H1(H1 { sender, idle }))
    }
}

fn connector(connect_timeout: Duration, alpn_h2: bool) -> Connector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    crate::crypto::install_tls_provider();
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http();
    if alpn_h2 {
        tls.enable_http1().enable_http2().wrap_connector(http)
    } else {
        tls.enable_http1().wrap_connector(http)
    }
}

/// Puts an HTTP/1.1 connection back into this thread's idle queue, dropping the handles of
/// connections closed since (the oldest first: those idle past the timeout).
fn give_back(pool: u64, conn: H1) {
    if conn.sender.is_closed() {
        return;
    }
    conn.idle.idle();
    with_idle(pool, |idle| {
        while idle.h1.front().is_some_and(|c| c.sender.is_closed()) {
            idle.h1.pop_front();
        }
        if idle.h1.len() < MAX_IDLE_PER_THREAD {
            idle.h1.push_back(conn);
        }
    });
}

/// An upstream response body; read to the end, it returns its connection to the pool.
pub(super) struct UpstreamBody {
    inner: Incoming,
    reuse: Option<(u64, H1)>,
    /// On HTTP/2: the stream, held until the body is dropped.
    _stream: Option<Stream>,
}

impl UpstreamBody {
    fn unpooled(inner: Incoming) -> Self {
        Self {
            inner,
            reuse: None,
            _stream: None,
        }
    }

    fn on_stream(inner: Incoming, stream: Stream) -> Self {
        Self {
            inner,
            reuse: None,
            _stream: Some(stream),
        }
    }

    fn pooled(inner: Incoming, pool: u64, conn: H1) -> Self {
        if http_body::Body::is_end_stream(&inner) {
            // Nothing to read (HEAD, 204, 304, `Content-Length: 0`): free at once.
            give_back(pool, conn);
            return Self::unpooled(inner);
        }
        Self {
            inner,
            reuse: Some((pool, conn)),
            _stream: None,
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            // hyper's server stops polling once `is_end_stream` says so, so the end may be
            // known after the last frame rather than from a final `None`.
            Poll::Ready(None) | Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => {
                if let Some((pool, conn)) = self.reuse.take() {
                    give_back(pool, conn);
                }
            }
            Poll::Ready(None) => {
                if let Some((pool, conn)) = self.reuse.take() {
                    give_back(pool, conn);
                }
            }
            Poll::Ready(Some(Err(_))) => self.reuse = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
