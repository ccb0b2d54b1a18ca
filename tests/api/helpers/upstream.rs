//! The upstream app of gateway mode: echoes what it received as JSON, streams or counts large
//! bodies, can be slow; the gateway in front of it, and forward auth as nginx and Traefik ask.

use crate::common::*;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{any, get};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub const CHUNK_LEN: usize = 64 * 1024;
pub static CHUNK: [u8; CHUNK_LEN] = [b'x'; CHUNK_LEN];
pub const HUNDRED_MB: u64 = 100 * 1024 * 1024;

/// The upstream app: echoes what it received as JSON, streams or counts large bodies, and can
/// be slow. Counts every request that reaches it.
pub async fn start_echo() -> StubServer {
    StubServer::serve(
        Router::new()
            .route("/download/{n}", get(download))
            .route("/upload", any(upload))
            .route("/slow", get(slow))
            .route("/slow-body", get(slow_body))
            .fallback(echo),
    )
    .await
}

pub async fn echo(request: Request) -> Json<Value> {
    let headers = headers_json(request.headers());
    let (version, method, path, query) = (
        format!("{:?}", request.version()),
        request.method().to_string(),
        request.uri().path().to_string(),
        request.uri().query().map(str::to_string),
    );
    let body = axum::body::to_bytes(request.into_body(), 1024 * 1024)
        .await
        .unwrap_or_default();
    Json(json!({
        "version": version,
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

pub async fn download(Path(n): Path<u64>) -> Response {
    let chunks = n / CHUNK_LEN as u64;
    let stream = futures_util::stream::iter(0..chunks)
        .map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK)));
    Response::new(Body::from_stream(stream))
}

pub async fn upload(request: Request) -> Json<Value> {
    let mut stream = request.into_body().into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received += bytes.len() as u64,
            Err(_) => break,
        }
    }
    Json(json!({ "received": received }))
}

pub async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(4)).await;
    "late"
}

/// Headers at once, then the body over about 2.4 s.
pub async fn slow_body() -> Response {
    let stream = futures_util::stream::iter(0..4).then(|i| async move {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        Ok::<_, std::io::Error>(Bytes::from_static(b"tick\n"))
    });
    Response::new(Body::from_stream(stream))
}

pub fn one(echoed: &Value, name: &str) -> String {
    let values = received(echoed, name);
    assert_eq!(values.len(), 1, "{name}: {values:?} in {echoed}");
    values[0].clone()
}

pub const IDENTITY_HEADERS: [&str; 7] = [
    "x-salesforce-user-id",
    "x-salesforce-org-id",
    "x-salesforce-username",
    "x-salesforce-instance-url",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
];

pub fn spoofed(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    IDENTITY_HEADERS
        .iter()
        .fold(request, |r, name| r.header(*name, "spoofed"))
}

/// The resident set size of this test process, in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// The highest RSS seen while it runs, sampled from a thread of its own every few
/// milliseconds: a buffered body freed at the end would not show in a before/after reading.
pub struct PeakRss {
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    pub sampler: std::thread::JoinHandle<u64>,
}

impl PeakRss {
    pub fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = rss();
            while !flag.load(Ordering::SeqCst) {
                peak = peak.max(rss());
                std::thread::sleep(Duration::from_millis(2));
            }
            peak.max(rss())
        });
        Self { stop, sampler }
    }

    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.sampler.join().expect("sampler")
    }
}

/// Sends raw bytes to the gateway (for requests a URL library would normalise first) and
/// returns the status code.
pub async fn raw_status(app: &TestApp, request: &str) -> u16 {
    let answer = crate::common::raw_http::send_raw(app.gateway.addr, request.as_bytes()).await;
    assert_ne!(answer.status, 0, "no status in {}", answer.head);
    answer.status
}

pub async fn forward_auth(app: &TestApp, headers: HeaderMap) -> reqwest::Response {
    app.http
        .get(app.url("/oauth2/auth"))
        .headers(headers)
        .send()
        .await
        .expect("forward auth")
}

pub fn header_map(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                axum::http::HeaderName::from_static(k),
                v.parse().expect("value"),
            )
        })
        .collect()
}
