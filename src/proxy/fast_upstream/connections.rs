//! The connections to the upstream: opened, kept idle per serving thread, and closed when
//! idle too long.
//!
//! Each serving thread keeps its own queue of idle connections (a thread-local), so taking
//! and returning one touches no lock and no atomic shared with another thread: the fast
//! path runs on the serving threads' single-threaded runtimes, where a request's task never
//! moves to another thread. A request takes the most recently used connection; the oldest
//! are the first to be closed, by a timer task per thread that runs only while the queue
//! holds any (a thread that went quiet after a burst would otherwise keep the burst's
//! connections, and their descriptors on both ends, open for good).
//!
//! A connection is not taken if the upstream sent anything on it while it was idle: a
//! close (its keep-alive timeout) or stray bytes, which would otherwise be read as the next
//! request's answer.

use crate::proxy::per_thread::{new_pool_id, with_queue, Queues, MAX_IDLE_PER_THREAD};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

thread_local! {
    /// This thread's idle connections, per pool.
    static IDLE: Queues<ThreadIdle> = const { RefCell::new(Vec::new()) };
}

#[derive(Default)]
struct ThreadIdle {
    /// Oldest first.
    conns: VecDeque<Idle>,
    /// Whether this thread's timer task for the pool is running.
    sweeping: bool,
}

struct Idle {
    stream: TcpStream,
    http10: bool,
    since: Instant,
}

/// Where the upstream is.
#[derive(Debug, Clone)]
pub(super) enum Address {
    /// An IP address: connected to directly.
    Ip(SocketAddr),
    /// A name, looked up at each new connection (as hyper's connector does).
    Name(String, u16),
}

/// One upstream's connections: which queue they are kept in, and for how long.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pool {
    id: u64,
    idle_timeout: Duration,
}

impl Pool {
    pub(super) fn new(idle_timeout: Duration) -> Self {
        Self {
            id: new_pool_id(),
            idle_timeout,
        }
    }

    /// The most recently used idle connection that is still open and clean, if any, and
    /// whether its last answer was HTTP/1.0.
    pub(super) fn take(&self) -> Option<(TcpStream, bool)> {
        with_idle(self.id, |idle| {
            while let Some(conn) = idle.conns.pop_back() {
                if conn.since.elapsed() < self.idle_timeout && is_clean(&conn.stream) {
                    return Some((conn.stream, conn.http10));
                }
            }
            None
        })
        .flatten()
    }
}

/// Opens a connection to `address` within `timeout`.
pub(super) async fn connect(address: &Address, timeout: Duration) -> io::Result<TcpStream> {
    let connecting = async {
        match address {
            Address::Ip(addr) => TcpStream::connect(addr).await,
            Address::Name(host, port) => TcpStream::connect((host.as_str(), *port)).await,
        }
    };
    let stream = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Whether nothing arrived on an idle connection: no close, no stray bytes. Asked of the
/// runtime's readiness first (no system call); only a connection marked readable is read.
fn is_clean(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        // Readable may be stale (the last read filled its buffer exactly): look.
        Poll::Ready(Ok(())) => {
            let mut byte = [0u8; 1];
            matches!(stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
    }
}

/// Puts a connection whose answer was read to the end back into this thread's queue, with
/// whether that answer was HTTP/1.0, and starts the thread's timer task for the pool if it
/// is not running.
pub(super) fn give_back(pool: &Pool, stream: TcpStream, http10: bool) {
    // The queue and its timer task are this thread's: only on a single-threaded runtime (the
    // serving threads') does the task stay on it. Elsewhere the connection is closed.
    let on_this_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
    if !on_this_thread {
        return;
    }
    let start_sweeping = with_idle(pool.id, |idle| {
        if idle.conns.len() >= MAX_IDLE_PER_THREAD {
            return false;
        }
        idle.conns.push_back(Idle {
            stream,
            http10,
            since: Instant::now(),
        });
        !std::mem::replace(&mut idle.sweeping, true)
    })
    .unwrap_or(false);
    if start_sweeping {
        tokio::spawn(sweep(*pool));
    }
}

/// Closes this thread's connections of `pool` as they pass the idle timeout; ends when the
/// queue is empty (the next connection given back starts it again).
async fn sweep(pool: Pool) {
    loop {
        let next = with_idle(pool.id, |idle| {
            while idle
                .conns
                .front()
                .is_some_and(|c| c.since.elapsed() >= pool.idle_timeout)
            {
                idle.conns.pop_front();
            }
            match idle.conns.front() {
                Some(oldest) => Some(oldest.since + pool.idle_timeout),
                None => {
                    idle.sweeping = false;
                    None
                }
            }
        })
        .flatten();
        match next {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => return,
        }
    }
}

fn with_idle<R>(pool: u64, f: impl FnOnce(&mut ThreadIdle) -> R) -> Option<R> {
    with_queue(&IDLE, pool, f)
}

/// This thread's idle connections of `pool` (for tests).
#[cfg(test)]
pub(super) fn idle_count(pool: &Pool) -> usize {
    with_idle(pool.id, |idle| idle.conns.len()).unwrap_or(0)
}
