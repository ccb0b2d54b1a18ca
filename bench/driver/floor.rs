//! Floors: the same proxy jobs done by the bare parts sfgate is built on, with nothing of
//! sfgate's in them (no authentication, no header rules, no middleware, no metrics). They run
//! in the driver's process on threads of their own, named so that their CPU time can be read
//! from /proc (`bench-floor-*`).
//!
//! They answer the question a missed ratio raises: how much of the gap to nginx is sfgate's
//! own work, and how much is the stack (tokio, hyper, the kernel's loopback) on this machine.
//! - [`start_tpc_proxy`]: the floor for gateway mode, in sfgate's design: one thread per core,
//!   each a current-thread runtime with its own `SO_REUSEPORT` listener, hyper's server (the
//!   `auto` builder sfgate uses) and hyper's connection-level client with a per-thread queue
//!   of idle upstream connections, forwarding each request unchanged.
//! - [`start_hyper_proxy`]: the same proxy on tokio's work-stealing runtime with two worker
//!   threads and hyper-util's shared pooled client: the floor of the design sfgate had before,
//!   kept so the difference between the two stays visible.
//! - [`start_tcp_relay`]: accept, connect, `copy_bidirectional`; no HTTP at all: the floor for
//!   any tokio program relaying a WebSocket's bytes, on the work-stealing runtime.
//! - [`start_tpc_relay`]: the same relay thread per core (one current-thread runtime per core,
//!   each with its own `SO_REUSEPORT` listener), the design sfgate serves WebSockets on.
//! - [`start_tpc_identity_proxy`]: the thread-per-core floor plus the work sfgate cannot skip
//!   for a proxied request, done by sfgate's own functions: the request id, the identity check
//!   (`Authenticator::serve`: credentials, instance, the identity cache, the route rules), and
//!   the header rewrites both ways (`upstream_request_headers`, the identity headers, the
//!   answer's hop-by-hop removal). No router, no middleware layers, no metrics, no upstream
//!   timeout: the floor of a request path shaped like the floor's, which bounds what
//!   reshaping sfgate's own request path could reach.
//! - [`start_tpc_responder`]: hyper's server thread per core answering every request `202`
//!   with an empty body at once: what nginx's `auth_request` design costs by itself when the
//!   authorisation answer costs nothing.

use crate::Failure;
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

use std::pin::Pin;
use std::task::{Context, Poll};

/// The upstream's body passed through as it is, or nothing (a 502 or 400 of the floor's own).
enum ProxyBody {
    Upstream(Incoming),
    Empty,
}

impl http_body::Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Upstream(body) => Pin::new(body).poll_frame(cx),
            Self::Empty => Poll::Ready(None),
        }
    }

    // An empty answer says so, so that hyper sends `Content-Length: 0` rather than a chunked
    // body (the `202` responder's every answer is one).
    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream(body) => http_body::Body::is_end_stream(body),
            Self::Empty => true,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Self::Upstream(body) => http_body::Body::size_hint(body),
            Self::Empty => http_body::SizeHint::with_exact(0),
        }
    }
}

/// Starts the bare hyper proxy in front of `upstream`; returns its base URL.
pub(crate) fn start_hyper_proxy(upstream: SocketAddr) -> Result<String, Failure> {
    start_on_own_runtime(WORK_STEALING_THREADS, move |listener| async move {
        let client: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).build_http();
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let client = client.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let client = client.clone();
                    async move { forward(&client, upstream, request).await }
                });
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn forward(
    client: &Client<HttpConnector, Incoming>,
    upstream: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, hyper::Error> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("http://{upstream}{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(status(400)),
    };
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => Ok(response.map(ProxyBody::Upstream)),
        Err(_) => Ok(status(502)),
    }
}

fn status(code: u16) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::Empty);
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
    response
}

/// Starts a byte relay to `target`; returns its base URL (`http://`, as the WebSocket client
/// is given a `ws://` form of it).
pub(crate) fn start_tcp_relay(target: SocketAddr) -> Result<String, Failure> {
    start_on_own_runtime("bench-floor-relay", move |listener| async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let _ = inbound.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    })
}

/// Binds a loopback listener and runs `serve` with it on a two-worker runtime in a thread of
/// its own, for the rest of the driver's life.
fn start_on_own_runtime<F, Fut>(name: &str, serve: F) -> Result<String, Failure>
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Ok(listener) = TcpListener::from_std(listener) {
                    serve(listener).await;
                }
            })
        })?;
    Ok(url)
}

/// Thread names of the work-stealing floor's workers (for its CPU time).
pub(crate) const WORK_STEALING_THREADS: &str = "bench-floor-ws";
/// Thread names of the thread-per-core floor (for its CPU time; /proc keeps 15 characters).
pub(crate) const TPC_THREADS: &str = "bench-floor-tpc";

thread_local! {
    /// This thread's idle upstream connections (the floor has one upstream).
    static IDLE: std::cell::RefCell<Vec<hyper::client::conn::http1::SendRequest<Incoming>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Starts the thread-per-core bare proxy in front of `upstream` with `threads` threads;
/// returns its base URL.
pub(crate) fn start_tpc_proxy(upstream: SocketAddr, threads: usize) -> Result<String, Failure> {
    start_per_core(threads, TPC_THREADS, move |stream| async move {
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            forward_per_thread(upstream, request)
        });
        let _ = Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .await;
    })
}

/// Thread names of the identity floor (for its CPU time).
pub(crate) const TPC_IDENTITY_THREADS: &str = "bench-floor-id";

/// Starts the thread-per-core floor with sfgate's identity check and header rewrites (see the
/// module documentation) in front of `upstream`, checking callers with `auth` (an
/// [`sfgate::state::AppState`]'s, built in this process from the gateway's configuration);
/// returns its base URL.
pub(crate) fn start_tpc_identity_proxy(
    upstream: SocketAddr,
    threads: usize,
    auth: sfgate::auth::Authenticator,
) -> Result<String, Failure> {
    // The rewrite leaves `Host` out (the client's goes on as `X-Forwarded-Host`); sfgate's pool
    // names the upstream instead, with a value prepared once, as here.
    let host = axum::http::HeaderValue::from_str(&upstream.to_string())?;
    start_per_core(threads, TPC_IDENTITY_THREADS, move |stream| {
        let auth = auth.clone();
        let host = host.clone();
        async move {
            let client = stream.peer_addr().ok();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let auth = auth.clone();
                let host = host.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        identity_then_forward(&auth, upstream, &host, client, request).await,
                    )
                }
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        }
    })
}

/// The identity check of a gateway configured as the benchmark's (`start_gateway`, with the
/// identity cache's TTL of the gateway-mode cases), built in this process for
/// [`start_tpc_identity_proxy`]. Must be called inside a tokio runtime (the application's
/// background work is spawned on it).
pub(crate) fn bench_authenticator(
    emulator: &str,
    upstream: SocketAddr,
) -> Result<sfgate::auth::Authenticator, Failure> {
    // Never listens: the callback URL is only configuration here.
    let env: std::collections::HashMap<String, String> =
        crate::processes::gateway_settings("http://127.0.0.1:9", emulator)
            .into_iter()
            .chain([
                ("IDENTITY_CACHE_TTL", "600".to_string()),
                ("UPSTREAM_URL", format!("http://{upstream}")),
            ])
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    let config = sfgate::config::Config::from_map(&env).map_err(|e| e.to_string())?;
    let state = sfgate::state::AppState::new(config).map_err(|e| e.to_string())?;
    Ok(state.auth.clone())
}

/// What sfgate's gateway mode does to a proxied request, without its router, layers, metrics
/// and upstream timeout, around the floor's forwarding.
async fn identity_then_forward(
    auth: &sfgate::auth::Authenticator,
    upstream: SocketAddr,
    host: &axum::http::HeaderValue,
    client: Option<SocketAddr>,
    request: Request<Incoming>,
) -> axum::response::Response {
    use axum::body::Body;
    use sfgate::headers::rewrite::{self, Forwarded, Outgoing};
    use sfgate::middleware::request_id::{self, REQUEST_ID};
    let (mut parts, body) = request.into_parts();
    let policy = sfgate::domain::PathPolicy {
        allow_encoded_slashes: false,
    };
    let Ok(path) = sfgate::domain::CanonicalPath::parse(parts.uri.path(), policy) else {
        return status(400).map(|_| Body::empty());
    };
    let id = request_id::ensure(&mut parts.headers);
    let rules = sfgate::access::RulePath::Checked(&path);
    let browsers = sfgate::auth::BrowserRejection::Login;
    let mut response = auth
        .serve(parts, rules, browsers, |mut parts, caller| async move {
            let vouched = auth.vouch(&caller);
            parts.headers = rewrite::upstream_request_headers(
                &parts.headers,
                &Outgoing {
                    forwarded: Forwarded {
                        client,
                        host: None,
                        trust_proxy: false,
                    },
                    underscores: Default::default(),
                    drop_method_overrides: false,
                    identity: Some(vouched.identity_headers()),
                    assertion: vouched.assertion.as_ref(),
                    access_token: None,
                },
            );
            parts.headers.insert(axum::http::header::HOST, host.clone());
            match forward_per_thread(upstream, Request::from_parts(parts, body)).await {
                Ok(response) => {
                    let (mut head, body) = response.into_parts();
                    rewrite::remove_hop_by_hop_response(&mut head.headers);
                    axum::response::Response::from_parts(head, Body::new(body))
                }
                Err(_) => status(502).map(|_| Body::empty()),
            }
        })
        .await;
    if !response.headers().contains_key(&REQUEST_ID) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

/// Thread names of the thread-per-core `202` responder (for its CPU time).
pub(crate) const RESPONDER_THREADS: &str = "bench-floor-202";
/// Thread names of the thread-per-core byte relay.
pub(crate) const TPC_RELAY_THREADS: &str = "bench-floor-rtp";

/// Starts the thread-per-core responder answering every request `202 Accepted` with an empty
/// body, with `threads` threads; returns its base URL.
pub(crate) fn start_tpc_responder(threads: usize) -> Result<String, Failure> {
    start_per_core(threads, RESPONDER_THREADS, |stream| async move {
        let service = hyper::service::service_fn(|_: Request<Incoming>| async {
            Ok::<_, std::convert::Infallible>(status(202))
        });
        let _ = Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}

/// Starts the thread-per-core byte relay to `target` with `threads` threads; returns its base
/// URL.
pub(crate) fn start_tpc_relay(target: SocketAddr, threads: usize) -> Result<String, Failure> {
    start_per_core(threads, TPC_RELAY_THREADS, move |mut inbound| async move {
        let Ok(mut outbound) = TcpStream::connect(target).await else {
            return;
        };
        let _ = outbound.set_nodelay(true);
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    })
}

/// Thread per core: `threads` threads named `name` + index, each a current-thread runtime
/// accepting on its own `SO_REUSEPORT` listener (sfgate's `Listeners::bind`, so the kernel
/// spreads connections as it does for sfgate) and running `serve` on each accepted connection
/// as a task of that thread. Returns the base URL.
pub(crate) fn start_per_core<F, Fut>(
    threads: usize,
    name: &str,
    serve: F,
) -> Result<String, Failure>
where
    F: Fn(TcpStream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listeners = sfgate::server::Listeners::bind(([127, 0, 0, 1], 0).into(), threads)?;
    let url = format!("http://{}", listeners.local_addr()?);
    let sfgate::server::Listeners::PerThread(listeners) = listeners else {
        return Err("SO_REUSEPORT is not available here".into());
    };
    for (i, listener) in listeners.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let serve = serve.clone();
        std::thread::Builder::new()
            .name(format!("{name}{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    while let Ok((stream, _)) = listener.accept().await {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve(stream));
                    }
                })
            })?;
    }
    Ok(url)
}

async fn forward_per_thread(
    upstream: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<TpcBody>, hyper::Error> {
    let (mut parts, body) = request.into_parts();
    parts.uri = match parts.uri.path_and_query() {
        Some(pq) => hyper::Uri::from(pq.clone()),
        None => hyper::Uri::from_static("/"),
    };
    let request = Request::from_parts(parts, body);
    let mut sender = loop {
        let Some(mut pooled) = IDLE.with(|idle| idle.borrow_mut().pop()) else {
            let Ok(stream) = TcpStream::connect(upstream).await else {
                return Ok(status(502).map(|_| TpcBody::empty()));
            };
            let _ = stream.set_nodelay(true);
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            break sender;
        };
        // A pooled connection the upstream has closed since it was put back (nginx ends a
        // keep-alive connection after `keepalive_requests`) is dropped and the next one
        // tried, as any proxy's pool does; otherwise the floor answers 502 where sfgate would
        // not, and the row counts failures that are the floor's own.
        if pooled.ready().await.is_ok() {
            break pooled;
        }
    };
    if sender.ready().await.is_err() {
        return Ok(status(502).map(|_| TpcBody::empty()));
    }
    let response = sender.send_request(request).await?;
    Ok(response.map(|body| {
        let ended = http_body::Body::is_end_stream(&body);
        let mut body = TpcBody {
            inner: Some(body),
            sender: Some(sender),
        };
        if ended {
            // hyper's server will not poll a body that says it has ended.
            body.give_back();
        }
        body
    }))
}

/// The upstream's body; read to the end, it puts its connection back in the thread's queue.
pub(crate) struct TpcBody {
    inner: Option<Incoming>,
    sender: Option<hyper::client::conn::http1::SendRequest<Incoming>>,
}

impl TpcBody {
    fn empty() -> Self {
        Self {
            inner: None,
            sender: None,
        }
    }

    fn give_back(&mut self) {
        if let Some(sender) = self.sender.take() {
            IDLE.with(|idle| idle.borrow_mut().push(sender));
        }
    }
}

impl http_body::Body for TpcBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => http_body::Body::is_end_stream(inner),
            _ => false,
        };
        if ended {
            this.give_back();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }
}
