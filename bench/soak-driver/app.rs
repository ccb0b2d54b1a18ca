//! The test app behind the replicas: answers every request with who it was for, echoes
//! WebSockets on `/ws`, and writes down every request it receives (soak id, path, identity
//! headers, any forged value) for the oracle.
//!
//! It listens on one port per replica, so the record says which replica proxied each request.
//! Like many apps it reads paths case-insensitively and decoded, which is what the oracle's
//! check of `ROUTE_RULES` assumes.

use crate::oracle::{AppSeen, Oracle};
use axum::body::Body;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Values and header names the bad actors forge; none may ever reach the app.
pub(crate) const FORGED_VALUE: &str = "forged-by-soak";

/// Identity headers the gateway owns (compared with `_` read as `-`).
const IDENTITY_HEADERS: [&str; 7] = [
    "x-salesforce-user-id",
    "x-salesforce-org-id",
    "x-salesforce-username",
    "x-salesforce-instance-url",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
];

pub(crate) struct App {
    pub(crate) ports: Vec<u16>,
    stop: Option<watch::Sender<bool>>,
    oracle: Arc<Oracle>,
}

impl App {
    /// Binds one loopback port per replica.
    pub(crate) async fn start(oracle: Arc<Oracle>, replicas: usize) -> std::io::Result<Self> {
        let mut listeners = Vec::new();
        for _ in 0..replicas {
            listeners.push(TcpListener::bind("127.0.0.1:0").await?);
        }
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut app = Self {
            ports,
            stop: None,
            oracle,
        };
        app.serve(listeners);
        Ok(app)
    }

    fn serve(&mut self, listeners: Vec<TcpListener>) {
        let (tx, rx) = watch::channel(false);
        for (replica, listener) in listeners.into_iter().enumerate() {
            tokio::spawn(accept_loop(
                listener,
                replica,
                self.oracle.clone(),
                rx.clone(),
            ));
        }
        self.stop = Some(tx);
    }

    /// Closes the listeners and every connection (WebSockets included), as a crashed or
    /// redeployed app does.
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
    }

    /// Listens again on the same ports.
    pub(crate) async fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let mut listeners = Vec::new();
        for port in &self.ports {
            let mut tries = 0;
            loop {
                match TcpListener::bind(("127.0.0.1", *port)).await {
                    Ok(l) => break listeners.push(l),
                    Err(e) if tries > 50 => return Err(e),
                    Err(_) => {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        }
        self.serve(listeners);
        Ok(())
    }
}

async fn accept_loop(
    listener: TcpListener,
    replica: usize,
    oracle: Arc<Oracle>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let (oracle, mut stop, for_service) = (oracle.clone(), stop.clone(), stop.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (oracle, stop) = (oracle.clone(), for_service.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(req, replica, oracle, stop)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn handle(
    mut req: Request<Incoming>,
    replica: usize,
    oracle: Arc<Oracle>,
    stop: watch::Receiver<bool>,
) -> Response<Body> {
    let id = header(&req, "x-soak-id").and_then(|v| v.parse::<u64>().ok());
    let forged: Vec<String> = req
        .headers()
        .iter()
        .filter(|(name, value)| {
            let normal = name.as_str().replace('_', "-");
            (IDENTITY_HEADERS.contains(&normal.as_str()) && name.as_str().contains('_'))
                || value.to_str().is_ok_and(|v| v.contains(FORGED_VALUE))
        })
        .map(|(name, _)| name.to_string())
        .collect();
    let username = header(&req, "x-salesforce-username").map(str::to_string);
    let seen = AppSeen {
        replica,
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        username: username.clone(),
        user_id: header(&req, "x-salesforce-user-id").map(str::to_string),
        forged,
        at: oracle.now(),
    };
    oracle.app_saw(id, seen);
    let ws_key = header(&req, "sec-websocket-key").map(str::to_string);
    if let (Some(key), true) = (ws_key, req.uri().path() == "/ws") {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(echo(upgrade, stop));
        return Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
            .body(Body::empty())
            .unwrap_or_default();
    }
    let body = serde_json::json!({ "id": id, "user": username, "replica": replica });
    Response::builder()
        .header("content-type", "application/json")
        .header("x-soak-app", "1")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

async fn echo(upgrade: hyper::upgrade::OnUpgrade, mut stop: watch::Receiver<bool>) {
    let Ok(upgraded) = upgrade.await else { return };
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        None,
    )
    .await;
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => return,
        };
        match message {
            Some(Ok(m)) if m.is_text() || m.is_binary() => {
                if ws.send(m).await.is_err() {
                    return;
                }
            }
            Some(Ok(_)) => {}
            _ => return,
        }
    }
}

/// The path as a case-insensitive, decoding app reads it: lower case, percent-decoded until
/// stable, `;` parameters dropped, `//` merged, dot segments resolved.
pub(crate) fn app_reading(path: &str) -> String {
    let mut p = path.to_string();
    for _ in 0..4 {
        let decoded = percent_encoding::percent_decode_str(&p)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == p {
            break;
        }
        p = decoded;
    }
    let p = p.to_ascii_lowercase().replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        let seg = seg.split(';').next().unwrap_or("");
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Whether the app would serve `path` as part of its admin area.
pub(crate) fn is_admin_area(path: &str) -> bool {
    let p = app_reading(path);
    p == "/admin" || p.starts_with("/admin/")
}
