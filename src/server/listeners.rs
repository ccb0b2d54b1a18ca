//! The listening sockets of a thread-per-core server: one per thread on the same port where
//! the kernel balances connections between them (`SO_REUSEPORT` on Linux), otherwise one that
//! the first thread accepts on and hands connections out from.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Pending connections each listener may queue (what tokio's `TcpListener::bind` uses).
const BACKLOG: i32 = 1024;

/// Where a thread-per-core server's threads get their connections.
#[derive(Debug)]
pub enum Listeners {
    /// One listener per serving thread, all on the same port (`SO_REUSEPORT`): the kernel
    /// spreads new connections over them, and no thread waits on another.
    PerThread(Vec<std::net::TcpListener>),
    /// One listener: the first thread accepts, taking each connection's slot, and hands the
    /// connections to the threads in turn.
    Shared {
        listener: std::net::TcpListener,
        threads: usize,
    },
}

impl Listeners {
    /// Binds `threads` listeners on `addr` where the platform balances between them, else one.
    /// A port already in use is refused (`AddrInUse`) even when the process holding it set
    /// `SO_REUSEPORT` too: a second sfgate started by mistake must fail, not silently take
    /// half of the first one's connections.
    pub fn bind(addr: SocketAddr, threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        if threads == 1 || !balances() {
            let listener = listen(addr, false)?;
            return Ok(Self::from_listener(listener, threads));
        }
        if addr.port() != 0 {
            // Fails with AddrInUse if anyone listens there, with or without SO_REUSEPORT.
            drop(std::net::TcpListener::bind(addr)?);
        }
        let first = listen(addr, true)?;
        // Port 0 picked a free port: the others join that one.
        let addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..threads {
            listeners.push(listen(addr, true)?);
        }
        Ok(Self::PerThread(listeners))
    }

    /// Serves `threads` threads from one listener that is already bound (tests bind port 0
    /// themselves). With one thread, that thread accepts on it directly.
    pub fn from_listener(listener: std::net::TcpListener, threads: usize) -> Self {
        match threads.max(1) {
            1 => Self::PerThread(vec![listener]),
            threads => Self::Shared { listener, threads },
        }
    }

    /// How many threads these listeners serve.
    pub fn threads(&self) -> usize {
        match self {
            Self::PerThread(listeners) => listeners.len(),
            Self::Shared { threads, .. } => *threads,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::PerThread(listeners) => listeners
                .first()
                .ok_or_else(|| io::Error::other("no listener"))?
                .local_addr(),
            Self::Shared { listener, .. } => listener.local_addr(),
        }
    }
}

/// Whether the kernel spreads connections over sockets sharing a port with `SO_REUSEPORT`.
/// Linux does (since 3.9); the BSDs and macOS accept the option but hand every connection to
/// one of the sockets, which would leave the other threads idle.
fn balances() -> bool {
    cfg!(any(target_os = "linux", target_os = "android"))
}

/// A non-blocking listening socket on `addr`, with `SO_REUSEADDR` (restarts do not wait for
/// old connections in TIME_WAIT) and, when asked, `SO_REUSEPORT`.
fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if reuse_port {
        set_reuse_port(&socket)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_reuse_port(_: &Socket) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_share_one_port_and_a_taken_port_is_refused() {
        let listeners = Listeners::bind("127.0.0.1:0".parse().expect("addr"), 3).expect("bind");
        assert_eq!(listeners.threads(), 3);
        let addr = listeners.local_addr().expect("addr");
        if let Listeners::PerThread(all) = &listeners {
            for listener in all {
                assert_eq!(listener.local_addr().expect("addr"), addr);
            }
        }
        // Taken by the listeners above, all of which set SO_REUSEPORT: still refused.
        let again = Listeners::bind(addr, 3).expect_err("port in use");
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
        let single = Listeners::bind(addr, 1).expect_err("port in use");
        assert_eq!(single.kind(), io::ErrorKind::AddrInUse);
    }
}
