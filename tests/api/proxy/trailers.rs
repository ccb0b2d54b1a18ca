//! Trailer fields of a request's body (chunked HTTP/1.1, HTTP/2): the app must receive none
//! that names a header sfgate owns.

use crate::common::*;
use axum::extract::Request;
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An app that answers with the trailer fields its request body ended with.
async fn trailers_app() -> StubServer {
    StubServer::serve(Router::new().fallback(any(|request: Request| async move {
        let mut body = request.into_body();
        let mut trailers = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| {
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
        })
        .await
        {
            let Ok(frame) = frame else { break };
            if let Ok(fields) = frame.into_trailers() {
                for (name, value) in &fields {
                    trailers.push(json!([
                        name.as_str(),
                        String::from_utf8_lossy(value.as_bytes())
                    ]));
                }
            }
        }
        Json(json!({ "trailers": trailers }))
    })))
    .await
}

/// A chunked request whose trailers claim an identity (exact and look-alike spellings), the
/// assertion, a credential, forwarding and framing fields, beside one field of the app's own:
/// the app receives only its own field, over HTTP/2 (which carries trailers as a header block
/// of their own), and nothing over HTTP/1.1 (hyper's client sends only the fields a `Trailer`
/// header lists, and `Trailer` is hop-by-hop).
#[tokio::test]
async fn request_trailers_reach_the_app_without_any_name_sfgate_owns() {
    let app_server = trailers_app().await;
    for (http2, expected) in [("false", json!([])), ("true", json!([["x-app-sum", "42"]]))] {
        let app = TestApp::builder()
            .gateway_for(&app_server.url())
            .envs(&[("UPSTREAM_HTTP2", http2)])
            .spawn()
            .await;
        let t = app.tokens(ALICE.0);
        let request = format!(
            "POST /t HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nX-Instance-Url: {}\r\n\
             Transfer-Encoding: chunked\r\nTE: trailers\r\n\
             Trailer: X-Salesforce-User-Id, X_Salesforce_User_Id, X-Sfgate-Assertion, X-App-Sum\r\n\
             Connection: close\r\n\r\n\
             4\r\nbody\r\n0\r\n\
             X-Salesforce-User-Id: forged\r\nX_Salesforce_User_Id: forged\r\n\
             X-Forwarded-Email: forged@example.com\r\nX-Sfgate-Assertion: forged\r\n\
             Authorization: Bearer forged\r\nCookie: sfgate_session=forged\r\n\
             X-Forwarded-For: 6.6.6.6\r\nX-Request-Id: forged\r\nContent-Type: text/forged\r\n\
             X-Http-Method-Override: DELETE\r\nX-App-Sum: 42\r\n\r\n",
            app.gateway.addr, t.access_token, t.instance_url
        );
        let mut stream = TcpStream::connect(app.gateway.addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("the answer in time")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200 "),
            "UPSTREAM_HTTP2={http2}: {answer}"
        );
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let received: Value = serde_json::from_str(body).expect("the app's JSON");
        assert_eq!(received["trailers"], expected, "UPSTREAM_HTTP2={http2}");
    }
}
