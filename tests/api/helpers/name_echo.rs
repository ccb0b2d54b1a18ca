//! An upstream app that echoes every header as it received it (name spelling included), and
//! raw HTTP/1.1 requests to the gateway in front of it: what the trust-boundary tests compare.

use crate::common::raw_http::Answer;
use crate::common::StubServer;
use axum::extract::Request;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// The upstream app: echoes the method, path and every header (name as received, values) as
/// JSON, and counts requests.
pub async fn start_echo() -> StubServer {
    StubServer::serve(Router::new().fallback(echo)).await
}

pub async fn echo(request: Request) -> Json<Value> {
    let headers: Vec<Value> = request
        .headers()
        .iter()
        .map(|(name, value)| json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())]))
        .collect();
    Json(json!({
        "path": request.uri().path(),
        "headers": headers,
    }))
}

/// The (name, value) pairs the echo app received.
pub fn received(echoed: &Value) -> Vec<(String, String)> {
    echoed["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().expect("name").to_string(),
                pair[1].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

pub fn received_value(echoed: &Value, name: &str) -> Option<String> {
    received(echoed)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Sends one raw HTTP/1.1 request (`Connection: close` is added) and reads the whole answer.
pub async fn send_raw(addr: SocketAddr, request_line: &str, headers: &[(&str, &str)]) -> Answer {
    let mut raw = format!("{request_line}\r\nHost: gw.example\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let answer = crate::common::raw_http::send_raw(addr, raw.as_bytes()).await;
    assert_ne!(answer.status, 0, "no status in {}", answer.head);
    answer
}
