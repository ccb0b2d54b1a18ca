//! Floors: the same proxy jobs done by the bare parts sfgate is built on, with nothing of
//! sfgate's in them (no authentication, no header rules, no middleware, no metrics). They run
//! in the driver's process on a runtime of their own with two worker threads, as sfgate's.
//!
//! They answer the question a missed ratio raises: how much of the gap to nginx is sfgate's
//! own work, and how much is the stack (tokio, hyper, the kernel's loopback) on this machine.
//! - [`start_hyper_proxy`]: hyper's server (the `auto` builder sfgate uses) and hyper-util's
//!   pooled client, forwarding each request unchanged: the floor for gateway mode.
//! - [`start_tcp_relay`]: accept, connect, `copy_bidirectional`; no HTTP at all: the floor for
//!   any tokio program relaying a WebSocket's bytes.

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
}

/// Starts the bare hyper proxy in front of `upstream`; returns its base URL.
pub(crate) fn start_hyper_proxy(upstream: SocketAddr) -> Result<String, Failure> {
    start_on_own_runtime(move |listener| async move {
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
    start_on_own_runtime(move |listener| async move {
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
fn start_on_own_runtime<F, Fut>(serve: F) -> Result<String, Failure>
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bench-floor".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Ok(listener) = TcpListener::from_std(listener) {
                    serve(listener).await;
                }
            })
        })?;
    Ok(url)
}
