//! The driver's own upstreams: an app that waits like one querying a database, and a WebSocket
//! echo server with its clients.

use super::*;

/// A local app upstream for the `/work` rows: one route that waits like an app waiting for
/// its database.
pub(crate) async fn start_app_upstream() -> Result<String, Failure> {
    let app = axum::Router::new().route(
        "/work",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(UPSTREAM_WORK_MS)).await;
            "done\n"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// A WebSocket echo server (tokio-tungstenite) in the driver's process, on `port`.
pub(crate) async fn start_ws_echo(port: u16) -> Result<String, Failure> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(url)
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) fn ws_auth(token: &str, instance: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {token}")),
        ("x-instance-url", instance.to_string()),
    ]
}

pub(crate) async fn ws_connect(
    url: &str,
    headers: &[(&'static str, String)],
) -> Result<Ws, Failure> {
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    Ok(ws)
}

/// `connections` sockets, each sending a 32-byte text message and waiting for its echo, in a
/// loop for `duration`: messages per second and round-trip latency.
pub(crate) async fn ws_echo_load(
    url: &str,
    headers: &[(&'static str, String)],
    connections: usize,
    duration: Duration,
) -> Result<Load, Failure> {
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        sockets.push(ws_connect(url, headers).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut samples: Vec<u32> = Vec::new();
                let mut bad = 0u64;
                let payload = "x".repeat(32);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if ws.send(Message::text(payload.clone())).await.is_err() {
                        bad += 1;
                        break;
                    }
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => {
                            samples.push(sent.elapsed().as_micros() as u32);
                        }
                        _ => {
                            bad += 1;
                            break;
                        }
                    }
                }
                let _ = ws.close(None).await;
                (samples, bad)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut bad = 0;
    for t in tasks {
        let (samples, b) = t.await?;
        all.extend(samples);
        bad += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            f64::NAN
        } else {
            all[((all.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    Ok(Load {
        cpu_us: None,
        upstream_us: None,
        wrk_us: None,
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        requests: all.len() as u64,
        bad,
        command: format!(
            "driver: {connections} WebSocket connections to {}, 32-byte text echo, one in flight each, {} s",
            url.split('/').take(3).collect::<Vec<_>>().join("/"),
            duration.as_secs()
        ),
    })
}
