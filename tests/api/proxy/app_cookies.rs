//! sfgate's cookies are sfgate's alone: an app's answer never sets, replaces or removes one,
//! in any spelling sfgate reads as its own, whichever way the answer crossed (sfgate's own
//! HTTP/1.1 client, hyper's, HTTP/2, a `101` that opens a tunnel); and a cookie of the app's
//! that sfgate cannot read never hides the session beside it.

use super::*;
use crate::helpers::login_cookies::session_cookie;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the app sets on every answer: two cookies of its own, around every spelling of
/// sfgate's two that a browser would send back as one sfgate reads (a longer path, which the
/// browser sends first; an empty name, sent back as the value alone; a percent-encoded name;
/// spaces; a removal; a value that is not UTF-8; the names served over HTTPS).
const APP_SETS: [&[u8]; 10] = [
    b"theme=dark; Path=/",
    b"__Host-sfgate_session=planted; Secure; Path=/",
    b"__Host%2Dsfgate_login=planted",
    b"sfgate_session=planted; Path=/app/longer",
    b"=sfgate_session=planted",
    b"sfgate%5Fsession=planted",
    b" sfgate_login =planted; HttpOnly",
    b"sfgate_session=; Max-Age=0",
    b"sfgate_login=\xffplanted",
    b"lang=en",
];

/// What the client must receive of them, in order.
const CLIENT_GETS: [&[u8]; 2] = [b"theme=dark; Path=/", b"lang=en"];

/// An app (HTTP/1.1 and HTTP/2) that answers every request with [`APP_SETS`].
async fn cookie_setting_app() -> StubServer {
    StubServer::serve(Router::new().fallback(|| async {
        let mut answer = Response::new(axum::body::Body::from("from the app"));
        for value in APP_SETS {
            let value = HeaderValue::from_bytes(value).expect("a header value");
            answer.headers_mut().append(header::SET_COOKIE, value);
        }
        answer
    }))
    .await
}

fn set_cookies_of(headers: &reqwest::header::HeaderMap) -> Vec<Vec<u8>> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect()
}

fn expected() -> Vec<Vec<u8>> {
    CLIENT_GETS.iter().map(|v| v.to_vec()).collect()
}

/// Through sfgate's own client (a bodiless GET on the fast path), hyper's client (a POST with
/// a body; every request with the fast path off) and HTTP/2 to the app: the client gets the
/// app's own cookies and none of sfgate's.
#[tokio::test]
async fn an_apps_answer_never_sets_sfgates_cookies() {
    let app_server = cookie_setting_app().await;
    for envs in [
        &[][..],
        &[("HTTP1_FAST_PATH", "false")][..],
        &[("UPSTREAM_HTTP2", "true")][..],
    ] {
        let app = TestApp::builder()
            .gateway_for(&app_server.url())
            .envs(envs)
            .spawn()
            .await;
        let t = app.tokens(ALICE.0);
        let got = app
            .get_with_token("/app/page", &t.access_token, &t.instance_url)
            .await;
        assert_eq!(got.status(), 200, "{envs:?}");
        assert_eq!(set_cookies_of(got.headers()), expected(), "GET, {envs:?}");
        let posted = app
            .http
            .post(app.url("/app/form"))
            .bearer_auth(&t.access_token)
            .header("x-instance-url", &t.instance_url)
            .body("a=1")
            .send()
            .await
            .expect("request");
        assert_eq!(posted.status(), 200, "{envs:?}");
        assert_eq!(
            set_cookies_of(posted.headers()),
            expected(),
            "POST, {envs:?}"
        );
    }
}

/// An app that answers `101` to a WebSocket handshake with [`APP_SETS`] among its headers,
/// then keeps the connection open.
async fn switching_app() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let mut answer = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                    Upgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                    .to_vec();
                for value in APP_SETS {
                    answer.extend_from_slice(b"Set-Cookie: ");
                    answer.extend_from_slice(value);
                    answer.extend_from_slice(b"\r\n");
                }
                answer.extend_from_slice(b"\r\n");
                if stream.write_all(&answer).await.is_err() {
                    return;
                }
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    url
}

/// The `101` that opens a tunnel is an answer of the app's too.
#[tokio::test]
async fn an_apps_switching_answer_never_sets_sfgates_cookies() {
    let app_url = switching_app().await;
    let app = TestApp::builder().gateway_for(&app_url).spawn().await;
    let t = app.tokens(ALICE.0);
    let request = format!(
        "GET /app/socket HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nX-Instance-Url: {}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        app.gateway.addr, t.access_token, t.instance_url
    );
    let mut stream = TcpStream::connect(app.gateway.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the answer in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.extend_from_slice(&buf[..n]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let set: Vec<Vec<u8>> = head
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let at = line.iter().position(|&b| b == b':')?;
            line[..at]
                .eq_ignore_ascii_case(b"set-cookie")
                .then(|| line[at + 1..].trim_ascii().to_vec())
        })
        .collect();
    assert_eq!(set, expected(), "{}", String::from_utf8_lossy(&head));
}

/// A cookie of the app's that sfgate cannot read (a UTF-8 value, which browsers keep and send
/// in the same `Cookie` header as the session) leaves the session readable: the browser is
/// still logged in, not sent to log in again and again.
#[tokio::test]
async fn a_cookie_sfgate_cannot_read_does_not_hide_the_session() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let session = session_cookie(&app).await;
    let cookie = format!("name=José; {session}; theme=dark");
    let answer = app
        .http
        .get(app.url("/app/page"))
        .header(
            "cookie",
            HeaderValue::from_bytes(cookie.as_bytes()).expect("a header value"),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    let echoed: Value = answer.json().await.expect("the echo's JSON");
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0, "{echoed}");
}
