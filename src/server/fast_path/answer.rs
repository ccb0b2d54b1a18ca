//! Writing an answer on the fast path as hyper's HTTP/1.1 server writes it for the same
//! request and response: the same status line (the upstream's own reason phrase kept), the
//! same header lines in the same order, the same framing (`Content-Length` when the length is
//! known, chunked when it is not, no body for `HEAD`, 204 and 304), a `Date` when the answer
//! has none, and `Connection: close` when the connection ends with this answer. Trailers are
//! not sent: the fast path takes no request that asked for them (`TE: trailers`), and hyper
//! sends them only then.

use crate::headers::passed::{LineKind, PassedLines};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use http_body::Body as _;
use std::cell::RefCell;
use std::future::poll_fn;
use std::io::Write as _;
use std::pin::Pin;
use std::time::SystemTime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Bytes of answer gathered before they are written (a body frame larger than this is written
/// as it comes).
const GATHER: usize = 64 * 1024;
/// Room for what the writer adds to an answer's header lines: the status line, `date`,
/// `content-length` or `transfer-encoding`, `connection`, and the blank line.
const HEAD_EXTRA: usize = 160;

/// How the answer's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// Writes `response` to the request made with `method`; `closing` when the connection ends
/// after it (the client asked, or the server is stopping). Returns whether the connection may
/// serve another request: not after an error, a body that ended early or ran long, or an
/// answer that says `Connection: close`.
pub(super) async fn write(
    stream: &mut TcpStream,
    method: &Method,
    response: Response,
    closing: bool,
    out: &mut Vec<u8>,
) -> bool {
    let (mut parts, mut body) = response.into_parts();
    // An upstream's header lines as read; the map then holds only what sfgate added after
    // (`crate::headers::passed`), and is written after them.
    let passed = parts.extensions.remove::<PassedLines>();
    as_the_router_answers(method, &mut parts.headers, passed.as_ref(), &mut body);
    if closing {
        say_close(&mut parts.headers);
    }
    let status = parts.status;
    if status.is_informational() {
        // The proxy never answers 1xx; hyper would refuse to write one too.
        tracing::warn!(
            status = status.as_u16(),
            "an informational status cannot be an answer"
        );
        return false;
    }
    out.clear();
    // The whole head at once (and a small body with it): growing the buffer line by line
    // reallocated it about five times per answer (measured with callgrind).
    let lines: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + passed.as_ref().map_or(0, PassedLines::written_len);
    let small_body = body
        .size_hint()
        .exact()
        .filter(|&n| n <= GATHER as u64)
        .unwrap_or(0);
    out.reserve(HEAD_EXTRA + lines + small_body as usize);
    status_line(
        out,
        status,
        parts.extensions.get::<hyper::ext::ReasonPhrase>(),
    );
    let length = if body.is_end_stream() {
        None
    } else {
        Some(body.size_hint().exact())
    };
    let head = Head {
        head: method == Method::HEAD,
        status,
    };
    let (framing, last) = headers(out, passed.as_ref(), &parts.headers, head, length);
    let framing = match framing {
        Some(framing) if head.may_have_body() => framing,
        _ => Framing::Length(0),
    };
    let sent = match framing {
        Framing::Length(0) => stream.write_all(out).await.is_ok(),
        framing => send_body(stream, body, framing, out).await,
    };
    sent && !last && !closing
}

/// What axum's router does to every answer it gives before hyper writes it: a body of known
/// length gets its `Content-Length` header (unless it has one), and the body of an answer to
/// `HEAD` is dropped after that (so such an answer says the length the `GET` would have).
fn as_the_router_answers(
    method: &Method,
    headers: &mut HeaderMap,
    passed: Option<&PassedLines>,
    body: &mut Body,
) {
    let has_length = headers.contains_key(header::CONTENT_LENGTH)
        || passed.is_some_and(|lines| lines.has(LineKind::ContentLength));
    if !has_length {
        if let Some(length) = body.size_hint().exact() {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    if method == Method::HEAD {
        *body = Body::empty();
    }
}

/// `Connection: close` added as hyper adds it when keep-alive is off: to the values there are,
/// or as a new header at the end.
fn say_close(headers: &mut HeaderMap) {
    match headers.entry(header::CONNECTION) {
        header::Entry::Occupied(mut entry) => {
            if !entry
                .iter()
                .any(|v| super::request::has_token(v.as_bytes(), b"close"))
            {
                entry.append(HeaderValue::from_static("close"));
            }
        }
        header::Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("close"));
        }
    }
}

fn status_line(out: &mut Vec<u8>, status: StatusCode, reason: Option<&hyper::ext::ReasonPhrase>) {
    if status == StatusCode::OK && reason.is_none() {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    match reason {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        None => out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
    }
    out.extend_from_slice(b"\r\n");
}

/// The request's method and the answer's status, as far as framing cares.
#[derive(Debug, Clone, Copy)]
struct Head {
    head: bool,
    status: StatusCode,
}

impl Head {
    fn may_have_body(self) -> bool {
        !self.head
            && !matches!(
                self.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
            )
    }

    fn may_have_length(self) -> bool {
        !matches!(
            self.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
    }
}

/// Writes the header lines and the blank line after them: an upstream's lines as read
/// (`passed`), then the map's. `length` is `None` for a body known to be empty, `Some(None)`
/// for one of unknown length. Returns the body's framing (`None` when there is no body to
/// send) and whether the answer says the connection closes.
fn headers(
    out: &mut Vec<u8>,
    passed: Option<&PassedLines>,
    headers: &HeaderMap,
    head: Head,
    length: Option<Option<u64>>,
) -> (Option<Framing>, bool) {
    let mut lines = Lines {
        out,
        head,
        length,
        framing: None,
        length_seen: false,
        wrote_length: false,
        wrote_date: false,
    };
    for (name, value, kind) in passed.iter().flat_map(|passed| passed.iter()) {
        match kind {
            LineKind::ContentLength => {
                if lines.content_length(name, value).is_err() {
                    return (None, true);
                }
            }
            LineKind::Date => {
                lines.wrote_date = true;
                line(lines.out, name, value);
            }
            LineKind::RequestId | LineKind::Other => line(lines.out, name, value),
        }
    }
    let mut last = false;
    // One pass in the map's order (a name's values come together); only the names hyper
    // writes on one line look their other values up.
    let mut previous: Option<&HeaderName> = None;
    for (name, value) in headers {
        let first = previous != Some(name);
        previous = Some(name);
        let spelled = name.as_str().as_bytes();
        match *name {
            header::CONTENT_LENGTH => {
                if lines.content_length(spelled, value.as_bytes()).is_err() {
                    return (None, true);
                }
            }
            header::TRANSFER_ENCODING => {
                if !first || !head.may_have_body() {
                    continue;
                }
                lines.wrote_length = true;
                lines.framing = Some(Framing::Chunked);
                let joined = joined(headers.get_all(name).iter());
                if joined.ends_with(b"chunked") {
                    line(lines.out, spelled, &joined);
                } else {
                    line(lines.out, spelled, &[&joined[..], b", chunked"].concat());
                }
            }
            header::CONNECTION => {
                if !first {
                    continue;
                }
                let values = headers.get_all(name);
                last |= values
                    .iter()
                    .any(|v| super::request::has_token(v.as_bytes(), b"close"));
                line(lines.out, spelled, &joined(values.iter()));
            }
            header::TRAILER => {
                if first && head.may_have_body() {
                    line(lines.out, spelled, &joined(headers.get_all(name).iter()));
                }
            }
            _ => {
                lines.wrote_date |= *name == header::DATE;
                line(lines.out, spelled, value.as_bytes());
            }
        }
    }
    (lines.finish(), last)
}

/// The state of writing one answer's header lines.
struct Lines<'a> {
    out: &'a mut Vec<u8>,
    head: Head,
    length: Option<Option<u64>>,
    framing: Option<Framing>,
    /// A `Content-Length` came (only the first is read, as hyper reads only a name's first
    /// value).
    length_seen: bool,
    /// A line saying the body's length or coding was written.
    wrote_length: bool,
    wrote_date: bool,
}

impl Lines<'_> {
    /// A `Content-Length` line; `Err` when it cannot be written (hyper refuses to write it
    /// and ends the connection).
    fn content_length(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        if std::mem::replace(&mut self.length_seen, true) {
            return Ok(());
        }
        match self.length {
            Some(Some(known)) => self.framing = Some(Framing::Length(known)),
            Some(None) => {
                let Some(declared) = content_length(value) else {
                    tracing::warn!("an answer's Content-Length is not a number");
                    return Err(());
                };
                self.framing = Some(Framing::Length(declared));
            }
            // No body: the header stays only in an answer to HEAD.
            None if !self.head.head => return Ok(()),
            None => {}
        }
        self.wrote_length = true;
        line(self.out, name, value);
        Ok(())
    }

    /// The lines the writer adds (the body's length or coding, `Date`) and the blank line;
    /// returns the body's framing.
    fn finish(self) -> Option<Framing> {
        let Self {
            out,
            head,
            length,
            mut framing,
            wrote_length,
            wrote_date,
            ..
        } = self;
        if !wrote_length {
            match length {
                Some(None) if head.may_have_body() => {
                    out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                    framing = Some(Framing::Chunked);
                }
                Some(None) => {}
                None | Some(Some(0)) => {
                    if head.may_have_length() && !head.head {
                        out.extend_from_slice(b"content-length: 0\r\n");
                    }
                }
                Some(Some(known)) => {
                    if head.may_have_length() {
                        line(out, b"content-length", known.to_string().as_bytes());
                        framing = Some(Framing::Length(known));
                    }
                }
            }
        }
        if !wrote_date {
            out.extend_from_slice(b"date: ");
            now(out);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        framing
    }
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// All values of one header on one line, as hyper writes `Connection`, `Transfer-Encoding` and
/// `Trailer`.
fn joined<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Vec<u8> {
    let mut joined = Vec::new();
    for value in values {
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    joined
}

/// A `Content-Length` value's one length, read as hyper reads it (text under
/// `HeaderValue::to_str`'s rule, a list of equal numbers).
fn content_length(value: &[u8]) -> Option<u64> {
    let text = crate::headers::text::as_text(value)?;
    let mut lengths = text.split(',').map(|v| v.trim().parse::<u64>());
    let first = lengths.next()?.ok()?;
    lengths.all(|l| l == Ok(first)).then_some(first)
}

thread_local! {
    /// The `Date` value for the current second, made once per second per thread (as hyper
    /// caches it).
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn now(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != second {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(text.as_bytes());
    });
}

/// Sends the head in `out` and the body behind it. Frames that are ready at once are gathered
/// with the head into one write; before waiting for the body, what is gathered is written, so
/// a slow or streaming body reaches the client as it comes.
async fn send_body(
    stream: &mut TcpStream,
    body: Body,
    framing: Framing,
    out: &mut Vec<u8>,
) -> bool {
    let mut body = std::pin::pin!(body);
    let mut left = match framing {
        Framing::Length(n) => Some(n),
        Framing::Chunked => None,
    };
    loop {
        let frame = match poll_frame_now(body.as_mut()) {
            Some(frame) => frame,
            None => {
                if !out.is_empty() {
                    if stream.write_all(out).await.is_err() {
                        return false;
                    }
                    out.clear();
                }
                poll_fn(|cx| body.as_mut().poll_frame(cx)).await
            }
        };
        let data = match frame {
            // The body's end.
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers: not sent (see the module's documentation).
                Err(_) => continue,
            },
            Some(Err(e)) => {
                tracing::debug!(error = %e, "an answer's body failed; the connection is closed");
                let _ = stream.write_all(out).await;
                return false;
            }
        };
        if data.is_empty() {
            continue;
        }
        match &mut left {
            Some(left) => {
                let n = data.len() as u64;
                if n > *left {
                    tracing::warn!("an answer's body is longer than its Content-Length");
                    let _ = stream.write_all(out).await;
                    return false;
                }
                *left -= n;
                out.extend_from_slice(&data);
            }
            None => {
                // Into the buffer directly: no string made per chunk.
                let _ = write!(out, "{:X}\r\n", data.len());
                out.extend_from_slice(&data);
                out.extend_from_slice(b"\r\n");
            }
        }
        if out.len() >= GATHER {
            if stream.write_all(out).await.is_err() {
                return false;
            }
            out.clear();
        }
    }
    let whole = match left {
        Some(left) => left == 0,
        None => {
            out.extend_from_slice(b"0\r\n\r\n");
            true
        }
    };
    if !whole {
        tracing::debug!(
            "an answer's body ended before its Content-Length; the connection is closed"
        );
    }
    stream.write_all(out).await.is_ok() && whole
}

/// The body's next frame if it is ready now, without waiting.
fn poll_frame_now(
    body: Pin<&mut Body>,
) -> Option<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match body.poll_frame(&mut cx) {
        std::task::Poll::Ready(frame) => Some(frame),
        std::task::Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(
        status: u16,
        head: bool,
        pairs: &[(&str, &str)],
        length: Option<Option<u64>>,
    ) -> (String, Option<Framing>, bool) {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        let status = StatusCode::from_u16(status).expect("status");
        let mut out = Vec::new();
        status_line(&mut out, status, None);
        let (framing, last) = headers(&mut out, None, &map, Head { head, status }, length);
        (String::from_utf8(out).expect("text"), framing, last)
    }

    #[test]
    fn a_known_length_is_written_where_the_header_was_or_at_the_end() {
        let (text, framing, _) = head_of(
            200,
            false,
            &[("content-length", "5"), ("x-a", "1"), ("date", "D")],
            Some(Some(5)),
        );
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\ndate: D\r\n\r\n"
        );
        assert_eq!(framing, Some(Framing::Length(5)));
        let (text, _, _) = head_of(201, false, &[("date", "D")], Some(Some(3)));
        assert_eq!(
            text,
            "HTTP/1.1 201 Created\r\ndate: D\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn an_unknown_length_is_chunked_and_an_empty_body_says_zero() {
        let (text, framing, _) = head_of(200, false, &[("date", "D")], Some(None));
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ndate: D\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(framing, Some(Framing::Chunked));
        let (text, _, _) = head_of(200, false, &[("content-length", "0"), ("date", "D")], None);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ndate: D\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn head_204_and_304_answers_have_no_body_framing_of_their_own() {
        let (text, _, _) = head_of(200, true, &[("content-length", "10"), ("date", "D")], None);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\ndate: D\r\n\r\n"
        );
        let (text, _, _) = head_of(200, true, &[("date", "D")], None);
        assert_eq!(text, "HTTP/1.1 200 OK\r\ndate: D\r\n\r\n");
        let (text, _, _) = head_of(204, false, &[("date", "D")], None);
        assert_eq!(text, "HTTP/1.1 204 No Content\r\ndate: D\r\n\r\n");
        let (text, _, _) = head_of(304, false, &[("content-length", "4"), ("date", "D")], None);
        assert_eq!(text, "HTTP/1.1 304 Not Modified\r\ndate: D\r\n\r\n");
    }

    #[test]
    fn connection_values_share_one_line_and_close_ends_the_connection() {
        let mut headers = HeaderMap::new();
        headers.insert(header::DATE, HeaderValue::from_static("D"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("x-a"));
        say_close(&mut headers);
        let mut out = Vec::new();
        let (_, last) = super::headers(
            &mut out,
            None,
            &headers,
            Head {
                head: false,
                status: StatusCode::OK,
            },
            None,
        );
        assert_eq!(
            String::from_utf8(out).expect("text"),
            "date: D\r\nconnection: x-a, close\r\ncontent-length: 0\r\n\r\n"
        );
        assert!(last);
    }

    #[test]
    fn a_date_is_added_when_the_answer_has_none() {
        let (text, _, _) = head_of(200, false, &[], None);
        let date = text
            .lines()
            .find_map(|l| l.strip_prefix("date: "))
            .expect("date");
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }

    #[test]
    fn reasons_are_the_upstreams_or_the_standard_ones() {
        let mut out = Vec::new();
        let reason = hyper::ext::ReasonPhrase::from_static(b"Custom Reason");
        status_line(&mut out, StatusCode::OK, Some(&reason));
        status_line(&mut out, StatusCode::from_u16(299).expect("status"), None);
        assert_eq!(
            out,
            b"HTTP/1.1 200 Custom Reason\r\nHTTP/1.1 299 <none>\r\n"
        );
    }

    /// An upstream's lines as the reader keeps them (`crate::headers::passed`).
    fn passed(pairs: &[(&str, &str)]) -> PassedLines {
        let text: String = pairs
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        let mut lines = PassedLines::new(bytes::Bytes::from(text), pairs.len());
        let mut at = 0;
        for (name, value) in pairs {
            let value_at = at + name.len() + 2;
            lines.push(at..at + name.len(), value_at..value_at + value.len());
            at = value_at + value.len() + 2;
        }
        lines
    }

    /// Lines written as read are written as the same lines in a map would be (their order
    /// is the map's when no name repeats), in every framing case; and what sfgate adds in the
    /// map comes after them, a name's values in the order they were added.
    #[test]
    fn lines_as_read_are_written_as_the_same_lines_in_a_map() {
        // Each with a `Date`, so that the writer adds none (two of its own could differ).
        let shapes: [&[(&str, &str)]; 4] = [
            &[("content-length", "5"), ("x-a", "1"), ("date", "D")],
            &[("x-a", "1"), ("date", "D"), ("content-length", "0")],
            &[
                ("server", "s"),
                ("content-length", "12, 12"),
                ("date", "D"),
                ("etag", "\"e\""),
            ],
            &[("date", "D"), ("x-a", "1"), ("set-cookie", "a=1")],
        ];
        for pairs in shapes {
            for status in [200, 204, 304, 404] {
                for head in [false, true] {
                    for length in [None, Some(None), Some(Some(5)), Some(Some(0))] {
                        let status = StatusCode::from_u16(status).expect("status");
                        let head = Head { head, status };
                        let lines = passed(pairs);
                        let mut as_lines = Vec::new();
                        let from_lines =
                            headers(&mut as_lines, Some(&lines), &HeaderMap::new(), head, length);
                        let mut as_map = Vec::new();
                        let from_map =
                            headers(&mut as_map, None, &lines.clone().into_map(), head, length);
                        let (as_lines, as_map) = (
                            String::from_utf8(as_lines).expect("text"),
                            String::from_utf8(as_map).expect("text"),
                        );
                        assert_eq!(
                            (&as_lines, from_lines),
                            (&as_map, from_map),
                            "{pairs:?}, {head:?}, {length:?}"
                        );
                    }
                }
            }
        }
        let lines = passed(&[("set-cookie", "a=1"), ("x-a", "1"), ("date", "D")]);
        let mut added = HeaderMap::new();
        added.insert("x-request-id", HeaderValue::from_static("r"));
        added.append(header::SET_COOKIE, HeaderValue::from_static("s=2"));
        let mut out = Vec::new();
        let head = Head {
            head: false,
            status: StatusCode::OK,
        };
        headers(&mut out, Some(&lines), &added, head, None);
        assert_eq!(
            String::from_utf8(out).expect("text"),
            "set-cookie: a=1\r\nx-a: 1\r\ndate: D\r\nx-request-id: r\r\nset-cookie: s=2\r\ncontent-length: 0\r\n\r\n"
        );
    }
}
