//! sfgate's own HTTP/1.1 client to the upstream, for the requests the HTTP/1.1 fast path
//! takes (`crate::server::fast_path`): bodiless `GET` and `HEAD`.
//!
//! hyper's client runs each connection as a task of its own: a request is handed to that
//! task through a channel, and its answer and body come back through others, so every
//! proxied request wakes two tasks several times. Here the request's own task writes the
//! request head and reads the answer on the connection itself, as nginx does; measured with
//! callgrind and in `bench/run` (docs/benchmark.md).
//!
//! What it keeps of hyper's client, rule for rule ([`head`]): the request head as hyper
//! writes it, the answer head as hyper reads it, the body's length decided as hyper decides
//! it, keep-alive as hyper keeps it, an unasked `101` refused by the proxy (502). Everything
//! else, with bodies, upgrades, HTTP/2 or TLS to the upstream, stays on hyper's client
//! (`super::upstream_pool`), and so does every request with `HTTP1_FAST_PATH=false`.
//!
//! An idle connection the upstream closed (its keep-alive timeout) is not used: the runtime
//! has seen the close by then ([`connections`]). A request is sent on another connection
//! only when writing it failed, so nothing of it can have reached the app, as hyper's client
//! retries only a request it could not write: one the upstream read and then closed on
//! without answering is answered 502, never sent twice (the app may have acted on it).

mod body;
mod connections;
mod head;

use body::AnswerBody;
use connections::{connect, Address, Pool};
pub(super) use head::RequestHead;
use head::{as_http10, read_answer, AnswerHead, BadHead};

use axum::body::Body;
use axum::http::{HeaderValue, Method, Response};
use bytes::BytesMut;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// The first read buffer of an answer (hyper's client starts with the same).
const FIRST_READ: usize = 8 * 1024;

/// How the fast path's requests reach a plain-HTTP upstream.
pub(super) struct FastUpstream {
    address: Address,
    /// The `Host` of requests that carry none: the upstream's authority.
    host: HeaderValue,
    connect_timeout: Duration,
    pool: Pool,
}

/// Why the upstream gave no answer to pass on. Carries no URL (no query string reaches the
/// log).
#[derive(Debug, thiserror::Error)]
pub(super) enum ExchangeFailure {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("the upstream closed the connection without answering")]
    Closed,
    #[error(transparent)]
    Head(#[from] BadHead),
}

impl FastUpstream {
    /// For `http://` upstreams only; `None` for any other (TLS stays with hyper's client).
    pub(super) fn new(
        base: &Url,
        host: HeaderValue,
        connect_timeout: Duration,
        idle: Duration,
    ) -> Option<Self> {
        if base.scheme() != "http" {
            return None;
        }
        let port = base.port_or_known_default()?;
        let address = match base.host()? {
            url::Host::Ipv4(ip) => Address::Ip((ip, port).into()),
            url::Host::Ipv6(ip) => Address::Ip((ip, port).into()),
            url::Host::Domain(name) => Address::Name(name.to_string(), port),
        };
        Some(Self {
            address,
            host,
            connect_timeout,
            pool: Pool::new(idle),
        })
    }

    /// Sends a bodiless request (its head with the headers as rewritten for the upstream)
    /// and returns the answer with its body still on the connection.
    pub(super) async fn send(
        &self,
        method: &Method,
        head: RequestHead,
    ) -> Result<Response<Body>, ExchangeFailure> {
        let request = head.finish(&self.host);
        loop {
            let (mut stream, reused, http10) = match self.pool.take() {
                Some((stream, http10)) => (stream, true, http10),
                None => {
                    let fresh = connect(&self.address, self.connect_timeout)
                        .await
                        .map_err(ExchangeFailure::Connect)?;
                    (fresh, false, false)
                }
            };
            let downgraded;
            let bytes = if http10 {
                downgraded = as_http10(&request);
                &downgraded
            } else {
                &request
            };
            match exchange(&mut stream, bytes, method).await {
                Ok((head, rest)) => return Ok(self.answer(head, rest, stream)),
                // A connection the upstream had closed, found so by the write: the request
                // never left; on the next idle connection or a new one.
                Err(Exchanged::Unsent(_)) if reused => continue,
                Err(Exchanged::Unsent(e) | Exchanged::Failed(e)) => return Err(e),
            }
        }
    }

    fn answer(&self, head: AnswerHead, rest: BytesMut, stream: TcpStream) -> Response<Body> {
        let body = AnswerBody::new(stream, rest, &head, self.pool);
        // A body that is already over (no body, or none left to read) is the empty body
        // hyper's client gives, so that the answer is written the same way.
        let body = if http_body::Body::is_end_stream(&body) {
            Body::empty()
        } else {
            Body::new(body)
        };
        let mut response = Response::new(body);
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        // The lines go to the fast path's writer as read (`crate::headers::passed`), unless
        // the upstream sent a request id, which sfgate's request-id layer looks up.
        if head.headers.has_request_id() {
            *response.headers_mut() = head.headers.into_map();
        } else {
            response.extensions_mut().insert(head.headers);
        }
        if let Some(reason) = head.reason {
            response.extensions_mut().insert(reason);
        }
        response
    }
}

/// How an exchange on one connection went wrong.
enum Exchanged {
    /// The request could not be written: the connection was closed.
    Unsent(ExchangeFailure),
    Failed(ExchangeFailure),
}

/// Writes the request and reads the answer's head; returns it with the bytes read past it.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    method: &Method,
) -> Result<(AnswerHead, BytesMut), Exchanged> {
    if let Err(e) = stream.write_all(request).await {
        return Err(if is_closed(&e) {
            Exchanged::Unsent(e.into())
        } else {
            Exchanged::Failed(e.into())
        });
    }
    let mut input = BytesMut::with_capacity(FIRST_READ);
    loop {
        if input.capacity() == input.len() {
            input.reserve(FIRST_READ);
        }
        match stream.read_buf(&mut input).await {
            Ok(0) => return Err(Exchanged::Failed(ExchangeFailure::Closed)),
            Ok(_) => {}
            Err(e) => return Err(Exchanged::Failed(e.into())),
        }
        match read_answer(&mut input, method) {
            Ok(Some(head)) => return Ok((head, input)),
            Ok(None) => {}
            Err(e) => return Err(Exchanged::Failed(e.into())),
        }
    }
}

/// A write refused because the upstream had closed the connection.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

#[cfg(test)]
mod tests;
