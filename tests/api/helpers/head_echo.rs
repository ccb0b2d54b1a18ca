//! A raw HTTP/1.1 upstream for gateway mode that answers each request with the request as it
//! received it (head and de-chunked body), in the answer shape its path names: a
//! `Content-Length` body, a chunked body, a body ended by closing the connection, a status
//! without a body, a custom reason phrase, hop-by-hop headers to strip, ... Written on a
//! `TcpListener` rather than with a server library, so that every answer is exactly the bytes
//! chosen here, and so that what the gateway sent is seen as sent (header order and spelling
//! included).

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

async fn serve(stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
    };
    loop {
        let Some(raw_head) = reader.until(b"\r\n\r\n").await else {
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
        if !answer(&mut reader.stream, &method, &path, echo).await {
            return;
        }
    }
}

/// Writes the answer `path` asks for; false when the connection is to be (or was) closed.
async fn answer(stream: &mut TcpStream, method: &str, path: &str, echo: Vec<u8>) -> bool {
    let head_only = method == "HEAD";
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
                return false;
            }
            if head_only {
                return true;
            }
            // Several chunks, written apart, so the gateway sees them arrive one by one.
            for piece in echo.chunks(echo.len().div_ceil(3).max(1)) {
                let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                chunk.extend_from_slice(piece);
                chunk.extend_from_slice(b"\r\n");
                if stream.write_all(&chunk).await.is_err() {
                    return false;
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
            let _ = stream.shutdown().await;
            return false;
        }
        "/nocontent" => format!("HTTP/1.1 204 No Content\r\n{common}\r\n").into_bytes(),
        "/notmodified" => {
            format!("HTTP/1.1 304 Not Modified\r\n{common}ETag: \"v1\"\r\n\r\n").into_bytes()
        }
        "/reason" => with_length("299 Custom Reason", "", &echo),
        "/own-id" => with_length("200 OK", "X-Request-Id: upstream-id\r\n", &echo),
        "/big" => {
            let big: Vec<u8> = (0..BIG_LEN).map(|i| b'a' + (i % 26) as u8).collect();
            with_length("200 OK", "", &big)
        }
        "/hop" => with_length(
            "200 OK",
            "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n",
            &echo,
        ),
        // `/cl`, `/no-date`, `/slow` and every other path.
        _ => with_length("200 OK", "", &echo),
    };
    stream.write_all(&bytes).await.is_ok()
}
