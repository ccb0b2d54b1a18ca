//! Thread-per-core serving (`SERVER_THREADS`): connections spread over the threads, one
//! `MAX_CONNECTIONS` for all of them, every thread finishes its requests on shutdown, a
//! WebSocket on one thread and a request on another both end cleanly, and upstream
//! connections are kept alive and reused.

use crate::common::*;
use crate::helpers::websocket::*;
use axum::body::Body;
use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use sfgate::server::{serve_threads, ConnectionLimits, Listeners};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Answers `/thread` with the name of the thread serving it, after `?sleep=` milliseconds.
fn thread_app() -> Router {
    Router::new().route(
        "/thread",
        get(|Query(query): Query<HashMap<String, u64>>| async move {
            if let Some(ms) = query.get("sleep") {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
            }
            std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_string()
        }),
    )
}

struct Threaded {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    done: JoinHandle<std::io::Result<()>>,
}

fn serve_thread_app(listeners: Listeners, limits: ConnectionLimits) -> Threaded {
    let addr = listeners.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve_threads(
        listeners,
        thread_app(),
        limits,
        async {
            let _ = stopped.await;
        },
        None,
    ));
    Threaded { addr, stop, done }
}

fn four_listeners() -> Listeners {
    Listeners::bind("127.0.0.1:0".parse().expect("addr"), 4).expect("bind")
}

/// One kept-alive HTTP/1.1 client connection.
struct Connection(http1::SendRequest<Body>);

impl Connection {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Self(sender)
    }

    /// GETs `path` and returns the body (the serving thread's name for `/thread`).
    async fn get(&mut self, path: &str) -> String {
        self.0.ready().await.expect("ready");
        let request = axum::http::Request::get(path)
            .header("host", "sfgate")
            .body(Body::empty())
            .expect("request");
        let response = self.0.send_request(request).await.expect("response");
        assert_eq!(response.status(), 200);
        let body = axum::body::to_bytes(Body::new(response.into_body()), 1024)
            .await
            .expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// Opens `n` connections and asks each which thread serves it.
async fn threads_seen(addr: SocketAddr, n: usize) -> (Vec<Connection>, BTreeSet<String>) {
    let mut connections = Vec::new();
    let mut names = BTreeSet::new();
    for _ in 0..n {
        let mut connection = Connection::open(addr).await;
        names.insert(connection.get("/thread").await);
        connections.push(connection);
    }
    (connections, names)
}

#[tokio::test]
async fn connections_from_many_clients_are_served_by_more_than_one_thread() {
    // One listener per thread: the kernel spreads connections (16 on one thread of four
    // would happen once in a billion runs).
    let server = serve_thread_app(four_listeners(), ConnectionLimits::default());
    let (_, names) = threads_seen(server.addr, 16).await;
    assert!(names.len() > 1, "all on one thread: {names:?}");
    assert!(names.iter().all(|n| n.starts_with("sfgate-")), "{names:?}");

    // One shared listener (tests, platforms without SO_REUSEPORT): handed out in turn.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let server = serve_thread_app(
        Listeners::from_listener(listener, 4),
        ConnectionLimits::default(),
    );
    let (_, names) = threads_seen(server.addr, 8).await;
    assert_eq!(names.len(), 4, "every thread serves its turn: {names:?}");
}

#[tokio::test]
async fn max_connections_is_one_limit_across_threads() {
    let max = 12;
    let server = serve_thread_app(
        four_listeners(),
        ConnectionLimits {
            max_connections: max,
            ..Default::default()
        },
    );
    let (mut open, names) = threads_seen(server.addr, max).await;
    assert!(
        names.len() > 1,
        "the open connections span threads: {names:?}"
    );

    let addr = server.addr;
    let beyond = tokio::spawn(async move { Connection::open(addr).await.get("/thread").await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !beyond.is_finished(),
        "connection {} was served with {max} open on other threads",
        max + 1
    );
    // Still served: the open connections keep working.
    open[0].get("/thread").await;

    open.pop();
    let name = tokio::time::timeout(Duration::from_secs(10), beyond)
        .await
        .expect("served once a connection closed")
        .expect("task");
    assert!(name.starts_with("sfgate-"));
}

#[tokio::test]
async fn shutdown_lets_requests_on_every_thread_finish() {
    let server = serve_thread_app(four_listeners(), ConnectionLimits::default());
    let mut in_flight = Vec::new();
    for _ in 0..16 {
        let mut connection = Connection::open(server.addr).await;
        in_flight.push(tokio::spawn(async move {
            connection.get("/thread?sleep=1500").await
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _ = server.stop.send(());

    let mut names = BTreeSet::new();
    for request in in_flight {
        let name = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("answered")
            .expect("task");
        names.insert(name);
    }
    assert!(names.len() > 1, "the requests spanned threads: {names:?}");
    tokio::time::timeout(Duration::from_secs(10), server.done)
        .await
        .expect("every thread ends")
        .expect("task")
        .expect("serve");
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test]
async fn a_websocket_on_one_thread_and_a_request_on_another_both_finish_on_shutdown() {
    let echo = EchoServer::start().await;
    let upstream = echo.url();
    // Validations take a while, so a request is in flight when shutdown comes.
    let app = TestApp::builder()
        .emulator(|emulator| emulator.latency = Duration::from_millis(1500))
        .configure(|env| {
            env.insert("UPSTREAM_URL".into(), upstream);
            // Two threads sharing the test's listener take connections in turn: the
            // WebSocket's connection goes to one, the request's to the other.
            env.insert("SERVER_THREADS".into(), "2".into());
        })
        .spawn()
        .await;
    let mut ws = connect(&app, "/socket", &bearer(&app)).await;
    ws.send(Message::text("before")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("before")));

    let fresh = app.tokens(ALICE.0);
    let request = tokio::spawn({
        let http = app.http.clone();
        let url = app.url("/oauth2/userinfo");
        async move {
            http.get(url)
                .bearer_auth(fresh.access_token)
                .header("x-instance-url", fresh.instance_url)
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let TestApp { gateway, .. } = app;
    let stopping = tokio::spawn(gateway.shutdown());

    let answer = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("answered")
        .expect("task")
        .expect("the in-flight request finishes");
    assert_eq!(answer.status(), 200);
    match next(&mut ws).await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected Close 1001, got {other:?}"),
    }
    eventually("the upstream saw Close 1001", || {
        echo.closes.lock().expect("lock").contains(&1001)
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown finishes")
        .expect("task")
        .expect("serve");
}

/// An upstream that counts the TCP connections it accepts.
async fn counting_upstream() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicU64::new(0));
    let counted = connections.clone();
    let app = Router::new().fallback(|| async { "hello" });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (url, connections)
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let (upstream, connections) = counting_upstream().await;
    let app = TestApp::builder()
        .gateway_for(&upstream)
        .envs(&[("SKIP_AUTH_ROUTES", "^/public/")])
        .spawn()
        .await;
    let requests = 40;
    // Four clients, each with a kept-alive connection of its own, ten requests each.
    let mut clients = Vec::new();
    for client in 0..4 {
        let url = app.url(&format!("/public/{client}"));
        clients.push(tokio::spawn(async move {
            let http = plain_client();
            for _ in 0..requests / 4 {
                let response = http.get(&url).send().await.expect("request");
                assert_eq!(response.status(), 200);
                assert_eq!(response.text().await.expect("body"), "hello");
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    let opened = connections.load(Ordering::SeqCst);
    assert!(
        opened <= 4,
        "{opened} upstream connections for {requests} requests from 4 client connections"
    );
}

/// An upstream that answers every request at once, before reading its body, and then keeps
/// reading (and discarding) what its connection sends: a connection with an unfinished upload
/// stays open and busy.
async fn early_answering_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nanswered";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_request_is_not_held_behind_another_clients_unfinished_upload() {
    let upstream = early_answering_upstream().await;
    // One thread: both clients share its upstream connections.
    let app = TestApp::builder()
        .gateway_for(&upstream)
        .envs(&[
            ("SKIP_AUTH_ROUTES", "^/public/"),
            ("SERVER_THREADS", "1"),
            ("UPSTREAM_TIMEOUT", "20"),
        ])
        .spawn()
        .await;
    // A first chunk, then nothing: the upload never ends.
    let stalled = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"first chunk"))
    })
    .chain(futures_util::stream::pending());
    let uploading = app
        .http
        .post(app.url("/public/early"))
        .body(reqwest::Body::wrap_stream(stalled))
        .send()
        .await
        .expect("the upstream's early answer");
    assert_eq!(uploading.status(), 200);
    assert_eq!(uploading.text().await.expect("body"), "answered");

    let started = std::time::Instant::now();
    let other = tokio::time::timeout(
        Duration::from_secs(10),
        plain_client().get(app.url("/public/other")).send(),
    )
    .await
    .expect("answered without waiting for the upload")
    .expect("request");
    assert_eq!(other.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} for another client's upload",
        started.elapsed()
    );
}
