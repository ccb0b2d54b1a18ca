//! (ws) WebSocket echo throughput and the memory of sockets held open through sfgate.

use super::*;

/// Alternated rounds of the WebSocket rows in a full run; each reports its median.
pub(crate) const WS_ROUNDS: usize = 3;

/// WebSocket echo: messages per second directly, through sfgate, through nginx and through
/// the two bare byte relays (work stealing, as sfgate runs tunnels once joined; thread per
/// core, as sfgate serves requests and ran tunnels before), the proxies in alternated rounds;
/// then many sockets held open through sfgate and its memory per socket.
pub(crate) async fn websockets(b: &mut Bench) -> Result<(), Failure> {
    let echo = b.ws_echo.clone();
    let echo_addr: std::net::SocketAddr = echo.trim_start_matches("http://").parse()?;
    let (gateway, gw, _) = start_gateway(
        &b.args.binary,
        &b.emu,
        &[("IDENTITY_CACHE_TTL", "600"), ("UPSTREAM_URL", &echo)],
    )
    .await?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let relay = floor::start_tcp_relay(echo_addr)?;
    let tpc_relay = floor::start_tpc_relay(echo_addr, cores)?;
    let ws = |base: &str| format!("{}/ws", base.replacen("http://", "ws://", 1));
    let duration = Duration::from_secs(b.sizes.duration);
    let conns = b.sizes.ws_connections;
    let direct = ws_echo_load(&ws(&echo), &[], conns, duration).await?;
    let headers = ws_auth(&b.token, &b.emu);
    let nginx_url = format!("ws://127.0.0.1:{}/ws", b.nginx.ports.ws_proxy);
    let runs: [(String, &[(&'static str, String)]); 4] = [
        (ws(&gw), &headers),
        (nginx_url, &[]),
        (ws(&tpc_relay), &[]),
        (ws(&relay), &[]),
    ];
    let rounds = if b.args.smoke { 1 } else { WS_ROUNDS };
    let mut loads: Vec<Vec<Load>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        for k in 0..runs.len() {
            let i = (round + k) % runs.len();
            let (url, headers) = &runs[i];
            loads[i].push(ws_echo_load(url, headers, conns, duration).await?);
        }
    }
    let [proxied, nginx, tpc_relayed, relayed] = [0, 1, 2, 3].map(|i| median(&loads[i]));
    b.check_no_failures("(ws) through sfgate", &proxied);
    b.check_no_failures("(ws) through nginx", &nginx);
    b.check_no_failures("(ws) through the thread-per-core relay", &tpc_relayed);
    b.check_no_failures("(ws) through the work-stealing relay", &relayed);
    let of = if rounds > 1 {
        format!(", median of {rounds} alternated rounds")
    } else {
        String::new()
    };
    b.row("(ws) WebSocket echo directly (messages/s)", &direct, None);
    b.row(
        format!("(ws) WebSocket echo through sfgate (messages/s{of})"),
        &proxied,
        None,
    );
    b.row(
        format!("(ws) WebSocket echo through nginx, no auth (messages/s{of})"),
        &nginx,
        None,
    );
    b.row(
        format!(
            "(floor) WebSocket echo through a bare byte relay, thread per core (messages/s{of})"
        ),
        &tpc_relayed,
        None,
    );
    b.row(
        format!("(floor) WebSocket echo through a bare byte relay, work-stealing runtime (messages/s{of})"),
        &relayed,
        None,
    );
    let x = |measured: &Load, anchor: &Load| measured.rps / anchor.rps;
    b.ratio(
        Rank::WebSocket,
        "(ws) WebSocket echo through sfgate vs. through nginx",
        &proxied,
        &nginx,
        1.1,
    )
    .floor = Some(format!(
        "bare byte relay, work stealing (as sfgate runs tunnels): {:.2} × nginx; sfgate {:.2} × this floor (thread-per-core relay: {:.2} × nginx; nginx {:.2} × direct)",
        x(&relayed, &nginx),
        x(&proxied, &relayed),
        x(&tpc_relayed, &nginx),
        x(&nginx, &direct),
    ));
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
