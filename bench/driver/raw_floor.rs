//! The raw floors: the thread-per-core proxy without hyper's request and header types, in
//! nginx's shape. Each request head is parsed in place (`httparse`, the parser hyper itself
//! uses), the upstream request is written as bytes (the client's header lines passed through
//! unless a rule drops them, the added headers appended), and the upstream's answer head is
//! copied the same way. No header map is built on either side.
//!
//! The question they answer: the identity floor ([`super::floor::start_tpc_identity_proxy`])
//! says sfgate's necessary work, done with header maps, leaves gateway mode short of its
//! target. Would the same work, done on the bytes, reach it?
//! - [`RawWork::Forward`]: the bare raw proxy (the design's floor), forwarding every header
//!   but the hop-by-hop ones.
//! - [`RawWork::Identity`]: the raw identity floor, doing what the identity floor does with
//!   sfgate's own functions where they take bytes or text (the path rule, the request id, the
//!   credentials and the identity check, the route rules, the header-name table) and writing
//!   what the identity floor's header rewrite writes: the client's headers without
//!   hop-by-hop, credential, identity, forwarding and `_` names, then `X-Forwarded-*`, the
//!   identity headers, the assertion and `X-Request-Id`; the answer without hop-by-hop
//!   headers, with `X-Request-Id`.
//! - [`RawWork::Kept`]: the raw identity floor with the per-request bookkeeping sfgate's
//!   gateway mode keeps around that work (the request's clock, log span and line, request
//!   counter and latency histogram, the upstream timeout's timer, the panic catch): what a
//!   product path of this shape must at least do.
//!
//! Only what the benchmark sends is served: requests without a body (one with a body is
//! answered `501` and the connection closed) and upstream answers framed by `Content-Length`
//! (a chunked one is answered `502`). It is a measuring stick, not a proxy to deploy: it has
//! no timeouts and no limits beyond the head's size.

use crate::Failure;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use futures_util::FutureExt;
use sfgate::auth::{Authenticator, RefreshPolicy};
use sfgate::headers::owned::{class_of_spelling, Class};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

/// Thread names of the bare raw floor (for its CPU time; /proc keeps 15 characters).
pub(crate) const RAW_THREADS: &str = "bench-floor-raw";
/// Thread names of the raw identity floor.
pub(crate) const RAW_IDENTITY_THREADS: &str = "bench-floor-rid";
/// Thread names of the raw identity floor with sfgate's per-request bookkeeping.
pub(crate) const RAW_KEPT_THREADS: &str = "bench-floor-rbk";
/// sfgate's default `UPSTREAM_TIMEOUT`, for the bookkeeping floor's timer.
const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest request or answer head read; sfgate's own limit is of this order.
const MAX_HEAD: usize = 16 * 1024;
/// Header lines per head (hyper's default is 100; the benchmark sends five).
const MAX_HEADERS: usize = 64;

thread_local! {
    /// This thread's idle upstream connections.
    static IDLE: RefCell<Vec<TcpStream>> = const { RefCell::new(Vec::new()) };
}

/// What a raw floor does besides forwarding.
#[derive(Clone)]
pub(crate) enum RawWork {
    /// Nothing: the bare raw proxy.
    Forward,
    /// sfgate's identity check and header rewrites (the raw identity floor).
    Identity(Authenticator),
    /// The same, and the per-request bookkeeping sfgate's gateway mode keeps around it: the
    /// request's clock, its log span and log line (both off at the benchmark's `warn`, as in
    /// sfgate), the request counter and latency histogram, the upstream timeout's timer and
    /// the panic catch.
    Kept(Authenticator),
}

impl RawWork {
    fn auth(&self) -> Option<&Authenticator> {
        match self {
            Self::Forward => None,
            Self::Identity(auth) | Self::Kept(auth) => Some(auth),
        }
    }

    fn threads(&self) -> &'static str {
        match self {
            Self::Forward => RAW_THREADS,
            Self::Identity(_) => RAW_IDENTITY_THREADS,
            Self::Kept(_) => RAW_KEPT_THREADS,
        }
    }
}

/// Starts a raw floor doing `work` in front of `upstream` with `threads` threads. Returns its
/// base URL.
pub(crate) fn start_raw_proxy(
    upstream: SocketAddr,
    threads: usize,
    work: RawWork,
) -> Result<String, Failure> {
    let host: Arc<str> = upstream.to_string().into();
    super::floor::start_per_core(threads, work.threads(), move |stream| {
        let work = work.clone();
        let host = host.clone();
        async move {
            let _ = serve_connection(stream, upstream, &host, &work).await;
        }
    })
}

/// What one request's exchange leaves for the connection.
enum Next {
    KeepAlive,
    Close,
}

/// One client connection: heads read and answered one at a time (a pipelined client's next
/// head stays in the buffer), until the client closes or a request says `close`.
async fn serve_connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    host: &str,
    work: &RawWork,
) -> std::io::Result<()> {
    let peer = client.peer_addr().ok();
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    // Reused for every request of the connection: the upstream request, the upstream's
    // answer as read, and the client's answer.
    let mut buffers = Buffers {
        out: Vec::with_capacity(1024),
        read: Vec::with_capacity(4096),
        answer: Vec::with_capacity(4096),
    };
    loop {
        let (used, next) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&input) {
                Ok(httparse::Status::Complete(used)) => {
                    let exchanged = exchange(
                        &request,
                        &mut client,
                        upstream,
                        host,
                        peer,
                        work,
                        &mut buffers,
                    );
                    let next = match work {
                        RawWork::Kept(_) => {
                            // The request's log span, entered whenever its work is polled
                            // (off at `warn`, as in sfgate); a request whose handling
                            // panicked is answered 500, as sfgate does.
                            let span = tracing::info_span!(
                                "request",
                                method = request.method,
                                path = request.path
                            );
                            let exchanged =
                                std::panic::AssertUnwindSafe(exchanged.instrument(span));
                            match exchanged.catch_unwind().await {
                                Ok(next) => next?,
                                Err(_) => {
                                    return answer_status(&mut client, 500).await;
                                }
                            }
                        }
                        _ => exchanged.await?,
                    };
                    break (used, next);
                }
                Ok(httparse::Status::Partial) if input.len() < MAX_HEAD => {
                    input.reserve(4096);
                    if client.read_buf(&mut input).await? == 0 {
                        return Ok(());
                    }
                }
                Ok(httparse::Status::Partial) => {
                    return answer_status(&mut client, 431).await;
                }
                Err(_) => return answer_status(&mut client, 400).await,
            }
        };
        input.drain(..used);
        if let Next::Close = next {
            return client.shutdown().await;
        }
    }
}

struct Buffers {
    out: Vec<u8>,
    read: Vec<u8>,
    answer: Vec<u8>,
}

/// A bodiless answer of the floor's own, after which the connection closes.
async fn answer_status(client: &mut TcpStream, status: u16) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 {status} \r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    client.write_all(head.as_bytes()).await?;
    client.shutdown().await
}

/// What the request head says about its connection and body.
struct Framing<'a> {
    close: bool,
    has_body: bool,
    host: Option<&'a [u8]>,
    /// Names the `Connection` header lists (beyond `close` and `keep-alive`).
    connection_named: Vec<&'a [u8]>,
}

fn framing<'a>(request: &httparse::Request<'_, 'a>) -> Framing<'a> {
    let mut framing = Framing {
        close: false,
        has_body: false,
        host: None,
        connection_named: Vec::new(),
    };
    // HTTP/1.1 keeps the connection unless told to close it; HTTP/1.0 closes it unless told
    // to keep it.
    let mut keep_alive = request.version != Some(0);
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            framing.has_body |= header.value.trim_ascii() != b"0";
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            framing.has_body = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            framing.host.get_or_insert(header.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in header.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    framing.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if !token.is_empty() {
                    framing.connection_named.push(token);
                }
            }
        }
    }
    framing.close |= !keep_alive;
    framing
}

/// One request: checked (in the identity floor), forwarded, answered.
async fn exchange(
    request: &httparse::Request<'_, '_>,
    client: &mut TcpStream,
    upstream: SocketAddr,
    host: &str,
    peer: Option<SocketAddr>,
    work: &RawWork,
    buffers: &mut Buffers,
) -> std::io::Result<Next> {
    let keeps_books = matches!(work, RawWork::Kept(_));
    let started = keeps_books.then(Instant::now);
    let (Some(method), Some(target)) = (request.method, request.path) else {
        answer_status(client, 400).await?;
        return Ok(Next::Close);
    };
    let framing = framing(request);
    if framing.has_body {
        answer_status(client, 501).await?;
        return Ok(Next::Close);
    }
    let out = &mut buffers.out;
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    let request_id = match work.auth() {
        None => {
            for header in request.headers.iter() {
                let name = header.name;
                let hop_by_hop = matches!(class_of_spelling(name), Some(Class::HopByHop))
                    || name.eq_ignore_ascii_case("host")
                    || named_by_connection(name, &framing);
                if !hop_by_hop {
                    push_header(out, name.as_bytes(), header.value);
                }
            }
            None
        }
        Some(auth) => match checked(request, target, &framing, peer, auth, out).await {
            Ok(id) => Some(id),
            Err(status) => {
                answer_status(client, status).await?;
                return Ok(Next::Close);
            }
        },
    };
    out.extend_from_slice(b"\r\n");
    let bodiless = method == "HEAD";
    let forwarded = forward(
        upstream,
        bodiless,
        framing.close,
        buffers,
        request_id.as_ref(),
    );
    let answered = if keeps_books {
        // sfgate answers 504 when the upstream's answer takes longer; here it is a 502.
        tokio::time::timeout(UPSTREAM_TIMEOUT, forwarded)
            .await
            .ok()
            .flatten()
    } else {
        forwarded.await
    };
    if let (Some(started), Some(answer)) = (started, &answered) {
        books(method, answer.status, started);
    }
    match answered {
        Some(mut answer) => {
            if !relay(client, &mut answer, buffers).await? {
                // The upstream ended the body early: so does the answer.
                return Ok(Next::Close);
            }
            if answer.reusable {
                IDLE.with(|idle| idle.borrow_mut().push(answer.stream));
            }
            Ok(if framing.close {
                Next::Close
            } else {
                Next::KeepAlive
            })
        }
        None => {
            answer_status(client, 502).await?;
            Ok(Next::Close)
        }
    }
}

/// This thread's request counters by method and status and latency histograms by method.
type Books = (
    HashMap<(&'static str, u16), metrics::Counter>,
    HashMap<&'static str, metrics::Histogram>,
);

thread_local! {
    /// Resolved once per thread, as sfgate's `request_metrics` does.
    static BOOKS: RefCell<Books> = RefCell::new((HashMap::new(), HashMap::new()));
}

/// sfgate's per-request bookkeeping once the upstream has answered: the log line (off at
/// `warn`) and the request's counter and latency, under the labels sfgate gives a proxied
/// request (its method by sfgate's own `method_label`).
fn books(method: &str, status: u16, started: Instant) {
    let latency = started.elapsed();
    tracing::info!(
        status,
        latency_ms = sfgate::middleware::observe::round_ms(latency),
        "request finished"
    );
    let method = axum::http::Method::from_bytes(method.as_bytes()).map_or("other", |m| {
        sfgate::middleware::request_metrics::method_label(&m)
    });
    BOOKS.with_borrow_mut(|(counters, histograms)| {
        counters
            .entry((method, status))
            .or_insert_with(|| {
                metrics::counter!(
                    "sfgate_http_requests_total",
                    "method" => method,
                    "route" => "proxy",
                    "status" => status.to_string()
                )
            })
            .increment(1);
        histograms
            .entry(method)
            .or_insert_with(|| {
                metrics::histogram!(
                    "sfgate_http_request_duration_seconds",
                    "method" => method,
                    "route" => "proxy"
                )
            })
            .record(latency.as_secs_f64());
    });
}

/// Answers bodies up to this size with one write, head and body together.
const SMALL_BODY: u64 = 64 * 1024;

/// Writes the answer: the rest of a small body is read into the answer's buffer first (one
/// write, as nginx does), a larger one copied through the connection's read buffer. Returns
/// whether the whole body arrived. (Not `tokio::io::copy`: it allocates and zeroes an 8 KiB
/// buffer on every call, which cost this floor 40 % of its instructions.)
async fn relay(
    client: &mut TcpStream,
    answer: &mut Answer,
    buffers: &mut Buffers,
) -> std::io::Result<bool> {
    let out = &mut buffers.answer;
    if answer.remaining <= SMALL_BODY {
        let mut filled = out.len();
        let end = filled + answer.remaining as usize;
        out.resize(end, 0);
        while filled < end {
            let n = answer.stream.read(&mut out[filled..end]).await?;
            if n == 0 {
                client.write_all(&out[..filled]).await?;
                return Ok(false);
            }
            filled += n;
        }
        client.write_all(out).await?;
        return Ok(true);
    }
    client.write_all(out).await?;
    let chunk = &mut buffers.read;
    chunk.clear();
    chunk.resize(16 * 1024, 0);
    let mut left = answer.remaining;
    while left > 0 {
        let want = left.min(chunk.len() as u64) as usize;
        let n = answer.stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Ok(false);
        }
        client.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    Ok(true)
}

fn named_by_connection(name: &str, framing: &Framing<'_>) -> bool {
    framing
        .connection_named
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The identity floor's part: the path rule, the request id, the caller's credentials and
/// identity, the route rules; then the client's headers sfgate passes on and the headers it
/// adds, written to `out`. Returns the request id, or the status of a refusal.
async fn checked(
    request: &httparse::Request<'_, '_>,
    target: &str,
    framing: &Framing<'_>,
    peer: Option<SocketAddr>,
    auth: &Authenticator,
    out: &mut Vec<u8>,
) -> Result<HeaderValue, u16> {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let policy = sfgate::domain::PathPolicy {
        allow_encoded_slashes: false,
    };
    let path = sfgate::domain::CanonicalPath::parse(path, policy).map_err(|_| 400u16)?;
    // The headers sfgate's credential and request-id functions read, as the map they take;
    // every other header stays as bytes.
    let mut read = HeaderMap::new();
    let mut cookies = HeaderMap::new();
    for header in request.headers.iter() {
        let class = class_of_spelling(header.name);
        if matches!(
            class,
            Some(Class::Credential | Class::RequestId | Class::Cookie)
        ) && !header.name.contains('_')
        {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(header.name.as_bytes()),
                HeaderValue::from_bytes(header.value),
            ) else {
                return Err(400);
            };
            if class == Some(Class::Cookie) {
                cookies.append(name.clone(), value.clone());
            }
            read.append(name, value);
        }
    }
    let id = sfgate::middleware::request_id::ensure(&mut read);
    let refused = |e: sfgate::auth::AuthError| e.to_error_response().status.as_u16();
    let caller = auth
        .authenticate(&read, RefreshPolicy::Allowed)
        .await
        .map_err(refused)?;
    let rules = sfgate::access::RulePath::Checked(&path);
    let rule_path = auth.rule_path(rules, target).map_err(refused)?;
    auth.authorize(&caller, rule_path.as_deref())
        .await
        .map_err(refused)?;
    for header in request.headers.iter() {
        let name = header.name;
        // The header-name rule's default (`PROXY_UNDERSCORE_HEADERS=drop`) and the classes
        // sfgate removes or sets itself; `Cookie` loses sfgate's own cookies below.
        let passes = !name.contains('_')
            && match class_of_spelling(name) {
                None | Some(Class::MethodOverride) => !named_by_connection(name, framing),
                _ => false,
            };
        if passes {
            push_header(out, name.as_bytes(), header.value);
        }
    }
    sfgate::headers::rewrite::remove_credentials(&mut cookies);
    for value in cookies.get_all(axum::http::header::COOKIE) {
        push_header(out, b"cookie", value.as_bytes());
    }
    if let Some(peer) = peer {
        out.extend_from_slice(b"x-forwarded-for: ");
        out.extend_from_slice(peer.ip().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-proto: http\r\n");
    if let Some(host) = framing.host {
        push_header(out, b"x-forwarded-host", host);
    }
    let vouched = auth.vouch(&caller);
    for (name, value) in vouched.identity_headers() {
        push_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(assertion) = &vouched.assertion {
        push_header(out, b"x-sfgate-assertion", assertion.as_bytes());
    }
    push_header(out, b"x-request-id", id.as_bytes());
    Ok(id)
}

/// The upstream's answer: its head and as much of the body as came with it are in
/// `buffers.answer`; the rest of the body, `remaining` bytes, is still to be read from
/// `stream`.
struct Answer {
    stream: TcpStream,
    remaining: u64,
    reusable: bool,
    status: u16,
}

/// Sends `buffers.out` on an idle upstream connection and reads the answer's head. An idle
/// connection the upstream has closed meanwhile (nginx ends idle keep-alive connections after
/// its `keepalive_timeout`, so a whole queue of them can be dead after a pause) is dropped
/// and the next one tried, then a new one: nothing was answered on it, so sending the request
/// again is safe (the floor forwards only requests without a body). `None` when the upstream
/// cannot be reached or answers what the floor does not serve.
async fn forward(
    upstream: SocketAddr,
    bodiless: bool,
    closing: bool,
    buffers: &mut Buffers,
    request_id: Option<&HeaderValue>,
) -> Option<Answer> {
    loop {
        let pooled = IDLE.with(|idle| idle.borrow_mut().pop());
        let fresh = pooled.is_none();
        let mut stream = match pooled {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(upstream).await.ok()?;
                let _ = stream.set_nodelay(true);
                stream
            }
        };
        buffers.read.clear();
        let sent = stream.write_all(&buffers.out).await;
        let answered = match sent {
            Ok(()) => read_answer(&mut stream, bodiless, closing, buffers, request_id).await,
            Err(e) => Err(e),
        };
        match answered {
            Ok(Some((remaining, reusable, status))) => {
                return Some(Answer {
                    stream,
                    remaining,
                    reusable,
                    status,
                });
            }
            Ok(None) => return None,
            Err(_) if !fresh && buffers.read.is_empty() => continue,
            Err(_) => return None,
        }
    }
}

/// Reads the answer's head into `buffers.read` and writes the client's answer head (and
/// the body bytes read with it, and `Connection: close` when `closing`) into
/// `buffers.answer`. Returns the body bytes left to copy,
/// whether the connection may be reused and the status; `Ok(None)` for an answer the floor
/// does not serve; an error when the connection ended before a head.
async fn read_answer(
    stream: &mut TcpStream,
    bodiless: bool,
    closing: bool,
    buffers: &mut Buffers,
    request_id: Option<&HeaderValue>,
) -> std::io::Result<Option<(u64, bool, u16)>> {
    loop {
        buffers.read.reserve(4096);
        if stream.read_buf(&mut buffers.read).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let used = match response.parse(&buffers.read) {
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) if buffers.read.len() < MAX_HEAD => continue,
            _ => return Ok(None),
        };
        let Some(code) = response.code else {
            return Ok(None);
        };
        let answer = &mut buffers.answer;
        answer.clear();
        answer.extend_from_slice(b"HTTP/1.1 ");
        answer.extend_from_slice(code.to_string().as_bytes());
        answer.push(b' ');
        answer.extend_from_slice(response.reason.unwrap_or("").as_bytes());
        answer.extend_from_slice(b"\r\n");
        let mut length: Option<u64> = None;
        let mut reusable = response.version == Some(1);
        for header in response.headers.iter() {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(header.value).ok();
                match text.and_then(|t| t.trim().parse().ok()) {
                    Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                    _ => return Ok(None),
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Ok(None);
            } else if name.eq_ignore_ascii_case("connection") {
                reusable &= !header
                    .value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            }
            if matches!(class_of_spelling(name), Some(Class::HopByHop)) {
                continue;
            }
            if request_id.is_some() && name.eq_ignore_ascii_case("x-request-id") {
                continue;
            }
            push_header(answer, name.as_bytes(), header.value);
        }
        if let Some(id) = request_id {
            push_header(answer, b"x-request-id", id.as_bytes());
        }
        if closing {
            // The client asked to close: the answer says the connection ends with it.
            push_header(answer, b"connection", b"close");
        }
        answer.extend_from_slice(b"\r\n");
        let no_body = bodiless || code < 200 || code == 204 || code == 304;
        // An answer that ends when its connection does is not served here.
        let length = match (no_body, length) {
            (true, _) => 0,
            (false, Some(length)) => length,
            (false, None) => return Ok(None),
        };
        let read = (buffers.read.len() - used) as u64;
        // More than the body: the upstream answered something not asked for.
        if read > length {
            return Ok(None);
        }
        answer.extend_from_slice(&buffers.read[used..]);
        return Ok(Some((length - read, reusable, code)));
    }
}
