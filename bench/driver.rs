//! The benchmark driver behind `bench/run`: starts the release gateway and the emulator as
//! separate processes on loopback, nginx beside them as the anchor, loads them with `wrk`
//! (throughput and latency) and with its own clients (exact call counts, WebSocket echo),
//! reads memory from /proc, and writes `bench/REPORT.md`.
//!
//! A case is a small async function over [`Bench`] that measures and pushes its rows
//! ([`Bench::row`]) and targets ([`Bench::target`]); `run` lists the cases in order.
//! Absolute numbers vary between runs on shared machines; the report leads with ratios.

mod assertion_case;
mod floor;
#[path = "jwt_case.rs"]
mod jwt_case;
#[path = "redis_case.rs"]
mod redis_case;

/// The allocator sfgate's binary uses (src/main.rs), so that the floors and the echo server
/// in this process are built like sfgate is.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::Parser;
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

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
    /// The nginx binary for the anchor rows.
    #[arg(long, default_value = "nginx")]
    nginx: String,
    /// Where the report goes.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only case (h), distinct JWT and opaque tokens against a cached one: prints its table
    /// and writes no report (for work on the JWT path; the full run includes it).
    #[arg(long)]
    jwt_only: bool,
    /// Only cases (a), (b), (p) and (ws): cached identity, gateway mode and WebSockets beside
    /// their anchors and floors; prints its tables and writes no report (for work on the
    /// request and proxy paths; the full run includes them).
    #[arg(long)]
    proxy_only: bool,
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
    /// WebSocket connections echoing at once, and sockets held open for the memory case.
    ws_connections: usize,
    ws_open: usize,
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
                ws_connections: 8,
                ws_open: 100,
            }
        } else {
            Self {
                duration: args.duration,
                connections: args.connections,
                stampede: 1_000,
                distinct: 10_000,
                many: 100_000,
                ws_connections: args.connections as usize,
                ws_open: 1_000,
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Load {
    /// CPU time of the measured server per request, in µs, when measured (from /proc).
    cpu_us: Option<f64>,
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

/// One line of the measurements table.
struct Row {
    case: String,
    load: Load,
    /// Salesforce calls during the measurement, when counted.
    calls: Option<u64>,
}

/// One line of the targets table.
struct Target {
    name: String,
    goal: String,
    result: String,
    /// `None`: reported, no goal to meet.
    met: Option<bool>,
}

/// What every case shares: the processes under test, the driver's client, and what the
/// cases found.
struct Bench {
    args: Args,
    sizes: Sizes,
    http: reqwest::Client,
    emu: String,
    /// The main gateway: cached identities, its upstream the nginx static server.
    gw: String,
    gateway: Child,
    /// `Authorization` and `X-Instance-Url` for wrk, with a token whose identity is cached.
    auth: [String; 2],
    token: String,
    nginx: Nginx,
    /// The driver's WebSocket echo server, `http://127.0.0.1:port`.
    ws_echo: String,
    rows: Vec<Row>,
    targets: Vec<Target>,
    notes: Vec<String>,
    memory: Vec<(String, String)>,
    problems: Vec<String>,
}

impl Bench {
    fn row(&mut self, case: impl Into<String>, load: &Load, calls: Option<u64>) {
        self.rows.push(Row {
            case: case.into(),
            load: load.clone(),
            calls,
        });
    }

    fn target(&mut self, name: impl Into<String>, goal: &str, result: String, met: Option<bool>) {
        self.targets.push(Target {
            name: name.into(),
            goal: goal.into(),
            result,
            met,
        });
    }

    /// A throughput ratio target, `measured / anchor ≥ goal`, failed requests counting as a
    /// miss.
    fn ratio(&mut self, name: &str, measured: &Load, anchor: &Load, goal: f64) {
        let ratio = measured.rps / anchor.rps;
        let met = ratio >= goal && measured.bad == 0;
        let result = if met {
            format!("{ratio:.2}")
        } else {
            format!(
                "{ratio:.2} ({:.0} % short of {goal})",
                (1.0 - ratio / goal) * 100.0
            )
        };
        self.target(name, &format!("≥ {goal}"), result, Some(met));
    }

    /// A ratio shown for comparison, without a goal of its own.
    fn reported_ratio(&mut self, name: &str, measured: &Load, anchor: &Load) {
        let ratio = measured.rps / anchor.rps;
        self.target(name, "reported", format!("{ratio:.2}"), None);
    }

    /// A failure of the benchmark itself (not a missed speed target).
    fn check_no_failures(&mut self, name: &str, load: &Load) {
        if load.bad > 0 || load.requests == 0 {
            self.problems.push(format!(
                "{name}: {} of {} requests failed",
                load.bad, load.requests
            ));
        }
    }

    async fn wrk(&self, url: &str, authenticated: bool) -> Result<Load, Failure> {
        let headers: &[String] = if authenticated { &self.auth } else { &[] };
        wrk(url, headers, &self.sizes).await
    }
}

#[tokio::main]
async fn main() {
    sfgate::crypto::install_tls_provider();
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

    let ports = NginxPorts::pick()?;
    // Before nginx, which proxies WebSockets to it.
    let ws_echo = start_ws_echo(ports.ws_echo).await?;
    let (emulator, emu) = start_emulator(&args.binary, args.latency_ms).await?;
    let static_upstream = format!("http://127.0.0.1:{}", ports.upstream);
    let (gateway, gw, start_ms) = start_gateway(
        &args.binary,
        &emu,
        &[
            ("IDENTITY_CACHE_TTL", "600"),
            ("UPSTREAM_URL", &static_upstream),
        ],
    )
    .await?;
    if args.jwt_only {
        let case = jwt_case::run(
            &http,
            &gw,
            &emu,
            jwt_case::JWT_TOKENS,
            jwt_case::OPAQUE_TOKENS,
        )
        .await?;
        println!("{}", case.markdown());
        drop((gateway, emulator));
        return Ok(case.problems());
    }
    let nginx = Nginx::start(&args.nginx, ports, &gw).await?;
    let token = issue_tokens(&http, &emu, 1).await?.remove(0);
    let auth = [
        format!("Authorization: Bearer {token}"),
        format!("X-Instance-Url: {emu}"),
    ];
    let mut bench = Bench {
        args,
        sizes,
        http,
        emu,
        gw,
        gateway,
        auth,
        token,
        nginx,
        ws_echo,
        rows: Vec::new(),
        targets: Vec::new(),
        notes: Vec::new(),
        memory: Vec::new(),
        problems: Vec::new(),
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib(&bench.gateway)?;
    bench.target(
        "idle RSS",
        "< 20 MB",
        mib_and_mb(rss_idle),
        Some(megabytes(rss_idle) < 20.0),
    );
    bench
        .memory
        .push(("RSS idle".into(), format!("{:.1} MiB", mib(rss_idle))));
    bench.target(
        "start to first 200 from /oauth2/healthz",
        "< 200 ms",
        format!("{start_ms:.1} ms"),
        Some(start_ms < 200.0),
    );

    if bench.args.proxy_only {
        identity_cache(&mut bench).await?;
        gateway_vs_nginx(&mut bench).await?;
        websockets(&mut bench).await?;
        println!("{}", render(&bench));
        return Ok(std::mem::take(&mut bench.problems));
    }
    identity_cache(&mut bench).await?;
    cache_off(&mut bench).await?;
    single_flight(&mut bench).await?;
    distinct_tokens(&mut bench).await?;
    gateway_vs_nginx(&mut bench).await?;
    upstream_with_work(&mut bench).await?;
    websockets(&mut bench).await?;
    many_identities(&mut bench).await?;

    // (i) gateway mode with ASSERTION_KEY against without (bench/assertion_case.rs), both
    // in front of the same static upstream nginx serves.
    let (assertion_report, assertion_problems) = assertion_case::run(
        &bench.args.binary,
        &bench.emu,
        &static_upstream,
        &bench.auth,
        &bench.sizes,
    )
    .await?;
    bench.problems.extend(assertion_problems);
    // (h) distinct JWT vs opaque tokens on first use (bench/jwt_case.rs); out of --smoke,
    // where minting RSA-signed tokens would dominate the run.
    let jwt = if bench.args.smoke {
        None
    } else {
        let case = jwt_case::run(
            &bench.http,
            &bench.gw,
            &bench.emu,
            jwt_case::JWT_TOKENS,
            jwt_case::OPAQUE_TOKENS,
        )
        .await?;
        bench.problems.extend(case.problems());
        Some(case)
    };

    // (r) the same cached identity with REDIS_URL set (bench/redis_case.rs).
    let redis = redis_case::measure(
        &bench.args.binary,
        &bench.emu,
        &bench.token,
        &bench.sizes,
        &bench.http,
    )
    .await?;
    bench.problems.extend(redis_case::problems(&redis));

    let binary_size = std::fs::metadata(&bench.args.binary)?.len();
    bench.memory.push((
        "binary size".into(),
        format!("{:.1} MiB", binary_size as f64 / 1_048_576.0),
    ));
    bench
        .memory
        .push(("start to first 200".into(), format!("{start_ms:.1} ms")));
    drop(emulator);

    let mut report = render(&bench) + &redis_case::section(&redis);
    report.push_str(&assertion_report);
    if let Some(case) = &jwt {
        report.push_str(&case.markdown());
    }
    let out = bench.args.out.clone().unwrap_or_else(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench");
        if bench.args.smoke {
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
    Ok(std::mem::take(&mut bench.problems))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Decimal megabytes (10^6 bytes), the unit the memory targets are written in.
fn megabytes(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

/// A memory target's result: the MiB the other rows use and the MB the goal is written in.
fn mib_and_mb(kib: u64) -> String {
    format!("{:.1} MiB = {:.1} MB", mib(kib), megabytes(kib))
}

/// (a) the ceiling, (b) a cached identity on sfgate's own protected route.
async fn identity_cache(b: &mut Bench) -> Result<(), Failure> {
    let a = b.wrk(&format!("{}/oauth2/healthz", b.gw), false).await?;
    check_ok(
        &b.http,
        &format!("{}/oauth2/userinfo", b.gw),
        &b.token,
        &b.emu,
    )
    .await?;
    reset_stats(&b.http, &b.emu).await?;
    let me = b.wrk(&format!("{}/oauth2/userinfo", b.gw), true).await?;
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    b.row("(a) `GET /oauth2/healthz`, no auth", &a, None);
    b.row(
        "(b) `GET /oauth2/userinfo`, cached identity",
        &me,
        Some(calls),
    );
    b.ratio(
        "(b)/(a) throughput, cached `/oauth2/userinfo` vs. `/oauth2/healthz`",
        &me,
        &a,
        0.9,
    );
    let added = me.p99_ms - a.p99_ms;
    b.target(
        "added p99 latency on a cache hit",
        "< 1 ms",
        format!("{added:.2} ms"),
        Some(added < 1.0),
    );
    Ok(())
}

/// (c) the cache off: every request is a Salesforce call.
async fn cache_off(b: &mut Bench) -> Result<(), Failure> {
    let (gateway, gw, _) =
        start_gateway(&b.args.binary, &b.emu, &[("IDENTITY_CACHE_TTL", "0")]).await?;
    reset_stats(&b.http, &b.emu).await?;
    let c = b.wrk(&format!("{gw}/api/me"), true).await?;
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    drop(gateway);
    b.row(
        "(c) `GET /api/me`, cache off (`IDENTITY_CACHE_TTL=0`)",
        &c,
        Some(calls),
    );
    b.notes.push(format!(
        "(c) is bounded by the emulator's {} ms round trip: about connections ÷ latency.",
        b.args.latency_ms
    ));
    Ok(())
}

/// (d) single-flight: a stampede of first requests with one fresh token.
async fn single_flight(b: &mut Bench) -> Result<(), Failure> {
    let stampede = b.sizes.stampede;
    let fresh = issue_tokens(&b.http, &b.emu, 1).await?.remove(0);
    reset_stats(&b.http, &b.emu).await?;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(stampede));
    let tasks: Vec<_> = (0..stampede)
        .map(|_| {
            let (http, url, token, instance, barrier) = (
                b.http.clone(),
                format!("{}/oauth2/userinfo", b.gw),
                fresh.clone(),
                b.emu.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                get_me(&http, &url, &token, &instance).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await, Ok(Ok(200))) {
            ok += 1;
        }
    }
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    let met = calls == 1 && ok == stampede;
    if !met {
        b.problems.push(format!(
            "(d) {ok}/{stampede} answered 200 with {calls} calls (expected all, 1)"
        ));
    }
    b.target(
        format!("(d) calls for {stampede} concurrent first requests"),
        "exactly 1",
        format!("{calls} ({ok} answered 200)"),
        Some(met),
    );
    Ok(())
}

/// (e) distinct tokens, each used twice.
async fn distinct_tokens(b: &mut Bench) -> Result<(), Failure> {
    let distinct = b.sizes.distinct;
    let tokens = issue_tokens(&b.http, &b.emu, distinct).await?;
    reset_stats(&b.http, &b.emu).await?;
    let ok = drive(&b.http, &b.gw, &b.emu, &tokens, 2, 64).await;
    let calls = userinfo_calls(&b.http, &b.emu).await?;
    let requests = 2 * distinct as u64;
    let hit = 1.0 - calls as f64 / requests as f64;
    let met = calls == distinct as u64 && ok == requests;
    if !met {
        b.problems.push(format!(
            "(e) {ok}/{requests} answered 200 with {calls} calls (expected all, {distinct})"
        ));
    }
    b.target(
        format!("(e) calls for {distinct} distinct tokens used twice ({requests} requests)"),
        &format!("exactly {distinct}"),
        format!("{calls} (hit ratio {hit:.3})"),
        Some(met),
    );
    let rss = rss_kib(&b.gateway)?;
    b.memory.push((
        format!("RSS after (e) ({} identities)", distinct + 2),
        format!("{:.1} MiB", mib(rss)),
    ));
    Ok(())
}

/// Rounds of the proxy comparison; each reported figure is the median over them.
const PROXY_ROUNDS: usize = 5;

/// nginx as the anchor: its static upstream directly, nginx as a plain reverse proxy to it,
/// nginx `auth_request` asking sfgate, sfgate's gateway mode and the two floors (thread per
/// core, work stealing), all to the same upstream. The proxies are measured in
/// [`PROXY_ROUNDS`] alternated rounds (the order rotates each round, so load from neighbours
/// falls on all alike) and each reports its median requests/s and median CPU per request: for
/// nginx its master and workers together, for sfgate its process, for the floors their
/// threads.
async fn gateway_vs_nginx(b: &mut Bench) -> Result<(), Failure> {
    let ports = b.nginx.ports;
    let direct = b
        .wrk(&format!("http://127.0.0.1:{}/hello", ports.upstream), false)
        .await?;
    let upstream: std::net::SocketAddr = ([127, 0, 0, 1], ports.upstream).into();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tpc = floor::start_tpc_proxy(upstream, cores)?;
    let work_stealing = floor::start_hyper_proxy(upstream)?;
    let nginx_pid = b.nginx.child.id().ok_or_else(|| fail("nginx exited"))?;
    let sfgate_pid = b.gateway.id().ok_or_else(|| fail("the gateway exited"))?;
    let runs: [(&str, String, bool, Cpu); 5] = [
        (
            "nginx plain proxy",
            format!("http://127.0.0.1:{}/hello", ports.proxy),
            false,
            Cpu::ProcessTree(nginx_pid),
        ),
        (
            "nginx auth_request",
            format!("http://127.0.0.1:{}/hello", ports.auth_request),
            true,
            // nginx and sfgate both work for each request.
            Cpu::Both(nginx_pid, sfgate_pid),
        ),
        (
            "sfgate gateway mode",
            format!("{}/hello", b.gw),
            true,
            Cpu::ProcessTree(sfgate_pid),
        ),
        (
            "thread-per-core floor",
            format!("{tpc}/hello"),
            false,
            Cpu::OwnThreads(floor::TPC_THREADS),
        ),
        (
            "work-stealing floor",
            format!("{work_stealing}/hello"),
            false,
            Cpu::OwnThreads(floor::WORK_STEALING_THREADS),
        ),
    ];
    let rounds = if b.args.smoke { 1 } else { PROXY_ROUNDS };
    let mut loads: Vec<Vec<Load>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        for k in 0..runs.len() {
            let i = (round + k) % runs.len();
            let (_, url, authenticated, cpu) = &runs[i];
            let before = cpu.ticks();
            let mut load = b.wrk(url, *authenticated).await?;
            let after = cpu.ticks();
            load.cpu_us = cpu_per_request(before, after, load.requests);
            loads[i].push(load);
        }
    }
    let [plain, auth_request, gateway, tpc, work_stealing] =
        [0, 1, 2, 3, 4].map(|i| median(&loads[i]));
    for ((name, ..), load) in
        runs.iter()
            .zip([&plain, &auth_request, &gateway, &tpc, &work_stealing])
    {
        b.check_no_failures(name, load);
    }
    let of = if rounds > 1 {
        format!(", median of {rounds} alternated rounds")
    } else {
        String::new()
    };
    b.row(
        "(n) `GET /hello` on nginx's static upstream directly",
        &direct,
        None,
    );
    b.row(
        format!("(n) nginx plain reverse proxy → upstream (no auth{of})"),
        &plain,
        None,
    );
    b.row(
        format!("(n) nginx `auth_request` via sfgate `/oauth2/auth` → upstream (CPU: nginx + sfgate{of})"),
        &auth_request,
        None,
    );
    b.row(
        format!("(p) sfgate gateway mode → upstream (cached identity{of})"),
        &gateway,
        None,
    );
    b.row(
        format!("(floor) bare proxy, thread per core → upstream (nothing of sfgate's{of})"),
        &tpc,
        None,
    );
    b.row(
        format!(
            "(floor) bare proxy, work-stealing runtime + hyper-util pool → upstream{}",
            if of.is_empty() {
                String::new()
            } else {
                format!(" ({})", &of[2..])
            }
        ),
        &work_stealing,
        None,
    );
    b.ratio(
        "(p) sfgate gateway mode vs. nginx plain reverse proxy",
        &gateway,
        &plain,
        0.9,
    );
    match (gateway.cpu_us, plain.cpu_us) {
        (Some(sfgate), Some(nginx)) if nginx > 0.0 => {
            let ratio = sfgate / nginx;
            b.target(
                "(p) sfgate CPU µs per proxied request vs. nginx's",
                "≤ 1.15",
                format!("{ratio:.2} ({sfgate:.1} vs {nginx:.1} µs)"),
                Some(ratio <= 1.15),
            );
        }
        _ => b.target(
            "(p) sfgate CPU µs per proxied request vs. nginx's",
            "≤ 1.15",
            "not measured".into(),
            None,
        ),
    }
    b.reported_ratio(
        "(p) floor: thread-per-core bare proxy vs. nginx plain reverse proxy",
        &tpc,
        &plain,
    );
    b.reported_ratio(
        "(p) floor: work-stealing bare proxy vs. nginx plain reverse proxy",
        &work_stealing,
        &plain,
    );
    b.reported_ratio(
        "(p) sfgate gateway mode vs. the thread-per-core floor",
        &gateway,
        &tpc,
    );
    b.ratio(
        "nginx `auth_request` + sfgate vs. nginx plain reverse proxy",
        &auth_request,
        &plain,
        0.8,
    );
    Ok(())
}

/// The run with the median requests/s, with the median CPU per request of all runs (a failed
/// run is kept over any other, so that failures reach the report).
fn median(loads: &[Load]) -> Load {
    if let Some(failed) = loads.iter().find(|l| l.bad > 0 || l.requests == 0) {
        return failed.clone();
    }
    let mut by_rps: Vec<&Load> = loads.iter().collect();
    by_rps.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mut load = by_rps
        .get(by_rps.len() / 2)
        .map_or_else(Load::default, |l| (*l).clone());
    let mut cpu: Vec<f64> = loads.iter().filter_map(|l| l.cpu_us).collect();
    cpu.sort_by(f64::total_cmp);
    load.cpu_us = cpu.get(cpu.len() / 2).copied();
    load
}

/// Whose CPU time a measurement counts, read from /proc (user + system, in clock ticks).
enum Cpu {
    /// A process and its children (nginx's master and workers; sfgate).
    ProcessTree(u32),
    /// Two process trees together.
    Both(u32, u32),
    /// The driver's own threads whose names start with this (the floors).
    OwnThreads(&'static str),
}

impl Cpu {
    fn ticks(&self) -> Option<u64> {
        match self {
            Self::ProcessTree(pid) => tree_ticks(*pid),
            Self::Both(a, b) => Some(tree_ticks(*a)? + tree_ticks(*b)?),
            Self::OwnThreads(prefix) => {
                let mut sum = 0;
                for task in std::fs::read_dir("/proc/self/task").ok()? {
                    let path = task.ok()?.path();
                    let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                    if comm.starts_with(prefix) {
                        sum += stat_ticks(&std::fs::read_to_string(path.join("stat")).ok()?)?.0;
                    }
                }
                Some(sum)
            }
        }
    }
}

/// `utime + stime` of `pid` and of its direct children (nginx's workers).
fn tree_ticks(pid: u32) -> Option<u64> {
    let (own, _) = stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let mut sum = own;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((ticks, parent)) = stat_ticks(&stat) {
            if parent == pid {
                sum += ticks;
            }
        }
    }
    Some(sum)
}

/// `(utime + stime, ppid)` from a /proc `stat` line (fields after the parenthesised name).
fn stat_ticks(stat: &str) -> Option<(u64, u32)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime, ppid))
}

/// CPU µs per request from tick counts before and after a run (Linux's USER_HZ is 100).
fn cpu_per_request(before: Option<u64>, after: Option<u64>, requests: u64) -> Option<f64> {
    const TICK_US: f64 = 10_000.0;
    let ticks = after?.checked_sub(before?)?;
    (requests > 0).then(|| ticks as f64 * TICK_US / requests as f64)
}

/// Milliseconds the `/work` route of the app upstream waits before answering.
const UPSTREAM_WORK_MS: u64 = 5;

/// An upstream that spends 5 ms per request, as an app that queries a database does: what
/// the gateway adds when the upstream is not a no-op.
async fn upstream_with_work(b: &mut Bench) -> Result<(), Failure> {
    let upstream = start_app_upstream().await?;
    let (gateway, gw, _) = start_gateway(
        &b.args.binary,
        &b.emu,
        &[("IDENTITY_CACHE_TTL", "600"), ("UPSTREAM_URL", &upstream)],
    )
    .await?;
    let direct = b.wrk(&format!("{upstream}/work"), false).await?;
    let proxied = b.wrk(&format!("{gw}/work"), true).await?;
    drop(gateway);
    b.check_no_failures("(w) proxied /work", &proxied);
    b.row(
        format!("(w) `GET /work` ({UPSTREAM_WORK_MS} ms of upstream work) directly"),
        &direct,
        None,
    );
    b.row(
        "(w) `GET /work` through sfgate (cached identity)",
        &proxied,
        None,
    );
    b.ratio(
        &format!("(w) proxied vs. direct with an upstream spending {UPSTREAM_WORK_MS} ms (supplementary)"),
        &proxied,
        &direct,
        0.8,
    );
    Ok(())
}

/// WebSocket echo: messages per second directly and through sfgate, then many sockets held
/// open through sfgate and its memory per socket.
async fn websockets(b: &mut Bench) -> Result<(), Failure> {
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

/// (g) many cached identities; the emulator answers at once so filling takes seconds.
async fn many_identities(b: &mut Bench) -> Result<(), Failure> {
    set_latency(&b.http, &b.emu, 0).await?;
    let mut filled = 0u64;
    let mut remaining = b.sizes.many.saturating_sub(b.sizes.distinct + 2);
    while remaining > 0 {
        let batch = remaining.min(10_000);
        let tokens = issue_tokens(&b.http, &b.emu, batch).await?;
        filled += drive(&b.http, &b.gw, &b.emu, &tokens, 1, 128).await;
        remaining -= batch;
    }
    set_latency(&b.http, &b.emu, b.args.latency_ms).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kib(&b.gateway)?;
    let cached = filled + b.sizes.distinct as u64 + 2;
    b.target(
        format!("RSS with {cached} cached identities"),
        "< 150 MB",
        mib_and_mb(rss),
        Some(megabytes(rss) < 150.0),
    );
    b.memory.push((
        format!("RSS with {cached} cached identities"),
        format!("{:.1} MiB", mib(rss)),
    ));
    Ok(())
}

/// A local app upstream for the `/work` rows: one route that waits like an app waiting for
/// its database.
async fn start_app_upstream() -> Result<String, Failure> {
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
async fn start_ws_echo(port: u16) -> Result<String, Failure> {
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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_auth(token: &str, instance: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {token}")),
        ("x-instance-url", instance.to_string()),
    ]
}

async fn ws_connect(url: &str, headers: &[(&'static str, String)]) -> Result<Ws, Failure> {
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    Ok(ws)
}

/// `connections` sockets, each sending a 32-byte text message and waiting for its echo, in a
/// loop for `duration`: messages per second and round-trip latency.
async fn ws_echo_load(
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

/// Loopback ports for nginx's three servers, picked free before nginx starts.
#[derive(Debug, Clone, Copy)]
struct NginxPorts {
    /// The static upstream every proxy row uses.
    upstream: u16,
    /// nginx as a plain reverse proxy to the upstream.
    proxy: u16,
    /// nginx `auth_request` through sfgate's `/oauth2/auth`, then the upstream.
    auth_request: u16,
    /// nginx proxying WebSockets to the driver's echo server.
    ws_proxy: u16,
    /// The driver's WebSocket echo server (not nginx's; nginx proxies to it).
    ws_echo: u16,
}

impl NginxPorts {
    fn pick() -> Result<Self, Failure> {
        let free = || -> Result<u16, Failure> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        Ok(Self {
            upstream: free()?,
            proxy: free()?,
            auth_request: free()?,
            ws_proxy: free()?,
            ws_echo: free()?,
        })
    }
}

/// nginx run as the anchor: not a daemon, in a directory of its own (config, pid, logs and
/// temp files), stopped with SIGQUIT when dropped.
struct Nginx {
    ports: NginxPorts,
    config: String,
    version: String,
    child: Child,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Nginx {
    async fn start(binary: &str, ports: NginxPorts, sfgate: &str) -> Result<Self, Failure> {
        let (temp, dir) = match std::env::var_os("BENCH_NGINX_DIR") {
            Some(dir) => (None, PathBuf::from(dir)),
            None => {
                let t = tempfile::tempdir()?;
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        std::fs::create_dir_all(&dir)?;
        let sfgate_port = sfgate
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| fail("no port in the gateway's URL"))?;
        let config = nginx_config(&dir, ports, sfgate_port);
        std::fs::write(dir.join("nginx.conf"), &config)?;
        let version = Command::new(binary)
            .arg("-v")
            .output()
            .await
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
            .map_err(|e| fail(format!("cannot run {binary}: {e}")))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let nginx = Self {
            ports,
            config,
            version,
            child,
            dir,
            _temp: temp,
        };
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()?;
        let started = Instant::now();
        loop {
            let up = probe
                .get(format!("http://127.0.0.1:{}/hello", ports.proxy))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            if up {
                return Ok(nginx);
            }
            if started.elapsed() > Duration::from_secs(10) {
                let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                return Err(fail(format!("nginx did not start: {log}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT to the master: workers finish and exit too (SIGKILL would orphan them).
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
            for _ in 0..50 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The exact configuration the report shows: `worker_processes auto` as nginx is deployed,
/// keep-alive to the upstreams, and no logging (sfgate logs at `warn` in the bench too).
fn nginx_config(dir: &Path, ports: NginxPorts, sfgate_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"worker_processes auto;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;

    upstream static_upstream {{
        server 127.0.0.1:{up};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    upstream sfgate {{
        server 127.0.0.1:{sfgate_port};
        keepalive 128;
        keepalive_requests 1000000;
    }}

    # The static upstream every proxy row uses (sfgate's UPSTREAM_URL too).
    server {{
        listen 127.0.0.1:{up};
        location / {{
            default_type text/plain;
            return 200 "hello from the upstream\n";
        }}
    }}

    # nginx as a plain reverse proxy, no authentication.
    server {{
        listen 127.0.0.1:{proxy};
        location / {{
            proxy_pass http://static_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}

    # nginx auth_request: every request asks sfgate's /oauth2/auth first.
    server {{
        listen 127.0.0.1:{auth};
        location = /_sfgate_auth {{
            internal;
            proxy_pass http://sfgate/oauth2/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location / {{
            auth_request /_sfgate_auth;
            auth_request_set $sf_user $upstream_http_x_salesforce_user_id;
            auth_request_set $sf_org $upstream_http_x_salesforce_org_id;
            proxy_set_header X-Salesforce-User-Id $sf_user;
            proxy_set_header X-Salesforce-Org-Id $sf_org;
            proxy_set_header Authorization "";
            proxy_set_header X-Instance-Url "";
            proxy_pass http://static_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}

    # nginx proxying WebSockets to the driver's echo server, no authentication.
    server {{
        listen 127.0.0.1:{ws_proxy};
        location / {{
            proxy_pass http://127.0.0.1:{ws_echo};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 60s;
        }}
    }}
}}
"#,
        up = ports.upstream,
        proxy = ports.proxy,
        auth = ports.auth_request,
        ws_proxy = ports.ws_proxy,
        ws_echo = ports.ws_echo,
    )
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
    issue_tokens_as(http, emu, count, "opaque").await
}

/// `count` access tokens for Alice from the emulator, in `format` (`opaque` or `jwt`).
async fn issue_tokens_as(
    http: &reqwest::Client,
    emu: &str,
    count: usize,
    format: &str,
) -> Result<Vec<String>, Failure> {
    let grants: Value = http
        .post(format!("{emu}/__emulator/tokens"))
        .json(&serde_json::json!({"username": "alice@acme.example", "count": count, "format": format}))
        // Minting thousands of RSA-signed tokens takes a while on a loaded machine.
        .timeout(Duration::from_secs(300))
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
    let url = format!("{gw}/oauth2/userinfo");
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

/// Measures two URLs alternately in ABBA order, `rounds` runs each, so load from neighbours on
/// a shared machine (which comes and goes) falls on both alike, and keeps each one's best run.
/// A run with failed requests is kept over any faster one, so that failures reach the report.
async fn best_of_alternating(
    rounds: usize,
    urls: [&str; 2],
    headers: &[String],
    sizes: &Sizes,
) -> Result<[Load; 2], Failure> {
    let mut best = [Load::default(), Load::default()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let load = wrk(urls[i], headers, sizes).await?;
            let failed = load.bad > 0 || load.requests == 0;
            if failed || (best[i].bad == 0 && load.rps > best[i].rps) {
                best[i] = load;
            }
        }
    }
    Ok(best)
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

fn render(b: &Bench) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# sfgate benchmark report{}\n",
        if b.args.smoke {
            " (smoke run: numbers not meaningful)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "- Machine: {}", machine());
    let _ = writeln!(
        s,
        "- Command: `bench/run{}` (driver: `bench/driver.rs`)",
        if b.args.smoke { " --smoke" } else { "" }
    );
    let _ = writeln!(s, "- Gateway: `{}` (release build), emulator: `sfgate emulator --latency-ms {}`, both separate processes on 127.0.0.1, logs at `warn`", b.args.binary.display(), b.args.latency_ms);
    let _ = writeln!(
        s,
        "- Anchor: {} (Debian package), `worker_processes auto`, configuration below",
        b.nginx.version
    );
    let _ = writeln!(s, "- Load: `wrk` with 2 threads, {} connections, {} s per measurement; counts and WebSocket echo by the driver's own clients", b.sizes.connections, b.sizes.duration);
    let _ = writeln!(s, "- Load generator, gateway, emulator and nginx share the same cores (and, on the shared build machine, other people's compilers): absolute numbers vary between runs, the ratios within one run are what count.\n");

    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(s, "| Target | Goal | Result | |");
    let _ = writeln!(s, "|---|---|---|---|");
    for t in &b.targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "reported",
        };
        let _ = writeln!(s, "| {} | {} | {} | {verdict} |", t.name, t.goal, t.result);
    }

    let _ = writeln!(s, "\n## Measurements\n");
    let _ = writeln!(
        s,
        "| Case | Requests/s | CPU µs/request | p50 | p99 | Requests | Failed | Salesforce calls |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for r in &b.rows {
        let l = &r.load;
        let calls = r.calls.map_or("-".to_string(), |c| c.to_string());
        let cpu = l.cpu_us.map_or("-".to_string(), |c| format!("{c:.1}"));
        let _ = writeln!(
            s,
            "| {} | {:.0} | {cpu} | {:.2} ms | {:.2} ms | {} | {} | {calls} |",
            r.case, l.rps, l.p50_ms, l.p99_ms, l.requests, l.bad
        );
    }
    for note in &b.notes {
        let _ = writeln!(s, "\n{note}");
    }
    let _ = writeln!(s, "\n| Memory and size | |\n|---|---|");
    for (what, value) in &b.memory {
        let _ = writeln!(s, "| {what} | {value} |");
    }

    let _ = writeln!(s, "\n## Exact load commands\n\n```");
    for r in &b.rows {
        let _ = writeln!(s, "{}", r.load.command);
    }
    let _ = writeln!(s, "```");
    // What the profiles show is written by people, next to the report, and kept with it.
    let notes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/NOTES.md");
    if let Ok(text) = std::fs::read_to_string(notes) {
        let _ = writeln!(s, "\n{}", text.trim_end());
    }
    let _ = writeln!(
        s,
        "\n## nginx configuration\n\nPorts are picked free at each run; `$DIR` is the run's own temporary directory.\n\n```nginx\n{}```",
        b.nginx.config.replace(&b.nginx.dir.display().to_string(), "$DIR")
    );
    s
}
