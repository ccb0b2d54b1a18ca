//! The HTTP/2 header-block deadline: a HEADERS (or PUSH_PROMISE) frame and the CONTINUATION
//! frames after it must arrive whole within `HEADER_READ_TIMEOUT`.
//!
//! hyper has no header-read timeout for HTTP/2, and the idle deadline of
//! [`super::connection`] only runs while no request is in progress. So a client with one
//! long request open (a download, a slow upstream) could start a second stream's header block
//! and never finish it: HTTP/2 allows no other frame until the block ends, the request is
//! never handed to the app, and the connection, its slot and its buffers are held as long as
//! the first request lasts. This watches the bytes a connection reads, frame headers only (9
//! bytes per frame, nothing decoded), and says how long a header block has been open; the
//! connection drops the peer once that passes the deadline.
//!
//! HTTP/1 connections are told apart by their first bytes (no HTTP/2 preface) and then
//! passed through untouched.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// Since when a header block has been open on one connection, shared between the reader and
/// the connection's deadline check.
pub struct HeaderBlockClock {
    born: Instant,
    /// Milliseconds since `born` at which the open block started, plus one; 0 when none is.
    open_at: AtomicU64,
}

impl HeaderBlockClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            open_at: AtomicU64::new(0),
        })
    }

    /// How long the current header block has been open; `None` when none is.
    pub fn open_for(&self) -> Option<Duration> {
        match self.open_at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(
                self.born
                    .elapsed()
                    .saturating_sub(Duration::from_millis(at - 1)),
            ),
        }
    }

    fn open(&self) {
        let at = self.born.elapsed().as_millis() as u64 + 1;
        self.open_at.store(at, Ordering::Relaxed);
    }

    fn close(&self) {
        self.open_at.store(0, Ordering::Relaxed);
    }
}

/// Where the byte stream read so far stands.
enum Phase {
    /// Reading what may be the HTTP/2 client preface: this many bytes of it matched so far.
    Preface(usize),
    /// HTTP/2: following frame boundaries.
    Frames(FrameCursor),
    /// Not HTTP/2: nothing to watch.
    Plain,
}

/// Follows HTTP/2 frame boundaries (RFC 9113 4.1) and header blocks (RFC 9113 4.3).
#[derive(Default)]
struct FrameCursor {
    header: [u8; 9],
    have: usize,
    payload_left: usize,
    /// Inside a header block: from a HEADERS/PUSH_PROMISE frame's header until the end of
    /// the frame that carries END_HEADERS.
    in_block: bool,
    /// The current frame carries END_HEADERS.
    ends_block: bool,
}

impl FrameCursor {
    fn feed(&mut self, mut bytes: &[u8], clock: &HeaderBlockClock) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(bytes.len());
                self.payload_left -= skip;
                bytes = &bytes[skip..];
                if self.payload_left == 0 {
                    self.frame_done(clock);
                }
                continue;
            }
            let take = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < 9 {
                continue;
            }
            self.have = 0;
            let [l0, l1, l2, kind, flags, ..] = self.header;
            let len = (usize::from(l0) << 16) | (usize::from(l1) << 8) | usize::from(l2);
            self.ends_block = false;
            if matches!(kind, HEADERS | PUSH_PROMISE | CONTINUATION) {
                if !self.in_block {
                    self.in_block = true;
                    clock.open();
                }
                self.ends_block = flags & END_HEADERS != 0;
            }
            self.payload_left = len;
            if len == 0 {
                self.frame_done(clock);
            }
        }
    }

    fn frame_done(&mut self, clock: &HeaderBlockClock) {
        if self.in_block && self.ends_block {
            self.in_block = false;
            self.ends_block = false;
            clock.close();
        }
    }
}

/// A connection's socket, with its reads watched for HTTP/2 header blocks.
pub struct WatchHeaderBlocks<S> {
    inner: S,
    phase: Phase,
    clock: Arc<HeaderBlockClock>,
}

impl<S> WatchHeaderBlocks<S> {
    pub fn new(inner: S, clock: Arc<HeaderBlockClock>) -> Self {
        Self {
            inner,
            phase: Phase::Preface(0),
            clock,
        }
    }

    fn saw(&mut self, mut bytes: &[u8]) {
        loop {
            match &mut self.phase {
                Phase::Plain => return,
                Phase::Frames(cursor) => return cursor.feed(bytes, &self.clock),
                Phase::Preface(matched) => {
                    let want = &PREFACE[*matched..];
                    let n = want.len().min(bytes.len());
                    if bytes[..n] != want[..n] {
                        self.phase = Phase::Plain;
                        return;
                    }
                    *matched += n;
                    bytes = &bytes[n..];
                    if *matched < PREFACE.len() {
                        return;
                    }
                    self.phase = Phase::Frames(FrameCursor::default());
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchHeaderBlocks<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if !matches!(self.phase, Phase::Plain) {
            if let Poll::Ready(Ok(())) = polled {
                let this = &mut *self;
                this.saw(&buf.filled()[before..]);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchHeaderBlocks<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload_len: usize) -> Vec<u8> {
        let len = payload_len as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend(std::iter::repeat_n(0u8, payload_len));
        f
    }

    /// Feeds `stream` in pieces of `chunk` bytes and returns, after each byte, whether a
    /// header block was open.
    fn open_after_each_byte(stream: &[u8], chunk: usize) -> Vec<bool> {
        let clock = HeaderBlockClock::new();
        let mut watch = WatchHeaderBlocks::new((), clock.clone());
        let mut open = Vec::new();
        for piece in stream.chunks(chunk) {
            for byte in piece.chunks(1) {
                watch.saw(byte);
                open.push(clock.open_for().is_some());
            }
        }
        open
    }

    #[test]
    fn a_header_block_is_open_from_its_first_frame_to_the_end_of_the_frame_with_end_headers() {
        let mut stream = PREFACE.to_vec();
        let mut expect = vec![false; PREFACE.len()];
        let mut push = |bytes: Vec<u8>, open: &dyn Fn(usize, usize) -> bool| {
            let n = bytes.len();
            for i in 0..n {
                expect.push(open(i, n));
            }
            stream.extend(bytes);
        };
        // SETTINGS: never a block.
        push(frame(0x4, 0, 6), &|_, _| false);
        // HEADERS with END_HEADERS: open from its 9th byte (the header read) until its last.
        push(frame(HEADERS, END_HEADERS | 0x1, 5), &|i, n| {
            i >= 8 && i < n - 1
        });
        // HEADERS without END_HEADERS, then DATA-less CONTINUATIONs, the last one ending it.
        push(frame(HEADERS, 0, 3), &|i, _| i >= 8);
        push(frame(CONTINUATION, 0, 2), &|_, _| true);
        push(frame(CONTINUATION, END_HEADERS, 0), &|i, n| i < n - 1);
        // An empty HEADERS frame with END_HEADERS opens and closes at once.
        push(frame(HEADERS, END_HEADERS, 0), &|_, _| false);
        // DATA: never a block.
        push(frame(0x0, 0, 4), &|_, _| false);
        // A block left open.
        push(frame(PUSH_PROMISE, 0, 4), &|i, _| i >= 8);
        for chunk in [1, 2, 5, 9, 10, 64, stream.len()] {
            assert_eq!(
                open_after_each_byte(&stream, chunk),
                expect,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn http1_is_never_watched() {
        let clock = HeaderBlockClock::new();
        let mut watch = WatchHeaderBlocks::new((), clock.clone());
        watch.saw(b"POST / HTTP/1.1\r\n");
        assert!(matches!(watch.phase, Phase::Plain));
        // Bytes that would look like an open HEADERS frame change nothing.
        watch.saw(&frame(HEADERS, 0, 0));
        assert!(clock.open_for().is_none());
    }
}
