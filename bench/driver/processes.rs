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

/// Starts a gateway; returns it, its URL and the milliseconds from spawn to the first 200.
pub(crate) async fn start_gateway(
    binary: &PathBuf,
    emu: &str,
    extra: &[(&str, &str)],
) -> Result<(Child, String, f64), Failure> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs([
            ("SF_CLIENT_ID", CLIENT_ID),
            ("SF_CLIENT_SECRET", CLIENT_SECRET),
            ("SF_REDIRECT_URI", &format!("{url}/oauth2/callback")),
            ("SF_LOGIN_URL", emu),
            ("SF_INSTANCE_ORIGINS", emu),
            ("SF_ALLOWED_ORGS", ACME),
            (
                "SESSION_SECRET",
                "bench-session-secret-0123456789-abcdefghijkl",
            ),
            ("HOST", "127.0.0.1"),
            ("PORT", &port.to_string()),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "warn"),
            // Every benchmark token comes from this one loopback client.
            ("VALIDATION_MISSES_PER_MINUTE", "100000000"),
        ])
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()?;
    let started = Instant::now();
    let child = command.spawn()?;
    loop {
        // Under the prefix: answered in both modes (in gateway mode `/healthz` is the app's).
        if let Ok(r) = probe.get(format!("{url}/oauth2/healthz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(fail(
                "the gateway did not answer /oauth2/healthz within 10 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let start_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok((child, url, start_ms))
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
