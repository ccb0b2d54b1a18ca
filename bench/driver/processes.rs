//! The processes under test: the emulator and gateways (the binary of `--binary`), and their memory.

use super::*;

pub(crate) async fn start_emulator(
    binary: &PathBuf,
    latency_ms: u64,
) -> Result<(Child, String), Failure> {
    let mut child = Command::new(binary)
        .args([
            "emulator",
            "--port",
            "0",
            "--latency-ms",
            &latency_ms.to_string(),
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
        ])
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| fail("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("Salesforce emulator on ") {
                return Some(url.trim().to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| fail("the emulator did not start"))?;
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, url))
}

/// How long a gateway took to start, each in ms from just before the spawn.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Started {
    /// `spawn` returned: fork and exec of the binary done.
    pub(crate) spawned_ms: f64,
    /// The first connection the port accepted (the listeners are bound).
    pub(crate) listening_ms: f64,
    /// The first `200` from `/oauth2/healthz`.
    pub(crate) first_200_ms: f64,
    /// CPU time the gateway had used by then (all its threads), in ms: what start-up costs
    /// whatever the machine's load, where the times above include waiting for a core.
    pub(crate) cpu_ms: Option<f64>,
}

/// What every benchmark gateway is configured with besides where it listens and logs: the
/// emulator as Salesforce, the benchmark's Connected App and session secret. `url` is the
/// gateway's own base URL (for its callback).
pub(crate) fn gateway_settings(url: &str, emu: &str) -> [(&'static str, String); 8] {
    [
        ("SF_CLIENT_ID", CLIENT_ID.to_string()),
        ("SF_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("SF_REDIRECT_URI", format!("{url}/oauth2/callback")),
        ("SF_LOGIN_URL", emu.to_string()),
        ("SF_INSTANCE_ORIGINS", emu.to_string()),
        ("SF_ALLOWED_ORGS", ACME.to_string()),
        (
            "SESSION_SECRET",
            "bench-session-secret-0123456789-abcdefghijkl".to_string(),
        ),
        // Every benchmark token comes from this one loopback client.
        ("VALIDATION_MISSES_PER_MINUTE", "100000000".to_string()),
    ]
}

/// Starts a gateway; returns it, its URL and how long it took to answer its first 200.
///
/// The clock starts just before the spawn. The port is tried every millisecond with a plain
/// TCP connect (refused at once until sfgate binds it); once a connection is accepted, one raw
/// `GET /oauth2/healthz` is written on it and its status line read, so nothing of an HTTP
/// client's (pool, resolver, timers) is in the figure. A connection accepted before the
/// server runs waits in the kernel's backlog and is answered as soon as it does.
pub(crate) async fn start_gateway(
    binary: &PathBuf,
    emu: &str,
    extra: &[(&str, &str)],
) -> Result<(Child, String, Started), Failure> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(gateway_settings(&url, emu))
        .envs([
            ("HOST", "127.0.0.1"),
            ("PORT", &port.to_string()),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "warn"),
        ])
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = command.spawn()?;
    let ms = |at: Instant| at.duration_since(started).as_secs_f64() * 1000.0;
    let mut times = Started {
        spawned_ms: ms(Instant::now()),
        ..Started::default()
    };
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    loop {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(fail(
                "the gateway did not answer /oauth2/healthz within 10 s",
            ));
        }
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        if times.listening_ms == 0.0 {
            times.listening_ms = ms(Instant::now());
        }
        match tokio::time::timeout(Duration::from_secs(5), raw_healthz(stream)).await {
            Ok(Ok(200)) => break,
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    times.first_200_ms = ms(Instant::now());
    times.cpu_ms = child
        .id()
        .and_then(process_cpu_ns)
        .map(|ns| ns as f64 / 1e6);
    Ok((child, url, times))
}

/// One `GET /oauth2/healthz` on `stream`; returns the status code.
async fn raw_healthz(mut stream: tokio::net::TcpStream) -> Result<u16, Failure> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /oauth2/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12])?
        .parse()
        .map_err(|_| fail("no status code"))
}

pub(crate) fn rss_kib(child: &Child) -> Result<u64, Failure> {
    let pid = child.id().ok_or_else(|| fail("the gateway exited"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| fail("no VmRSS"))
}
