//! WebSockets through gateway mode: the real gateway and emulator, a WebSocket echo server as
//! the upstream, and tokio-tungstenite as the client, all on loopback.

use crate::common::raw_http::send_raw;
use crate::common::*;
use crate::helpers::websocket::*;
use futures_util::SinkExt;
use sfgate_emulator::Endpoint;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn text_and_binary_frames_cross_both_ways_and_the_close_handshake_completes() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let mut ws = connect(&app, "/socket?room=1", &bearer(&app)).await;

    ws.send(Message::text("hello through sfgate"))
        .await
        .expect("send");
    assert_eq!(
        next(&mut ws).await,
        Some(Message::text("hello through sfgate"))
    );
    // Binary, and large enough to span several reads and frames of the tunnel's buffer.
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(blob.clone())).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::binary(blob)));
    for i in 0..50 {
        ws.send(Message::text(format!("message {i}")))
            .await
            .expect("send");
    }
    for i in 0..50 {
        assert_eq!(
            next(&mut ws).await,
            Some(Message::text(format!("message {i}")))
        );
    }
    assert_eq!(open_tunnels(&app), 1);
    let scraped = scrape(&app).await;
    assert!(
        metric(&scraped, "sfgate_upgraded_connections", &[]) >= 1.0,
        "{scraped}"
    );
    assert!(
        metric(&scraped, "sfgate_upgrades_total", &[("status", "101")]) >= 1.0,
        "{scraped}"
    );

    // The close handshake: the client's Close reaches the upstream, whose reply comes back.
    ws.close(None).await.expect("close");
    match next(&mut ws).await {
        Some(Message::Close(_)) | None => {}
        other => panic!("expected the close reply, got {other:?}"),
    }
    eventually("the upstream saw the Close frame", || {
        !echo.closes.lock().expect("lock").is_empty()
    })
    .await;
    eventually("the tunnel is gone", || open_tunnels(&app) == 0).await;
    assert_eq!(echo.connections(), 1);
}

#[tokio::test]
async fn the_upstreams_handshake_carries_identity_headers_and_no_credentials_or_forgeries() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let mut headers = bearer(&app);
    headers.push(("x-salesforce-user-id", "005FORGED0000001".into()));
    headers.push(("x-forwarded-email", "mallory@evil.example".into()));
    headers.push(("cookie", "theme=dark; sfgate_session=stolen".into()));
    headers.push(("sec-websocket-protocol", "chat".into()));
    let (mut ws, response) =
        tokio_tungstenite::connect_async(handshake(&ws_url(&app, "/socket"), &headers))
            .await
            .expect("handshake");
    assert_eq!(response.status(), 101);
    let seen = echo.last_handshake();
    let user = seen["x-salesforce-user-id"].to_str().expect("text");
    assert_ne!(user, "005FORGED0000001");
    assert!(user.starts_with("005"), "{user}");
    assert_eq!(seen.get_all("x-salesforce-user-id").iter().count(), 1);
    let org = seen["x-salesforce-org-id"].to_str().expect("text");
    assert!(org.starts_with(ACME), "{org}");
    assert_eq!(seen["x-salesforce-username"], ALICE.0);
    assert_eq!(seen["x-forwarded-user"], user);
    assert_ne!(seen["x-forwarded-email"], "mallory@evil.example");
    assert!(seen.get("authorization").is_none());
    assert!(seen.get("x-instance-url").is_none());
    assert_eq!(seen["cookie"], "theme=dark");
    // What the WebSocket handshake itself needs passes through.
    assert_eq!(seen["upgrade"], "websocket");
    assert_eq!(seen["sec-websocket-version"], "13");
    assert!(seen.contains_key("sec-websocket-key"));
    assert_eq!(seen["sec-websocket-protocol"], "chat");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    ws.send(Message::text("still works")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("still works")));
}

#[tokio::test]
async fn a_browser_session_opens_a_websocket_without_the_session_cookie_reaching_the_app() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let browser = browser_client();
    let callback = app.login(&browser, ALICE).await;
    let session = set_cookies(callback.headers())
        .into_iter()
        .filter_map(|c| c.split(';').next().map(str::to_string))
        .find(|pair| pair.starts_with("sfgate_session="))
        .expect("a session cookie after login");
    // A browser names the page's origin: here sfgate's own (cross-site ones are refused, see
    // `cookie_websocket_handshakes_must_come_from_our_origin_or_a_listed_one`).
    let headers = [
        ("cookie", format!("{session}; lang=en")),
        ("origin", app.base.clone()),
    ];
    let mut ws = connect(&app, "/live", &headers).await;
    let seen = echo.last_handshake();
    assert_eq!(seen["x-salesforce-username"], ALICE.0);
    assert_eq!(seen["cookie"], "lang=en");
    ws.send(Message::text("hi")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("hi")));
}

#[tokio::test]
async fn unauthenticated_upgrades_get_401_or_303_and_never_reach_the_upstream() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let before = scrape(&app).await;
    for (headers, status) in [
        (vec![], 401),
        (
            vec![
                ("authorization", "Bearer not-a-token".to_string()),
                ("x-instance-url", app.emulator.base_url()),
            ],
            401,
        ),
        (vec![("accept", "text/html".to_string())], 303),
        (
            vec![("x-salesforce-user-id", "005FORGED0000001".to_string())],
            401,
        ),
    ] {
        let error = tokio_tungstenite::connect_async(handshake(&ws_url(&app, "/socket"), &headers))
            .await
            .expect_err("refused");
        match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                expect_status_of(
                    response.status().as_u16(),
                    response.body().as_deref().unwrap_or_default(),
                    status,
                    format!("/socket with {headers:?}"),
                );
            }
            other => panic!("expected an HTTP refusal, got {other}"),
        }
    }
    assert_eq!(echo.connections(), 0);
    let after = scrape(&app).await;
    let grew = |status: &str| {
        metric(&after, "sfgate_upgrades_total", &[("status", status)])
            - metric(&before, "sfgate_upgrades_total", &[("status", status)])
    };
    assert!(grew("401") >= 3.0, "{after}");
    assert!(grew("303") >= 1.0, "{after}");
}

#[tokio::test]
async fn an_upstream_refusing_the_upgrade_is_passed_through() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let error =
        tokio_tungstenite::connect_async(handshake(&ws_url(&app, "/refuse"), &bearer(&app)))
            .await
            .expect_err("refused by the upstream");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            expect_status_of(
                response.status().as_u16(),
                response.body().as_deref().unwrap_or_default(),
                403,
                "/refuse",
            );
            assert_eq!(response.headers()["x-upstream"], "refused");
            assert_eq!(response.body().as_deref(), Some(&b"no sockets here"[..]));
        }
        other => panic!("expected the upstream's 403, got {other}"),
    }
    assert_eq!(echo.connections(), 1);
    assert_eq!(open_tunnels(&app), 0);
}

#[tokio::test]
async fn an_unreachable_upstream_is_502() {
    let closed = refusing_address();
    let upstream = format!("http://{}", closed.addr);
    let app = TestApp::builder().gateway_for(&upstream).spawn().await;
    let error =
        tokio_tungstenite::connect_async(handshake(&ws_url(&app, "/socket"), &bearer(&app)))
            .await
            .expect_err("no upstream");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            expect_status_of(
                response.status().as_u16(),
                response.body().as_deref().unwrap_or_default(),
                502,
                "/socket",
            );
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("json");
            assert_eq!(body["error"], "bad_gateway");
        }
        other => panic!("expected 502, got {other}"),
    }
}

#[tokio::test]
async fn an_idle_websocket_is_closed_after_the_idle_timeout() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("WEBSOCKET_IDLE_TIMEOUT", "1")])
        .spawn()
        .await;
    let mut ws = connect(&app, "/socket", &bearer(&app)).await;
    // Traffic keeps it open past the timeout...
    for i in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        ws.send(Message::text(format!("keep {i}")))
            .await
            .expect("send");
        assert_eq!(
            next(&mut ws).await,
            Some(Message::text(format!("keep {i}")))
        );
    }
    // ...silence closes it.
    let started = std::time::Instant::now();
    assert_eq!(next(&mut ws).await, None);
    assert!(started.elapsed() >= Duration::from_millis(900));
    eventually("the tunnel is gone", || open_tunnels(&app) == 0).await;
}

#[tokio::test]
async fn shutdown_closes_open_websockets_with_going_away_on_both_sides() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let mut ws = connect(&app, "/socket", &bearer(&app)).await;
    ws.send(Message::text("before")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("before")));
    let TestApp { gateway, .. } = app;
    let stopping = tokio::spawn(gateway.shutdown());
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

/// A socket busy in both directions is closed at shutdown too. The tunnel looks at the close
/// signal when a read must wait, and a busy direction must still get to it. The client keeps
/// four messages in flight, so that both directions always carry data but no more is queued
/// than a loaded machine reads within the close grace.
#[tokio::test]
async fn shutdown_closes_a_websocket_kept_busy_in_both_directions() {
    use futures_util::StreamExt;
    const IN_FLIGHT: usize = 4;
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let mut ws = connect(&app, "/socket", &bearer(&app)).await;
    let payload = "x".repeat(16 * 1024);
    for _ in 0..IN_FLIGHT {
        ws.send(Message::text(payload.as_str()))
            .await
            .expect("send");
    }
    let TestApp { gateway, .. } = app;
    let mut gateway = Some(gateway);
    let mut stopping = None;
    let mut echoes = 0;
    let close = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => {
                    echoes += 1;
                    if echoes == 20 {
                        let gateway = gateway.take().expect("stopped once");
                        stopping = Some(tokio::spawn(gateway.shutdown()));
                    }
                    // Keeps the messages in flight until the Close comes.
                    let _ = ws.send(Message::text(payload.as_str())).await;
                }
                Some(Ok(Message::Close(frame))) => return frame,
                other => panic!("expected a message or a Close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("the busy socket was closed in time");
    assert_eq!(close.map(|frame| frame.code), Some(CloseCode::Away));
    assert!(echoes > 20, "the socket was still busy when shutdown began");
    drop(ws);
    tokio::time::timeout(Duration::from_secs(10), stopping.expect("shutdown began"))
        .await
        .expect("shutdown finishes")
        .expect("task")
        .expect("serve");
}

/// An upgraded connection is still an open connection: it keeps its MAX_CONNECTIONS slot until
/// the tunnel ends, so WebSockets cannot be used to hold more sockets open than the limit.
#[tokio::test]
async fn an_open_websocket_counts_toward_max_connections_until_it_closes() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("MAX_CONNECTIONS", "1")])
        .spawn()
        .await;
    let mut ws = connect(&app, "/socket", &bearer(&app)).await;
    ws.send(Message::text("ping")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("ping")));

    let addr = app.gateway.addr;
    let waiting = tokio::spawn(async move {
        send_raw(
            addr,
            b"GET /oauth2/healthz HTTP/1.1\r\nHost: sfgate\r\nConnection: close\r\n\r\n",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !waiting.is_finished(),
        "a connection beyond the limit was served while the WebSocket held the only slot"
    );
    // The tunnel still works while the other connection waits.
    ws.send(Message::text("still here")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("still here")));

    ws.close(None).await.expect("close");
    while let Some(message) = next(&mut ws).await {
        if matches!(message, Message::Close(_)) {
            break;
        }
    }
    drop(ws);
    let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once the WebSocket closed")
        .expect("task");
    assert_eq!(answer.status, 200, "{}", answer.head);
}

/// The refusal a handshake got: its status and JSON `error`.
async fn refusal(app: &TestApp, headers: &[(&'static str, String)]) -> (u16, String) {
    let error = tokio_tungstenite::connect_async(handshake(&ws_url(app, "/socket"), headers))
        .await
        .expect_err("refused");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .unwrap_or_default();
            (
                response.status().as_u16(),
                body["error"].as_str().unwrap_or_default().to_owned(),
            )
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

async fn session_cookie(app: &TestApp) -> String {
    let browser = browser_client();
    let callback = app.login(&browser, ALICE).await;
    session_pair(callback.headers()).expect("a session cookie after login")
}

/// Cross-site WebSocket hijacking: a page elsewhere (another site, a sibling subdomain, a
/// sandboxed frame) opening a socket with the user's cookie is refused 403 before the app sees
/// a handshake; listed origins pass; bearer-authenticated handshakes are not affected.
#[tokio::test]
async fn cookie_websocket_handshakes_must_come_from_our_origin_or_a_listed_one() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("WEBSOCKET_ALLOWED_ORIGINS", "https://app.example.test")])
        .spawn()
        .await;
    let session = session_cookie(&app).await;
    let own = app.base.clone();
    let sibling = own.replace("://", "://evil.");
    for (origin, fetch_site) in [
        (Some("https://evil.example"), None),
        (Some("https://evil.example"), Some("cross-site")),
        (Some(sibling.as_str()), Some("same-site")),
        (Some("null"), None),
        (Some("https://app.example.test.evil.example"), None),
        (None, None),
        (None, Some("same-origin")),
        // Our own origin, but the browser says the page is on another site.
        (Some(own.as_str()), Some("cross-site")),
    ] {
        let mut headers = vec![("cookie", session.clone())];
        if let Some(origin) = origin {
            headers.push(("origin", origin.to_owned()));
        }
        if let Some(site) = fetch_site {
            headers.push(("sec-fetch-site", site.to_owned()));
        }
        assert_eq!(
            refusal(&app, &headers).await,
            (403, "cross_site_request".to_owned()),
            "{origin:?} {fetch_site:?}"
        );
    }
    assert_eq!(
        echo.connections(),
        0,
        "no refused handshake reached the app"
    );

    for origin in [
        own.as_str(),
        "https://app.example.test",
        "HTTPS://APP.EXAMPLE.TEST",
    ] {
        let headers = [
            ("cookie", session.clone()),
            ("origin", origin.to_owned()),
            ("sec-fetch-site", "same-site".to_owned()),
        ];
        let mut ws = connect(&app, "/socket", &headers).await;
        ws.close(None).await.expect("close");
    }
    // A bearer token is sent on purpose by the program holding it: any origin, or none.
    let mut headers = bearer(&app);
    headers.push(("origin", "https://evil.example".into()));
    headers.push(("sec-fetch-site", "cross-site".into()));
    connect(&app, "/socket", &headers).await;
    connect(&app, "/socket", &bearer(&app)).await;
}

/// A cookie handshake from another site whose session was renewed on the way in (its access
/// token had expired) is refused, and the refusal still carries the renewed cookie: the
/// renewal spent the old cookie's refresh token, so a browser left with the old cookie would
/// lose its session.
#[tokio::test]
async fn a_cross_site_handshake_refused_after_a_renewal_still_sets_the_renewed_cookie() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("IDENTITY_CACHE_TTL", "0")])
        .spawn()
        .await;
    let session = session_cookie(&app).await;
    app.emulator.expire_access_tokens();
    let token_calls = app.emulator.calls(Endpoint::Token);
    let headers = [
        ("cookie", session.clone()),
        ("origin", "https://evil.example".to_owned()),
    ];
    let error = tokio_tungstenite::connect_async(handshake(&ws_url(&app, "/socket"), &headers))
        .await
        .expect_err("refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
        panic!("expected an HTTP refusal, got {error}");
    };
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls + 1);
    let renewed = session_pair(response.headers()).expect("the renewed session cookie");
    assert_ne!(renewed, session);
    assert_eq!(
        echo.connections(),
        0,
        "the refused handshake reached the app"
    );
    // The renewed cookie opens a socket from sfgate's own origin without another renewal.
    let headers = [("cookie", renewed), ("origin", app.base.clone())];
    let mut ws = connect(&app, "/socket", &headers).await;
    ws.close(None).await.expect("close");
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls + 1);
}

/// Bytes sent right behind the handshake, in the same write, on both sides: the HTTP
/// connections have read them before the tunnel takes the sockets over to the tunnel threads,
/// and they must cross first and whole. Raw sockets, so that neither side waits for the
/// other's handshake before writing; the tunnel is counted as moved.
#[tokio::test]
async fn bytes_sent_right_behind_the_handshake_cross_the_tunnel_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads up to the end of an HTTP head; returns the head and whatever came after it.
    async fn head_and_rest(stream: &mut TcpStream) -> (String, Vec<u8>) {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = seen.split_off(end + 4);
                return (String::from_utf8_lossy(&seen).into_owned(), rest);
            }
        }
    }

    /// Reads until `got` holds `want` (bytes may arrive in pieces).
    async fn read_until(stream: &mut TcpStream, got: &mut Vec<u8>, want: &[u8]) {
        let mut buf = [0u8; 4096];
        while !got.windows(want.len()).any(|w| w == want) {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            assert!(n > 0, "closed with {:?}", String::from_utf8_lossy(got));
            got.extend_from_slice(&buf[..n]);
        }
    }

    // The app: its 101 and its first bytes in one write, then an echo of what arrives.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let (_, mut early) = head_and_rest(&mut socket).await;
        socket
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                  Upgrade: websocket\r\n\r\nthe app's first bytes;",
            )
            .await
            .expect("write");
        // Echo, starting with anything that came behind the handshake.
        let mut buf = [0u8; 4096];
        loop {
            if !early.is_empty() && socket.write_all(&early).await.is_err() {
                return;
            }
            early.clear();
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => early.extend_from_slice(&buf[..n]),
            }
        }
    });
    let app = TestApp::builder().gateway_for(&upstream).spawn().await;
    let moved_before = metric(&scrape(&app).await, "sfgate_tunnels_moved_total", &[]);
    let auth = bearer(&app);
    let mut client = TcpStream::connect(app.gateway.addr).await.expect("connect");
    let mut request = String::from(
        "GET /socket HTTP/1.1\r\nHost: sfgate\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    for (name, value) in &auth {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\nthe client's first bytes;");
    client.write_all(request.as_bytes()).await.expect("write");

    let (head, mut got) = head_and_rest(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    read_until(&mut client, &mut got, b"the app's first bytes;").await;
    read_until(&mut client, &mut got, b"the client's first bytes;").await;
    // And the tunnel goes on carrying bytes both ways after them.
    client.write_all(b"later;").await.expect("write");
    read_until(&mut client, &mut got, b"later;").await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        "the app's first bytes;the client's first bytes;later;"
    );
    let moved = metric(&scrape(&app).await, "sfgate_tunnels_moved_total", &[]);
    assert!(
        moved > moved_before,
        "the tunnel was not moved to the tunnel threads ({moved_before} -> {moved})"
    );
}
