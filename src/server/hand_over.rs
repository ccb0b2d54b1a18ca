//! Taking a client's TCP socket out of its HTTP connection once that connection has been
//! upgraded (a WebSocket), so that the tunnel can run on other threads than the one that
//! accepted it (`proxy::tunnel_threads`).
//!
//! The HTTP server owns the socket through two wrappers of its own (one of them private to
//! the server library), so the socket cannot be unwrapped from the upgraded connection. It is
//! handed over instead: the connection reads through [`HandOverStream`], and once a tunnel asks
//! ([`HandOver::take`]), the next read that reaches the socket gives it up into the shared
//! [`HandOver`] and fails. Reads before that return what the server had already read past the
//! upgrade request (bytes the client sent right behind it), which belong to the tunnel.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The place a connection's socket is handed over through; one per connection, shared by the
/// connection's stream and its requests (through the connection's slot).
#[derive(Default)]
pub struct HandOver {
    wanted: AtomicBool,
    socket: Mutex<Option<TcpStream>>,
}

/// The error a read returns once the socket has been handed over.
#[derive(Debug)]
struct HandedOver;

impl std::fmt::Display for HandedOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the socket was handed over to a tunnel")
    }
}

impl std::error::Error for HandedOver {}

fn handed_over() -> io::Error {
    io::Error::other(HandedOver)
}

fn is_handed_over(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<HandedOver>())
}

impl HandOver {
    /// Takes the socket out of `upgraded` (the client's side of an upgrade, read through the
    /// HTTP server's buffers), with the bytes those buffers held. `upgraded` must read from
    /// the [`HandOverStream`] this hand-over belongs to, as every connection the server
    /// serves does (another stream would be read until its peer closes). `None` when the
    /// client closed meanwhile; `upgraded` must then not be used, its connection may be half
    /// read.
    pub async fn take<R: AsyncRead + Unpin>(
        &self,
        upgraded: &mut R,
    ) -> Option<(TcpStream, Vec<u8>)> {
        self.wanted.store(true, Ordering::Release);
        let mut early = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match upgraded.read(&mut buf).await {
                // Closed before the hand-over: nothing to tunnel.
                Ok(0) => return None,
                Ok(n) => early.extend_from_slice(&buf[..n]),
                Err(e) if is_handed_over(&e) => break,
                Err(_) => return None,
            }
        }
        let socket = match self.socket.lock() {
            Ok(mut socket) => socket.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }?;
        Some((socket, early))
    }
}

/// A client connection's socket as the HTTP server reads and writes it, until a tunnel takes
/// it over.
pub struct HandOverStream {
    socket: Option<TcpStream>,
    hand_over: Arc<HandOver>,
}

impl HandOverStream {
    pub fn new(socket: TcpStream, hand_over: Arc<HandOver>) -> Self {
        Self {
            socket: Some(socket),
            hand_over,
        }
    }
}

impl AsyncRead for HandOverStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.hand_over.wanted.load(Ordering::Acquire) {
            let socket = self.socket.take();
            if socket.is_some() {
                match self.hand_over.socket.lock() {
                    Ok(mut slot) => *slot = socket,
                    Err(poisoned) => *poisoned.into_inner() = socket,
                }
            }
            return Poll::Ready(Err(handed_over()));
        }
        match self.socket.as_mut() {
            Some(socket) => Pin::new(socket).poll_read(cx, buf),
            None => Poll::Ready(Err(handed_over())),
        }
    }
}

impl AsyncWrite for HandOverStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.socket.as_mut() {
            Some(socket) => Pin::new(socket).poll_write(cx, buf),
            None => Poll::Ready(Err(handed_over())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.socket.as_mut() {
            Some(socket) => Pin::new(socket).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(handed_over())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        // The server picks its write strategy once, at the start: as the socket's.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.socket.as_mut() {
            Some(socket) => Pin::new(socket).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.socket.as_mut() {
            Some(socket) => Pin::new(socket).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Bytes already read past the upgrade come first, then the socket itself, still
    /// connected and readable from where the server stopped.
    #[tokio::test]
    async fn the_socket_is_handed_over_with_what_was_read_before() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let hand_over = Arc::new(HandOver::default());
        let stream = HandOverStream::new(server, hand_over.clone());
        // As the server's buffers would: "early" was read before the upgrade was done.
        client.write_all(b"early").await.expect("write");
        let mut buffered = tokio::io::BufReader::new(stream);
        let mut first = [0u8; 2];
        buffered.read_exact(&mut first).await.expect("read");
        assert_eq!(&first, b"ea");

        let (mut socket, early) = hand_over.take(&mut buffered).await.expect("handed over");
        assert_eq!(early, b"rly");
        client.write_all(b"later").await.expect("write");
        let mut later = [0u8; 5];
        socket.read_exact(&mut later).await.expect("read");
        assert_eq!(&later, b"later");
        // The server's stream has nothing left to give.
        let mut rest = [0u8; 1];
        let e = buffered.read(&mut rest).await.expect_err("handed over");
        assert!(is_handed_over(&e), "{e}");
    }
}
