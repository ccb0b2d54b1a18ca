//! One client connection: the HTTP/1.1 fast path first where there is one, then hyper's
//! HTTP/1 and HTTP/2 server with upgrades, the idle deadline, the HTTP/2 header-block
//! deadline, and graceful shutdown.

use super::fast_path::{self, Outcome};
use super::h2_headers::{HeaderBlockClock, WatchHeaderBlocks};
use super::hand_over::HandOverStream;
use super::replay::Replay;
use super::served::Served;
use super::slot::ConnectionSlot;
use super::{ConnectionLimits, CLOSE_GRACE};
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceBuilder;

pub(super) async fn serve_connection(
    stream: TcpStream,
    remote: std::net::SocketAddr,
    served: Served,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
    slot: ConnectionSlot,
    _running: tokio::sync::mpsc::Sender<()>,
) {
    metrics::gauge!("sfgate_connections_open").increment(1.0);
    let Served { router, fast_path } = served;
    let (stream, read) = match fast_path {
        None => (stream, Bytes::new()),
        Some(fast_path) => {
            let limit = limits.header_read_timeout;
            match fast_path::serve(fast_path, stream, remote, limit, &mut stopping).await {
                Outcome::HandOver(stream, read) => (stream, read),
                Outcome::Closed => {
                    metrics::gauge!("sfgate_connections_open").decrement(1.0);
                    return;
                }
            }
        }
    };
    serve_general(stream, read, remote, router, limits, stopping, slot).await;
    metrics::gauge!("sfgate_connections_open").decrement(1.0);
}

/// hyper's HTTP/1 and HTTP/2 server and the router, for the whole connection or (after the
/// fast path handed it over) the rest of it, `read` being what was read of it already.
async fn serve_general(
    stream: TcpStream,
    read: Bytes,
    remote: std::net::SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
    slot: ConnectionSlot,
) {
    let activity = Activity::new();
    let tracked = activity.clone();
    let hand_over = slot.hand_over().clone();
    let service = ServiceBuilder::new()
        .map_future(move |future| track(future, InFlight::start(&tracked)))
        .layer(Extension(ConnectInfo(remote)))
        .layer(Extension(slot))
        .service(app);
    let service = TowerToHyperService::new(service);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keep_alive_interval)
        .keep_alive_timeout(limits.keep_alive_timeout);
    let headers = HeaderBlockClock::new();
    // A tunnel may take the socket over once the connection is upgraded (hand_over.rs).
    let stream = Replay::new(read, HandOverStream::new(stream, hand_over));
    let stream = WatchHeaderBlocks::new(stream, headers.clone());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let check_every =
        (limits.header_read_timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing_since: Option<Instant> = None;
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                break;
            }
            changed = stopping.changed(), if !shutting_down => {
                // Server shutdown (or the server gone): finish in-flight requests, then close.
                shutting_down = true;
                let _ = changed;
                connection.as_mut().graceful_shutdown();
            }
            _ = tick.tick() => {
                if headers.open_for() >= Some(limits.header_read_timeout) {
                    // The peer's reader is stuck inside the block: a GOAWAY would not be read.
                    metrics::counter!("sfgate_connections_header_timeout_total").increment(1);
                    tracing::debug!("an HTTP/2 header block did not complete in time; dropped");
                    break;
                }
                let Some(idle) = activity.idle_for() else { continue };
                match closing_since {
                    None if idle >= limits.header_read_timeout => {
                        metrics::counter!("sfgate_connections_idle_closed_total").increment(1);
                        connection.as_mut().graceful_shutdown();
                        closing_since = Some(Instant::now());
                    }
                    Some(since) if since.elapsed() >= CLOSE_GRACE => {
                        tracing::debug!("idle connection did not close in time; dropped");
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// What the idle deadline looks at: requests in progress on one connection, and since when
/// there has been none.
struct Activity {
    in_flight: AtomicUsize,
    quiet_since: Mutex<Instant>,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            quiet_since: Mutex::new(Instant::now()),
        })
    }

    /// `None` while a request is in progress; otherwise how long the connection has been idle.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = match self.quiet_since.lock() {
            Ok(since) => *since,
            Err(poisoned) => *poisoned.into_inner(),
        };
        Some(since.elapsed())
    }
}

/// One request in progress, from the app being called until its response body is done (or
/// the request is dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        match self.0.quiet_since.lock() {
            Ok(mut since) => *since = Instant::now(),
            Err(poisoned) => *poisoned.into_inner() = Instant::now(),
        }
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Keeps `in_flight` alive until the response body has been sent.
async fn track<E>(
    response: impl Future<Output = Result<Response, E>>,
    in_flight: InFlight,
) -> Result<Response, E> {
    let response = response.await?;
    Ok(response.map(|body| {
        Body::new(TrackedBody {
            inner: body,
            _in_flight: in_flight,
        })
    }))
}

struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
