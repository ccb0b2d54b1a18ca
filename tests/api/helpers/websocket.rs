//! WebSockets through the gateway: an echo upstream that records handshakes and close codes,
//! handshakes with chosen headers, and waits sized for a loaded machine.

use crate::common::*;
use axum::http::{HeaderMap, HeaderValue, Response};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The upstream app: a WebSocket echo server that records every handshake it sees and the
/// close codes it receives. `/refuse` answers the handshake with 403 and a body instead.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicU64>,
    pub handshakes: Arc<Mutex<Vec<HeaderMap>>>,
    pub closes: Arc<Mutex<Vec<u16>>>,
}

impl EchoServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicU64::new(0));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let closes = Arc::new(Mutex::new(Vec::new()));
        let (count, seen, closed) = (connections.clone(), handshakes.clone(), closes.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (seen, closed) = (seen.clone(), closed.clone());
                tokio::spawn(async move {
                    let callback = |request: &Request, response| {
                        seen.lock().expect("lock").push(request.headers().clone());
                        if request.uri().path() == "/refuse" {
                            let mut refusal = ErrorResponse::new(Some("no sockets here".into()));
                            *refusal.status_mut() = axum::http::StatusCode::FORBIDDEN;
                            refusal
                                .headers_mut()
                                .insert("x-upstream", HeaderValue::from_static("refused"));
                            refusal
                                .headers_mut()
                                .insert("content-length", HeaderValue::from_static("15"));
                            return Err(refusal);
                        }
                        let mut response: Response<()> = response;
                        if let Some(protocol) = request.headers().get("sec-websocket-protocol") {
                            response
                                .headers_mut()
                                .insert("sec-websocket-protocol", protocol.clone());
                        }
                        Ok::<Response<()>, ErrorResponse>(response)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await
                    else {
                        return;
                    };
                    while let Some(Ok(message)) = ws.next().await {
                        if let Message::Close(frame) = &message {
                            closed
                                .lock()
                                .expect("lock")
                                .push(frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(0));
                        } else if (message.is_text() || message.is_binary())
                            && ws.send(message).await.is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            handshakes,
            closes,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn last_handshake(&self) -> HeaderMap {
        self.handshakes
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a handshake reached the upstream")
    }
}

pub fn ws_url(app: &TestApp, path: &str) -> String {
    format!("ws://{}{path}", app.gateway.addr)
}

/// A handshake request with the given extra headers.
pub fn handshake(
    url: &str,
    headers: &[(&'static str, String)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().expect("request");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).expect("value"));
    }
    request
}

pub fn bearer(app: &TestApp) -> Vec<(&'static str, String)> {
    let t = app.tokens(ALICE.0);
    vec![
        ("authorization", format!("Bearer {}", t.access_token)),
        ("x-instance-url", t.instance_url),
    ]
}

pub async fn connect(app: &TestApp, path: &str, headers: &[(&'static str, String)]) -> Client {
    let (ws, response) = tokio_tungstenite::connect_async(handshake(&ws_url(app, path), headers))
        .await
        .expect("the handshake succeeds");
    assert_eq!(response.status(), 101);
    ws
}

/// The next data or close message, within a generous wait for a loaded machine.
pub async fn next(ws: &mut Client) -> Option<Message> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

/// Waits until `check` holds, polling; the gateway's tunnel task ends asynchronously.
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

pub fn open_tunnels(app: &TestApp) -> usize {
    app.gateway
        .state
        .upstream
        .as_ref()
        .expect("gateway mode")
        .tunnels()
        .count()
}
