//! A raw HTTP/1.1 upstream for gateway mode that answers each request with the request as it
//! received it (head and de-chunked body), in the answer shape its path names: a
//! `Content-Length` body, a chunked body, a body ended by closing the connection, a status
//! without a body, a custom reason phrase, hop-by-hop headers to strip, interim answers, ...
//! Other paths answer with scripted bytes ([`scripted`]): every way an HTTP/1.1 upstream may
//! frame an answer, or get it wrong (invalid lengths, codings, status and header lines, heads
//! too large, bodies cut short, bytes after an answer, no answer at all), and `/close-after`
//! and `/reset-after` close a kept-alive connection once it has been idle a moment, without a
//! word. Written on a `TcpListener` rather than with a server library, so that every answer is
//! exactly the bytes chosen here, and so that what the gateway sent is seen as sent (header
//! order and spelling included).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The `Date` every answer but `/no-date`'s carries, so that a gateway passing it on can be
/// told from one writing its own.
pub const UPSTREAM_DATE: &str = "Sun, 06 Dec 2026 00:00:00 GMT";
/// The length of `/big`'s body.
pub const BIG_LEN: usize = 300_000;
/// How long `/slow` waits before answering.
pub const SLOW: Duration = Duration::from_secs(3);
/// How long `/close-after` and `/reset-after` keep a connection open while idle.
pub const IDLE_CLOSE: Duration = Duration::from_millis(50);
/// How long the upstream waits between writing part of an answer and cutting it short (so that
/// the gateway has passed the part on by then).
const CUT_PAUSE: Duration = Duration::from_millis(500);

/// The running upstream; records the head of every request it read.
pub struct HeadEcho {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl HeadEcho {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, seen.clone()));
            }
        });
        Self { addr, heads }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request head read so far (request line and header lines, `\r\n`-separated).
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }

    /// How many requests reached the upstream.
    pub fn hits(&self) -> usize {
        self.heads.lock().expect("lock").len()
    }
}

/// A connection's bytes read so far and not yet consumed.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    /// Reads more; false at the end of the stream or on an error.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Everything up to and including `end`; `None` when the stream ends first.
    async fn until(&mut self, end: &[u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.windows(end.len()).position(|w| w == end) {
                return Some(self.buf.drain(..at + end.len()).collect());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn exactly(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// A chunked body's data, trailers dropped.
    async fn chunked(&mut self) -> Option<Vec<u8>> {
        let mut data = Vec::new();
        loop {
            let line = self.until(b"\r\n").await?;
            let size = std::str::from_utf8(&line[..line.len() - 2])
                .ok()
                .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())?;
            if size == 0 {
                // Trailer lines up to the blank one.
                while self.until(b"\r\n").await?.len() > 2 {}
                return Some(data);
            }
            data.extend(self.exactly(size).await?);
            self.exactly(2).await?;
        }
    }
}

/// The value of header `name` in `head`, any spelling.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// What becomes of a connection after an answer.
#[derive(Clone, Copy)]
enum After {
    /// The next request is read.
    KeepAlive,
    /// The connection is closed (or broke while answering).
    Close,
    /// The connection is closed after [`CUT_PAUSE`], once the gateway has passed on what came
    /// of an answer cut short.
    CloseLater,
    /// The next request is read, but the connection is closed, without a word, once idle for
    /// [`IDLE_CLOSE`] (reset rather than closed when `reset`), as an upstream with a short
    /// keep-alive timeout does.
    CloseWhenIdle { reset: bool },
}

async fn serve(stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
    };
    let mut after = After::KeepAlive;
    loop {
        let next = reader.until(b"\r\n\r\n");
        let raw_head = match after {
            After::CloseWhenIdle { reset } => match tokio::time::timeout(IDLE_CLOSE, next).await {
                Ok(head) => head,
                Err(_) => {
                    if reset {
                        let _ =
                            socket2::SockRef::from(&reader.stream).set_linger(Some(Duration::ZERO));
                    }
                    return;
                }
            },
            _ => next.await,
        };
        let Some(raw_head) = raw_head else {
            return;
        };
        let head = String::from_utf8_lossy(&raw_head[..raw_head.len() - 4]).into_owned();
        let body = if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            reader.chunked().await
        } else {
            let length = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            reader.exactly(length).await
        };
        let Some(body) = body else { return };
        heads.lock().expect("lock").push(head.clone());
        let mut request_line = head.split("\r\n").next().unwrap_or("").split(' ');
        let method = request_line.next().unwrap_or("").to_string();
        let target = request_line.next().unwrap_or("").to_string();
        let path = target.split('?').next().unwrap_or("").to_string();
        // The request as received: its head, a blank line, its (de-chunked) body.
        let mut echo = format!("{head}\r\n\r\n").into_bytes();
        echo.extend_from_slice(&body);
        if path == "/slow" {
            tokio::time::sleep(SLOW).await;
        }
        after = answer(&mut reader.stream, &method, &path, echo).await;
        match after {
            After::KeepAlive | After::CloseWhenIdle { .. } => {}
            After::Close => {
                let _ = reader.stream.shutdown().await;
                return;
            }
            After::CloseLater => {
                tokio::time::sleep(CUT_PAUSE).await;
                let _ = reader.stream.shutdown().await;
                return;
            }
        }
    }
}

/// Writes the answer `path` asks for, and says what becomes of the connection.
async fn answer(stream: &mut TcpStream, method: &str, path: &str, echo: Vec<u8>) -> After {
    let head_only = method == "HEAD";
    if let Some(script) = scripted(path, head_only) {
        for (i, piece) in script.pieces.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(script.gap).await;
            }
            if stream.write_all(piece).await.is_err() {
                return After::Close;
            }
        }
        return script.after;
    }
    // Interim answers first, written apart from the final one.
    let interim: &[u8] = match path {
        // `100 Continue` to a request that did not ask for it.
        "/continue" => b"HTTP/1.1 100 Continue\r\n\r\n",
        // `103 Early Hints` with a `Link`.
        "/early-hints" => {
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
        }
        _ => b"",
    };
    if !interim.is_empty() {
        if stream.write_all(interim).await.is_err() {
            return After::Close;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let date = if path == "/no-date" {
        String::new()
    } else {
        format!("Date: {UPSTREAM_DATE}\r\n")
    };
    // `/hop` names a private header of its own in `Connection`, as hop-by-hop.
    let connection = if path == "/hop" {
        "x-secret, keep-alive"
    } else {
        "keep-alive"
    };
    let common = format!("Connection: {connection}\r\n{date}");
    let text = "Content-Type: text/plain; charset=utf-8\r\n";
    let with_length = |status: &str, extra: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status}\r\n{common}{text}{extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(body);
        }
        out
    };
    let bytes = match path {
        "/chunked" => {
            let head =
                format!("HTTP/1.1 200 OK\r\n{common}{text}Transfer-Encoding: chunked\r\n\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return After::Close;
            }
            if head_only {
                return After::KeepAlive;
            }
            // Several chunks, written apart, so the gateway sees them arrive one by one.
            for piece in echo.chunks(echo.len().div_ceil(3).max(1)) {
                let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                chunk.extend_from_slice(piece);
                chunk.extend_from_slice(b"\r\n");
                if stream.write_all(&chunk).await.is_err() {
                    return After::Close;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            b"0\r\n\r\n".to_vec()
        }
        "/close" => {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nDate: {UPSTREAM_DATE}\r\n{text}\r\n"
            )
            .into_bytes();
            if !head_only {
                out.extend_from_slice(&echo);
            }
            let _ = stream.write_all(&out).await;
            return After::Close;
        }
        "/nocontent" => format!("HTTP/1.1 204 No Content\r\n{common}\r\n").into_bytes(),
        "/notmodified" => {
            format!("HTTP/1.1 304 Not Modified\r\n{common}ETag: \"v1\"\r\n\r\n").into_bytes()
        }
        "/reason" => with_length("299 Custom Reason", "", &echo),
        "/own-id" => with_length("200 OK", "X-Request-Id: upstream-id\r\n", &echo),
        "/big" => with_length("200 OK", "", &big_body()),
        "/hop" => with_length(
            "200 OK",
            "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n",
            &echo,
        ),
        // `/cl`, `/no-date`, `/slow`, `/continue`, `/early-hints`, `/close-after`,
        // `/reset-after` and every other path.
        _ => with_length("200 OK", "", &echo),
    };
    if stream.write_all(&bytes).await.is_err() {
        return After::Close;
    }
    match path {
        // Closes the connection once idle for `IDLE_CLOSE`, without saying so.
        "/close-after" => After::CloseWhenIdle { reset: false },
        // Resets the connection once idle for `IDLE_CLOSE`.
        "/reset-after" => After::CloseWhenIdle { reset: true },
        _ => After::KeepAlive,
    }
}

/// `/big`'s body: [`BIG_LEN`] letters.
fn big_body() -> Vec<u8> {
    (0..BIG_LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

/// An answer written exactly as scripted: its pieces one after another, `gap` apart, then
/// `after`.
struct Script {
    pieces: Vec<Vec<u8>>,
    gap: Duration,
    after: After,
}

/// The scripted answer of `path`, if it has one: the answers an upstream may give that
/// are unusual, malformed or cut short, each as its bytes on the wire. The body (everything
/// after the blank line) is left out for HEAD, except where sending it is the point.
fn scripted(path: &str, head_only: bool) -> Option<Script> {
    use After::{Close, CloseLater, KeepAlive};
    // `head` (status line and header lines, each ending in CRLF) and the blank line, then
    // `body` as sent, in one write.
    let one = |head: &[u8], body: &[u8], after: After| {
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(b"\r\n");
        if !head_only {
            bytes.extend_from_slice(body);
        }
        Script {
            pieces: vec![bytes],
            gap: Duration::ZERO,
            after,
        }
    };
    // `hello` as the body after `head`.
    let hello = |head: &str, after: After| one(head.as_bytes(), b"hello", after);
    let chunked_hello = b"5\r\nhello\r\n0\r\n\r\n";
    // An HTTP/1.1 body ended by the close: after an answer to HEAD, which has none, the
    // connection stays.
    let until_close = if head_only { KeepAlive } else { Close };
    // A body cut short by the close; an answer to HEAD is whole, and the connection stays.
    let cut = if head_only { KeepAlive } else { CloseLater };
    let script = match path {
        // Content-Length as a list of equal values, twice, with leading zeros, zero.
        "/cl-list" => hello("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n", KeepAlive),
        "/cl-twice" => hello(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n",
            KeepAlive,
        ),
        "/cl-zeros" => hello("HTTP/1.1 200 OK\r\nContent-Length: 005\r\n", KeepAlive),
        "/cl-zero" => one(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", b"", KeepAlive),
        // Content-Length that is no valid length: differing values, not a number, signed,
        // larger than any length.
        "/cl-differ" => hello("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n", KeepAlive),
        "/cl-nan" => hello("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n", KeepAlive),
        "/cl-plus" => hello("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n", KeepAlive),
        "/cl-huge" => hello(
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n",
            KeepAlive,
        ),
        // Chunked beside a Content-Length: chunked wins, the bytes on the wire are no
        // 5-byte body. Beside a Content-Length that is not even the decoded body's, too
        // (passed on beside the decoded body).
        "/te-and-cl" => one(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            chunked_hello,
            KeepAlive,
        ),
        "/te-and-wrong-cl" => one(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            chunked_hello,
            KeepAlive,
        ),
        // Chunked last after another coding: chunked framing.
        "/te-gzip-chunked" => one(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n",
            chunked_hello,
            KeepAlive,
        ),
        // A coding that is not chunked last: the body runs until the close.
        "/te-chunked-gzip" => hello(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n",
            until_close,
        ),
        "/te-identity" => hello(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n",
            until_close,
        ),
        // Chunk extensions, also on the last chunk.
        "/chunk-ext" => one(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
            b"5;name=value\r\nhello\r\n6;a;b=\"c d\"\r\n world\r\n0;last\r\n\r\n",
            KeepAlive,
        ),
        // Chunk sizes in upper-case hex, one with a leading zero.
        "/chunk-hex" => one(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
            b"0A\r\n0123456789\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
            KeepAlive,
        ),
        // Trailer fields after the last chunk.
        "/chunk-trailer" => one(
            b"HTTP/1.1 200 OK\r\nTrailer: X-Trailer\r\nTransfer-Encoding: chunked\r\n",
            b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n",
            KeepAlive,
        ),
        // HTTP/1.0 knows no Transfer-Encoding.
        "/te-http10" => one(
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n",
            chunked_hello,
            Close,
        ),
        // HTTP/1.0 without keep-alive (closes after a Content-Length body), with it, and
        // without a length (the body runs until the close).
        "/http10" => hello("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n", Close),
        "/http10-keep-alive" => hello(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n",
            KeepAlive,
        ),
        "/http10-close" => hello("HTTP/1.0 200 OK\r\n", Close),
        // HTTP/1.1 saying `Connection: close` beside a Content-Length, then closing.
        "/cl-close" => hello(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n",
            Close,
        ),
        // Neither length nor chunked, and closed at once: an empty body.
        "/close-empty" => one(b"HTTP/1.1 200 OK\r\n", b"", until_close),
        // Protocols switched unasked.
        "/switching" => one(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n",
            b"",
            KeepAlive,
        ),
        // An interim answer, then the close.
        "/continue-then-close" => one(b"HTTP/1.1 100 Continue\r\n", b"", Close),
        // Status lines that are no status line.
        "/bad-code" => hello("HTTP/1.1 abc OK\r\nContent-Length: 5\r\n", KeepAlive),
        "/bad-version" => hello("HTTX/1.1 200 OK\r\nContent-Length: 5\r\n", KeepAlive),
        "/bad-status-line" => hello("200 OK\r\nContent-Length: 5\r\n", KeepAlive),
        // Header lines that are no header line: no colon, a space before the colon, a
        // continuation line (obs-fold).
        "/no-colon" => hello(
            "HTTP/1.1 200 OK\r\nX-No-Colon\r\nContent-Length: 5\r\n",
            KeepAlive,
        ),
        "/space-colon" => hello(
            "HTTP/1.1 200 OK\r\nX-Spaced : 1\r\nContent-Length: 5\r\n",
            KeepAlive,
        ),
        "/obs-fold" => hello(
            "HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 5\r\n",
            KeepAlive,
        ),
        // 100 header lines (the most hyper's client takes), and 101.
        "/headers-100" => hello(&many_headers(100), KeepAlive),
        "/headers-101" => hello(&many_headers(101), KeepAlive),
        // Heads of 300 KiB (taken) and 2 MiB (far more than hyper's client buffers, 400 KiB).
        "/head-300k" => hello(&large_head(300 / 60), KeepAlive),
        "/head-2m" => hello(&large_head(2048 / 60), KeepAlive),
        // Bodies cut short: fewer bytes than the Content-Length, a chunked body without its
        // last chunk (each closed a moment later), a chunk size that is no number.
        "/cut-length" => hello("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n", cut),
        "/cut-chunked" => one(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
            b"5\r\nhello\r\n",
            cut,
        ),
        "/bad-chunk" => {
            let mut script = one(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
                b"5\r\nhello\r\n",
                until_close,
            );
            if !head_only {
                script.pieces.push(b"zz\r\nhello\r\n0\r\n\r\n".to_vec());
                script.gap = CUT_PAUSE;
            }
            script
        }
        // The request read, the connection closed without an answer.
        "/no-answer" => Script {
            pieces: Vec::new(),
            gap: Duration::ZERO,
            after: Close,
        },
        // Bytes after a whole answer on a kept-alive connection: garbage, and a whole second
        // answer (nothing may take it for the next request's).
        "/garbage-after" => {
            hello("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", KeepAlive).and(b"GARBAGE\r\n")
        }
        "/extra-answer" => hello("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", KeepAlive)
            .and(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle"),
        // A body sent to HEAD too, and after 204 and 304 (which have none).
        "/head-body" => {
            let mut script = hello("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", KeepAlive);
            if head_only {
                script = script.and(b"hello");
            }
            script
        }
        "/nocontent-body" => one(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n",
            b"",
            KeepAlive,
        )
        .and(b"hello"),
        "/notmodified-length" => one(
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n",
            b"",
            KeepAlive,
        ),
        // Status lines: an empty reason, no reason at all, a reason of its own for a
        // standard code, a code outside the standard ones.
        "/empty-reason" => hello("HTTP/1.1 200 \r\nContent-Length: 5\r\n", KeepAlive),
        "/no-reason" => hello("HTTP/1.1 200\r\nContent-Length: 5\r\n", KeepAlive),
        "/odd-reason" => hello(
            "HTTP/1.1 404 Gone Fishing\r\nContent-Length: 5\r\n",
            KeepAlive,
        ),
        "/status-999" => hello("HTTP/1.1 999 \r\nContent-Length: 5\r\n", KeepAlive),
        // Repeated header lines, and an empty value.
        "/repeated" => hello(
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nVary: Accept\r\nSet-Cookie: b=2\r\n\
             Vary: Origin\r\nX-Empty:\r\nContent-Length: 5\r\n",
            KeepAlive,
        ),
        // A value with tabs and obs-text bytes (0x80-0xff).
        "/obs-text" => one(
            b"HTTP/1.1 200 OK\r\nX-Text: a\tb \x80\xfe\xff c\r\nContent-Length: 5\r\n",
            b"hello",
            KeepAlive,
        ),
        // Header names in mixed case.
        "/mixed-case" => hello(
            "HTTP/1.1 200 OK\r\ncOnTeNt-TyPe: text/plain\r\nX-MiXeD-CaSe: 1\r\n\
             content-LENGTH: 5\r\n",
            KeepAlive,
        ),
        // `Connection` naming a header of the hop alone.
        "/connection-private" => hello(
            "HTTP/1.1 200 OK\r\nConnection: x-private\r\nX-Private: 1\r\nX-Public: 1\r\n\
             Content-Length: 5\r\n",
            KeepAlive,
        ),
        // A Content-Length answer, and a chunked one, a few bytes at a time.
        "/trickle" => hello("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", KeepAlive).trickled(),
        "/trickle-chunked" => one(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            KeepAlive,
        )
        .trickled(),
        // `/big`'s body chunked in uneven chunks, and ended by the close.
        "/big-chunked" => {
            let big = big_body();
            let mut body = Vec::new();
            let mut rest = &big[..];
            for size in [1, 8191, 65536, 3, 100_000].into_iter().cycle() {
                let (chunk, after) = rest.split_at(size.min(rest.len()));
                body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                body.extend_from_slice(chunk);
                body.extend_from_slice(b"\r\n");
                rest = after;
                if rest.is_empty() {
                    break;
                }
            }
            body.extend_from_slice(b"0\r\n\r\n");
            one(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
                &body,
                KeepAlive,
            )
        }
        "/big-close" => one(b"HTTP/1.1 200 OK\r\n", &big_body(), until_close),
        _ => return None,
    };
    Some(script)
}

impl Script {
    /// Also `bytes`, in the same write, whatever the method.
    fn and(mut self, bytes: &[u8]) -> Self {
        if let Some(last) = self.pieces.last_mut() {
            last.extend_from_slice(bytes);
        }
        self
    }

    /// Written three bytes at a time, a millisecond apart.
    fn trickled(self) -> Self {
        Self {
            pieces: self.pieces.concat().chunks(3).map(<[u8]>::to_vec).collect(),
            gap: Duration::from_millis(1),
            after: self.after,
        }
    }
}

/// A status line and `n` header lines in all, the last of them `Content-Length: 5`.
fn many_headers(n: usize) -> String {
    let mut head = "HTTP/1.1 200 OK\r\n".to_string();
    for i in 1..n {
        head.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    head + "Content-Length: 5\r\n"
}

/// A status line, `n` header lines of 60 KiB each (and a little), and `Content-Length: 5`.
fn large_head(n: usize) -> String {
    let mut head = "HTTP/1.1 200 OK\r\n".to_string();
    for i in 0..n {
        head.push_str(&format!("X-Large-{i}: {}\r\n", "v".repeat(60 * 1024)));
    }
    head + "Content-Length: 5\r\n"
}
