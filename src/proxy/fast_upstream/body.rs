//! An answer's body, read from the upstream connection as the client takes it.
//!
//! The body is read in place on the connection (no task of its own, no channel): each
//! `poll_frame` hands out what the connection has, as slices of the bytes read. Read to its
//! end (its length, its last chunk, or the close), the connection goes back to the thread's
//! idle queue when it may carry another request and nothing follows the body; a body
//! dropped before its end (the client went away) closes the connection, since the rest of
//! the answer would otherwise be read as the next one's.

use super::connections::{give_back, Pool};
use super::head::{AnswerHead, Framing};
use axum::body::Bytes;
use axum::http::Version;
use bytes::{Buf, BytesMut};
use http_body::{Frame, SizeHint};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How much is read from the connection at a time.
const READ_SIZE: usize = 16 * 1024;
/// The longest chunk-size line (size, extensions) or trailer section read.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// An answer's body on its connection.
pub(super) struct AnswerBody {
    /// The connection, until the body's end.
    stream: Option<TcpStream>,
    /// Read from the connection and not handed out yet.
    input: BytesMut,
    state: State,
    /// Whether the connection may carry another request after this body.
    keep_alive: bool,
    /// Whether the answer was HTTP/1.0 (the connection's next request is, then).
    http10: bool,
    pool: Pool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many bytes left.
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// At a chunk-size line.
    Size,
    /// In a chunk's data, this many bytes left.
    Data(u64),
    /// At the line end after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines (not passed on) up to the blank line.
    Trailers,
}

impl AnswerBody {
    /// The body that follows a head; `input` holds the bytes read past the head.
    pub(super) fn new(stream: TcpStream, input: BytesMut, head: &AnswerHead, pool: Pool) -> Self {
        let (framing, keep_alive) = (head.framing, head.keep_alive);
        let state = match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = Self {
            stream: Some(stream),
            input,
            state,
            keep_alive: keep_alive && framing != Framing::UntilClose,
            http10: head.version == Version::HTTP_10,
            pool,
        };
        if body.state == State::Done {
            body.finish();
        }
        body
    }

    /// The body's end: the connection goes back to the pool if it can carry another request.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(stream) = self.stream.take() {
            if self.keep_alive && self.input.is_empty() {
                give_back(&self.pool, stream, self.http10);
            }
        }
    }

    /// Reads more from the connection into `input`; `Ok(0)` at its end. Read as the runtime's
    /// own reader reads, which takes a read that did not fill the buffer to mean the socket
    /// is drained, so the next read waits for the event loop rather than asking the system.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(stream) = &mut self.stream else {
            return Poll::Ready(Ok(0));
        };
        self.input.reserve(READ_SIZE);
        std::pin::pin!(stream.read_buf(&mut self.input)).poll(cx)
    }

    /// The next frame from what was read, or `None` if more must be read first.
    fn next_from_input(&mut self) -> Result<Option<Bytes>, io::Error> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Length(left) => {
                    if self.input.is_empty() {
                        return Ok(None);
                    }
                    let n = left.min(self.input.len() as u64);
                    let data = self.input.split_to(n as usize).freeze();
                    self.state = State::Length(left - n);
                    if left == n {
                        self.finish();
                    }
                    return Ok(Some(data));
                }
                State::UntilClose => {
                    if self.input.is_empty() {
                        return Ok(None);
                    }
                    return Ok(Some(self.input.split().freeze()));
                }
                State::Chunked(chunk) => match chunk {
                    Chunk::Size => {
                        let Some(line) = take_line(&mut self.input, MAX_LINE)? else {
                            return Ok(None);
                        };
                        let size = chunk_size(&line)?;
                        self.state = State::Chunked(if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        });
                    }
                    Chunk::Data(left) => {
                        if self.input.is_empty() {
                            return Ok(None);
                        }
                        let n = left.min(self.input.len() as u64);
                        let data = self.input.split_to(n as usize).freeze();
                        self.state = State::Chunked(if left == n {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left - n)
                        });
                        return Ok(Some(data));
                    }
                    Chunk::DataEnd => {
                        if self.input.len() < 2 {
                            return Ok(None);
                        }
                        if &self.input[..2] != b"\r\n" {
                            return Err(invalid("a chunk's data does not end with CRLF"));
                        }
                        self.input.advance(2);
                        self.state = State::Chunked(Chunk::Size);
                    }
                    Chunk::Trailers => {
                        let Some(line) = take_line(&mut self.input, MAX_TRAILERS)? else {
                            return Ok(None);
                        };
                        if line.is_empty() {
                            self.finish();
                            return Ok(None);
                        }
                    }
                },
            }
        }
    }
}

impl http_body::Body for AnswerBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            match this.next_from_input() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(None) if this.state == State::Done => return Poll::Ready(None),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(this.fail(e)))),
            }
            match ready!(this.poll_read(cx)) {
                Ok(0) if this.state == State::UntilClose => {
                    this.stream = None;
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection before the body's end",
                    );
                    return Poll::Ready(Some(Err(this.fail(e))));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(this.fail(e)))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(left) => SizeHint::with_exact(left),
            State::Done => SizeHint::with_exact(0),
            State::Chunked(_) | State::UntilClose => SizeHint::default(),
        }
    }
}

impl AnswerBody {
    /// A body that cannot be read on: its connection is closed, never reused.
    fn fail(&mut self, e: io::Error) -> io::Error {
        self.stream = None;
        self.state = State::Done;
        e
    }
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// The line at the front of `input` without its CRLF, taken off it; `None` until a whole
/// line is there. A line longer than `max`, or ended by a bare LF, is refused.
fn take_line(input: &mut BytesMut, max: usize) -> io::Result<Option<BytesMut>> {
    match input.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && input[end - 1] == b'\r' => {
            let mut line = input.split_to(end + 1);
            line.truncate(end - 1);
            Ok(Some(line))
        }
        Some(_) => Err(invalid("a chunked body's line does not end with CRLF")),
        None if input.len() > max => Err(invalid("a chunked body's line is too long")),
        None => Ok(None),
    }
}

/// A chunk-size line's size: hex digits, then optional spaces or tabs and extensions
/// (`;name=value`, any bytes, not interpreted), as hyper's client reads it.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(invalid("a chunk size is not a hex number"));
    }
    let mut size: u64 = 0;
    for &d in &line[..digits] {
        let value = (d as char).to_digit(16).unwrap_or(0);
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(value)))
            .ok_or_else(|| invalid("a chunk size overflows"))?;
    }
    let rest = &line[digits..];
    let after_space = rest.iter().skip_while(|&&b| b == b' ' || b == b'\t');
    match after_space.clone().next() {
        None | Some(b';') => {}
        Some(_) => return Err(invalid("a chunk size is followed by something else")),
    }
    // Extensions: any bytes but a line end (a CR inside the line is one that is not).
    if rest.contains(&b'\r') {
        return Err(invalid("a chunk-size line holds a bare CR"));
    }
    Ok(size)
}

#[cfg(test)]
mod tests;
