//! Raw HTTP/1.1 on a `TcpStream`, for requests a client library would normalise or refuse to
//! send (header name spellings, encoded paths, malformed framing).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on the connection, as bytes were read.
#[derive(Debug)]
pub struct Answer {
    /// 0 when the server closed without answering.
    pub status: u16,
    /// Status line and headers, without the blank line.
    pub head: String,
    /// The body, de-chunked when the answer was chunked.
    pub body: Vec<u8>,
}

impl Answer {
    /// Every value of header `name` (any spelling).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the whole answer when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.head, self.text()))
    }

    /// The JSON body's `error` code, if it has one.
    pub fn error_code(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        json["error"].as_str().map(str::to_string)
    }
}

/// Writes `request` as is and reads until the server closes (30 s at most).
pub async fn send_raw(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading everything (431, 414): not an error here.
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "no answer within 30 s");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut answer = Answer { status, head, body };
    if answer
        .header("transfer-encoding")
        .iter()
        .any(|v| v.contains("chunked"))
    {
        answer.body = dechunk(&answer.body);
    }
    answer
}

/// The data of a chunked body, up to the last chunk or the first malformed one.
pub fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
}
