//! Reading a request head on the fast path, and the rule for which requests it takes.
//!
//! The rule is one of shape only, decided before anything of the request is acted on: a
//! request the fast path does not take is handed, with every byte it read, to the general
//! server, which then sees the connection exactly as the client sent it. So only what the
//! fast path's code is sure to read exactly as hyper reads it is taken:
//!
//! - HTTP/1.1, `GET` or `HEAD`, an origin-form target (`/…`);
//! - no request body and nothing that could announce one: no `Content-Length` and no
//!   `Transfer-Encoding` header (so no framing can be read two ways), no `Expect`;
//! - no protocol change: no `Upgrade` (WebSockets are the general server's, which tunnels
//!   them), no `TE` (which would let trailers through);
//! - a head httparse reads whole within [`MAX_HEAD`] and [`MAX_HEADERS`] lines, with names and
//!   values the `http` crate accepts. A head it cannot read goes to hyper, which answers
//!   malformed requests with its own 400, 414 or 431 as before.
//!
//! The request is then built as hyper builds it (method, the target parsed by the `http`
//! crate, version, one header entry per line, lowercased names, values sliced from the read
//! bytes) so that the proxy and the middleware cannot tell the two paths apart.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use bytes::{Bytes, BytesMut};
use std::mem::MaybeUninit;

/// The largest head the fast path reads; a longer one goes to the general server, which
/// allows more (and sfgate's header limit answers 431 past 32 KiB either way).
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// Header lines the fast path reads; hyper's own limit is 100, and a head with more goes to
/// hyper, which answers it.
const MAX_HEADERS: usize = 100;

/// What the bytes read so far hold.
#[expect(
    clippy::large_enum_variant,
    reason = "one per request, moved once; boxing the request would allocate for every request"
)]
pub(super) enum Read {
    /// A request the fast path takes; its head was split off the bytes read.
    Taken(Taken),
    /// Not a whole head yet.
    Partial,
    /// A head (or bytes) the general server must read, and why.
    NotOurs(Why),
}

/// Why a request went to the general server: the label of
/// `sfgate_fast_path_hand_overs_total`, so that an operator sees what keeps connections off
/// the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// Not a head httparse reads whole within the limits, or a name, value or target the
    /// `http` crate refuses: hyper answers it (400, 414, 431).
    Head,
    /// HTTP/1.0, or a version hyper reads as another protocol (the HTTP/2 preface).
    Version,
    /// A method other than `GET` and `HEAD`.
    Method,
    /// Not an origin-form target (`*`, absolute form).
    Target,
    /// `Content-Length`, `Transfer-Encoding` or `Expect`: a body, or one announced.
    Body,
    /// `Upgrade` or `TE`: a protocol change, or trailers asked for.
    Upgrade,
}

impl Why {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::Version => "version",
            Self::Method => "method",
            Self::Target => "target",
            Self::Body => "body",
            Self::Upgrade => "upgrade",
        }
    }
}

/// A request the fast path answers.
pub(super) struct Taken {
    pub(super) request: Request<Body>,
    /// The client asked to close the connection after this answer.
    pub(super) close: bool,
}

/// Where each header line's name and value lie in the head.
type Lines = Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>;

/// Reads one request head from the front of `input` and decides whether the fast path takes
/// it ([the rule](self)). `lines` is scratch space kept between requests.
pub(super) fn read(input: &mut BytesMut, lines: &mut Lines) -> Read {
    // Not initialised first: 100 empty lines are 3 KiB to fill per request.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let config = httparse::ParserConfig::default();
    let used = match config.parse_request_with_uninit_headers(&mut parsed, input, &mut headers) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) if input.len() < MAX_HEAD => return Read::Partial,
        Ok(httparse::Status::Partial) => return Read::NotOurs(Why::Head),
        Err(httparse::Error::Version) => return Read::NotOurs(Why::Version),
        Err(_) => return Read::NotOurs(Why::Head),
    };
    if parsed.version != Some(1) {
        return Read::NotOurs(Why::Version);
    }
    let method = match parsed.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Read::NotOurs(Why::Method),
    };
    let Some(target) = parsed.path else {
        return Read::NotOurs(Why::Head);
    };
    if !target.starts_with('/') {
        return Read::NotOurs(Why::Target);
    }
    // Where a part httparse returned lies in `input` (it returns slices of it); `None` for
    // one that does not, which httparse never returns, so that the head is then hyper's
    // rather than a panic.
    let start = input.as_ptr() as usize;
    let end = start + used;
    let within = |part: &[u8]| {
        let from = part.as_ptr() as usize;
        let to = from.checked_add(part.len())?;
        (from >= start && to <= end).then(|| from - start..to - start)
    };
    let Some(target) = within(target.as_bytes()) else {
        return Read::NotOurs(Why::Head);
    };
    let mut close = false;
    lines.clear();
    for header in parsed.headers.iter() {
        let name = header.name.as_bytes();
        let refused = |names: &[&str]| {
            names
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        };
        if refused(&["content-length", "transfer-encoding", "expect"]) {
            return Read::NotOurs(Why::Body);
        }
        if refused(&["upgrade", "te"]) {
            return Read::NotOurs(Why::Upgrade);
        }
        if name.eq_ignore_ascii_case(b"connection") && has_token(header.value, b"close") {
            close = true;
        }
        let (Some(name), Some(value)) = (within(name), within(header.value)) else {
            return Read::NotOurs(Why::Head);
        };
        lines.push((name, value));
    }
    let head = input.split_to(used).freeze();
    if let Some(request) = build(&head, method, target, lines) {
        return Read::Taken(Taken { request, close });
    }
    // Nothing was acted on: the head goes back in front of what follows it.
    let rest = std::mem::replace(input, BytesMut::from(&head[..]));
    input.extend_from_slice(&rest);
    Read::NotOurs(Why::Head)
}

/// The request as hyper would build it from the same head, or `None` where hyper would refuse
/// a part (it then answers it itself).
fn build(
    head: &Bytes,
    method: Method,
    target: std::ops::Range<usize>,
    lines: &Lines,
) -> Option<Request<Body>> {
    let uri = Uri::from_maybe_shared(head.slice(target)).ok()?;
    // Room for the one header sfgate adds to every request (its id, `request_id::ensure`):
    // a map built full would be regrown, every entry rehashed, on every request.
    let mut headers = HeaderMap::with_capacity(lines.len() + 1);
    for (name, value) in lines {
        let name = HeaderName::from_bytes(&head[name.clone()]).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(value.clone())).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

/// Whether the comma-separated `value` lists `token` (any case).
pub(super) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_bytes(bytes: &[u8]) -> (Read, BytesMut) {
        let mut input = BytesMut::from(bytes);
        let read = read(&mut input, &mut Vec::new());
        (read, input)
    }

    #[test]
    fn a_plain_get_is_taken_and_built_as_hyper_builds_it() {
        let raw =
            b"GET /a/b?x=1 HTTP/1.1\r\nHost: gw\r\nX-Custom: one\r\nx-custom: two\r\n\r\nNEXT";
        let (Read::Taken(taken), rest) = read_bytes(raw) else {
            panic!("not taken");
        };
        assert_eq!(&rest[..], b"NEXT");
        let request = taken.request;
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), "/a/b");
        assert_eq!(request.uri().query(), Some("x=1"));
        assert_eq!(request.version(), Version::HTTP_11);
        let custom: Vec<_> = request.headers().get_all("x-custom").iter().collect();
        assert_eq!(custom, ["one", "two"]);
        assert!(!taken.close);
    }

    #[test]
    fn empty_and_blank_values_are_read_as_hyper_reads_them() {
        let (Read::Taken(taken), rest) =
            read_bytes(b"GET / HTTP/1.1\r\nX-Empty:\r\nX-Blank:   \r\nX-Last: v\r\n\r\n")
        else {
            panic!("not taken");
        };
        assert!(rest.is_empty());
        let headers = taken.request.headers();
        assert_eq!(headers.get("x-empty").map(|v| v.as_bytes()), Some(&b""[..]));
        assert_eq!(headers.get("x-blank").map(|v| v.as_bytes()), Some(&b""[..]));
        assert_eq!(headers.get("x-last").map(|v| v.as_bytes()), Some(&b"v"[..]));
    }

    #[test]
    fn connection_close_is_noticed() {
        let (Read::Taken(taken), _) =
            read_bytes(b"HEAD / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n")
        else {
            panic!("not taken");
        };
        assert!(taken.close);
    }

    #[test]
    fn an_incomplete_head_waits_for_more() {
        assert!(matches!(
            read_bytes(b"GET / HTTP/1.1\r\nHost: gw\r\n").0,
            Read::Partial
        ));
    }

    /// Every request outside the rule is left whole for the general server.
    #[test]
    fn requests_outside_the_rule_are_left_as_they_came() {
        let refused: &[(&[u8], Why)] = &[
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
                Why::Method,
            ),
            (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", Why::Body),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                Why::Body,
            ),
            (b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", Why::Body),
            (
                b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                Why::Upgrade,
            ),
            (b"GET / HTTP/1.1\r\nTE: trailers\r\n\r\n", Why::Upgrade),
            (b"GET / HTTP/1.0\r\n\r\n", Why::Version),
            (b"GET http://gw/ HTTP/1.1\r\n\r\n", Why::Target),
            (b"OPTIONS * HTTP/1.1\r\n\r\n", Why::Method),
            (b"DELETE /x HTTP/1.1\r\n\r\n", Why::Method),
            (b"get / HTTP/1.1\r\n\r\n", Why::Method),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Why::Version),
            (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", Why::Head),
            (b"GET /\x7f HTTP/1.1\r\n\r\n", Why::Head),
            (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", Why::Head),
        ];
        for (raw, why) in refused {
            let (read, rest) = read_bytes(raw);
            assert!(
                matches!(read, Read::NotOurs(w) if w == *why),
                "{}",
                String::from_utf8_lossy(raw)
            );
            assert_eq!(&rest[..], *raw, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn a_head_too_large_or_with_too_many_lines_is_left_for_the_general_server() {
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert!(matches!(read_bytes(&long).0, Read::NotOurs(Why::Head)));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let (read, rest) = read_bytes(&many);
        assert!(matches!(read, Read::NotOurs(Why::Head)));
        assert_eq!(rest.len(), many.len());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Header lines of every kind the rule judges, in odd spellings and framings.
        fn line() -> impl Strategy<Value = Vec<u8>> {
            let names = prop::sample::select(vec![
                "Host",
                "X-A",
                "content-length",
                "Content-Length",
                "CONTENT-LENGTH ",
                "Transfer-Encoding",
                "transfer-encoding",
                "Expect",
                "Upgrade",
                "TE",
                "Te",
                "Connection",
                "X_Salesforce_User_Id",
                "Authorization",
                "Cookie",
                "",
            ]);
            let values = prop::sample::select(vec![
                "",
                "0",
                "5",
                "chunked",
                "gzip, chunked",
                "close",
                "keep-alive, close",
                "websocket",
                "100-continue",
                "trailers",
                "a b",
                "\t",
                "x\ry",
                "\u{7f}",
                "é",
            ]);
            let ends = prop::sample::select(vec!["\r\n", "\n", "\r", ""]);
            (
                names,
                prop::sample::select(vec![":", ": ", " :", ""]),
                values,
                ends,
            )
                .prop_map(|(n, sep, v, end)| format!("{n}{sep}{v}{end}").into_bytes())
        }

        fn head() -> impl Strategy<Value = Vec<u8>> {
            let methods = prop::sample::select(vec!["GET", "HEAD", "POST", "get", "PRI", ""]);
            let targets = prop::sample::select(vec![
                "/",
                "/a?b=1",
                "/oauth2/start",
                "*",
                "http://x/",
                "/a b",
                "/%2F",
                "/#f",
                "",
            ]);
            let versions =
                prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "http/1.1"]);
            (
                methods,
                targets,
                versions,
                prop::collection::vec(line(), 0..6),
                prop::sample::select(vec!["\r\n", "\n", ""]),
                prop::collection::vec(any::<u8>(), 0..8),
            )
                .prop_map(|(m, t, v, lines, end, after)| {
                    let mut raw = format!("{m} {t} {v}\r\n").into_bytes();
                    for line in lines {
                        raw.extend_from_slice(&line);
                    }
                    raw.extend_from_slice(end.as_bytes());
                    raw.extend_from_slice(&after);
                    raw
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// Whatever the bytes: no panic; what is not taken is left exactly as it came (the
            /// general server reads it from the start); what is taken is a bodiless GET or HEAD
            /// with none of the refused headers, cut at the end of its head as httparse reads it.
            #[test]
            fn a_request_is_taken_whole_and_refused_untouched(
                raw in prop_oneof![head(), prop::collection::vec(any::<u8>(), 0..64)]
            ) {
                let (read, rest) = read_bytes(&raw);
                match read {
                    Read::Partial | Read::NotOurs(_) => prop_assert_eq!(&rest[..], &raw[..]),
                    Read::Taken(taken) => {
                        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                        let mut parsed = httparse::Request::new(&mut headers);
                        let used = match parsed.parse(&raw) {
                            Ok(httparse::Status::Complete(used)) => used,
                            other => return Err(TestCaseError::fail(format!("taken but {other:?}"))),
                        };
                        prop_assert_eq!(&rest[..], &raw[used..]);
                        let request = taken.request;
                        prop_assert!(request.method() == Method::GET || request.method() == Method::HEAD);
                        prop_assert!(request.uri().path().starts_with('/'));
                        for refused in ["content-length", "transfer-encoding", "expect", "upgrade", "te"] {
                            prop_assert!(!request.headers().contains_key(refused), "{}", refused);
                        }
                    }
                }
            }
        }
    }
}
