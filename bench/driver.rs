//! The benchmark driver behind `bench/run`: starts the release gateway and the emulator as
//! separate processes on loopback, loads them with `wrk` (throughput and latency) and with its
//! own client (exact call counts), reads memory from /proc, and writes `bench/REPORT.md`.
//!
//! Absolute numbers vary between runs on shared machines; the report leads with ratios.

mod assertion_case;
#[path = "jwt_case.rs"]
mod jwt_case;
#[path = "redis_case.rs"]
mod redis_case;

use clap::Parser;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Parser, Debug, Clone)]
#[command(about = "sfgate benchmark driver (run through bench/run)")]
struct Args {
    /// A quick run that proves the benchmark works; numbers are not meaningful.
    #[arg(long)]
    smoke: bool,
    /// Latency the emulator adds to every Salesforce call, like a real round trip.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Seconds per wrk measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent connections per wrk measurement.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// The gateway binary (built with --release).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/sfgate"))]
    binary: PathBuf,
    /// Where the report goes.
    #[arg(long)]
    out: Option<PathBuf>,
}

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-client-secret";
const ACME: &str = "00D5j00000AcMe1";

struct Sizes {
    duration: u64,
    connections: u32,
    stampede: usize,
    distinct: usize,
    many: usize,
}

impl Sizes {
    fn of(args: &Args) -> Self {
        if args.smoke {
            Self {
                duration: 1,
                connections: 16,
                stampede: 200,
                distinct: 500,
                many: 2_000,
            }
        } else {
            Self {
                duration: args.duration,
                connections: args.connections,
                stampede: 1_000,
                distinct: 10_000,
                many: 100_000,
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    bad: u64,
    command: String,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn fail(message: impl Into<String>) -> Failure {
    message.into().into()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) => {
            eprintln!("benchmark ran, but:");
            for p in problems {
                eprintln!("  - {p}");
            }
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(2);
        }
    }
}

/// Returns what did not *work* (wrong call counts, failed requests); missed speed targets are
/// reported, not failed, since shared machines make them noisy.
async fn run(args: Args) -> Result<Vec<String>, Failure> {
    let sizes = Sizes::of(&args);
    let mut problems = Vec::new();
    if !args.binary.exists() {
        return Err(fail(format!(
            "{} not found: build with `cargo build --release`",
            args.binary.display()
        )));
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2_000)
        .timeout(Duration::from_secs(30))
        .build()?;

    let upstream = start_upstream().await?;
    let (mut emulator, emu) = start_emulator(&args.binary, args.latency_ms).await?;
    let (gateway, gw, start_ms) = start_gateway(
        &args.binary,
        &emu,
        &[("IDENTITY_CACHE_TTL", "600"), ("UPSTREAM_URL", &upstream)],
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib(&gateway)?;

    // (a) ceiling and (b) a cached identity.
    let a = wrk(&format!("{gw}/healthz"), &[], &sizes).await?;
    let token = issue_tokens(&http, &emu, 1).await?.remove(0);
    let auth = [
        format!("Authorization: Bearer {token}"),
        format!("X-Instance-Url: {emu}"),
    ];
    check_ok(&http, &format!("{gw}/api/me"), &token, &emu).await?;
    reset_stats(&http, &emu).await?;
    let b = wrk(&format!("{gw}/api/me"), &auth, &sizes).await?;
    let b_calls = userinfo_calls(&http, &emu).await?;

    // (c) the cache off: every request is a call.
    let (gateway_nocache, gw_nocache, _) =
        start_gateway(&args.binary, &emu, &[("IDENTITY_CACHE_TTL", "0")]).await?;
    reset_stats(&http, &emu).await?;
    let c = wrk(&format!("{gw_nocache}/api/me"), &auth, &sizes).await?;
    let c_calls = userinfo_calls(&http, &emu).await?;
    drop(gateway_nocache);

    // (d) single-flight: a stampede of first requests with one fresh token.
    let fresh = issue_tokens(&http, &emu, 1).await?.remove(0);
    reset_stats(&http, &emu).await?;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(sizes.stampede));
    let tasks: Vec<_> = (0..sizes.stampede)
        .map(|_| {
            let (http, url, token, instance, barrier) = (
                http.clone(),
                format!("{gw}/api/me"),
                fresh.clone(),
                emu.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                get_me(&http, &url, &token, &instance).await
            })
        })
        .collect();
    let mut d_ok = 0;
    for t in tasks {
        if matches!(t.await, Ok(Ok(200))) {
            d_ok += 1;
        }
    }
    let d_calls = userinfo_calls(&http, &emu).await?;
    if d_calls != 1 || d_ok != sizes.stampede {
        problems.push(format!(
            "(d) {d_ok}/{} answered 200 with {d_calls} calls (expected all, 1)",
            sizes.stampede
        ));
    }

    // (e) distinct tokens, each used twice.
    let tokens = issue_tokens(&http, &emu, sizes.distinct).await?;
    reset_stats(&http, &emu).await?;
    let e_ok = drive(&http, &gw, &emu, &tokens, 2, 64).await;
    let e_calls = userinfo_calls(&http, &emu).await?;
    let e_requests = 2 * sizes.distinct as u64;
    let e_hit = 1.0 - e_calls as f64 / e_requests as f64;
    if e_calls != sizes.distinct as u64 || e_ok != e_requests {
        problems.push(format!(
            "(e) {e_ok}/{e_requests} answered 200 with {e_calls} calls (expected all, {})",
            sizes.distinct
        ));
    }
    let rss_after_e = rss_kib(&gateway)?;

    // (g) many cached identities; the emulator answers at once so filling takes seconds.
    set_latency(&http, &emu, 0).await?;
    let mut filled = 0u64;
    let mut remaining = sizes.many.saturating_sub(sizes.distinct + 2);
    while remaining > 0 {
        let batch = remaining.min(10_000);
        let tokens = issue_tokens(&http, &emu, batch).await?;
        filled += drive(&http, &gw, &emu, &tokens, 1, 128).await;
        remaining -= batch;
    }
    set_latency(&http, &emu, args.latency_ms).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_many = rss_kib(&gateway)?;
    let cached_total = filled + sizes.distinct as u64 + 2;

    // (f) proxy mode against the upstream directly.
    let direct = wrk(&format!("{upstream}/hello"), &[], &sizes).await?;
    let proxied = wrk(&format!("{gw}/hello"), &auth, &sizes).await?;
    // The same against an upstream that spends UPSTREAM_WORK_MS per request, as an app that
    // queries a database does: what the gateway adds when the upstream is not a no-op.
    let direct_work = wrk(&format!("{upstream}/work"), &[], &sizes).await?;
    let proxied_work = wrk(&format!("{gw}/work"), &auth, &sizes).await?;
    for (name, load) in [("(f)", &proxied), ("(f, 5 ms upstream)", &proxied_work)] {
        if load.bad > 0 || load.requests == 0 {
            problems.push(format!(
                "{name} {} of {} proxied requests failed",
                load.bad, load.requests
            ));
        }
    }

    let (assertion_report, assertion_problems) =
        assertion_case::run(&args.binary, &emu, &upstream, &auth, &sizes).await?;
    problems.extend(assertion_problems);
    // (h) distinct JWT vs opaque tokens on first use (bench/jwt_case.rs); out of --smoke,
    // where minting RSA-signed tokens would dominate the run.
    let jwt = if args.smoke {
        None
    } else {
        let case = jwt_case::run(&http, &gw, &emu, 2_000).await?;
        problems.extend(case.problems());
        Some(case)
    };

    // (r) the same cached identity with REDIS_URL set (bench/redis_case.rs).
    let redis = redis_case::measure(&args.binary, &emu, &token, &sizes, &http).await?;
    problems.extend(redis_case::problems(&redis));

    let binary_size = std::fs::metadata(&args.binary)?.len();
    drop(gateway);
    let _ = emulator.kill().await;

    let report = render(&Report {
        args: &args,
        sizes: &sizes,
        a: &a,
        b: &b,
        b_calls,
        c: &c,
        c_calls,
        d_ok,
        d_calls,
        e_calls,
        e_requests,
        e_hit,
        direct: &direct,
        proxied: &proxied,
        direct_work: &direct_work,
        proxied_work: &proxied_work,
        rss_idle,
        rss_after_e,
        rss_many,
        cached_total,
        binary_size,
        start_ms,
    });
    let mut report = report + &redis_case::section(&redis);
    report.push_str(&assertion_report);
    if let Some(case) = &jwt {
        report.push_str(&case.markdown());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench");
        if args.smoke {
            dir.join("out").join("REPORT-smoke.md")
        } else {
            dir.join("REPORT.md")
        }
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, &report)?;
    println!("{report}");
    println!("report written to {}", out.display());
    Ok(problems)
}

/// Milliseconds the `/work` route of the upstream waits before answering.
const UPSTREAM_WORK_MS: u64 = 5;

/// A local upstream for (f): the smallest useful app, and one route that waits like an app
/// waiting for its database.
async fn start_upstream() -> Result<String, Failure> {
    let app = axum::Router::new()
        .route(
            "/hello",
            axum::routing::get(|| async { "hello from the upstream\n" }),
        )
        .route(
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

async fn start_emulator(binary: &PathBuf, latency_ms: u64) -> Result<(Child, String), Failure> {
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
async fn start_gateway(
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
        if let Ok(r) = probe.get(format!("{url}/healthz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(fail("the gateway did not answer /healthz within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let start_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok((child, url, start_ms))
}

fn rss_kib(child: &Child) -> Result<u64, Failure> {
    let pid = child.id().ok_or_else(|| fail("the gateway exited"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| fail("no VmRSS"))
}

async fn issue_tokens(
    http: &reqwest::Client,
    emu: &str,
    count: usize,
) -> Result<Vec<String>, Failure> {
    let grants: Value = http
        .post(format!("{emu}/__emulator/tokens"))
        .json(&serde_json::json!({"username": "alice@acme.example", "count": count}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tokens: Vec<String> = grants
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g["access_token"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if tokens.len() != count {
        return Err(fail("the emulator issued the wrong number of tokens"));
    }
    Ok(tokens)
}

async fn reset_stats(http: &reqwest::Client, emu: &str) -> Result<(), Failure> {
    http.post(format!("{emu}/__emulator/reset-stats"))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

async fn set_latency(http: &reqwest::Client, emu: &str, ms: u64) -> Result<(), Failure> {
    http.post(format!("{emu}/__emulator/latency"))
        .json(&serde_json::json!({ "ms": ms }))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

async fn userinfo_calls(http: &reqwest::Client, emu: &str) -> Result<u64, Failure> {
    let stats: Value = http
        .get(format!("{emu}/__emulator/stats"))
        .send()
        .await?
        .json()
        .await?;
    stats["userinfo"]
        .as_u64()
        .ok_or_else(|| fail("no userinfo count in the emulator's stats"))
}

async fn get_me(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    instance: &str,
) -> Result<u16, reqwest::Error> {
    let r = http
        .get(url)
        .bearer_auth(token)
        .header("x-instance-url", instance)
        .send()
        .await?;
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    Ok(status)
}

async fn check_ok(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    instance: &str,
) -> Result<(), Failure> {
    match get_me(http, url, token, instance).await? {
        200 => Ok(()),
        s => Err(fail(format!("{url} answered {s} to a valid token"))),
    }
}

/// Each token `uses` times in a row, `concurrency` tokens at a time; returns the 200s.
async fn drive(
    http: &reqwest::Client,
    gw: &str,
    emu: &str,
    tokens: &[String],
    uses: usize,
    concurrency: usize,
) -> u64 {
    let url = format!("{gw}/api/me");
    stream::iter(tokens.iter())
        .map(|token| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let mut ok = 0u64;
                for _ in 0..uses {
                    if matches!(get_me(&http, &url, token, emu).await, Ok(200)) {
                        ok += 1;
                    }
                }
                ok
            }
        })
        .buffer_unordered(concurrency)
        .fold(0u64, |sum, ok| async move { sum + ok })
        .await
}

async fn wrk(url: &str, headers: &[String], sizes: &Sizes) -> Result<Load, Failure> {
    let mut args = vec![
        "-t2".to_string(),
        format!("-c{}", sizes.connections),
        format!("-d{}s", sizes.duration),
        "--latency".to_string(),
    ];
    for h in headers {
        args.push("-H".to_string());
        args.push(h.clone());
    }
    args.push(url.to_string());
    let out = Command::new("wrk")
        .args(&args)
        .output()
        .await
        .map_err(|e| fail(format!("cannot run wrk: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(fail(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.starts_with("Authorization:") {
                "'Authorization: Bearer $TOKEN'".to_string()
            } else if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    let mut load = Load {
        command: format!("wrk {}", shown.join(" ")),
        ..Load::default()
    };
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            load.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("50%") {
            load.p50_ms = duration_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            load.p99_ms = duration_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.bad += v.trim().parse::<u64>().unwrap_or(0);
        } else if line.contains("requests in") {
            load.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if line.starts_with("Socket errors:") {
            load.bad += line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Ok(load)
}

/// wrk prints `812.00us`, `1.23ms` or `1.05s`.
fn duration_ms(v: &str) -> f64 {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

struct Report<'a> {
    args: &'a Args,
    sizes: &'a Sizes,
    a: &'a Load,
    b: &'a Load,
    b_calls: u64,
    c: &'a Load,
    c_calls: u64,
    d_ok: usize,
    d_calls: u64,
    e_calls: u64,
    e_requests: u64,
    e_hit: f64,
    direct: &'a Load,
    proxied: &'a Load,
    direct_work: &'a Load,
    proxied_work: &'a Load,
    rss_idle: u64,
    rss_after_e: u64,
    rss_many: u64,
    cached_total: u64,
    binary_size: u64,
    start_ms: f64,
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {}", kernel.trim())
}

fn render(r: &Report<'_>) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let ratio_ba = r.b.rps / r.a.rps;
    let added_p99 = r.b.p99_ms - r.a.p99_ms;
    let ratio_f = r.proxied.rps / r.direct.rps;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# sfgate benchmark report{}\n",
        if r.args.smoke {
            " (smoke run: numbers not meaningful)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "- Machine: {}", machine());
    let _ = writeln!(
        s,
        "- Command: `bench/run{}` (driver: `bench/driver.rs`)",
        if r.args.smoke { " --smoke" } else { "" }
    );
    let _ = writeln!(s, "- Gateway: `{}` (release build), emulator: `sfgate emulator --latency-ms {}`, both separate processes on 127.0.0.1, logs at `warn`", r.args.binary.display(), r.args.latency_ms);
    let _ = writeln!(s, "- Load: `wrk` with 2 threads, {} connections, {} s per measurement; counts by the driver's own HTTP client", r.sizes.connections, r.sizes.duration);
    let _ = writeln!(s, "- Load generator, gateway and emulator share the same cores: absolute numbers vary between runs, the ratios are what count.\n");

    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(s, "| Target | Goal | Result | |");
    let _ = writeln!(s, "|---|---|---|---|");
    let _ = writeln!(
        s,
        "| (b)/(a) throughput, cached identity vs. no auth | ≥ 0.85 | {ratio_ba:.2} | {} |",
        mark(ratio_ba >= 0.85)
    );
    let _ = writeln!(
        s,
        "| added p99 latency on a cache hit | < 1 ms | {added_p99:.2} ms | {} |",
        mark(added_p99 < 1.0)
    );
    let _ = writeln!(
        s,
        "| (d) calls for {} concurrent first requests | exactly 1 | {} ({} answered 200) | {} |",
        r.sizes.stampede,
        r.d_calls,
        r.d_ok,
        mark(r.d_calls == 1 && r.d_ok == r.sizes.stampede)
    );
    let _ = writeln!(s, "| (e) calls for {} distinct tokens used twice ({} requests) | exactly {} | {} (hit ratio {:.3}) | {} |", r.sizes.distinct, r.e_requests, r.sizes.distinct, r.e_calls, r.e_hit, mark(r.e_calls == r.sizes.distinct as u64));
    let _ = writeln!(
        s,
        "| (f) proxied vs. direct throughput | ≥ 0.8 | {ratio_f:.2} | {} |",
        mark(ratio_f >= 0.8 && r.proxied.bad == 0)
    );
    let ratio_fw = r.proxied_work.rps / r.direct_work.rps;
    let _ = writeln!(
        s,
        "| (f) the same with an upstream spending {UPSTREAM_WORK_MS} ms per request (supplementary) | ≥ 0.8 | {ratio_fw:.2} | {} |",
        mark(ratio_fw >= 0.8 && r.proxied_work.bad == 0)
    );
    let _ = writeln!(
        s,
        "| idle RSS | < 20 MB | {:.1} MiB | {} |",
        mib(r.rss_idle),
        mark(mib(r.rss_idle) < 20.0)
    );
    let _ = writeln!(
        s,
        "| RSS with {} cached identities | < 150 MB | {:.1} MiB | {} |",
        r.cached_total,
        mib(r.rss_many),
        mark(mib(r.rss_many) < 150.0)
    );
    let _ = writeln!(
        s,
        "| start to first 200 from /healthz | < 200 ms | {:.1} ms | {} |",
        r.start_ms,
        mark(r.start_ms < 200.0)
    );

    let _ = writeln!(s, "\n## Measurements\n");
    let _ = writeln!(
        s,
        "| Case | Requests/s | p50 | p99 | Requests | Failed | Salesforce calls |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let row = |s: &mut String, name: &str, l: &Load, calls: &str| {
        let _ = writeln!(
            s,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} | {} | {calls} |",
            l.rps, l.p50_ms, l.p99_ms, l.requests, l.bad
        );
    };
    row(&mut s, "(a) `GET /healthz`, no auth", r.a, "-");
    row(
        &mut s,
        "(b) `GET /api/me`, cached identity",
        r.b,
        &r.b_calls.to_string(),
    );
    row(
        &mut s,
        "(c) `GET /api/me`, cache off (`IDENTITY_CACHE_TTL=0`)",
        r.c,
        &r.c_calls.to_string(),
    );
    row(
        &mut s,
        "(f) `GET /hello` on the upstream directly",
        r.direct,
        "-",
    );
    row(
        &mut s,
        "(f) `GET /hello` through sfgate (cached identity)",
        r.proxied,
        "-",
    );
    row(
        &mut s,
        "(f) `GET /work` (5 ms of upstream work) directly",
        r.direct_work,
        "-",
    );
    row(
        &mut s,
        "(f) `GET /work` through sfgate (cached identity)",
        r.proxied_work,
        "-",
    );
    let _ = writeln!(
        s,
        "\n(c) is bounded by the emulator's {} ms round trip: about connections ÷ latency.",
        r.args.latency_ms
    );
    let _ = writeln!(
        s,
        "\n(f) against `/hello` compares one loopback hop with two on the same two cores: the \
         upstream answers in a few microseconds, while a proxied request costs the gateway a \
         second request and response (an extra send and receive, each waking another process), \
         the identity check and header rewriting. The ratio therefore measures the cost of the \
         extra hop against a no-op, not what users of a real app see; the `/work` rows, where the \
         upstream waits {UPSTREAM_WORK_MS} ms as an app waiting for its database does, show that."
    );
    let _ = writeln!(s, "\n| Memory and size | |\n|---|---|");
    let _ = writeln!(s, "| RSS idle | {:.1} MiB |", mib(r.rss_idle));
    let _ = writeln!(
        s,
        "| RSS after (e) ({} identities) | {:.1} MiB |",
        r.sizes.distinct + 2,
        mib(r.rss_after_e)
    );
    let _ = writeln!(
        s,
        "| RSS with {} cached identities | {:.1} MiB |",
        r.cached_total,
        mib(r.rss_many)
    );
    let _ = writeln!(
        s,
        "| binary size | {:.1} MiB |",
        r.binary_size as f64 / 1_048_576.0
    );
    let _ = writeln!(s, "| start to first 200 | {:.1} ms |", r.start_ms);

    let _ = writeln!(s, "\n## Exact load commands\n\n```");
    for l in [
        r.a,
        r.b,
        r.c,
        r.direct,
        r.proxied,
        r.direct_work,
        r.proxied_work,
    ] {
        let _ = writeln!(s, "{}", l.command);
    }
    let _ = writeln!(s, "```");
    s
}
