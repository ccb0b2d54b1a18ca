//! Pooled connections to the upstream are closed once idle for `UPSTREAM_IDLE_TIMEOUT`, even
//! when no further request comes: the upstream sees them closed. The same for HTTP/2
//! (`UPSTREAM_HTTP2=true`), whose one connection per serving thread is idle while no stream
//! is open on it.

use super::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A keep-alive HTTP/1.1 upstream with no idle timeout of its own, counting the connections
/// open to it: every request gets `200 ok` after `delay` (so that concurrent requests need
/// connections of their own), and a connection counts as closed when the peer closes it.
async fn counting_upstream(delay: Duration) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let open = Arc::new(AtomicU64::new(0));
    let counter = open.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                    // Bodiless GETs only: the end of the headers ends the request.
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        tokio::time::sleep(delay).await;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                }
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (format!("http://{addr}"), open)
}

/// An HTTP/2 upstream (cleartext, prior knowledge) counting the connections open to it, each
/// stream answered `ok` after `delay`.
async fn counting_h2_upstream(delay: Duration) -> (String, Arc<AtomicU64>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let open = Arc::new(AtomicU64::new(0));
    let counter = open.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let counter = counter.clone();
            tokio::spawn(async move {
                let answer = hyper::service::service_fn(move |_request| async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(axum::body::Body::from(
                        "ok",
                    )))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(socket), answer)
                    .await;
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (format!("http://{addr}"), open)
}

/// The gateway in front of `upstream` with a one-second idle timeout, `/public/` open.
async fn gateway_idle_after_a_second(upstream: &str, http2: bool) -> TestApp {
    TestApp::builder()
        .gateway_for(upstream)
        .envs(&[
            ("SKIP_AUTH_ROUTES", "^/public/"),
            ("UPSTREAM_IDLE_TIMEOUT", "1"),
            ("UPSTREAM_HTTP2", if http2 { "true" } else { "false" }),
        ])
        .spawn()
        .await
}

/// With no request meanwhile, the upstream sees every connection closed within five seconds
/// (of a one-second idle timeout), and the gateway then proxies again on a new connection.
async fn closed_when_idle_then_reopened(app: &TestApp, open: &AtomicU64, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while open.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        open.load(Ordering::SeqCst),
        0,
        "{what} still open at the upstream 5 s after a 1 s idle timeout"
    );
    let r = app
        .http
        .get(app.url("/public/again"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn idle_upstream_connections_are_closed_after_the_idle_timeout_without_further_requests() {
    let (upstream, open) = counting_upstream(Duration::from_millis(300)).await;
    let app = gateway_idle_after_a_second(&upstream, false).await;
    // Four requests at once: four pooled connections once answered.
    let requests = (0..4).map(|i| {
        let (http, url) = (app.http.clone(), app.url(&format!("/public/{i}")));
        async move { http.get(url).send().await.expect("request").status() }
    });
    for status in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200);
    }
    let pooled = open.load(Ordering::SeqCst);
    assert!(
        pooled >= 2,
        "concurrent requests opened {pooled} connection(s)"
    );

    // No request from here on: the pool alone must close them.
    closed_when_idle_then_reopened(&app, &open, "connections").await;
}

#[tokio::test]
async fn a_pooled_connection_in_use_is_not_closed_by_the_idle_timeout() {
    // Answers take longer than the idle timeout: the connection is busy, not idle.
    let (upstream, _open) = counting_upstream(Duration::from_millis(1500)).await;
    let app = gateway_idle_after_a_second(&upstream, false).await;
    for i in 0..3 {
        let r = app
            .http
            .get(app.url(&format!("/public/{i}")))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(r.text().await.expect("body"), "ok");
    }
}

#[tokio::test]
async fn an_idle_http2_upstream_connection_is_closed_and_one_in_use_is_not() {
    // Each answer takes longer than the idle timeout: while a stream is open the connection is
    // busy, so the requests succeed on it.
    let (upstream, open) = counting_h2_upstream(Duration::from_millis(1500)).await;
    let app = gateway_idle_after_a_second(&upstream, true).await;
    let requests = (0..3).map(|i| {
        let (http, url) = (app.http.clone(), app.url(&format!("/public/{i}")));
        async move {
            let r = http.get(url).send().await.expect("request");
            (r.status(), r.text().await.expect("body"))
        }
    });
    for (status, body) in futures_util::future::join_all(requests).await {
        assert_eq!((status.as_u16(), body.as_str()), (200, "ok"));
    }
    assert!(
        open.load(Ordering::SeqCst) >= 1,
        "no HTTP/2 connection was opened"
    );

    // No stream from here on: the connection's task closes it.
    closed_when_idle_then_reopened(&app, &open, "the HTTP/2 connection").await;
}
