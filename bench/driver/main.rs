//! The benchmark driver behind `bench/run`: starts the gateway and the emulator as
//! separate processes on loopback, nginx beside them as the anchor, loads them with `wrk`
//! (throughput and latency) and with its own clients (exact call counts, WebSocket echo),
//! reads memory from /proc, and writes `bench/REPORT.md`.
//!
//! A case is a small async function over [`Bench`], in a module of its own, that measures and
//! pushes its rows ([`Bench::row`]) and targets ([`Bench::target`]); `run` lists the cases in
//! order. What the cases share (the processes under test, nginx, the load generators, the
//! report) lives in modules beside them.
//! Absolute numbers vary between runs on shared machines; the report leads with ratios.

mod assertion_case;
#[path = "../build_profile.rs"]
mod build_profile;
mod cache_off;
mod cpu;
mod distinct_tokens;
mod emulator;
mod floor;
mod floor_check;
mod gateway_vs_nginx;
mod identity_cache;
mod jwt_case;
mod jwt_floor;
mod load;
mod many_identities;
mod nginx;
#[path = "../nginx_process.rs"]
mod nginx_process;
mod processes;
mod raw_floor;
mod redis_case;
mod report;
mod single_flight;
mod startup_case;
mod upstream_with_work;
mod upstreams;
mod websockets;

use cache_off::*;
use cpu::*;
use distinct_tokens::*;
use emulator::*;
use gateway_vs_nginx::*;
use identity_cache::*;
use load::*;
use many_identities::*;
use nginx::*;
use nginx_process::NginxProcess;
use processes::*;
use report::*;
use single_flight::*;
use upstream_with_work::*;
use upstreams::*;
use websockets::*;

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
    /// The gateway binary; by default the one of this driver's build (`target/release/sfgate`
    /// for a full run, `target/debug/sfgate` for `--smoke`, as bench/run builds them).
    #[arg(long, default_value_os_t = build_profile::default_gateway())]
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
    /// Serves the thread-per-core floor proxy alone in front of this upstream (host:port), on
    /// one thread, prints its URL and runs until killed: for `bench/profile`, which counts the
    /// floor's instructions per request beside sfgate's.
    #[arg(long, value_name = "UPSTREAM")]
    serve_floor: Option<std::net::SocketAddr>,
    /// With `--serve-floor`: serve the identity floor instead (sfgate's identity check and
    /// header rewrites on the floor's request path), checking tokens against this emulator.
    #[arg(long, value_name = "EMULATOR_URL", requires = "serve_floor")]
    identity: Option<String>,
    /// With `--serve-floor`: the raw floor (no header maps; `raw_floor.rs`) instead, with
    /// `--identity` the raw identity floor.
    #[arg(long, requires = "serve_floor")]
    raw: bool,
    /// With `--raw --identity`: add sfgate's per-request bookkeeping (`RawWork::Kept`).
    #[arg(long, requires = "raw", requires = "identity")]
    books: bool,
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
    /// Case (h): distinct JWTs and opaque tokens, and seconds per `openssl speed` operation.
    jwt_tokens: usize,
    opaque_tokens: usize,
    openssl_seconds: u64,
    /// Fresh gateways started one after another for the start-up time.
    starts: usize,
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
                jwt_tokens: 300,
                opaque_tokens: 50,
                openssl_seconds: 1,
                starts: 3,
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
                jwt_tokens: jwt_case::JWT_TOKENS,
                opaque_tokens: jwt_case::OPAQUE_TOKENS,
                openssl_seconds: 3,
                starts: startup_case::STARTS,
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Load {
    /// CPU time of the measured server per request, in µs, when measured (from /proc).
    cpu_us: Option<f64>,
    /// CPU time per request of the static upstream and of the load generator, where measured:
    /// what the row's requests cost the other processes on the same cores.
    upstream_us: Option<f64>,
    wrk_us: Option<f64>,
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

/// Where a target sits in the table: the speed issue's targets in its order (issue 26), then
/// the supplementary ones in the order the cases push them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Gateway,
    GatewayCpu,
    AuthRequest,
    CachedHit,
    WebSocket,
    Jwt,
    ManyIdentities,
    IdleRss,
    Start,
    Supplementary,
}

/// One line of the targets table.
struct Target {
    rank: Rank,
    name: String,
    goal: String,
    result: String,
    /// `None`: reported, no goal to meet.
    met: Option<bool>,
    /// The floor measured in the same run that bounds this target, and where sfgate stands
    /// against it (a floor is the floor of a design: the same job done by bare parts).
    floor: Option<String>,
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

    fn target(
        &mut self,
        rank: Rank,
        name: impl Into<String>,
        goal: &str,
        result: String,
        met: Option<bool>,
    ) -> &mut Target {
        self.targets.push(Target {
            rank,
            name: name.into(),
            goal: goal.into(),
            result,
            met,
            floor: None,
        });
        let last = self.targets.len() - 1;
        &mut self.targets[last]
    }

    /// A throughput ratio target, `measured / anchor ≥ goal`, failed requests counting as a
    /// miss.
    fn ratio(
        &mut self,
        rank: Rank,
        name: &str,
        measured: &Load,
        anchor: &Load,
        goal: f64,
    ) -> &mut Target {
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
        self.target(rank, name, &format!("≥ {goal}"), result, Some(met))
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
    if let Some(upstream) = args.serve_floor {
        serve_floor(upstream, args.identity.as_deref(), args.raw, args.books).await;
        return;
    }
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

/// `--serve-floor`: the floor (with `--identity`, the identity floor; with `--raw`, the raw
/// floor, `--raw --identity [--books]` its identity variants) on one serving thread
/// (as `bench/profile` runs sfgate, with `SERVER_THREADS=1`), its URL on stdout, then nothing
/// until the process is killed.
async fn serve_floor(
    upstream: std::net::SocketAddr,
    identity: Option<&str>,
    raw: bool,
    books: bool,
) {
    let started = match (identity, raw) {
        (None, false) => floor::start_tpc_proxy(upstream, 1),
        (Some(emulator), false) => floor::bench_authenticator(emulator, upstream)
            .and_then(|auth| floor::start_tpc_identity_proxy(upstream, 1, auth)),
        (None, true) => raw_floor::start_raw_proxy(upstream, 1, raw_floor::RawWork::Forward),
        (Some(emulator), true) => floor::bench_authenticator(emulator, upstream).and_then(|auth| {
            let work = if books {
                raw_floor::RawWork::Kept(auth)
            } else {
                raw_floor::RawWork::Identity(auth)
            };
            raw_floor::start_raw_proxy(upstream, 1, work)
        }),
    };
    match started {
        Ok(url) => {
            println!("{url}");
            std::future::pending::<()>().await;
        }
        Err(e) => {
            eprintln!("cannot start the floor: {e}");
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
            "{} not found: build it with `{}`",
            args.binary.display(),
            build_profile::build_command()
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
    let (gateway, gw, _) = start_gateway(
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
            gateway.id(),
            &emu,
            sizes.jwt_tokens,
            sizes.opaque_tokens,
            sizes.openssl_seconds,
        )
        .await?;
        println!("{}", case.markdown());
        println!(
            "added CPU per first request with a new JWT vs. one RSA-2048 verification: {}",
            case.verify_result()
        );
        drop((gateway, emulator));
        return Ok(case.problems());
    }
    // Before nginx, whose `auth_request` floor asks it.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let responder = floor::start_tpc_responder(cores)?;
    let ports = NginxPorts {
        responder: responder
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| fail("no port in the responder's URL"))?,
        ..ports
    };
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
        Rank::IdleRss,
        "idle RSS",
        "< 20 MB",
        mib_and_mb(rss_idle),
        Some(megabytes(rss_idle) < 20.0),
    );
    bench
        .memory
        .push(("RSS idle".into(), format!("{:.1} MiB", mib(rss_idle))));
    startup_case::start_to_first_200(&mut bench).await?;

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

    // (i) gateway mode with ASSERTION_KEY against without (bench/driver/assertion_case.rs), both
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
    // (h) distinct JWT vs opaque tokens on first use, and the CPU a new JWT adds against one
    // RSA-2048 verification (bench/driver/jwt_case.rs); small in --smoke.
    let jwt = jwt_case::run(
        &bench.http,
        &bench.gw,
        bench.gateway.id(),
        &bench.emu,
        bench.sizes.jwt_tokens,
        bench.sizes.opaque_tokens,
        bench.sizes.openssl_seconds,
    )
    .await?;
    bench.problems.extend(jwt.problems());
    let met = jwt.verifications().map(|r| r <= jwt_case::VERIFY_GOAL);
    bench.target(
        Rank::Jwt,
        "added CPU per first request with a new JWT vs. one RSA-2048 verification (`openssl speed`, same run)",
        &format!("≤ {}", jwt_case::VERIFY_GOAL),
        jwt.verify_result(),
        met,
    )
    .floor = jwt.floor_result();

    // (r) the same cached identity with REDIS_URL set (bench/driver/redis_case.rs).
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
    drop(emulator);

    let mut report = render(&bench) + &redis_case::section(&redis);
    report.push_str(&assertion_report);
    report.push_str(&jwt.markdown());
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
