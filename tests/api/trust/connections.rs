//! Connection limits: HTTP/2 deadlines and MAX_CONNECTIONS (raw h2c with prior knowledge).

use super::*;
use crate::helpers::h2::*;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn http2_connections_without_a_complete_request_are_closed_at_the_deadline() {
    let deadline = Duration::from_millis(600);
    let (addr, _stop) = plain_server(sfgate::server::ConnectionLimits {
        header_read_timeout: deadline,
        ..Default::default()
    })
    .await;
    // Deadline, then the grace for a graceful close, plus generous slack for a loaded machine.
    let limit = deadline + sfgate::server::CLOSE_GRACE + Duration::from_secs(4);

    // Before the first connection is accepted, so the deadline cannot have started earlier.
    let started = std::time::Instant::now();
    // 1. The preface, then nothing.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(&h2_hello()).await.expect("write");
    // 2. A HEADERS frame without END_HEADERS: its CONTINUATION never comes.
    let mut incomplete = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = h2_hello();
    bytes.extend(h2_frame(0x1, 0x1, 1, &GET_ROOT_HPACK[..2]));
    incomplete.write_all(&bytes).await.expect("write");
    // 3. Not even a preface.
    let mut silent = TcpStream::connect(addr).await.expect("connect");

    for (what, stream) in [
        ("preface only", &mut idle),
        ("incomplete HEADERS", &mut incomplete),
        ("nothing at all", &mut silent),
    ] {
        let answer = closed_within(stream, limit).await;
        assert!(answer.is_ok(), "{what}: still open after {limit:?}");
    }
    assert!(
        started.elapsed() >= deadline,
        "closed no earlier than the deadline ({:?})",
        started.elapsed()
    );

    // A complete HTTP/2 request is answered, and the connection then closes once idle.
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = h2_hello();
    bytes.extend(h2_frame(0x1, 0x5, 1, &GET_ROOT_HPACK));
    ok.write_all(&bytes).await.expect("write");
    let seen = closed_within(&mut ok, limit)
        .await
        .expect("closed once idle");
    let frames = frames(&seen);
    assert!(
        frames.contains(&(0x1, 1)),
        "a HEADERS response on stream 1: {frames:?}"
    );
    assert!(
        frames.contains(&(0x7, 0)),
        "a GOAWAY before closing: {frames:?}"
    );
}

#[tokio::test]
async fn an_open_request_keeps_its_connection_past_the_idle_deadline() {
    let deadline = Duration::from_millis(300);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // A response body that takes three deadlines to arrive.
    let app = Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            let stream = futures_util::stream::iter(0..3).then(|_| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"tick\n"))
            });
            axum::body::Body::from_stream(stream)
        }),
    );
    tokio::spawn(sfgate::server::serve(
        listener,
        app,
        std::future::pending(),
        sfgate::server::ConnectionLimits {
            header_read_timeout: deadline,
            ..Default::default()
        },
    ));
    let answer = send_raw(addr, "GET /slow HTTP/1.1", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "tick\ntick\ntick\n");
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_until_one_closes() {
    watch();
    let (addr, _stop) = plain_server(sfgate::server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 2,
        ..Default::default()
    })
    .await;
    let mut first = TcpStream::connect(addr).await.expect("connect");
    first.write_all(&h2_hello()).await.expect("write");
    let mut second = TcpStream::connect(addr).await.expect("connect");
    second.write_all(&h2_hello()).await.expect("write");
    // Both are being served: each gets the server's SETTINGS.
    for stream in [&mut first, &mut second] {
        let mut buf = [0u8; 9];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf))
            .await
            .expect("served in time")
            .expect("settings");
        assert_eq!(buf[3], 0x4, "a SETTINGS frame");
    }

    let third = tokio::spawn(send_raw(addr, "GET / HTTP/1.1", &[]));
    let fourth = tokio::spawn(send_raw(addr, "GET / HTTP/1.1", &[]));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !third.is_finished() && !fourth.is_finished(),
        "connections beyond the limit are held off"
    );

    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("answered once a slot is free")
        .expect("task");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "ok");
    drop(second);
    let answer = tokio::time::timeout(Duration::from_secs(10), fourth)
        .await
        .expect("answered once another slot is free")
        .expect("task");
    assert_eq!(answer.status, 200);
    // Other tests reach their own limits in this process: count this server's (the only one
    // with a limit of 2).
    let said = log_text()
        .lines()
        .filter(|l| l.contains("connection limit reached") && l.contains("max_connections=2"))
        .count();
    assert_eq!(
        said, 1,
        "the limit is logged once, not per waiting connection"
    );
}

#[tokio::test]
async fn the_gateway_applies_header_read_timeout_to_http2() {
    let app = TestApp::builder()
        .env("HEADER_READ_TIMEOUT", "1")
        .spawn()
        .await;
    let started = std::time::Instant::now();
    let mut idle = TcpStream::connect(app.gateway.addr).await.expect("connect");
    idle.write_all(&h2_hello()).await.expect("write");
    let closed = closed_within(&mut idle, Duration::from_secs(8)).await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/2 connection to the gateway stayed open"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the deadline"
    );
}

#[tokio::test]
async fn http2_peers_that_stop_answering_pings_are_dropped_even_mid_request() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // A request that stays in progress far longer than the test: only the pings can end it.
    let app = Router::new().route(
        "/",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            "late"
        }),
    );
    tokio::spawn(sfgate::server::serve(
        listener,
        app,
        std::future::pending(),
        sfgate::server::ConnectionLimits {
            header_read_timeout: Duration::from_secs(600),
            keep_alive_interval: Duration::from_millis(300),
            keep_alive_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    ));
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = h2_hello();
    bytes.extend(h2_frame(0x1, 0x5, 1, &GET_ROOT_HPACK));
    silent.write_all(&bytes).await.expect("write");
    // Never answers the server's PING.
    let seen = closed_within(&mut silent, Duration::from_secs(10))
        .await
        .expect("dropped once its pings went unanswered");
    assert!(
        frames(&seen).contains(&(0x6, 0)),
        "the server pinged first: {:?}",
        frames(&seen)
    );
}

/// While one request keeps a connection busy, the idle deadline does not run; a second
/// stream's header block must still arrive whole within HEADER_READ_TIMEOUT.
#[tokio::test]
async fn an_http2_header_block_left_open_beside_a_busy_stream_is_closed_at_the_deadline() {
    let deadline = Duration::from_millis(600);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Stream 1's request stays in progress far longer than the test.
    let app = Router::new().route(
        "/",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            "late"
        }),
    );
    tokio::spawn(sfgate::server::serve(
        listener,
        app,
        std::future::pending(),
        sfgate::server::ConnectionLimits {
            header_read_timeout: deadline,
            ..Default::default()
        },
    ));
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = h2_hello();
    bytes.extend(h2_frame(0x1, 0x5, 1, &GET_ROOT_HPACK));
    stream.write_all(&bytes).await.expect("write");
    // Let stream 1 reach the app first, so the connection is busy.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    // Stream 3: HEADERS without END_HEADERS, and its CONTINUATION never comes.
    stream
        .write_all(&h2_frame(0x1, 0x1, 3, &GET_ROOT_HPACK[..2]))
        .await
        .expect("write");
    let limit = deadline + Duration::from_secs(4);
    let closed = closed_within(&mut stream, limit).await;
    assert!(
        closed.is_ok(),
        "an open header block held the connection past {limit:?}"
    );
    assert!(
        started.elapsed() >= deadline,
        "not before the deadline ({:?})",
        started.elapsed()
    );
}
