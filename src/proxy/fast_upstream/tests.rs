//! The client against a raw upstream on loopback: connections reused, a connection closed
//! or written to while idle not used, a request never sent twice, idle connections closed on
//! time.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// How a raw upstream treats each connection after answering.
#[derive(Clone, Copy)]
enum After {
    /// Keeps it open for more requests.
    KeepOpen,
    /// Closes it shortly after answering, without saying so.
    CloseQuietly,
    /// Sends stray bytes after the answer, then keeps it open.
    Stray,
    /// Answers the first request, reads the second and closes without answering it.
    AnswerOnce,
    /// Closes each connection at once, reading nothing.
    HangUp,
}

struct Upstream {
    url: Url,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// Connections the upstream saw closed by the gateway.
    closed_by_gateway: Arc<AtomicUsize>,
}

async fn upstream(after: After) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url =
        Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let closed_by_gateway = Arc::new(AtomicUsize::new(0));
    let (c, r, g) = (
        connections.clone(),
        requests.clone(),
        closed_by_gateway.clone(),
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            if let After::HangUp = after {
                continue;
            }
            let (r, g) = (r.clone(), g.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => {
                            g.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if r.fetch_add(1, Ordering::SeqCst) == 1
                            && matches!(after, After::AnswerOnce)
                        {
                            return;
                        }
                        let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
                        if let After::Stray = after {
                            answer.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
                        }
                        if stream.write_all(&answer).await.is_err() {
                            return;
                        }
                        if let After::CloseQuietly = after {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    Upstream {
        url,
        connections,
        requests,
        closed_by_gateway,
    }
}

fn client(upstream: &Upstream, idle: Duration) -> FastUpstream {
    FastUpstream::new(
        &upstream.url,
        HeaderValue::from_static("app"),
        Duration::from_secs(2),
        idle,
    )
    .expect("an http upstream")
}

async fn get(client: &FastUpstream) -> Result<Vec<u8>, String> {
    let answer = client
        .send(&Method::GET, RequestHead::new(&Method::GET, "/", 0))
        .await
        .map_err(|e| e.to_string())?;
    axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn one_connection_carries_request_after_request() {
    let up = upstream(After::KeepOpen).await;
    let client = client(&up, Duration::from_secs(60));
    for _ in 0..5 {
        assert_eq!(get(&client).await.as_deref(), Ok(&b"ok"[..]));
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
    assert_eq!(up.requests.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_used_and_nothing_is_lost() {
    let up = upstream(After::CloseQuietly).await;
    let client = client(&up, Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(get(&client).await.as_deref(), Ok(&b"ok"[..]));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        up.requests.load(Ordering::SeqCst),
        3,
        "each request reached the upstream once"
    );
    assert_eq!(up.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_connection_with_stray_bytes_after_its_answer_is_never_reused() {
    let up = upstream(After::Stray).await;
    let client = client(&up, Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(get(&client).await.as_deref(), Ok(&b"ok"[..]));
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 3);
    assert_eq!(up.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_request_the_upstream_read_and_closed_on_is_a_failure_and_never_sent_twice() {
    // The upstream answers the first request on a connection, reads the second and closes
    // without answering it: the second fails (502 above), and reached the app once.
    let up = upstream(After::AnswerOnce).await;
    let client = client(&up, Duration::from_secs(60));
    assert_eq!(get(&client).await.as_deref(), Ok(&b"ok"[..]));
    let failed = get(&client).await;
    assert!(failed.is_err(), "{failed:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        up.requests.load(Ordering::SeqCst),
        2,
        "each request reached the app once"
    );
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout_without_more_requests() {
    let up = upstream(After::KeepOpen).await;
    let client = client(&up, Duration::from_millis(200));
    assert_eq!(get(&client).await.as_deref(), Ok(&b"ok"[..]));
    assert_eq!(up.closed_by_gateway.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        up.closed_by_gateway.load(Ordering::SeqCst),
        1,
        "the idle connection was closed by its thread's timer"
    );
    // And the next request opens a new one.
    assert_eq!(get(&client).await.as_deref(), Ok(&b"ok"[..]));
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_upstream_that_closes_without_answering_is_a_failure_not_a_retry_loop() {
    let up = upstream(After::HangUp).await;
    let client = client(&up, Duration::from_secs(60));
    let failed = get(&client).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        1,
        "a new connection is not retried"
    );
}

#[test]
fn only_plain_http_upstreams_get_this_client() {
    let host = HeaderValue::from_static("app");
    let new = |url: &str| {
        FastUpstream::new(
            &Url::parse(url).expect("url"),
            host.clone(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .map(|c| c.address)
    };
    assert!(new("https://app.example/").is_none());
    assert!(matches!(new("http://127.0.0.1:8080/base"), Some(Address::Ip(a)) if a.port() == 8080));
    assert!(matches!(new("http://[::1]/"), Some(Address::Ip(a)) if a.port() == 80 && a.is_ipv6()));
    assert!(
        matches!(new("http://app.internal:81"), Some(Address::Name(h, 81)) if h == "app.internal")
    );
}
