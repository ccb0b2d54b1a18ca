use super::*;
use proptest::prelude::*;

fn read(bytes: &[u8], method: Method) -> (Result<Option<AnswerHead>, BadHead>, BytesMut) {
    let mut input = BytesMut::from(bytes);
    let read = read_answer(&mut input, &method);
    (read, input)
}

fn head(bytes: &str) -> AnswerHead {
    match read(bytes.as_bytes(), Method::GET) {
        (Ok(Some(head)), _) => head,
        (other, _) => panic!("{bytes:?}: {other:?}"),
    }
}

fn framing_of(bytes: &str) -> Result<Framing, BadHead> {
    match read(bytes.as_bytes(), Method::GET).0 {
        Ok(Some(head)) => Ok(head.framing),
        Ok(None) => panic!("{bytes:?}: partial"),
        Err(e) => Err(e),
    }
}

#[test]
fn the_request_head_is_written_as_hyper_writes_it() {
    let mut headers = HeaderMap::new();
    headers.insert("x-one", HeaderValue::from_static("1"));
    headers.append("x-two", HeaderValue::from_static("a"));
    headers.append("x-two", HeaderValue::from_static("b"));
    let host = HeaderValue::from_static("app.internal:8080");
    let out = write_request(&Method::GET, "/a?b=c", &headers, &host);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "GET /a?b=c HTTP/1.1\r\nx-one: 1\r\nx-two: a\r\nx-two: b\r\nhost: app.internal:8080\r\n\r\n"
    );
    headers.insert(header::HOST, HeaderValue::from_static("public.example"));
    let out = write_request(&Method::HEAD, "/", &headers, &host);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "HEAD / HTTP/1.1\r\nx-one: 1\r\nx-two: a\r\nx-two: b\r\nhost: public.example\r\n\r\n"
    );
}

#[test]
fn an_answer_head_is_split_off_with_what_follows_it_left() {
    let (answer, rest) = read(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhel",
        Method::GET,
    );
    let answer = answer.expect("valid").expect("whole");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.version, Version::HTTP_11);
    assert_eq!(answer.framing, Framing::Length(5));
    assert!(answer.keep_alive);
    assert!(answer.reason.is_none(), "the usual reason is not kept");
    let lines: Vec<_> = answer
        .headers
        .iter()
        .map(|(name, value, _)| (name.to_vec(), value.to_vec()))
        .collect();
    // Names lowercase, in the order read.
    assert_eq!(
        lines,
        [
            (b"content-length".to_vec(), b"5".to_vec()),
            (b"x-a".to_vec(), b"1".to_vec()),
            (b"x-a".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(&rest[..], b"hel");
}

#[test]
fn a_partial_head_is_left_whole_until_it_is_complete() {
    let full = b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n";
    for cut in 0..full.len() {
        let (answer, rest) = read(&full[..cut], Method::GET);
        assert!(matches!(answer, Ok(None)), "cut at {cut}: {answer:?}");
        assert_eq!(&rest[..], &full[..cut], "cut at {cut}");
    }
}

#[test]
fn informational_answers_are_skipped_and_an_unasked_switch_is_an_answer() {
    let (answer, rest) = read(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        Method::GET,
    );
    let answer = answer.expect("valid").expect("whole");
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.headers.into_map().contains_key("link"));
    assert!(rest.is_empty());
    // Only an informational answer so far: consumed, and nothing yet.
    let (answer, rest) = read(b"HTTP/1.1 100 Continue\r\n\r\n", Method::GET);
    assert!(matches!(answer, Ok(None)));
    assert!(rest.is_empty());
    // 101 is passed up (the proxy refuses it), and the connection is not kept.
    let switched = head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(switched.status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(switched.framing, Framing::Empty);
    assert!(!switched.keep_alive);
}

#[test]
fn a_reason_is_kept_only_when_it_is_not_the_usual_one() {
    let reason = |line: &str| {
        head(&format!("{line}\r\nContent-Length: 0\r\n\r\n"))
            .reason
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
    };
    assert_eq!(reason("HTTP/1.1 404 Not Found"), None);
    assert_eq!(
        reason("HTTP/1.1 404 Gone Fishing").as_deref(),
        Some("Gone Fishing")
    );
    assert_eq!(reason("HTTP/1.1 200 ").as_deref(), Some(""));
    assert_eq!(reason("HTTP/1.1 299 Custom").as_deref(), Some("Custom"));
}

#[test]
fn keep_alive_follows_the_version_and_every_connection_line() {
    let keep = |head_text: &str| head(head_text).keep_alive;
    assert!(keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(!keep(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!keep(
        "HTTP/1.1 200 OK\r\nConnection: x-a, Close\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!keep("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(keep(
        "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
    ));
}

#[test]
fn the_body_length_is_decided_as_rfc_9112_and_hyper_decide_it() {
    let ok = |text: &str| framing_of(&format!("{text}\r\n\r\n"));
    use Framing::*;
    for (answer, expected) in [
        ("HTTP/1.1 200 OK\r\nContent-Length: 5", Ok(Length(5))),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5, 5", Ok(Length(5))),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5",
            Ok(Length(5)),
        ),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0", Ok(Empty)),
        ("HTTP/1.1 200 OK", Ok(UntilClose)),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", Ok(Chunked)),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
            Ok(Chunked),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked",
            Ok(Chunked),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
            Ok(Chunked),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip",
            Ok(UntilClose),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity",
            Ok(UntilClose),
        ),
        ("HTTP/1.1 204 No Content\r\nContent-Length: 5", Ok(Empty)),
        (
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked",
            Ok(Empty),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6",
            Err(BadHead::ContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
            Err(BadHead::ContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: abc",
            Err(BadHead::ContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: +5",
            Err(BadHead::ContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: ",
            Err(BadHead::ContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999",
            Err(BadHead::ContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615",
            Err(BadHead::ContentLength),
        ),
        (
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked",
            Err(BadHead::TransferEncodingOnHttp10),
        ),
    ] {
        assert_eq!(ok(answer), expected, "{answer:?}");
    }
    // A HEAD request's answer has no body, whatever its head says.
    let (answer, _) = read(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        Method::HEAD,
    );
    assert_eq!(
        answer.expect("valid").expect("whole").framing,
        Framing::Empty
    );
}

#[test]
fn heads_hyper_refuses_are_refused() {
    for bad in [
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTX/1.1 200 OK\r\n\r\n",
        "200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
    ] {
        assert!(
            matches!(read(bad.as_bytes(), Method::GET).0, Err(BadHead::Parse(_))),
            "{bad:?}"
        );
    }
    let many: String = (0..101).map(|i| format!("X-{i}: 1\r\n")).collect();
    let answer = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
    assert_eq!(
        read(answer.as_bytes(), Method::GET).0.err(),
        Some(BadHead::Parse(httparse::Error::TooManyHeaders))
    );
    let long = format!("HTTP/1.1 200 OK\r\nX-A: {}", "a".repeat(MAX_HEAD));
    assert_eq!(
        read(long.as_bytes(), Method::GET).0.err(),
        Some(BadHead::TooLarge)
    );
    // A name longer than a header name may be (hyper's client cannot make one of it); one
    // byte shorter is a name.
    for (length, refused) in [(MAX_NAME + 1, true), (MAX_NAME, false)] {
        let answer = format!(
            "HTTP/1.1 200 OK\r\n{}: 1\r\nContent-Length: 0\r\n\r\n",
            "n".repeat(length)
        );
        let read = read(answer.as_bytes(), Method::GET).0;
        assert_eq!(read.is_err(), refused, "{length}: {read:?}");
    }
}

proptest! {
    /// However the answer arrives in pieces, the head read is the one read from it whole,
    /// and the bytes after it are left as they came.
    #[test]
    fn an_answer_read_in_pieces_is_read_as_whole(
        cuts in proptest::collection::vec(0usize..200, 0..6),
        informational in any::<bool>(),
        body in "[a-z]{0,20}",
    ) {
        let mut answer = String::new();
        if informational {
            answer.push_str("HTTP/1.1 100 Continue\r\n\r\n");
        }
        answer.push_str(&format!(
            "HTTP/1.1 299 Odd\r\nX-A: 1\r\nContent-Length: {}\r\nX-B: two words\r\n\r\n{body}",
            body.len()
        ));
        let bytes = answer.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let mut input = BytesMut::new();
        let mut from = 0;
        let mut found = None;
        for cut in cuts {
            input.extend_from_slice(&bytes[from..cut]);
            from = cut;
            if found.is_none() {
                found = read_answer(&mut input, &Method::GET).expect("valid");
            }
        }
        let found = found.expect("the whole answer holds a head");
        prop_assert_eq!(found.status.as_u16(), 299);
        let framing = match body.len() {
            0 => Framing::Empty,
            n => Framing::Length(n as u64),
        };
        prop_assert_eq!(found.framing, framing);
        let map = found.headers.into_map();
        prop_assert_eq!(map.get("x-b").map(|v| v.as_bytes()), Some(&b"two words"[..]));
        prop_assert_eq!(&input[..], body.as_bytes());
    }
}

#[test]
fn after_an_http_1_0_answer_the_request_is_written_as_hyper_writes_it_then() {
    let mut headers = HeaderMap::new();
    headers.insert("x-one", HeaderValue::from_static("1"));
    let request = write_request(
        &Method::GET,
        "/a",
        &headers,
        &HeaderValue::from_static("app"),
    );
    assert_eq!(
        String::from_utf8_lossy(&as_http10(&request)),
        "GET /a HTTP/1.0\r\nx-one: 1\r\nhost: app\r\nconnection: keep-alive\r\n\r\n"
    );
}

/// The request head sfgate's client writes is, byte for byte, the one hyper's client writes
/// for the rewritten header map: for any mix of client headers (every class the rule knows,
/// repeated, listed in `Connection`), trusted proxy or not, with or without a caller, its
/// assertion and its passed-on token.
mod rewritten_head_property {
    use super::*;
    use crate::domain::InstancePolicy;
    use crate::headers::owned::{X_FORWARDED_USER, X_SALESFORCE_USER_ID};
    use crate::headers::rewrite::tests::one_pass_property::{NAMES, VALUES};
    use crate::headers::rewrite::{rewrite_request, upstream_request_headers, Forwarded, Outgoing};
    use crate::headers::UnderscoreHeaders;
    use secrecy::SecretString;
    use std::net::SocketAddr;

    proptest! {
        #[test]
        fn lines_written_equal_the_map_written(
            pairs in proptest::collection::vec((0..NAMES.len(), 0..VALUES.len()), 0..16),
            trust_proxy: bool,
            keep_underscores: bool,
            caller: bool,
            pass_token: bool,
            v6: bool,
            head_request: bool,
        ) {
            let mut sent = HeaderMap::new();
            for (n, v) in &pairs {
                sent.append(
                    HeaderName::from_static(NAMES[*n]),
                    HeaderValue::from_static(VALUES[*v]),
                );
            }
            let client: SocketAddr = if v6 { "[2001:db8::7]:5555" } else { "10.0.0.7:5555" }
                .parse()
                .expect("address");
            let mut identity = HeaderMap::new();
            identity.insert(X_SALESFORCE_USER_ID, HeaderValue::from_static("005xx0000012345"));
            identity.insert(X_FORWARDED_USER, HeaderValue::from_static("005xx0000012345"));
            let assertion = HeaderValue::from_static("signed.assertion.value");
            let token = SecretString::from("00Dxx!token".to_string());
            let instance = InstancePolicy::default()
                .check("https://acme.my.salesforce.com")
                .expect("instance");
            let outgoing = Outgoing {
                forwarded: Forwarded {
                    client: Some(client),
                    host: Some("authority.example"),
                    trust_proxy,
                },
                underscores: if keep_underscores {
                    UnderscoreHeaders::Keep
                } else {
                    UnderscoreHeaders::Drop
                },
                drop_method_overrides: !caller,
                identity: caller.then_some(&identity),
                assertion: caller.then_some(&assertion),
                access_token: (caller && pass_token).then_some((&token, &instance)),
            };
            let method = if head_request { Method::HEAD } else { Method::GET };
            let host = HeaderValue::from_static("app.internal:8080");
            let map = upstream_request_headers(&sent, &outgoing);
            let expected = write_request(&method, "/t?q=1", &map, &host);
            let mut head = RequestHead::new(&method, "/t?q=1", sent.len());
            rewrite_request(&sent, &outgoing, &mut head);
            let written = head.finish(&host);
            prop_assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&expected)
            );
        }
    }
}

/// The answer's headers as read are, for any mix of hop-by-hop lines, `Connection` lists,
/// lengths, codings and cookies, what the proxy passes on of hyper's answers: the whole head read into
/// a map, then the proxy's rules for what crosses (`crate::proxy::forward::passed_on`).
mod passed_on_property {
    use super::*;
    use crate::proxy::forward::passed_on;
    use std::collections::BTreeMap;

    /// Each name's values in their order: all a header map promises of order.
    fn by_name(headers: &HeaderMap) -> BTreeMap<String, Vec<Vec<u8>>> {
        headers
            .keys()
            .map(|name| {
                let values = headers.get_all(name).iter().map(|v| v.as_bytes().to_vec());
                (name.to_string(), values.collect())
            })
            .collect()
    }

    /// The same of lines read, which must also be valid names and values, lowercase.
    fn by_name_of_lines(lines: &PassedLines) -> BTreeMap<String, Vec<Vec<u8>>> {
        let mut named: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for (name, value, _) in lines.iter() {
            let name = HeaderName::from_bytes(name).expect("a valid name");
            assert_eq!(
                name.as_str().as_bytes(),
                name.as_str().to_ascii_lowercase().as_bytes()
            );
            HeaderValue::from_bytes(value).expect("a valid value");
            named
                .entry(name.to_string())
                .or_default()
                .push(value.to_vec());
        }
        named
    }

    const NAMES: [&str; 20] = [
        "connection",
        "Connection",
        "keep-alive",
        "transfer-encoding",
        "Transfer-Encoding",
        "content-length",
        "Content-Length",
        "date",
        "x-request-id",
        "Proxy-Foo",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "x-a",
        "X-B",
        "content-type",
        "set-cookie",
    ];
    const VALUES: [&str; 17] = [
        "5,\t5",
        "close",
        "keep-alive",
        "Keep-Alive, X-A",
        "x-b , content-length",
        "chunked",
        "gzip, chunked",
        "gzip",
        "5",
        "5, 5",
        "7",
        "5, 7",
        "x-a,,te",
        "a=b",
        "",
        // With `set-cookie`: one of sfgate's cookies, which an app's answer never sets.
        "sfgate_session=x",
        "=sfgate_login=y; Path=/a",
    ];

    /// The one length every `Content-Length` line and list item of a whole map states, read
    /// from the map (as the reader did before it read the lines as they came): the oracle for
    /// [`add_length`].
    fn content_length(headers: &HeaderMap) -> Result<Option<u64>, BadHead> {
        let mut length = None;
        for value in headers.get_all(header::CONTENT_LENGTH) {
            let text = value.to_str().map_err(|_| BadHead::ContentLength)?;
            for item in text.split(',') {
                let n = decimal(item.trim().as_bytes()).ok_or(BadHead::ContentLength)?;
                if *length.get_or_insert(n) != n {
                    return Err(BadHead::ContentLength);
                }
            }
        }
        Ok(length)
    }

    proptest! {
        #[test]
        fn read_headers_are_the_passed_on_ones(
            lines in proptest::collection::vec((0..NAMES.len(), 0..VALUES.len()), 0..10),
            http10: bool,
        ) {
            let mut text = format!("HTTP/1.{} 200 OK\r\n", if http10 { 0 } else { 1 });
            for (n, v) in &lines {
                text.push_str(&format!("{}: {}\r\n", NAMES[*n], VALUES[*v]));
            }
            text.push_str("\r\n");
            let mut whole = HeaderMap::new();
            for (n, v) in &lines {
                whole.append(
                    HeaderName::from_bytes(NAMES[*n].as_bytes()).expect("name"),
                    HeaderValue::from_static(VALUES[*v]),
                );
            }
            let version = if http10 { Version::HTTP_10 } else { Version::HTTP_11 };
            let last_coding = whole.get_all(header::TRANSFER_ENCODING).iter().next_back().cloned();
            let expected_framing = framing(
                StatusCode::OK,
                version,
                content_length(&whole),
                last_coding.as_ref().map(HeaderValue::as_bytes),
                &Method::GET,
            );
            passed_on(&mut whole);
            match read(text.as_bytes(), Method::GET) {
                (Ok(Some(found)), _) => {
                    prop_assert_eq!(Ok(found.framing), expected_framing);
                    prop_assert_eq!(by_name_of_lines(&found.headers), by_name(&whole));
                }
                (Err(e), _) => prop_assert_eq!(Err(e), expected_framing),
                (Ok(None), _) => prop_assert!(false, "partial"),
            }
        }
    }
}
