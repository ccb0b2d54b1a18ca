//! The two heads of an exchange with the upstream: the request written as bytes, and the
//! answer's head read as hyper's HTTP/1.1 client reads it.
//!
//! Reading follows hyper's client (`proto::h1::role::Client`) rule for rule, so that an app
//! behind sfgate cannot tell which of the two talked to it and a client cannot tell which
//! answered: the same parser (httparse, default settings: no obsolete line folding, no
//! spaces before a colon), the same limits (100 header lines, a head of at most
//! [`MAX_HEAD`]), informational answers (1xx but 101) skipped, a reason phrase kept only
//! when it is not the status's usual one, and the body's length decided as RFC 9112 §6.3
//! and hyper decide it ([`framing`]).

use crate::headers::cookies::sets_own_cookie;
use crate::headers::is_hop_by_hop_lowercase;
use crate::headers::passed::{LineKind, PassedLines, MAX_NAME};
use crate::headers::rewrite::{connection_items, ConnectionItem, RequestHeaders};
use crate::headers::text::{as_text, is_text};
#[cfg(test)]
use axum::http::HeaderMap;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Version};
use bytes::{Bytes, BytesMut};
use hyper::ext::ReasonPhrase;
use std::mem::MaybeUninit;
use std::ops::Range;

/// The longest answer head read: hyper's largest read buffer (8 KiB + 100 lines of 4 KiB).
pub(super) const MAX_HEAD: usize = 8192 + 4096 * 100;
/// Header lines an answer may have (hyper's limit).
const MAX_HEADERS: usize = 100;
/// The longest body length hyper accepts.
const MAX_LENGTH: u64 = u64::MAX - 2;

/// A request head for the upstream, written line by line as hyper's client writes one:
/// request line, every header line in the order given (names as a map holds them:
/// lowercase), and the upstream's `Host` when the request has none (last, where hyper's
/// client adds it). The header rewrite ([`crate::headers::rewrite::rewrite_request`]) writes
/// its lines here directly, with no second header map between.
pub(in crate::proxy) struct RequestHead {
    bytes: Vec<u8>,
    has_host: bool,
}

impl RequestHead {
    /// The request line; `lines` is about how many header lines follow (room is made for
    /// them at once).
    pub(in crate::proxy) fn new(method: &Method, target: &str, lines: usize) -> Self {
        // Room for sfgate's own lines too (forwarding, identity, perhaps an assertion), so
        // that writing them does not move the head.
        let mut bytes = Vec::with_capacity(1024 + target.len() + 48 * lines);
        bytes.extend_from_slice(method.as_str().as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(target.as_bytes());
        bytes.extend_from_slice(b" HTTP/1.1\r\n");
        Self {
            bytes,
            has_host: false,
        }
    }

    /// The whole head, with `host` when no `Host` line was written.
    pub(super) fn finish(mut self, host: &HeaderValue) -> Vec<u8> {
        if !self.has_host {
            line(&mut self.bytes, b"host", host.as_bytes());
        }
        self.bytes.extend_from_slice(b"\r\n");
        self.bytes
    }
}

impl RequestHeaders for RequestHead {
    fn pass(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.has_host |= name == header::HOST;
        line(&mut self.bytes, name.as_str().as_bytes(), value.as_bytes());
    }

    fn set(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.pass(name, value);
    }
}

/// The head hyper's client writes for a bodiless request with `headers`.
#[cfg(test)]
pub(super) fn write_request(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    host: &HeaderValue,
) -> Vec<u8> {
    let mut head = RequestHead::new(method, target, headers.len());
    for (name, value) in headers {
        head.pass(name, value);
    }
    head.finish(host)
}

/// The request as hyper's client writes it on a connection whose last answer was HTTP/1.0:
/// as an HTTP/1.0 request, asking to keep the connection (which HTTP/1.0 otherwise closes).
/// The rewritten headers never hold a `Connection` line of their own (it is hop-by-hop).
pub(super) fn as_http10(request: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(request.len() + 24);
    let line_end = request
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(request.len());
    let (line, rest) = request.split_at(line_end);
    out.extend_from_slice(line.strip_suffix(b"HTTP/1.1").unwrap_or(line));
    out.extend_from_slice(b"HTTP/1.0");
    // Up to the blank line that ends the head.
    out.extend_from_slice(rest.strip_suffix(b"\r\n").unwrap_or(rest));
    out.extend_from_slice(b"connection: keep-alive\r\n\r\n");
    out
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// An answer head, read.
#[derive(Debug)]
pub(super) struct AnswerHead {
    pub status: StatusCode,
    pub version: Version,
    /// As the proxy passes them on: without hop-by-hop headers (nor a `Content-Length`
    /// beside `Transfer-Encoding`).
    pub headers: PassedLines,
    /// The reason phrase, when it is not the status's usual one.
    pub reason: Option<ReasonPhrase>,
    pub framing: Framing,
    /// Whether the connection may carry another request once the body is read: HTTP/1.1
    /// unless a `Connection` line says `close`; HTTP/1.0 only with `keep-alive`.
    pub keep_alive: bool,
}

/// How the answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: a `HEAD` request, 1xx, 204, 304, or `Content-Length: 0`.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// An answer head the gateway cannot pass on (answered 502, as hyper's client errors are).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(in crate::proxy) enum BadHead {
    #[error("the answer head is not HTTP/1.x: {0}")]
    Parse(httparse::Error),
    #[error("the answer head is larger than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("the answer's status code is not one")]
    Status,
    #[error("an answer header name or value is not valid")]
    Header,
    #[error("the answer's Content-Length is not one length")]
    ContentLength,
    #[error("an HTTP/1.0 answer carries Transfer-Encoding")]
    TransferEncodingOnHttp10,
}

/// Reads an answer head from the front of `input`, skipping informational answers. `None`
/// while the head is not whole (or is only informational answers so far); the head is split
/// off `input`, which keeps what follows it (the body's first bytes).
pub(super) fn read_answer(
    input: &mut BytesMut,
    request_method: &Method,
) -> Result<Option<AnswerHead>, BadHead> {
    loop {
        let (len, parsed) = {
            // Not initialised first: 100 empty lines are 3 KiB to fill per answer.
            let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut answer = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut answer,
                input,
                &mut lines,
            );
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if input.len() >= MAX_HEAD => {
                    return Err(BadHead::TooLarge)
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(BadHead::Parse(e)),
            };
            if len > MAX_HEAD {
                return Err(BadHead::TooLarge);
            }
            (len, Parsed::of(&answer, input)?)
        };
        // Names as a header map spells them (and the writer writes them): lowercase.
        for (name, _) in &parsed.lines {
            input[name.clone()].make_ascii_lowercase();
        }
        let head = input.split_to(len).freeze();
        let status = parsed.status;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            // 100 Continue, 103 Early Hints, ...: not the answer; hyper's client drops them.
            if input.is_empty() {
                return Ok(None);
            }
            continue;
        }
        return parsed.into_head(&head, request_method).map(Some);
    }
}

/// What httparse read, as offsets into the head (so that values can be slices of it).
struct Parsed {
    status: StatusCode,
    version: Version,
    reason: Option<Range<usize>>,
    lines: Vec<(Range<usize>, Range<usize>)>,
}

impl Parsed {
    fn of(answer: &httparse::Response<'_, '_>, input: &[u8]) -> Result<Self, BadHead> {
        // Where a slice httparse returned lies in `input`. An empty one may point anywhere
        // (httparse returns a static "" for an absent reason): its place does not matter.
        let at = |s: &[u8]| match (s.as_ptr() as usize).checked_sub(input.as_ptr() as usize) {
            Some(start) if !s.is_empty() && start + s.len() <= input.len() => {
                start..start + s.len()
            }
            _ => 0..0,
        };
        let status = answer
            .code
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or(BadHead::Status)?;
        let reason = answer
            .reason
            .filter(|reason| Some(*reason) != status.canonical_reason())
            .map(|reason| at(reason.as_bytes()));
        let version = if answer.version == Some(1) {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let lines = answer
            .headers
            .iter()
            .map(|h| (at(h.name.as_bytes()), at(h.value)))
            .collect();
        Ok(Self {
            status,
            version,
            reason,
            lines,
        })
    }

    /// The head as the proxy passes it on: hop-by-hop lines are read (keep-alive, framing)
    /// but never passed on, nor a `Set-Cookie` line for one of sfgate's cookies, which is
    /// what `crate::proxy` would otherwise remove from a map
    /// ([`crate::proxy::forward`]'s rules for hyper's answers, applied here as they are read).
    /// The names in `head` are lowercase.
    fn into_head(self, head: &Bytes, request_method: &Method) -> Result<AnswerHead, BadHead> {
        let mut lines = PassedLines::new(head.clone(), self.lines.len());
        let mut keep_alive = self.version == Version::HTTP_11;
        let mut saw_close = false;
        // The last `Transfer-Encoding` line (the one framing reads), and whether there was one.
        let mut transfer_encoding: Option<Range<usize>> = None;
        // Names `Connection` lists beyond `close` and `keep-alive`: hop-by-hop too (rare).
        let mut listed: Vec<HeaderName> = Vec::new();
        // Read as the lines come, not looked up afterwards.
        let mut length = Ok(None);
        // The head as text once (a usual head is ASCII), rather than each name on its own.
        let text = std::str::from_utf8(head).ok();
        for (name, value) in self.lines {
            // Every name and value the parser admits is a valid `HeaderName` and `HeaderValue`
            // (`crate::headers::passed`'s test), but for a name's length.
            if name.len() > MAX_NAME {
                return Err(BadHead::Header);
            }
            // Names are tokens, so text even where a value is not.
            let spelled = text
                .and_then(|text| text.get(name.clone()))
                .or_else(|| std::str::from_utf8(&head[name.clone()]).ok())
                .unwrap_or_default();
            if !is_hop_by_hop_lowercase(spelled) {
                if spelled == header::SET_COOKIE.as_str() && sets_own_cookie(&head[value.clone()]) {
                    crate::headers::cookies::log_removed_set_cookie();
                    continue;
                }
                if lines.push(name, value.clone()) == LineKind::ContentLength {
                    add_length(&mut length, &head[value]);
                }
                continue;
            }
            if spelled == header::CONNECTION.as_str() {
                let tokens = connection_tokens(&head[value], &mut listed);
                // Once any line asks to close, a later `keep-alive` does not undo it.
                if saw_close || tokens.close {
                    saw_close = true;
                    keep_alive = false;
                } else if !keep_alive {
                    keep_alive = tokens.keep_alive;
                }
            } else if spelled == header::TRANSFER_ENCODING.as_str() {
                transfer_encoding = Some(value);
            }
        }
        let reason = match self.reason {
            Some(range) => {
                Some(ReasonPhrase::try_from(head.slice(range)).map_err(|_| BadHead::Status)?)
            }
            None => None,
        };
        let framing = framing(
            self.status,
            self.version,
            length,
            transfer_encoding.as_ref().map(|range| &head[range.clone()]),
            request_method,
        )?;
        // Decided on the whole head; what the client gets lacks them.
        for name in &listed {
            lines.remove(name);
        }
        if transfer_encoding.is_some() {
            // The body is passed on as decoded, not by this length (RFC 9112 §6.3).
            lines.remove_content_length();
        }
        Ok(AnswerHead {
            status: self.status,
            version: self.version,
            headers: lines,
            reason,
            framing,
            keep_alive: keep_alive && self.status != StatusCode::SWITCHING_PROTOCOLS,
        })
    }
}

/// What one `Connection` value says, read in one pass.
struct ConnectionTokens {
    close: bool,
    keep_alive: bool,
}

/// Reads a `Connection` value ([`connection_items`], as the proxy reads it for hyper's
/// answers): whether it lists `close` or `keep-alive` as hyper's client reads them (a value
/// that is not visible text lists neither), and the other names it lists, appended to
/// `listed`.
fn connection_tokens(value: &[u8], listed: &mut Vec<HeaderName>) -> ConnectionTokens {
    let text = is_text(value);
    let mut tokens = ConnectionTokens {
        close: false,
        keep_alive: false,
    };
    for item in connection_items(value) {
        match item {
            ConnectionItem::Close => tokens.close |= text,
            ConnectionItem::KeepAlive => tokens.keep_alive |= text,
            ConnectionItem::Name(name) => listed.push(name),
        }
    }
    tokens
}

/// How long the body of an answer is (RFC 9112 §6.3, as hyper's client decides it):
/// none for `HEAD`, 1xx, 204 and 304; chunked when `Transfer-Encoding` ends in `chunked`
/// (whatever `Content-Length` says), until the close for any other `Transfer-Encoding`; the
/// one `Content-Length` (a list of equal values is one); until the close without either.
/// Differing or malformed lengths, and `Transfer-Encoding` on HTTP/1.0, are refused: a
/// body that could be read two ways is not read at all. `length`: what the `Content-Length`
/// lines say ([`add_length`]).
pub(super) fn framing(
    status: StatusCode,
    version: Version,
    length: Result<Option<u64>, BadHead>,
    transfer_encoding: Option<&[u8]>,
    request_method: &Method,
) -> Result<Framing, BadHead> {
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || request_method == Method::HEAD
    {
        return Ok(Framing::Empty);
    }
    if let Some(last) = transfer_encoding {
        if version == Version::HTTP_10 {
            return Err(BadHead::TransferEncodingOnHttp10);
        }
        let chunked_last = as_text(last)
            .and_then(|value| value.rsplit(',').next())
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        return Ok(if chunked_last {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    match length? {
        None => Ok(Framing::UntilClose),
        Some(0) => Ok(Framing::Empty),
        Some(n) if n <= MAX_LENGTH => Ok(Framing::Length(n)),
        Some(_) => Err(BadHead::ContentLength),
    }
}

/// Adds one `Content-Length` line to what the lines before said: the one length every line
/// and list item states (`None` before the first line), refused once they differ or one is
/// not a decimal number.
fn add_length(length: &mut Result<Option<u64>, BadHead>, value: &[u8]) {
    let Ok(so_far) = length else {
        return;
    };
    if !is_text(value) {
        *length = Err(BadHead::ContentLength);
        return;
    }
    // Of text, only spaces and tabs are whitespace to trim (as `str::trim` would).
    for item in value.split(|&b| b == b',') {
        match decimal(item.trim_ascii()) {
            Some(n) if *so_far.get_or_insert(n) == n => {}
            _ => {
                *length = Err(BadHead::ContentLength);
                return;
            }
        }
    }
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests;
