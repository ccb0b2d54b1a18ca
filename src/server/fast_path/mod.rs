//! The HTTP/1.1 fast path: a connection is first read by sfgate's own HTTP/1.1 code, which
//! answers the requests it takes ([`request`] says which: bodiless `GET` and `HEAD` requests,
//! the bulk of what a gateway, a forward-auth endpoint and a health check serve) and writes the
//! answer as hyper would ([`answer`]). A request for the upstream app (gateway mode, a path
//! that is not sfgate's own) goes through sfgate's middleware to the proxy directly; any other
//! goes to the router, with the same middleware, as the general server would hand it. At the
//! first request it does not take, the connection and every byte read from it go to the
//! general server (hyper, the router) for the rest of the connection's life.
//!
//! Why: measured on the benchmark's two cores, hyper's server and axum's router cost a
//! proxied request more than the request's own work (sfgate's identity check, header rewrite
//! and bookkeeping), and a path that reads heads in place without them is what reaches
//! nginx's rate (docs/benchmark.md, the raw floors). Why not all requests: request bodies,
//! upgrades and HTTP/2 are where framing and protocol rules are subtle; hyper keeps them, and
//! the fast path's rule is one of shape, decided before any of the request is acted on, so a
//! request is answered by exactly one of the two.
//!
//! What the general server promises holds here too: the header-read deadline (a head must
//! arrive within `HEADER_READ_TIMEOUT` of the wait for it starting, which also closes idle
//! connections), a stop (server shutdown) closes an idle connection at once and lets a request
//! in progress finish with `Connection: close`, the connection keeps its `MAX_CONNECTIONS`
//! slot (held by the caller), and a connection holds no buffers while it waits for a request.

mod answer;
mod request;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures_util::future::Either;
use request::Read;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;
use tower::util::BoxCloneService;
use tower::{Service, ServiceExt};

/// The proxy inside sfgate's middleware, as the fast path calls it.
pub type Proxy = BoxCloneService<Request<Body>, Response, Infallible>;

/// Whether a path is one of sfgate's own routes (the router's, never the proxy's).
pub type IsOwn = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Where the fast path sends the requests it takes: the router with sfgate's middleware (its
/// own routes, and everything when sfgate is the whole site), and in gateway mode the proxy,
/// wrapped in the same middleware, for every path that is not sfgate's own.
#[derive(Clone)]
pub struct FastPath {
    router: Router,
    gateway: Option<(IsOwn, Proxy)>,
}

impl FastPath {
    /// Every request taken goes to `router`.
    pub fn new(router: Router) -> Self {
        Self {
            router,
            gateway: None,
        }
    }

    /// Requests for paths `is_own` does not claim go to `proxy` rather than the router, whose
    /// fallback would call the same proxy after routing the request through its table.
    pub fn with_gateway(router: Router, is_own: IsOwn, proxy: Proxy) -> Self {
        Self {
            router,
            gateway: Some((is_own, proxy)),
        }
    }

    /// The answer to `request`, from the proxy or the router.
    async fn answer(&mut self, request: Request<Body>) -> Response {
        let answered = match &mut self.gateway {
            Some((is_own, proxy)) if !is_own(request.uri().path()) => proxy
                .ready()
                .await
                .map(|proxy| proxy.call(request))
                .map(Either::Left),
            _ => ServiceExt::<Request<Body>>::ready(&mut self.router)
                .await
                .map(|router| router.call(request))
                .map(Either::Right),
        };
        match answered {
            Ok(answered) => match answered.await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            Err(never) => match never {},
        }
    }
}

thread_local! {
    /// `sfgate_fast_path_requests_total`, resolved once per thread rather than per request.
    static SERVED: metrics::Counter = metrics::counter!("sfgate_fast_path_requests_total");
}

/// How a connection left the fast path.
pub(super) enum Outcome {
    /// It is over (closed by either side, timed out, or the server is stopping).
    Closed,
    /// The general server serves the rest: the socket, and what was read from it and not
    /// answered.
    HandOver(TcpStream, Bytes),
}

/// Serves `stream` until it closes or a request is not the fast path's.
pub(super) async fn serve(
    mut fast: FastPath,
    mut stream: TcpStream,
    remote: SocketAddr,
    header_read_timeout: Duration,
    stopping: &mut watch::Receiver<bool>,
) -> Outcome {
    let mut input = BytesMut::new();
    let mut out = Vec::new();
    let mut lines = Vec::new();
    // One timer for the connection, moved to each head's deadline rather than made anew:
    // a timer made per request lands before the runtime's next planned wake-up (the
    // upstream's timeout) and so wakes the runtime through its event descriptor, a system
    // call and an extra turn of the event loop per request; one moved later costs neither.
    let mut head_timer = Box::pin(tokio::time::sleep(header_read_timeout));
    // One wait for the server's stop, for the connection's whole life: made anew for each
    // wait between requests, it joined and left the stop signal's list of waiters (shared by
    // every connection) each time.
    let mut watcher = stopping.clone();
    let mut stop = std::pin::pin!(watcher.changed());
    loop {
        // When the wait for this request's head began: the head must be whole by then plus
        // `HEADER_READ_TIMEOUT`, however its bytes trickle in.
        let mut head_deadline: Option<Instant> = None;
        let taken = loop {
            // An empty buffer holds no head yet (the usual case after an answer): nothing to
            // parse before the wait for bytes.
            let read = if input.is_empty() {
                Read::Partial
            } else {
                request::read(&mut input, &mut lines)
            };
            match read {
                Read::Taken(taken) => break taken,
                Read::NotOurs(why) => {
                    metrics::counter!("sfgate_fast_path_hand_overs_total", "reason" => why.label())
                        .increment(1);
                    return Outcome::HandOver(stream, input.freeze());
                }
                Read::Partial => {}
            }
            let deadline =
                *head_deadline.get_or_insert_with(|| Instant::now() + header_read_timeout);
            let wait = Wait {
                deadline,
                timer: head_timer.as_mut(),
                stop: stop.as_mut(),
            };
            if !more(&mut stream, &mut input, wait, &mut out).await {
                return Outcome::Closed;
            }
        };
        let method = taken.request.method().clone();
        let mut request = taken.request;
        request.extensions_mut().insert(ConnectInfo(remote));
        let answered = fast.answer(request);
        let Some(response) = unless_closed(&mut stream, &mut input, answered).await else {
            // The client closed its side: as the general server does, the request is
            // dropped (the upstream call with it) and nothing is answered.
            return Outcome::Closed;
        };
        SERVED.with(|served| served.increment(1));
        // A stop that came while the request was in progress: this answer is the last.
        let closing = taken.close || stopping.has_changed().unwrap_or(true);
        if !answer::write(&mut stream, &method, response, closing, &mut out).await {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
            return Outcome::Closed;
        }
    }
}

/// The answer to the request in progress, or `None` when the client closes its side of the
/// connection first. While nothing else of the client's is read, the connection is watched
/// for its end, as hyper's server watches it (without half-close); bytes the client sends
/// meanwhile (its next request) are kept in `input`, and once there are some it is no longer
/// watched (hyper reads no further ahead either).
async fn unless_closed(
    stream: &mut TcpStream,
    input: &mut BytesMut,
    answered: impl std::future::Future<Output = Response>,
) -> Option<Response> {
    // A close the runtime has already seen (a client that sent its request and ended its
    // side at once) drops the request before it starts, as hyper's server, which reads the
    // connection before it calls the service, drops it.
    if input.is_empty() && has_closed(stream) {
        return None;
    }
    let mut answered = std::pin::pin!(answered);
    loop {
        tokio::select! {
            biased;
            response = &mut answered => return Some(response),
            readable = stream.readable(), if input.is_empty() => {
                if readable.is_err() {
                    return None;
                }
                if try_read(stream, input) == Some(false) {
                    return None;
                }
            }
        }
    }
}

/// How long [`more`] may wait: until `deadline` (on the connection's one `timer`), and while
/// nothing of a head has come, until the server stops.
struct Wait<'a, S> {
    deadline: Instant,
    timer: Pin<&'a mut Sleep>,
    /// Completes when the server stops; never polled again once complete (the connection
    /// ends then).
    stop: Pin<&'a mut S>,
}

/// Reads more of a request head into `input`. Waits until `deadline` at most (the head's, not
/// this read's: a client sending its head a byte at a time does not hold the connection past
/// it), and while nothing of the head has come, also stops at a server stop. Between requests
/// the connection's buffers are released, so that an idle connection holds only its socket.
/// `false` when the connection is over.
async fn more<S: Future>(
    stream: &mut TcpStream,
    input: &mut BytesMut,
    wait: Wait<'_, S>,
    out: &mut Vec<u8>,
) -> bool {
    let Wait {
        deadline,
        mut timer,
        mut stop,
    } = wait;
    let idle = input.is_empty();
    // The answer before was written whole: the next one usually comes at once.
    if let Some(read) = try_read(stream, input) {
        return read;
    }
    if idle {
        *input = BytesMut::new();
        *out = Vec::new();
    }
    timer.as_mut().reset(deadline.into());
    loop {
        tokio::select! {
            readable = stream.readable() => {
                if readable.is_err() {
                    return false;
                }
                if let Some(read) = try_read(stream, input) {
                    return read;
                }
            }
            () = &mut timer => {
                if idle {
                    metrics::counter!("sfgate_connections_idle_closed_total").increment(1);
                }
                return false;
            }
            _ = stop.as_mut(), if idle => return false,
        }
    }
}

/// Whether the client has closed its side, as far as the runtime knows (its event loop saw
/// the close): asked of the runtime's readiness, no system call.
fn has_closed(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(stream.ready(Interest::READABLE)).poll(&mut cx) {
        Poll::Pending => false,
        Poll::Ready(Err(_)) => true,
        Poll::Ready(Ok(ready)) => ready.is_read_closed() || ready.is_error(),
    }
}

/// One read without waiting: `Some(true)` when bytes came, `Some(false)` when the connection
/// is over, `None` when nothing is there yet. Read as the runtime's own reader reads, which
/// takes a read that did not fill the buffer to mean the socket is drained: the next
/// attempt then waits for the event loop instead of asking the system again.
fn try_read(stream: &mut TcpStream, input: &mut BytesMut) -> Option<bool> {
    input.reserve(4096);
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(stream.read_buf(input)).poll(&mut cx) {
        Poll::Pending => None,
        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => Some(false),
        Poll::Ready(Ok(_)) => Some(true),
    }
}
