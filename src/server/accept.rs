//! One serving loop: take connections (from a listener of its own, or handed over by the
//! thread that accepts for everyone), give each a place under `MAX_CONNECTIONS`, serve each in
//! a task of its own on the loop's runtime, and on shutdown let them finish.

use super::connection;
use super::served::Served;
use super::slot::ConnectionSlot;
use super::ConnectionLimits;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// `MAX_CONNECTIONS` for every serving loop of one server: one semaphore, whatever the number
/// of threads. Taking a slot is one atomic operation, so nothing is locked on the hot path.
pub(super) struct Gate {
    slots: Arc<Semaphore>,
    max: usize,
    log: LimitLog,
}

impl Gate {
    pub(super) fn new(max_connections: usize) -> Arc<Self> {
        // A semaphore holds at most MAX_PERMITS.
        let max = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            log: LimitLog::default(),
        })
    }

    /// A slot: at once, or once a connection closes.
    pub(super) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => {
                self.log.reached(self.max);
                self.slots.clone().acquire_owned().await.ok()?
            }
        };
        self.log.below(self.slots.available_permits(), self.max);
        Some(permit)
    }

    /// Waits, without taking it, until a slot is free. A loop with a listener of its own
    /// accepts only then, and takes its slot after accepting: holding a slot while waiting in
    /// `accept` would starve the other threads' listeners of it, which matters when
    /// `MAX_CONNECTIONS` is small. Two threads may both see the last slot free; the second
    /// then holds its accepted connection until a slot frees (at most one per thread).
    async fn room(&self) {
        if self.slots.available_permits() == 0 {
            self.log.reached(self.max);
            let _ = self.slots.acquire().await;
        }
    }
}

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
        if available > max / 10 && self.at_limit.load(Ordering::Relaxed) {
            self.at_limit.store(false, Ordering::Relaxed);
        }
    }
}

/// A connection accepted on one thread for another to serve, its slot already taken.
pub(super) struct Handoff {
    pub(super) stream: std::net::TcpStream,
    pub(super) remote: SocketAddr,
    pub(super) permit: OwnedSemaphorePermit,
}

/// Where a serving loop gets its connections.
pub(super) enum Incoming {
    /// A listener of its own (`SO_REUSEPORT`, or the only one).
    Listener(TcpListener),
    /// Connections another thread accepted (where `SO_REUSEPORT` is unavailable).
    Handed(mpsc::UnboundedReceiver<Handoff>),
}

impl Incoming {
    /// The next connection with its slot; `None` once no more can come.
    async fn next(&mut self, gate: &Gate) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
        match self {
            Self::Listener(listener) => {
                gate.room().await;
                let (stream, remote) = accept(listener).await;
                let permit = gate.slot().await?;
                Some((stream, remote, permit))
            }
            Self::Handed(handed) => loop {
                let Handoff {
                    stream,
                    remote,
                    permit,
                } = handed.recv().await?;
                match TcpStream::from_std(stream) {
                    Ok(stream) => return Some((stream, remote, permit)),
                    Err(e) => tracing::warn!(error = %e, "cannot take over a connection"),
                }
            },
        }
    }
}

/// Accepts, backing off on errors (out of file descriptors and the like) instead of spinning.
pub(super) async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(connection) => return connection,
            Err(e) => {
                tracing::error!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves connections from `incoming` until `shutdown` completes (or no more can come), then
/// waits for them to finish their requests. `accepted` counts this loop's connections.
pub(super) async fn serve_loop(
    mut incoming: Incoming,
    app: Served,
    limits: ConnectionLimits,
    gate: Arc<Gate>,
    shutdown: impl Future<Output = ()>,
    accepted: Option<metrics::Counter>,
) {
    let (stop, stopping) = watch::channel(false);
    // Every connection task holds a sender: all dropped means all connections finished.
    // (Not the slots: upgraded connections keep theirs until the tunnels close, which
    // happens after this returns.)
    let (running, mut finished) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let next = tokio::select! {
            next = incoming.next(&gate) => next,
            () = &mut shutdown => break,
        };
        let Some((stream, remote, permit)) = next else {
            break;
        };
        if let Some(accepted) = &accepted {
            accepted.increment(1);
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection::serve_connection(
            stream,
            remote,
            app.clone(),
            limits,
            stopping.clone(),
            ConnectionSlot::new(permit),
            running.clone(),
        ));
    }
    drop(incoming);
    let _ = stop.send(true);
    drop(running);
    let _ = finished.recv().await;
}
