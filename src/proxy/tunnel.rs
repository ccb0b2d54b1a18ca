//! Upgraded connections (WebSockets and other `Upgrade` protocols): once the upstream has
//! answered `101`, the client's connection and the upstream's are joined byte for byte.
//!
//! sfgate does not read the protocol inside, with two exceptions for WebSockets: it follows
//! frame boundaries (headers only, a few bytes per frame) so that on shutdown it can send each
//! side a Close frame (`1001 going away`) between two frames rather than cut one in half.
//! An idle timeout closes tunnels no byte has crossed for `WEBSOCKET_IDLE_TIMEOUT`: each one
//! holds two sockets and a task, and a peer that vanished without a FIN would hold them
//! forever. A tunnel also ends with the credential that opened it ([`super::TunnelEnd`]):
//! both sides get a Close frame `1008` (policy violation) with the reason, then the
//! connections close.

use crate::server::hand_over::HandOver;
use axum::body::Bytes;
use hyper::upgrade::{OnUpgrade, Parts, Upgraded};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Gauge of upgraded connections open right now.
const OPEN_GAUGE: &str = "sfgate_upgraded_connections";

/// How long shutdown waits for tunnels to send their Close frames and finish.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The tunnels one upstream has open; cheap to clone.
#[derive(Clone)]
pub struct Tunnels {
    idle: Duration,
    closing: watch::Sender<bool>,
    open: watch::Sender<usize>,
}

impl Tunnels {
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            closing: watch::Sender::new(false),
            open: watch::Sender::new(0),
        }
    }

    /// Joins the two sides once both upgrades complete, in a task of its own. The client
    /// connection's `slot` (MAX_CONNECTIONS) is held until the tunnel ends, which is at the
    /// latest when `end` says its credential ended.
    ///
    /// When both sides are plain TCP sockets and the client's connection is its own
    /// (`own_socket`: HTTP/1), they move to the tunnel threads ([`super::tunnel_threads`]) once
    /// upgraded; otherwise (a TLS upstream, a connection served without a slot) the tunnel
    /// stays on the thread that accepted the client.
    pub fn open(
        &self,
        client: OnUpgrade,
        upstream: OnUpgrade,
        websocket: bool,
        slot: Option<crate::server::ConnectionSlot>,
        end: Option<super::TunnelEnd>,
        own_socket: bool,
    ) {
        let hand_over = slot
            .as_ref()
            .filter(|_| own_socket)
            .map(|s| s.hand_over().clone());
        let tunnel = Tunnel {
            _guard: OpenGuard::new(self.open.clone()),
            _slot: slot,
            shutdown: self.closing.subscribe(),
            idle: self.idle,
            websocket,
            end,
        };
        tokio::spawn(async move {
            let (client, upstream) = match tokio::try_join!(client, upstream) {
                Ok(both) => both,
                Err(e) => {
                    tracing::debug!(error = %e, "an upgrade did not complete");
                    return;
                }
            };
            match (hand_over, super::tunnel_threads::handle()) {
                (Some(hand_over), Some(threads)) => {
                    move_to_tunnel_threads(client, upstream, &hand_over, &threads, tunnel).await;
                }
                _ => tunnel.run_here(client, TokioIo::new(upstream)).await,
            }
        });
    }

    /// How many tunnels are open.
    pub fn count(&self) -> usize {
        *self.open.borrow()
    }

    /// Asks every tunnel to close (WebSockets with a Close frame) and waits up to a few
    /// seconds for them to finish. Called once the server has stopped accepting.
    pub async fn close_all(&self) {
        self.closing.send_replace(true);
        let mut open = self.open.subscribe();
        let _ = tokio::time::timeout(CLOSE_GRACE, open.wait_for(|n| *n == 0)).await;
    }
}

/// What a tunnel needs besides its two sides, wherever it runs.
struct Tunnel {
    /// Counts the tunnel as open until it ends.
    _guard: OpenGuard,
    /// The client connection's place under MAX_CONNECTIONS, held until the tunnel ends.
    _slot: Option<crate::server::ConnectionSlot>,
    shutdown: watch::Receiver<bool>,
    idle: Duration,
    websocket: bool,
    end: Option<super::TunnelEnd>,
}

impl Tunnel {
    /// Runs the tunnel on this thread: the client's side as the server upgraded it.
    async fn run_here<U>(self, client: Upgraded, upstream: U)
    where
        U: AsyncRead + AsyncWrite + Unpin,
    {
        self.run(
            tokio::io::split(TokioIo::new(client)),
            tokio::io::split(upstream),
        )
        .await;
    }

    /// Relays between the two sides (each split into its read and write halves) until one
    /// ends, the tunnel idles out, the server shuts down or the credential ends.
    async fn run<CR, CW, UR, UW>(self, client: (CR, CW), upstream: (UR, UW))
    where
        CR: AsyncRead + Unpin,
        CW: AsyncWrite + Unpin,
        UR: AsyncRead + Unpin,
        UW: AsyncWrite + Unpin,
    {
        let Self {
            _guard,
            _slot,
            mut shutdown,
            idle,
            websocket,
            end,
        } = self;
        let (close, closing) = watch::channel(None);
        // Shutdown or the credential's end asks this tunnel to close, once.
        let signal = async move {
            let ended = async {
                match end {
                    Some(end) => end.ended().await,
                    None => std::future::pending().await,
                }
            };
            let why = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => Close::GOING_AWAY,
                reason = ended => {
                    tracing::info!(reason, "closing a tunnel whose credential ended");
                    metrics::counter!("sfgate_tunnels_ended_total").increment(1);
                    Close::policy(reason)
                }
            };
            close.send_replace(Some(why));
            std::future::pending::<()>().await;
        };
        let joined = join(client, upstream, idle, websocket, closing);
        tokio::select! {
            () = joined => {}
            () = signal => {}
        }
    }
}

/// Takes both sockets out of their HTTP connections and runs the tunnel on the tunnel
/// threads, with the bytes each side's HTTP connection had already read past the upgrade sent
/// on first. A TLS upstream stays where it is, and so does its tunnel.
async fn move_to_tunnel_threads(
    client: Upgraded,
    upstream: Upgraded,
    hand_over: &HandOver,
    threads: &tokio::runtime::Handle,
    tunnel: Tunnel,
) {
    let (upstream, upstream_early) = match upstream.downcast::<UpstreamIo>() {
        Ok(Parts {
            io: MaybeHttpsStream::Http(io),
            read_buf,
            ..
        }) => (io.into_inner(), read_buf),
        Ok(Parts { io, read_buf, .. }) => {
            // TLS to the app: the tunnel stays here, on the connection as it is.
            let upstream = Early::new(read_buf, TokioIo::new(io));
            return tunnel.run_here(client, upstream).await;
        }
        // Not the connector's stream (none other is made today): the tunnel stays here.
        Err(upstream) => return tunnel.run_here(client, TokioIo::new(upstream)).await,
    };
    let mut client = TokioIo::new(client);
    // `None`: the client closed meanwhile; nothing to tunnel.
    let Some((client, client_early)) = hand_over.take(&mut client).await else {
        return;
    };
    // Out of this thread's event loop, into the tunnel threads' (registered there anew).
    let (Ok(client), Ok(upstream)) = (client.into_std(), upstream.into_std()) else {
        return;
    };
    metrics::counter!("sfgate_tunnels_moved_total").increment(1);
    // Detached: the tunnel ends by itself, and shutdown reaches it through `tunnel`.
    drop(threads.spawn(async move {
        let (Ok(client), Ok(upstream)) = (
            tokio::net::TcpStream::from_std(client),
            tokio::net::TcpStream::from_std(upstream),
        ) else {
            return;
        };
        let (client_read, client_write) = client.into_split();
        let (upstream_read, upstream_write) = upstream.into_split();
        tunnel
            .run(
                (
                    Early::new(Bytes::from(client_early), client_read),
                    client_write,
                ),
                (Early::new(upstream_early, upstream_read), upstream_write),
            )
            .await;
    }));
}

/// The upstream connection's stream as the proxy's connector makes it.
type UpstreamIo = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// A read side with the bytes its HTTP connection had already read in front.
struct Early<R> {
    early: Bytes,
    inner: R,
}

impl<R> Early<R> {
    fn new(early: Bytes, inner: R) -> Self {
        Self { early, inner }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Early<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.early.is_empty() {
            let n = self.early.len().min(buf.remaining());
            buf.put_slice(&self.early.split_to(n));
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Early<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a tunnel as open from its spawning to its end.
struct OpenGuard(watch::Sender<usize>);

impl OpenGuard {
    fn new(open: watch::Sender<usize>) -> Self {
        open.send_modify(|n| *n += 1);
        metrics::gauge!(OPEN_GAUGE).increment(1.0);
        Self(open)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
        metrics::gauge!(OPEN_GAUGE).decrement(1.0);
    }
}

/// Why sfgate closes a tunnel: the WebSocket Close frame's code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Close {
    code: u16,
    reason: &'static str,
}

impl Close {
    /// Shutdown: `1001 going away`.
    const GOING_AWAY: Self = Self {
        code: 1001,
        reason: "",
    };

    /// The credential ended: `1008 policy violation` with the reason.
    fn policy(reason: &'static str) -> Self {
        Self { code: 1008, reason }
    }
}

/// Which way bytes flow, for the WebSocket Close frame sfgate writes on shutdown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Toward {
    /// Frames from the server: unmasked.
    Client,
    /// Frames from the client: masked (RFC 6455 5.3).
    Upstream,
}

async fn join<CR, CW, UR, UW>(
    (client_read, client_write): (CR, CW),
    (upstream_read, upstream_write): (UR, UW),
    idle: Duration,
    websocket: bool,
    closing: watch::Receiver<Option<Close>>,
) where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let shutting_down = closing.clone();
    let up = pump(
        client_read,
        upstream_write,
        Toward::Upstream,
        websocket,
        closing.clone(),
        Activity::new(started, last.clone()),
    );
    let down = pump(
        upstream_read,
        client_write,
        Toward::Client,
        websocket,
        closing,
        Activity::new(started, last.clone()),
    );
    let watchdog = async {
        loop {
            let since = Duration::from_millis(last.load(Ordering::Relaxed));
            let quiet = started.elapsed().saturating_sub(since);
            if quiet >= idle {
                tracing::debug!("closing an idle upgraded connection");
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    // The upstream ending its side ends the tunnel (as with nginx): after a WebSocket close
    // handshake the server closes first, and the client's socket must not be held for a FIN
    // it may never send. The client ending its side only half-closes toward the upstream,
    // which may still be answering. On shutdown both sides get their Close frame first.
    let (mut up, mut down, mut watchdog) = (pin!(up), pin!(down), pin!(watchdog));
    let mut up_done = false;
    loop {
        tokio::select! {
            () = &mut down => {
                if !up_done && shutting_down.borrow().is_some() {
                    let _ = tokio::time::timeout(CLOSE_GRACE, &mut up).await;
                }
                break;
            }
            () = &mut up, if !up_done => up_done = true,
            () = &mut watchdog => break,
        }
    }
}

/// Records when bytes last crossed, as milliseconds since the tunnel opened.
struct Activity {
    started: Instant,
    last: Arc<AtomicU64>,
}

impl Activity {
    fn new(started: Instant, last: Arc<AtomicU64>) -> Self {
        Self { started, last }
    }

    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }
}

/// Copies one direction until EOF, an error, or shutdown (after which a WebSocket side gets a
/// Close frame at the next frame boundary).
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    toward: Toward,
    websocket: bool,
    mut closing: watch::Receiver<Option<Close>>,
    activity: Activity,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 8 * 1024];
    let mut frames = FrameCursor::default();
    let mut shutting_down = *closing.borrow();
    // One wait for the close for the pump's whole life. Made anew for each read, it joined
    // and left the close signal's list of waiters (a lock each time) twice per read.
    let mut close_wait = std::pin::pin!(async {
        match closing.wait_for(Option::is_some).await {
            Ok(why) => *why,
            Err(_) => Some(Close::GOING_AWAY),
        }
    });
    loop {
        if let Some(close) = shutting_down.filter(|_| !websocket || frames.at_boundary()) {
            if websocket {
                let _ = to.write_all(&close_frame(toward, close)).await;
            }
            break;
        }
        tokio::select! {
            // Reads first, so the close is looked at when a read must wait (a look takes
            // the waiters' lock). However busy the tunnel, that is at least every few dozen
            // reads: the runtime's budget per task makes reads and writes wait when spent.
            biased;
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                activity.touch();
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                if websocket {
                    frames.feed(&buf[..n]);
                }
            }
            closed = &mut close_wait, if shutting_down.is_none() => shutting_down = closed,
        }
    }
    let _ = to.shutdown().await;
}

/// A WebSocket Close frame with `close`'s status and reason, masked toward the upstream.
fn close_frame(toward: Toward, close: Close) -> Vec<u8> {
    let mut payload = close.code.to_be_bytes().to_vec();
    // A control frame's payload is at most 125 bytes (RFC 6455 5.5).
    payload.extend(close.reason.bytes().take(123));
    let len = payload.len() as u8;
    match toward {
        Toward::Client => [vec![0x88, len], payload].concat(),
        Toward::Upstream => {
            let mask: [u8; 4] = rand::random();
            let masked = payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]);
            [0x88, 0x80 | len]
                .into_iter()
                .chain(mask)
                .chain(masked)
                .collect()
        }
    }
}

/// Where a byte stream of WebSocket frames stands: inside a frame's header, inside its
/// payload, or between two frames. Reads frame headers only (RFC 6455 5.2).
#[derive(Default)]
struct FrameCursor {
    header: [u8; 14],
    have: usize,
    payload_left: u64,
}

impl FrameCursor {
    fn at_boundary(&self) -> bool {
        self.have == 0 && self.payload_left == 0
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = (self.payload_left.min(bytes.len() as u64)) as usize;
                self.payload_left -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if let Some((header_len, payload)) = self.header_complete() {
                debug_assert_eq!(header_len, self.have);
                self.have = 0;
                self.payload_left = payload;
            }
        }
    }

    /// The header's length and the payload's once the header is complete.
    fn header_complete(&self) -> Option<(usize, u64)> {
        if self.have < 2 {
            return None;
        }
        let masked = self.header[1] & 0x80 != 0;
        let len7 = self.header[1] & 0x7f;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let total = 2 + ext + if masked { 4 } else { 0 };
        if self.have < total {
            return None;
        }
        let payload = match ext {
            0 => u64::from(len7),
            2 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(b)
            }
        };
        Some((total, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload_len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x82];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload_len {
            0..=125 => f.push(mask_bit | payload_len as u8),
            126..=65535 => {
                f.push(mask_bit | 126);
                f.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                f.push(mask_bit | 127);
                f.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(b'x', payload_len));
        f
    }

    #[test]
    fn frame_boundaries_are_found_however_the_bytes_are_split() {
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for (len, masked) in [
            (0, false),
            (5, true),
            (125, false),
            (300, true),
            (70_000, false),
        ] {
            stream.extend(frame(len, masked));
            ends.push(stream.len());
        }
        for chunk in [1, 2, 3, 7, 13, 4096, stream.len()] {
            let mut cursor = FrameCursor::default();
            let mut fed = 0;
            for piece in stream.chunks(chunk) {
                cursor.feed(piece);
                fed += piece.len();
                assert_eq!(
                    cursor.at_boundary(),
                    ends.contains(&fed),
                    "chunk {chunk} at {fed}"
                );
            }
        }
    }

    #[test]
    fn close_frames_carry_going_away_and_are_masked_toward_the_upstream() {
        assert_eq!(
            close_frame(Toward::Client, Close::GOING_AWAY),
            [0x88, 0x02, 0x03, 0xe9]
        );
        let masked = close_frame(Toward::Upstream, Close::GOING_AWAY);
        assert_eq!(&masked[..2], &[0x88, 0x82]);
        let code = [masked[6] ^ masked[2], masked[7] ^ masked[3]];
        assert_eq!(u16::from_be_bytes(code), 1001);
    }

    #[test]
    fn policy_close_frames_carry_1008_and_the_reason_both_ways() {
        let close = Close::policy("session reached its maximum age");
        let plain = close_frame(Toward::Client, close);
        assert_eq!(plain[0], 0x88);
        assert_eq!(usize::from(plain[1]), 2 + close.reason.len());
        assert_eq!(u16::from_be_bytes([plain[2], plain[3]]), 1008);
        assert_eq!(&plain[4..], close.reason.as_bytes());
        let masked = close_frame(Toward::Upstream, close);
        assert_eq!(masked[1], 0x80 | plain[1]);
        let mask = &masked[2..6];
        let unmasked: Vec<u8> = masked[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(unmasked, plain[2..]);
    }
}
