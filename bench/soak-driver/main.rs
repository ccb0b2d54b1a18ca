//! The soak behind `bench/soak`: nginx in front of two sfgate replicas sharing a real
//! `redis-server`, the built-in Salesforce emulator and a test app with a WebSocket echo, all on
//! loopback; a steady mixed load from simulated clients at a fixed rate; faults injected on a
//! recorded schedule; an oracle that checks every answer and every request the app received.
//! Writes `bench/SOAK.md` (`bench/out/SOAK-smoke.md` with `--smoke`) and exits non-zero when a
//! request that should have been refused was admitted or a component it did not stop crashed.
//!
//! Layout: `settings.rs` (paths and names sfgate owns), `stack.rs` (the processes), `app.rs`
//! (the test app), `clients.rs` (the simulated clients), `oracle.rs` (expectations and
//! records), `report.rs` (the figures).

mod app;
#[path = "../build_profile.rs"]
mod build_profile;
mod clients;
#[path = "../nginx_process.rs"]
mod nginx_process;
mod oracle;
mod report;
mod settings;
mod stack;

use clap::Parser;
use clients::{ApiClient, Browser, Ctx};
use nginx_process::NginxProcess;
use oracle::{FaultKind, Oracle};
use rand::Rng;
use report::{RunFacts, Sample};
use settings::*;
use sfgate_emulator::{Emulator, EmulatorConfig, Fault};
use stack::{fail, start_nginx, Failure, Redis, Replica};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

#[derive(Parser, Debug, Clone)]
#[command(about = "sfgate soak under faults (run through bench/soak)")]
struct Args {
    /// Minutes of load (faults spread over them).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Requests per second started by the simulated clients (5 × during the burst).
    #[arg(long)]
    rate: Option<f64>,
    /// About 60 s with every fault once, on a compressed schedule (for CI).
    #[arg(long)]
    smoke: bool,
    /// The gateway binary; by default the one of this driver's build (`target/release/sfgate`
    /// for a full run, `target/debug/sfgate` for `--smoke`, as bench/soak builds them).
    #[arg(long, default_value_os_t = build_profile::default_gateway())]
    binary: PathBuf,
    #[arg(long, default_value = "nginx")]
    nginx: String,
    /// Where the report goes (default bench/SOAK.md, or bench/out/SOAK-smoke.md with --smoke).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A title for the report (e.g. "10-minute run").
    #[arg(long)]
    title: Option<String>,
    /// `ROUTE_RULES` for the replicas instead of the default; e.g. the case-sensitive
    /// `/admin/=perm:Sfgate_Admin`, to see the oracle catch `/ADMIN/x` reaching a
    /// case-insensitive app.
    #[arg(long, default_value = ROUTE_RULES)]
    route_rules: String,
}

/// Seconds without faults at the end of a run of ten minutes or more.
const QUIET_TAIL: f64 = 180.0;

/// Durations that differ between the smoke and a real run.
struct Plan {
    duration: f64,
    rate: f64,
    cache_ttl: u64,
    lifetime: u64,
    baseline_end: f64,
    memory_reference: f64,
    /// `(start, fault, how long it lasts)`.
    events: Vec<(f64, FaultKind, f64)>,
}

impl Plan {
    fn of(args: &Args) -> Self {
        use FaultKind::*;
        if args.smoke {
            return Self {
                duration: 60.0,
                rate: args.rate.unwrap_or(12.0),
                cache_ttl: 10,
                lifetime: 25,
                baseline_end: 8.0,
                memory_reference: 8.0,
                events: vec![
                    (8.0, EmulatorSlow, 3.0),
                    (14.0, EmulatorFailing, 3.0),
                    (20.0, EmulatorHanging, 3.0),
                    (28.0, JwksRotation, 0.0),
                    (30.0, RedisDown, 3.0),
                    (39.0, AppRestart, 2.0),
                    (45.0, RollingRestart, 0.0),
                    (50.0, Burst, 4.0),
                ],
            };
        }
        let duration = (args.minutes * 60.0).max(300.0);
        let cycle = [
            (EmulatorSlow, 30.0),
            (EmulatorFailing, 20.0),
            (EmulatorHanging, 20.0),
            (JwksRotation, 0.0),
            // The rolling restart follows the Redis restart, not the app's: a replica that
            // starts while tokens logged out before Redis lost its data are still unexpired
            // must learn them from the log the other replica wrote back (a replica started
            // after they expired would admit nothing, whatever it had learned).
            (RedisDown, 15.0),
            (RollingRestart, 0.0),
            (AppRestart, 5.0),
            (Burst, 30.0),
        ];
        // The faults run from minute 2 to a quiet tail at the end, longer than any idle
        // timeout of the connection pools (sfgate's to Salesforce and to the app, nginx's to
        // sfgate: 60 s each), so that the end is compared with minute 2 in the same state:
        // steady load, every pool back to the size that load needs.
        let tail = if duration >= 600.0 { QUIET_TAIL } else { 60.0 };
        let faulty = duration - 120.0 - tail;
        let cycles = ((faulty / 480.0).floor() as usize).max(1);
        let spacing = faulty / (cycle.len() * cycles) as f64;
        let mut events = Vec::new();
        for c in 0..cycles {
            for (i, (kind, length)) in cycle.iter().enumerate() {
                let start = 120.0 + spacing * (c * cycle.len() + i) as f64;
                events.push((start, *kind, *length));
            }
        }
        Self {
            duration,
            rate: args.rate.unwrap_or(30.0),
            cache_ttl: 30,
            lifetime: 120,
            baseline_end: 60.0,
            memory_reference: 120.0,
            events,
        }
    }
}

/// Everything started, behind one lock: the fault injector changes it, the monitor watches it.
struct Stack {
    redis: Redis,
    replicas: Vec<Replica>,
    nginx: NginxProcess,
    app: app::App,
}

type Shared = Arc<Mutex<Option<Stack>>>;

/// The emulator's counters each second: `(time, userinfo calls, refresh calls)`.
type CallLog = Arc<std::sync::Mutex<Vec<(f64, u64, u64)>>>;

#[tokio::main]
async fn main() {
    sfgate::crypto::install_tls_provider();
    let args = Args::parse();
    let shared: Shared = Arc::new(Mutex::new(None));
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soak failed: {e}");
            std::process::exit(2);
        }
    };
    let code = tokio::select! {
        r = run(args, shared.clone()) => match r {
            Ok(0) => 0,
            Ok(_) => 1,
            Err(e) => {
                eprintln!("soak failed: {e}");
                2
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: stopping everything the soak started");
            130
        }
        _ = term.recv() => {
            eprintln!("terminated: stopping everything the soak started");
            143
        }
    };
    // Drop the children (SIGKILL; nginx gets SIGQUIT) before the temporary directory goes.
    drop(shared.lock().await.take());
    std::process::exit(code);
}

/// Returns the number of judged failures (admitted that should be refused, crashes).
async fn run(args: Args, shared: Shared) -> Result<usize, Failure> {
    let plan = Plan::of(&args);
    if !args.binary.exists() {
        return Err(fail(format!(
            "{} not found: build it with `{}`",
            args.binary.display(),
            build_profile::build_command()
        )));
    }
    let temp = tempfile::Builder::new()
        .prefix("sfgate-soak.")
        .tempdir_in(std::env::var_os("SOAK_DIR").map_or_else(std::env::temp_dir, PathBuf::from))?;
    let dir = temp.path().to_path_buf();
    let oracle = Arc::new(Oracle::new());

    let public_port = stack::free_port()?;
    let public = format!("http://127.0.0.1:{public_port}");
    let mut emulator_config = EmulatorConfig::new(CLIENT_ID, CLIENT_SECRET);
    emulator_config.redirect_uris = vec![format!("{public}{CALLBACK_PATH}")];
    emulator_config.rotate_refresh_tokens = true;
    emulator_config.access_token_lifetime = Duration::from_secs(plan.lifetime);
    let emulator = Emulator::start(emulator_config, 0).await?;
    let app = app::App::start(oracle.clone(), 2).await?;
    let redis = Redis::start(&dir).await?;
    let mut replicas = Vec::new();
    for (i, port) in app.ports.iter().enumerate() {
        let env = stack::replica_env(
            &emulator.base_url(),
            &public,
            &redis.url(),
            *port,
            plan.cache_ttl,
            &args.route_rules,
        );
        let mut replica = Replica::new(i, &args.binary, &dir, env)?;
        replica.spawn().await?;
        replicas.push(replica);
    }
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let nginx = start_nginx(&args.nginx, &dir, public_port, &ports).await?;
    *shared.lock().await = Some(Stack {
        redis,
        replicas,
        nginx,
        app,
    });
    println!(
        "soak: {:.0} s at {} requests/s through {public} (work directory {})",
        plan.duration,
        plan.rate,
        dir.display()
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(64)
        .build()?;
    let ctx = Arc::new(Ctx {
        oracle: oracle.clone(),
        emulator: emulator.clone(),
        base: public.clone(),
        http,
        cache_ttl: plan.cache_ttl as f64,
        lifetime: plan.lifetime as f64,
        expired: std::sync::Mutex::new(Vec::new()),
        cookies: std::sync::Mutex::new(Vec::new()),
        replays: std::sync::Mutex::new(Vec::new()),
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let samples = Arc::new(std::sync::Mutex::new(Vec::<Sample>::new()));
    let calls: CallLog = Arc::new(std::sync::Mutex::new(Vec::new()));
    let monitor = tokio::spawn(monitor(
        shared.clone(),
        oracle.clone(),
        samples.clone(),
        (emulator.clone(), calls.clone()),
        stop_rx.clone(),
    ));
    let mut sockets = Vec::new();
    for _ in 0..6 {
        sockets.push(tokio::spawn(clients::websocket(
            ctx.clone(),
            stop_rx.clone(),
        )));
    }
    let burst = Arc::new(AtomicBool::new(false));
    let schedule: Vec<String> = plan
        .events
        .iter()
        .map(|(at, kind, length)| format!("{at:.0} s: {} ({length:.0} s)", kind.name()))
        .collect();
    let faults = tokio::spawn(inject(
        plan.events.clone(),
        shared.clone(),
        emulator.clone(),
        oracle.clone(),
        burst.clone(),
    ));
    let in_flight = load(ctx.clone(), plan.rate, plan.duration, burst.clone()).await?;
    let mut notes = faults
        .await
        .unwrap_or_else(|e| vec![format!("the fault injector failed: {e}")]);

    // Let what is in flight finish (bounded), then stop the sockets and the monitor.
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        in_flight.acquire_many(LOAD_BOUND as u32),
    )
    .await;
    let _ = stop_tx.send(true);
    for s in sockets {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    let _ = monitor.await;

    for (i, log) in shared
        .lock()
        .await
        .as_ref()
        .map(|s| {
            s.replicas
                .iter()
                .map(|r| r.log().to_path_buf())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let panics = text.lines().filter(|l| l.contains("panicked")).count();
        let errors = text.lines().filter(|l| l.contains("\"ERROR\"")).count();
        if panics > 0 {
            oracle.crashed(
                format!("replica {} (a panic in its log)", i + 1),
                text.lines()
                    .find(|l| l.contains("panicked"))
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            );
        }
        notes.push(format!(
            "replica {} logged {errors} errors and {panics} panics",
            i + 1
        ));
    }
    notes.push(format!(
        "emulator: access tokens live {} s, sfgate's IDENTITY_CACHE_TTL is {} s, SALESFORCE_TIMEOUT {} s; browsers are renewed across expiry",
        plan.lifetime, plan.cache_ttl, SALESFORCE_TIMEOUT_SECS
    ));
    notes.extend(oracle.notes.lock().map(|n| n.clone()).unwrap_or_default());
    if let Some((_, _, refreshes)) = calls.lock().ok().and_then(|c| c.last().copied()) {
        notes.push(format!(
            "browser sessions renewed by a refresh-token call {refreshes} times"
        ));
    }
    notes.push(format!(
        "`ROUTE_RULES={}`; the test app reads paths case-insensitively and decoded, and the oracle flags any admin-area request it receives for a user without `Sfgate_Admin`",
        args.route_rules
    ));
    let facts = RunFacts {
        title: args.title.clone().unwrap_or_else(|| {
            if args.smoke {
                "sfgate soak (smoke)".into()
            } else {
                format!("sfgate soak ({:.0}-minute run)", plan.duration / 60.0)
            }
        }),
        command: format!(
            "bench/soak{}",
            if args.smoke {
                " --smoke".to_string()
            } else {
                format!(" --minutes {} --rate {}", args.minutes, plan.rate)
            }
        ),
        build: format!(
            "`{}`, {}; the driver (emulator, app, clients, oracle) a {} build",
            args.binary.display(),
            build_profile::describe(&args.binary),
            build_profile::DRIVER_PROFILE
        ),
        duration: plan.duration,
        rate: plan.rate,
        baseline_end: plan.baseline_end,
        memory_reference: plan.memory_reference,
        samples: samples.lock().map(|s| s.clone()).unwrap_or_default(),
        salesforce_calls: calls.lock().map(|c| c.clone()).unwrap_or_default(),
        cache_ttl: plan.cache_ttl as f64,
        schedule,
        notes,
        restarted_replica: 0,
    };
    let judgement = report::judge(&oracle, &facts);
    if let Some(path) = std::env::var_os("SOAK_TRACE") {
        // Every outcome and app record, for following one request or session by hand.
        let mut trace = String::new();
        for o in oracle
            .outcomes
            .lock()
            .map(|o| o.clone())
            .unwrap_or_default()
        {
            trace.push_str(&format!("{o:?}\n"));
        }
        for (id, seen) in oracle.app.lock().map(|a| a.clone()).unwrap_or_default() {
            trace.push_str(&format!("app {id}: {seen:?}\n"));
        }
        std::fs::write(path, trace)?;
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let bench = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench");
        if args.smoke {
            bench.join("out").join("SOAK-smoke.md")
        } else {
            bench.join("SOAK.md")
        }
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, &judgement.markdown)?;
    println!("{}", judgement.markdown);
    println!("report written to {}", out.display());
    drop(shared.lock().await.take());
    emulator.shutdown().await;
    drop(temp);
    Ok(judgement.wrongly_admitted + judgement.crashes)
}

/// Most requests in flight at once; beyond it a tick is counted as skipped.
const LOAD_BOUND: usize = 256;

/// Starts `rate` requests a second (5 × while `burst` is set) for `duration` seconds, each
/// from a simulated client picked by weight. Returns the bound, to wait for what is in flight.
async fn load(
    ctx: Arc<Ctx>,
    rate: f64,
    duration: f64,
    burst: Arc<AtomicBool>,
) -> Result<Arc<tokio::sync::Semaphore>, Failure> {
    let mut browsers = Vec::new();
    for user in [ALICE, ALICE, ALICE, ALICE, BOB, BOB, BOB, CAROL] {
        browsers.push(Arc::new(Mutex::new(Browser::new(user)?)));
    }
    let mut apis = Vec::new();
    for (user, jwt) in [
        (ALICE, false),
        (ALICE, false),
        (ALICE, false),
        (BOB, false),
        (BOB, false),
        (ALICE, true),
        (ALICE, true),
        (BOB, true),
        (BOB, true),
    ] {
        apis.push(Arc::new(Mutex::new(ApiClient::new(user, jwt))));
    }
    let bound = Arc::new(tokio::sync::Semaphore::new(LOAD_BOUND));
    // Ticks at 5 × the rate; outside a burst only every fifth one starts a request.
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / (rate * 5.0)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick: u64 = 0;
    while ctx.oracle.now() < duration {
        ticker.tick().await;
        tick += 1;
        if !tick.is_multiple_of(5) && !burst.load(Ordering::Relaxed) {
            continue;
        }
        let Ok(permit) = bound.clone().try_acquire_owned() else {
            ctx.oracle.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let roll: f64 = rand::rng().random();
        let ctx = ctx.clone();
        if roll < 0.35 {
            let Some(mut browser) = idle(&browsers) else {
                ctx.oracle.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            tokio::spawn(async move {
                browser.step(&ctx).await;
                drop(permit);
            });
        } else if roll < 0.80 {
            let Some(mut api) = idle(&apis) else {
                ctx.oracle.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            tokio::spawn(async move {
                api.step(&ctx).await;
                drop(permit);
            });
        } else {
            tokio::spawn(async move {
                clients::bad_actor(&ctx).await;
                drop(permit);
            });
        }
    }
    Ok(bound)
}

/// A client of the pool that is not busy, if any (tried from a random start).
fn idle<T>(pool: &[Arc<Mutex<T>>]) -> Option<tokio::sync::OwnedMutexGuard<T>> {
    let start = rand::rng().random_range(0..pool.len());
    (0..pool.len()).find_map(|i| pool[(start + i) % pool.len()].clone().try_lock_owned().ok())
}

/// Runs the fault schedule; returns notes on what happened.
async fn inject(
    events: Vec<(f64, FaultKind, f64)>,
    shared: Shared,
    emulator: sfgate_emulator::EmulatorHandle,
    oracle: Arc<Oracle>,
    burst: Arc<AtomicBool>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (at, kind, length) in events {
        let wait = at - oracle.now();
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
        let hold = Duration::from_secs_f64(length);
        println!("soak: {:.1} s: {}", oracle.now(), kind.name());
        match kind {
            FaultKind::EmulatorSlow | FaultKind::EmulatorFailing | FaultKind::EmulatorHanging => {
                let fault = match kind {
                    FaultKind::EmulatorSlow => Fault::Slow(Duration::from_secs(2)),
                    FaultKind::EmulatorFailing => Fault::ServerError,
                    _ => Fault::Hang,
                };
                // A request started just before the end may still wait the whole timeout.
                let settle = if kind == FaultKind::EmulatorHanging {
                    SALESFORCE_TIMEOUT_SECS as f64 + 2.0
                } else {
                    2.0
                };
                let w = oracle.fault_started(kind, settle);
                emulator.set_fault(fault);
                tokio::time::sleep(hold).await;
                emulator.set_fault(Fault::None);
                oracle.fault_ended(w);
            }
            FaultKind::JwksRotation => {
                let w = oracle.fault_started(kind, 5.0);
                let kid = emulator.rotate_jwt_key();
                oracle.fault_ended(w);
                notes.push(format!("JWKS rotated to `{kid}` at {:.1} s", oracle.now()));
            }
            FaultKind::RedisDown => {
                let w = oracle.fault_started(kind, oracle::REDIS_RECOVERY);
                if let Some(s) = shared.lock().await.as_mut() {
                    s.redis.kill().await;
                }
                tokio::time::sleep(hold).await;
                if let Some(s) = shared.lock().await.as_mut() {
                    if let Err(e) = s.redis.spawn().await {
                        notes.push(format!("Redis did not come back: {e}"));
                    }
                }
                oracle.fault_ended(w);
            }
            FaultKind::AppRestart => {
                let w = oracle.fault_started(kind, 3.0);
                if let Some(s) = shared.lock().await.as_mut() {
                    s.app.stop();
                }
                tokio::time::sleep(hold.max(Duration::from_secs(1))).await;
                if let Some(s) = shared.lock().await.as_mut() {
                    if let Err(e) = s.app.restart().await {
                        notes.push(format!("the app did not come back: {e}"));
                    }
                }
                oracle.fault_ended(w);
            }
            FaultKind::RollingRestart => {
                let w = oracle.fault_started(kind, 3.0);
                // Take the replica out of the lock while it drains, so the monitor keeps going.
                let replica = shared.lock().await.as_mut().map(|s| s.replicas.remove(0));
                notes.push(format!(
                    "WebSockets open through each replica when the rolling restart began: {:?}",
                    oracle.open_sockets()
                ));
                if let Some(mut replica) = replica {
                    let started = oracle.now();
                    let exit = replica.stop().await;
                    let stopped = oracle.now();
                    let restarted = replica.spawn().await;
                    notes.push(format!(
                        "rolling restart: replica 1 got SIGTERM at {started:.1} s, {exit} after {:.1} s, answered again {:.1} s later{}",
                        stopped - started,
                        oracle.now() - stopped,
                        restarted.err().map(|e| format!(" (restart failed: {e})")).unwrap_or_default()
                    ));
                    if let Some(s) = shared.lock().await.as_mut() {
                        s.replicas.insert(0, replica);
                    }
                }
                oracle.fault_ended(w);
            }
            FaultKind::Burst => {
                let w = oracle.fault_started(kind, 3.0);
                burst.store(true, Ordering::Relaxed);
                tokio::time::sleep(hold).await;
                burst.store(false, Ordering::Relaxed);
                oracle.fault_ended(w);
            }
        }
    }
    notes
}

/// Every second: samples each replica's RSS and descriptors, and notices any component that
/// exited without the soak stopping it.
async fn monitor(
    shared: Shared,
    oracle: Arc<Oracle>,
    samples: Arc<std::sync::Mutex<Vec<Sample>>>,
    (emulator, calls): (sfgate_emulator::EmulatorHandle, CallLog),
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let emulator_port = emulator
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(0);
    let http = reqwest::Client::new();
    let mut tick: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        tick += 1;
        let at = oracle.now();
        let stats = emulator.stats();
        if let Ok(mut c) = calls.lock() {
            c.push((at, stats.userinfo, stats.refresh));
        }
        let mut guard = shared.lock().await;
        let Some(s) = guard.as_mut() else { return };
        for r in &mut s.replicas {
            let name = format!("replica {}", r.index + 1);
            if let Some(status) = r.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                oracle.crashed(name, status.to_string());
                r.child = None;
                continue;
            }
            if let Some(process) = r.pid().and_then(stack::rss_and_fds) {
                let peers = stack::Peers {
                    own: r.port,
                    redis: s.redis.port,
                    emulator: emulator_port,
                    app: s.app.ports.clone(),
                };
                let kinds = r.pid().and_then(|pid| stack::fd_kinds(pid, &peers));
                // A scrape of /metrics on the replica's own listener: the open tunnels with every
                // sample (they explain descriptors), the allocator's figures every 10 s.
                let scraped = stack::allocator_figures(&http, r.metrics_port).await;
                let tunnels = scraped.map(|a| a.tunnels);
                let allocator = scraped.filter(|_| tick.is_multiple_of(10));
                if let Ok(mut v) = samples.lock() {
                    v.push(Sample {
                        at,
                        replica: r.index,
                        pid: r.pid().unwrap_or(0),
                        rss_kib: process.rss_kib,
                        anon_kib: process.anon_kib,
                        fds: process.fds,
                        kinds,
                        allocator,
                        tunnels,
                        cpu_ticks: r.pid().and_then(stack::cpu_ticks),
                        driver_ticks: stack::cpu_ticks(std::process::id()),
                        machine: stack::machine_ticks(),
                    });
                }
            }
        }
        if let Some(status) = s
            .redis
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            oracle.crashed("redis-server".into(), status.to_string());
            s.redis.child = None;
        }
        if let Some(status) = s
            .nginx
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            oracle.crashed("nginx".into(), status.to_string());
            s.nginx.child = None;
        }
    }
}
