//! An upstream answer's header lines as the HTTP/1.1 fast path passes them on: kept as the
//! ranges of the head they were read from, not copied into a header map, because the fast
//! path's writer (`crate::server::fast_path`) only writes them out again. A map costs each
//! line a name lookup, a hashed insert and a drop, about two thousand instructions for a
//! usual answer (measured with callgrind, docs/benchmark.md), for lines nothing reads.
//!
//! What the lines promise, so that the writer may treat them as a map's entries would be:
//! - names are lowercase (the reader lowers them in place) and valid `HeaderName`s, values
//!   valid `HeaderValue`s (the parser admits no byte either refuses; tested below);
//! - hop-by-hop lines and the names `Connection` lists are not among them, nor a
//!   `Content-Length` beside `Transfer-Encoding` (the proxy's rules for what crosses,
//!   `crate::proxy::forward::passed_on`);
//! - a header map beside them holds only what sfgate adds to the answer after they were read,
//!   written after them: each name's values keep their order (which is all a map promises, as
//!   it groups a name's values but orders names by first insertion), provided nothing of
//!   sfgate's replaces or looks up a name the upstream sent. The one sfgate looks up in every
//!   answer, the request id, is why an answer carrying one gets a map instead
//!   ([`PassedLines::has_request_id`]).

use super::owned::X_REQUEST_ID;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use std::ops::Range;

/// What the writer of an answer must know of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// `Content-Length`: written (or not) by the writer's framing rules.
    ContentLength,
    /// `Date`: the writer adds none of its own then.
    Date,
    /// The request id sfgate otherwise adds.
    RequestId,
    /// Anything else, written as it is.
    Other,
}

impl LineKind {
    /// The kind of a passed-on (not hop-by-hop) lowercase name.
    fn of(name: &[u8]) -> Self {
        if name == header::CONTENT_LENGTH.as_str().as_bytes() {
            Self::ContentLength
        } else if name == header::DATE.as_str().as_bytes() {
            Self::Date
        } else if name == X_REQUEST_ID.as_str().as_bytes() {
            Self::RequestId
        } else {
            Self::Other
        }
    }
}

#[derive(Debug, Clone)]
struct Line {
    name: Range<usize>,
    value: Range<usize>,
    kind: LineKind,
}

/// The passed-on header lines of one answer head (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct PassedLines {
    head: Bytes,
    lines: Vec<Line>,
}

/// The longest header name `HeaderName` takes; the reader refuses longer ones as hyper's
/// client does (it cannot make a name of them).
pub(crate) const MAX_NAME: usize = (1 << 16) - 1;

impl PassedLines {
    /// No lines yet, of the answer head `head`, with room for `lines`.
    pub(crate) fn new(head: Bytes, lines: usize) -> Self {
        Self {
            head,
            lines: Vec::with_capacity(lines),
        }
    }

    /// Adds a line: a lowercase name that is not hop-by-hop
    /// ([`super::owned::is_hop_by_hop_lowercase`]), and its value.
    pub(crate) fn push(&mut self, name: Range<usize>, value: Range<usize>) -> LineKind {
        let kind = LineKind::of(&self.head[name.clone()]);
        self.lines.push(Line { name, value, kind });
        kind
    }

    /// Removes the lines with this name (a name a `Connection` line lists).
    pub(crate) fn remove(&mut self, name: &HeaderName) {
        let head = &self.head;
        self.lines
            .retain(|line| &head[line.name.clone()] != name.as_str().as_bytes());
    }

    /// Removes the `Content-Length` lines (beside `Transfer-Encoding`, they are not the
    /// body's length as passed on).
    pub(crate) fn remove_content_length(&mut self) {
        self.lines
            .retain(|line| line.kind != LineKind::ContentLength);
    }

    /// Each line's lowercase name, value and kind, in the order read.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], LineKind)> {
        self.lines.iter().map(|line| {
            (
                &self.head[line.name.clone()],
                &self.head[line.value.clone()],
                line.kind,
            )
        })
    }

    pub(crate) fn has(&self, kind: LineKind) -> bool {
        self.lines.iter().any(|line| line.kind == kind)
    }

    /// Whether the upstream sent a request id of its own: such an answer is passed on as a
    /// map, which sfgate's request-id layer reads (see the module documentation).
    pub(crate) fn has_request_id(&self) -> bool {
        self.has(LineKind::RequestId)
    }

    /// The bytes the lines take written out (`name: value\r\n` each).
    pub(crate) fn written_len(&self) -> usize {
        self.lines
            .iter()
            .map(|line| line.name.len() + line.value.len() + 4)
            .sum()
    }

    /// The lines as a header map (values share the head's bytes).
    pub(crate) fn into_map(self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.lines.len() + 1);
        for line in &self.lines {
            // Both hold by the reader's checks (names and values as the parser admits them,
            // names no longer than `MAX_NAME`); a line that somehow did not would be dropped
            // rather than passed on malformed.
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&self.head[line.name.clone()]),
                HeaderValue::from_maybe_shared(self.head.slice(line.value.clone())),
            ) else {
                continue;
            };
            map.append(name, value);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader hands httparse's names and values on without checking them again: so every
    /// byte httparse admits in a name must be one `HeaderName` takes, and likewise for values
    /// and `HeaderValue`. Checked byte by byte, so that a change in either crate shows here.
    #[test]
    fn every_byte_the_parser_admits_in_a_header_line_the_map_types_take() {
        for b in 0..=255u8 {
            let mut name = b"HTTP/1.1 200 OK\r\nx-".to_vec();
            name.extend_from_slice(&[b, b'a', b':', b' ', b'v', b'\r', b'\n', b'\r', b'\n']);
            let mut lines = [httparse::EMPTY_HEADER; 4];
            let mut answer = httparse::Response::new(&mut lines);
            if let Ok(httparse::Status::Complete(_)) = answer.parse(&name) {
                let parsed = answer.headers[0].name.as_bytes();
                assert!(
                    HeaderName::from_bytes(parsed).is_ok(),
                    "name byte {b:#04x} admitted by the parser, refused by HeaderName"
                );
            }
            let mut value = b"HTTP/1.1 200 OK\r\nx-a: v".to_vec();
            value.extend_from_slice(&[b, b'w', b'\r', b'\n', b'\r', b'\n']);
            let mut lines = [httparse::EMPTY_HEADER; 4];
            let mut answer = httparse::Response::new(&mut lines);
            if let Ok(httparse::Status::Complete(_)) = answer.parse(&value) {
                assert!(
                    HeaderValue::from_bytes(answer.headers[0].value).is_ok(),
                    "value byte {b:#04x} admitted by the parser, refused by HeaderValue"
                );
            }
        }
    }

    #[test]
    fn lines_keep_their_order_and_kinds_and_lose_what_is_removed() {
        let head = Bytes::from_static(
            b"content-length: 5\r\nx-a: 1\r\ndate: D\r\nx-b: 2\r\nx-a: 3\r\nx-request-id: r\r\n",
        );
        let mut lines = PassedLines::new(head.clone(), 6);
        let mut at = 0;
        for line in head.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let colon = line.iter().position(|&b| b == b':').expect("colon");
            let name = at..at + colon;
            let value = at + colon + 2..at + line.len() - 1;
            lines.push(name, value);
            at += line.len() + 1;
        }
        assert!(lines.has(LineKind::Date));
        assert!(lines.has_request_id());
        let kinds: Vec<_> = lines.iter().map(|(_, _, kind)| kind).collect();
        assert_eq!(
            kinds,
            [
                LineKind::ContentLength,
                LineKind::Other,
                LineKind::Date,
                LineKind::Other,
                LineKind::Other,
                LineKind::RequestId
            ]
        );
        // Each line as the head spells it: `name: value\r\n`.
        assert_eq!(lines.written_len(), head.len());
        lines.remove(&HeaderName::from_static("x-a"));
        lines.remove_content_length();
        let left: Vec<_> = lines
            .iter()
            .map(|(name, value, _)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(value)
                )
            })
            .collect();
        assert_eq!(left, ["date=D", "x-b=2", "x-request-id=r"]);
        let map = lines.into_map();
        assert_eq!(map.len(), 3);
        assert_eq!(map["x-b"], "2");
    }
}
