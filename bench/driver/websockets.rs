//! (ws) WebSocket echo throughput and the memory of sockets held open through sfgate.

use super::*;

/// WebSocket echo: messages per second directly and through sfgate, then many sockets held
/// open through sfgate and its memory per socket.
pub(crate) async fn websockets(b: &mut Bench) -> Result<(), Failure> {
    let echo = b.ws_echo.clone();
    let echo_addr: std::net::SocketAddr = echo.trim_start_matches("http://").parse()?;
    let (gateway, gw, _) = start_gateway(
        &b.args.binary,
        &b.emu,
        &[("IDENTITY_CACHE_TTL", "600"), ("UPSTREAM_URL", &echo)],
    )
    .await?;
    let relay = floor::start_tcp_relay(echo_addr)?;
    let ws = |base: &str| format!("{}/ws", base.replacen("http://", "ws://", 1));
    let duration = Duration::from_secs(b.sizes.duration);
    let conns = b.sizes.ws_connections;
    let direct = ws_echo_load(&ws(&echo), &[], conns, duration).await?;
    let headers = ws_auth(&b.token, &b.emu);
    let proxied = ws_echo_load(&ws(&gw), &headers, conns, duration).await?;
    let nginx_url = format!("ws://127.0.0.1:{}/ws", b.nginx.ports.ws_proxy);
    let nginx = ws_echo_load(&nginx_url, &[], conns, duration).await?;
    let relayed = ws_echo_load(&ws(&relay), &[], conns, duration).await?;
    b.check_no_failures("(ws) through sfgate", &proxied);
    b.check_no_failures("(ws) through nginx", &nginx);
    b.row("(ws) WebSocket echo directly (messages/s)", &direct, None);
    b.row(
        "(ws) WebSocket echo through sfgate (messages/s)",
        &proxied,
        None,
    );
    b.row(
        "(ws) WebSocket echo through nginx, no auth (messages/s)",
        &nginx,
        None,
    );
    b.row(
        "(floor) WebSocket echo through a bare tokio byte relay (messages/s)",
        &relayed,
        None,
    );
    b.ratio(
        "(ws) WebSocket messages/s through sfgate vs. direct",
        &proxied,
        &direct,
        0.8,
    );
    b.reported_ratio(
        "(ws) anchor: nginx WebSocket proxy vs. direct",
        &nginx,
        &direct,
    );
    b.reported_ratio(
        "(ws) floor: bare tokio byte relay vs. direct",
        &relayed,
        &direct,
    );
    let through = ws(&gw);

    let before = rss_kib(&gateway)?;
    let mut open = Vec::with_capacity(b.sizes.ws_open);
    for _ in 0..b.sizes.ws_open {
        let mut ws = ws_connect(&through, &headers).await?;
        ws.send(Message::text("open")).await?;
        if !matches!(ws.next().await, Some(Ok(Message::Text(_)))) {
            return Err(fail("an open WebSocket did not echo"));
        }
        open.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(&gateway)?;
    let per_socket = (after.saturating_sub(before)) as f64 / b.sizes.ws_open as f64;
    b.target(
        format!(
            "(ws) sfgate RSS growth per open WebSocket ({} open at once)",
            b.sizes.ws_open
        ),
        "reported",
        format!(
            "{per_socket:.1} KiB ({:.1} → {:.1} MiB)",
            mib(before),
            mib(after)
        ),
        None,
    );
    b.memory.push((
        format!(
            "RSS with {} open WebSockets (separate gateway)",
            b.sizes.ws_open
        ),
        format!("{:.1} MiB, {per_socket:.1} KiB per socket", mib(after)),
    ));
    for mut ws in open {
        let _ = ws.close(None).await;
    }
    drop(gateway);
    Ok(())
}
