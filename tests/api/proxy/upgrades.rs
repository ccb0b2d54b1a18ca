//! Protocol upgrades in gateway mode: only WebSocket (and `UPGRADE_PROTOCOLS`) is tunnelled,
//! `h2c` never, and after an upgrade that is not tunnelled every byte of the client's
//! connection is read as HTTP by sfgate again. Raw sockets on both sides: a client library
//! would not send the smuggled bytes, and an app library would not answer 101 to anything.

use super::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An app that answers `101 Switching Protocols` (naming `switches_to`, or the protocol it
/// was offered) to every request, then records whatever else arrives on the connection.
struct SwitchingApp {
    url: String,
    /// Every byte every connection received, in order.
    received: Arc<Mutex<Vec<u8>>>,
}

impl SwitchingApp {
    async fn start(switches_to: Option<&'static str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    log.lock().expect("lock").extend_from_slice(&head);
                    let offered = String::from_utf8_lossy(&head)
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("upgrade")
                                .then(|| v.trim().to_owned())
                        })
                        .unwrap_or_else(|| "h2c".into());
                    let protocol = switches_to.map_or(offered, str::to_owned);
                    let answer = format!(
                        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n\r\n"
                    );
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => log.lock().expect("lock").extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        Self { url, received }
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().expect("lock")).into_owned()
    }
}

const SMUGGLED: &str =
    "GET /admin/secret HTTP/1.1\r\nHost: app\r\nX-Salesforce-User-Id: 005FORGED0000001\r\n\r\n";

/// Bob may use the app but not `/admin/`; he sends an upgrade and, right behind it on the
/// same connection, a request for `/admin/secret` with a forged identity header.
async fn smuggle(app: &TestApp, connection: &str, upgrade: &str) -> String {
    let t = app
        .emulator
        .issue_tokens_with_scope("bob@acme.example", "api custom_permissions")
        .expect("bob");
    let request = format!(
        "GET /app HTTP/1.1\r\nHost: app\r\nAuthorization: Bearer {}\r\nX-Instance-Url: {}\r\n\
         Connection: {connection}\r\nUpgrade: {upgrade}\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n{SMUGGLED}",
        t.access_token, t.instance_url
    );
    let mut stream = tokio::net::TcpStream::connect(app.gateway.addr)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    // Everything that comes back until the connection is quiet for a second (it may stay
    // open: keep-alive, or a tunnel).
    let mut answers = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answers.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&answers).into_owned()
}

async fn gateway(app_url: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("SF_SCOPES", "api custom_permissions"),
        ("ROUTE_RULES", "/admin/=perm:Sfgate_Admin"),
    ];
    env.extend_from_slice(extra);
    TestApp::builder()
        .gateway_for(app_url)
        .envs(&env)
        .spawn()
        .await
}

/// The h2c smuggling class: whatever the spelling, an upgrade sfgate does not tunnel is not
/// offered to the app, and when the app answers 101 anyway no tunnel opens: the smuggled
/// request is read by sfgate (and refused by the route rule), never by the app.
#[tokio::test]
async fn an_upgrade_that_is_not_tunnelled_never_carries_smuggled_requests_to_the_app() {
    for (connection, upgrade, extra) in [
        ("Upgrade, HTTP2-Settings", "h2c", vec![]),
        ("upgrade", "H2C", vec![]),
        ("keep-alive, Upgrade", "h2c", vec![]),
        ("Upgrade", "TLS/1.0", vec![]),
        ("Upgrade", "h2c, TLS/1.0", vec![]),
        // h2c stays out even when other protocols are listed.
        ("Upgrade", "h2c", vec![("UPGRADE_PROTOCOLS", "TLS/1.0")]),
    ] {
        let app_server = SwitchingApp::start(None).await;
        let app = gateway(&app_server.url, &extra).await;
        let head = smuggle(&app, connection, upgrade).await;
        // sfgate answered the first request and read the second as a request of its own.
        assert!(
            head.contains("HTTP/1.1 401") || head.contains("HTTP/1.1 403"),
            "{head}"
        );
        let seen = app_server.received();
        assert!(
            !seen.contains("/admin/secret") && !seen.contains("FORGED"),
            "{connection} / {upgrade}: the app received the smuggled request:\n{seen}\nanswer: {head}"
        );
        assert!(
            seen.starts_with("GET /app "),
            "{connection} / {upgrade}: {seen}"
        );
        let lower = seen.to_ascii_lowercase();
        assert!(
            !lower.contains("upgrade:") && !lower.contains("http2-settings"),
            "{connection} / {upgrade}: the upgrade was offered to the app:\n{seen}"
        );
    }
}

/// Offered WebSocket, the app switches to another protocol: nothing is tunnelled.
#[tokio::test]
async fn an_app_switching_to_a_protocol_it_was_not_offered_gets_no_tunnel() {
    let app_server = SwitchingApp::start(Some("h2c")).await;
    let app = gateway(&app_server.url, &[]).await;
    let head = smuggle(&app, "Upgrade", "websocket, h2c").await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let seen = app_server.received();
    assert!(!seen.contains("/admin/secret"), "{seen}");
    // Only WebSocket was offered, not the client's whole list.
    let offered: Vec<&str> = seen
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("upgrade:"))
        .collect();
    assert_eq!(offered, ["upgrade: websocket"], "{seen}");
}

/// A protocol listed in `UPGRADE_PROTOCOLS` is tunnelled like WebSocket.
#[tokio::test]
async fn a_listed_protocol_is_tunnelled() {
    let app_server = SwitchingApp::start(None).await;
    let app = gateway(&app_server.url, &[("UPGRADE_PROTOCOLS", "TLS/1.0")]).await;
    let head = smuggle(&app, "Upgrade", "TLS/1.0").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Through a tunnel the bytes are the client's business (and the operator's choice).
    let seen = app_server.received();
    assert!(
        seen.to_ascii_lowercase().contains("upgrade: tls/1.0"),
        "{seen}"
    );
}
