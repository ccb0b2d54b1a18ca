//! Tunnels end with their credentials: a WebSocket opened with a token or a session closes
//! (Close `1008` with a reason to both sides, then the connection) within two seconds of the
//! token's logout, and when the session reaches `SESSION_MAX_AGE`.

use crate::common::*;
use crate::helpers::websocket::*;
use futures_util::SinkExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Reads until the gateway's Close frame; asserts its code, reason and timing, and that the
/// connection then ends.
async fn expect_policy_close(ws: &mut Client, since: Instant, reason: &str, within: Duration) {
    match next(ws).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
            assert_eq!(frame.reason.as_str(), reason);
        }
        other => panic!("expected a 1008 Close frame, got {other:?}"),
    }
    assert!(
        since.elapsed() <= within,
        "closed after {:?}",
        since.elapsed()
    );
    assert_eq!(next(ws).await, None, "then the connection closes");
}

#[tokio::test]
async fn a_websocket_opened_with_a_token_closes_when_the_token_is_logged_out() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let credentials = bearer(&app);
    let mut ws = connect(&app, "/socket", &credentials).await;
    ws.send(Message::text("before")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("before")));

    let mut logout = app
        .http
        .post(app.url("/oauth2/logout"))
        .header("accept", "application/json");
    for (name, value) in &credentials {
        logout = logout.header(*name, value);
    }
    expect_status(logout.send().await.expect("logout"), 200).await;
    let logged_out = Instant::now();
    expect_policy_close(
        &mut ws,
        logged_out,
        "credentials logged out or revoked",
        Duration::from_secs(2),
    )
    .await;
    eventually("the upstream got the 1008 Close", || {
        echo.closes.lock().expect("lock").contains(&1008)
    })
    .await;
    eventually("the tunnel is gone", || open_tunnels(&app) == 0).await;
}

#[tokio::test]
async fn a_websocket_opened_by_a_session_closes_when_the_session_reaches_its_maximum_age() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("SESSION_MAX_AGE", "3")])
        .spawn()
        .await;
    let browser = browser_client();
    let callback = app.login(&browser, ALICE).await;
    let session = session_pair(callback.headers()).expect("a session");
    let opened = Instant::now();
    // A cookie-authenticated handshake comes from sfgate's own pages.
    let mut ws = connect(
        &app,
        "/live",
        &[("cookie", session), ("origin", app.base.clone())],
    )
    .await;
    ws.send(Message::text("hi")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("hi")));
    // The session started at most a second before the socket; it ends 3 s after its login.
    expect_policy_close(
        &mut ws,
        opened,
        "session reached its maximum age",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        opened.elapsed() >= Duration::from_secs(1),
        "not before its time"
    );
    eventually("the tunnel is gone", || open_tunnels(&app) == 0).await;
}

#[tokio::test]
async fn other_tokens_sockets_stay_open_when_one_token_is_logged_out() {
    let echo = EchoServer::start().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let (mine, other) = (bearer(&app), bearer(&app));
    let mut kept = connect(&app, "/socket", &other).await;
    let mut closed = connect(&app, "/socket", &mine).await;
    let mut logout = app
        .http
        .post(app.url("/oauth2/logout"))
        .header("accept", "application/json");
    for (name, value) in &mine {
        logout = logout.header(*name, value);
    }
    expect_status(logout.send().await.expect("logout"), 200).await;
    expect_policy_close(
        &mut closed,
        Instant::now(),
        "credentials logged out or revoked",
        Duration::from_secs(3),
    )
    .await;
    kept.send(Message::text("still here")).await.expect("send");
    assert_eq!(next(&mut kept).await, Some(Message::text("still here")));
}

#[tokio::test]
async fn a_logout_on_another_replica_closes_the_socket_within_two_seconds() {
    use crate::common::redis_server::RedisServer;
    use crate::helpers::replicas::Replicas;
    let Some(redis) = RedisServer::start("tunnel_ends_across_replicas") else {
        return;
    };
    let echo = EchoServer::start().await;
    let replicas = Replicas::start_with(&redis, 2, &[("UPSTREAM_URL", &echo.url())]).await;
    let t = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    let url = format!("ws://{}/socket", replicas.gateways[0].addr);
    let headers = [
        ("authorization", format!("Bearer {}", t.access_token)),
        ("x-instance-url", t.instance_url.clone()),
    ];
    let (mut ws, response) = tokio_tungstenite::connect_async(handshake(&url, &headers))
        .await
        .expect("handshake on replica 0");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hi")).await.expect("send");
    assert_eq!(next(&mut ws).await, Some(Message::text("hi")));

    assert_eq!(
        replicas.logout(1, &t.access_token, &t.instance_url).await,
        200
    );
    expect_policy_close(
        &mut ws,
        Instant::now(),
        "credentials logged out or revoked",
        Duration::from_secs(2),
    )
    .await;
}
