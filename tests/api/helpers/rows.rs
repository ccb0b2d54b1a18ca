//! Table-driven bad input: a [`Row`] is one raw HTTP request (method, path, headers as raw
//! bytes, body) written on a `TcpStream`, so nothing a client library refuses to send is out of
//! reach, and what must come back. [`run_rows`] checks every row's promise and the common ones:
//! no 500, no panic, `/healthz` still answers.

use crate::common::raw_http::{send_raw, Answer};
use crate::common::TestApp;
use crate::helpers::log_watch::assert_no_panics;
use std::net::SocketAddr;

/// One row of a table: a request and what must come back.
pub struct Row {
    pub name: String,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// A whole request written as is, for input no request line can be built from.
    pub raw: Option<Vec<u8>>,
    pub status: u16,
    pub code: Option<&'static str>,
}

pub fn get(name: impl Into<String>, path: impl Into<String>) -> Row {
    Row {
        name: name.into(),
        method: "GET",
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
        raw: None,
        status: 0,
        code: None,
    }
}

pub fn post(name: impl Into<String>, path: impl Into<String>) -> Row {
    Row {
        method: "POST",
        ..get(name, path)
    }
}

pub fn raw_request(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Row {
    Row {
        raw: Some(bytes.into()),
        ..get(name, "")
    }
}

impl Row {
    pub fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }
    pub fn bearer(self, token: &str, instance: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
            .header("x-instance-url", instance)
    }
    pub fn body(mut self, content_type: &str, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self.header("content-type", content_type)
    }
    pub fn expect(mut self, status: u16, code: Option<&'static str>) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    pub fn bytes(&self, addr: SocketAddr) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = format!(
            "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
            self.method, self.path
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !self.body.is_empty() || self.method == "POST" {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

pub async fn healthz_ok(addr: SocketAddr) -> bool {
    let answer = send_raw(
        addr,
        format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    answer.status == 200
}

/// Runs every row against the gateway and checks the row's promise and the common ones.
pub async fn run_rows(app: &TestApp, rows: Vec<Row>) -> Vec<Answer> {
    let addr = app.gateway.addr;
    let mut answers = Vec::new();
    for row in rows {
        assert!(row.status != 0, "{}: row has no expectation", row.name);
        let answer = send_raw(addr, &row.bytes(addr)).await;
        assert_eq!(
            answer.status,
            row.status,
            "{}: {}\n{}",
            row.name,
            answer.head,
            answer.text().chars().take(300).collect::<String>()
        );
        assert_ne!(answer.status, 500, "{}: no 500 for bad input", row.name);
        if let Some(code) = row.code {
            assert_eq!(
                answer.error_code().as_deref(),
                Some(code),
                "{}: {}",
                row.name,
                answer.text()
            );
        }
        assert!(
            healthz_ok(addr).await,
            "{}: the gateway stopped serving",
            row.name
        );
        assert_no_panics();
        answers.push(answer);
    }
    answers
}
