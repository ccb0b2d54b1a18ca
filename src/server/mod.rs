//! The HTTP server: `axum::serve` plus the connection limits it does not expose, run on one
//! thread per core.
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
//! - an HTTP/2 header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs) must arrive whole
//!   within `HEADER_READ_TIMEOUT` even while other streams keep the connection busy
//!   ([`h2_headers`]); a connection whose block is late is dropped;
//! - HTTP/2 sends keep-alive pings and closes a connection whose peer stops answering them;
//! - at most `MAX_CONNECTIONS` connections are open at once, across all serving threads:
//!   beyond that sfgate stops accepting, and new connections wait in the kernel's listen
//!   backlog until one closes (logged once when the limit is reached, counted in
//!   `sfgate_connections_limited_total`).
//!
//! The rest matches `axum::serve` (HTTP/1 and HTTP/2, upgrades, `ConnectInfo<SocketAddr>`,
//! graceful shutdown that lets in-flight requests finish). [`serve`] runs on the caller's
//! runtime; [`threads::serve_threads`] runs one current-thread runtime per core, each with its
//! own listener (see docs/architecture.md for why).

mod accept;
mod connection;
pub mod fast_path;
pub mod h2_headers;
pub mod hand_over;
pub mod listeners;
mod replay;
mod served;
mod slot;
pub mod threads;

pub use fast_path::FastPath;
pub use listeners::Listeners;
pub use served::Served;
pub use slot::ConnectionSlot;
pub use threads::{serve_threads, AfterDrain};

use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a connection told to close (idle past its deadline) may take before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers, and how long any connection
    /// may stay open with no request in progress (`HEADER_READ_TIMEOUT`).
    pub header_read_timeout: Duration,
    /// Open connections at most (`MAX_CONNECTIONS`), across all serving threads.
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

/// Serves `app` on `listener`, on the caller's runtime, until `shutdown` completes; then waits
/// for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let gate = accept::Gate::new(limits.max_connections);
    accept::serve_loop(
        accept::Incoming::Listener(listener),
        Served::from(app),
        limits,
        gate,
        shutdown,
        None,
    )
    .await;
    Ok(())
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
