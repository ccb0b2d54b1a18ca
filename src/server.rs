//! The HTTP server loop: `axum::serve` plus the connection limits it does not expose.
//!
//! `axum::serve` gives hyper no timer, so a client that sends its headers one byte at a time
//! (slowloris) holds a connection and a task for as long as it likes, and `TimeoutLayer` does
//! not help: it starts only once the headers are in. HTTP/2 is worse: hyper has no header-read
//! timeout for it, so a connection that sends the preface and then nothing, or a HEADERS frame
//! whose CONTINUATION never comes, is held forever. Here:
//!
//! - HTTP/1 gets hyper's `header_read_timeout`;
//! - every connection, HTTP/1 or HTTP/2, is closed once it has had no request in progress for
//!   `HEADER_READ_TIMEOUT` (a request is in progress from the moment hyper hands it to the app
//!   until its response body is sent): first gracefully (HTTP/2 GOAWAY), then, after
//!   [`CLOSE_GRACE`], by dropping it. This covers idle connections, a preface with nothing
//!   after it, and incomplete header blocks, none of which ever reach the app;
//! - HTTP/2 sends keep-alive pings and closes a connection whose peer stops answering them;
//! - at most `MAX_CONNECTIONS` connections are open at once: beyond that sfgate stops
//!   accepting, and new connections wait in the kernel's listen backlog until one closes
//!   (logged once when the limit is reached, counted in `sfgate_connections_limited_total`).
//!
//! The rest matches `axum::serve` (HTTP/1 and HTTP/2, upgrades, `ConnectInfo<SocketAddr>`,
//! graceful shutdown that lets in-flight requests finish).

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceBuilder;

/// How long a connection told to close (idle past its deadline) may take before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers, and how long any connection
    /// may stay open with no request in progress (`HEADER_READ_TIMEOUT`).
    pub header_read_timeout: Duration,
    /// Open connections at most (`MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// HTTP/2 keep-alive: a ping after this long without a frame from the peer...
    pub keep_alive_interval: Duration,
    /// ...and the connection is closed if the ping is not answered within this.
    pub keep_alive_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            keep_alive_interval: Duration::from_secs(20),
            keep_alive_timeout: Duration::from_secs(20),
        }
    }
}

impl ConnectionLimits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            header_read_timeout: config.server.header_read_timeout,
            max_connections: config.server.max_connections,
            ..Self::default()
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for open connections to
/// finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    // A semaphore holds at most MAX_PERMITS.
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    // Every connection task holds a sender: all dropped means all connections finished.
    // (Not the slots: upgraded connections keep theirs until the caller closes the tunnels,
    // which it does after this returns.)
    let (running, mut finished) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let limit_reached = LimitLog::default();
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                limit_reached.reached(max);
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        limit_reached.below(slots.available_permits(), max);
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stopping = stopping.clone();
        tokio::spawn(serve_connection(
            stream,
            remote,
            app,
            limits,
            stopping,
            ConnectionSlot(Arc::new(permit)),
            running.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(running);
    let _ = finished.recv().await;
    Ok(())
}

/// A connection's place under `MAX_CONNECTIONS`, in every request's extensions. A protocol
/// upgrade (a WebSocket) keeps a clone for as long as its tunnel is open: the upgraded
/// connection is still an open connection, and the slot is freed only when both the HTTP
/// connection and the tunnel have ended.
#[derive(Clone)]
pub struct ConnectionSlot(
    #[expect(
        dead_code,
        reason = "held, never read: dropping the last clone frees the slot"
    )]
    Arc<OwnedSemaphorePermit>,
);

/// Says once that the connection limit was reached, and again only after the number of open
/// connections has dropped well below it: a client hovering at the limit does not flood logs.
#[derive(Default)]
struct LimitLog {
    at_limit: AtomicBool,
}

impl LimitLog {
    fn reached(&self, max: usize) {
        metrics::counter!("sfgate_connections_limited_total").increment(1);
        if !self.at_limit.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max_connections = max,
                "connection limit reached (MAX_CONNECTIONS): new connections wait until one closes"
            );
        }
    }

    fn below(&self, available: usize, max: usize) {
        if available > max / 10 {
            self.at_limit.store(false, Ordering::Relaxed);
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    remote: std::net::SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
    slot: ConnectionSlot,
    _running: tokio::sync::mpsc::Sender<()>,
) {
    metrics::gauge!("sfgate_connections_open").increment(1.0);
    let activity = Activity::new();
    let tracked = activity.clone();
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
    metrics::gauge!("sfgate_connections_open").decrement(1.0);
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
/// Resolves on Ctrl-C or SIGTERM (what Heroku sends, allowing 30 s to finish).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
