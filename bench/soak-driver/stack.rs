//! The processes under test: `redis-server`, two sfgate replicas (the binary of `--binary`, gateway
//! mode) and nginx in front of them, all on loopback, each in the soak's temporary directory.
//! Every child is killed when dropped, so an error or Ctrl-C leaves nothing running.

use crate::nginx_process::{self, NginxProcess};
use crate::settings::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub(crate) type Failure = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn fail(message: impl Into<String>) -> Failure {
    message.into().into()
}

pub(crate) fn free_port() -> Result<u16, Failure> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sends `signal` (`TERM`, `KILL`, `QUIT`) to a child.
pub(crate) fn signal(child: &Child, signal: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status();
    }
}

/// A pid file beside the child's other files, for `bench/soak` to clean up after a driver
/// that was killed outright.
fn write_pid(path: &Path, child: &Child) {
    if let Some(pid) = child.id() {
        let _ = std::fs::write(path, pid.to_string());
    }
}

/// Waits until `url` answers 200, for at most `within`.
async fn wait_ok(url: &str, within: Duration) -> Result<(), Failure> {
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let started = Instant::now();
    loop {
        if let Ok(r) = probe.get(url).send().await {
            if r.status() == 200 {
                return Ok(());
            }
        }
        if started.elapsed() > within {
            return Err(fail(format!("{url} did not answer 200 within {within:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) struct Redis {
    pub(crate) port: u16,
    dir: PathBuf,
    pub(crate) child: Option<Child>,
}

impl Redis {
    pub(crate) async fn start(dir: &Path) -> Result<Self, Failure> {
        let mut redis = Self {
            port: free_port()?,
            dir: dir.join("redis"),
            child: None,
        };
        std::fs::create_dir_all(&redis.dir)?;
        redis.spawn().await?;
        Ok(redis)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts `redis-server` on the same port (after a kill too) and waits for `PING`.
    pub(crate) async fn spawn(&mut self) -> Result<(), Failure> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot run redis-server: {e}")))?;
        write_pid(&self.dir.join("redis.pid"), &child);
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").await.is_ok()
                    && matches!(tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await, Ok(Ok(n)) if buf[..n].starts_with(b"+PONG"))
                {
                    return Ok(());
                }
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(fail("redis-server did not start"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, as a crashed or evicted Redis: nothing is flushed.
    pub(crate) async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// One sfgate replica: the binary of `--binary` as a child process.
pub(crate) struct Replica {
    pub(crate) index: usize,
    pub(crate) port: u16,
    /// Its `METRICS_ADDR` port, where the soak reads the allocator's figures.
    pub(crate) metrics_port: u16,
    env: Vec<(String, String)>,
    binary: PathBuf,
    log: PathBuf,
    pub(crate) child: Option<Child>,
    /// Times this replica was started (the first start and each restart).
    pub(crate) starts: u32,
}

impl Replica {
    pub(crate) fn new(
        index: usize,
        binary: &Path,
        dir: &Path,
        env: Vec<(String, String)>,
    ) -> Result<Self, Failure> {
        Ok(Self {
            index,
            port: free_port()?,
            metrics_port: free_port()?,
            env,
            binary: binary.to_path_buf(),
            log: dir.join(format!("sfgate-{index}.log")),
            child: None,
            starts: 0,
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    pub(crate) async fn spawn(&mut self) -> Result<(), Failure> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.binary)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PORT", self.port.to_string())
            .env("METRICS_ADDR", format!("127.0.0.1:{}", self.metrics_port))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        write_pid(&self.log.with_extension("pid"), &child);
        self.child = Some(child);
        self.starts += 1;
        wait_ok(
            &format!("{}{HEALTH_PATH}", self.url()),
            Duration::from_secs(20),
        )
        .await
    }

    /// SIGTERM and wait for the graceful exit (at most 30 s, then SIGKILL).
    pub(crate) async fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return "not running".into();
        };
        signal(&child, "TERM");
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(Ok(status)) => format!("exited: {status}"),
            _ => {
                let _ = child.kill().await;
                "did not exit within 30 s of SIGTERM (killed)".into()
            }
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }
}

/// The environment both replicas share: gateway mode, Redis, the emulator as Salesforce.
pub(crate) fn replica_env(
    emulator: &str,
    public: &str,
    redis: &str,
    upstream_port: u16,
    cache_ttl: u64,
    route_rules: &str,
) -> Vec<(String, String)> {
    let pairs: Vec<(&str, String)> = vec![
        ("SF_CLIENT_ID", CLIENT_ID.into()),
        ("SF_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("SF_REDIRECT_URI", format!("{public}{CALLBACK_PATH}")),
        ("SF_LOGIN_URL", emulator.into()),
        ("SF_INSTANCE_ORIGINS", emulator.into()),
        ("SF_ALLOWED_ORGS", ACME.into()),
        ("SF_SCOPES", "api refresh_token custom_permissions".into()),
        ("ROUTE_RULES", route_rules.into()),
        ("SESSION_SECRET", SESSION_SECRET.into()),
        ("HOST", "127.0.0.1".into()),
        ("UPSTREAM_URL", format!("http://127.0.0.1:{upstream_port}")),
        ("REDIS_URL", redis.into()),
        ("IDENTITY_CACHE_TTL", cache_ttl.to_string()),
        ("SALESFORCE_TIMEOUT", SALESFORCE_TIMEOUT_SECS.to_string()),
        ("LOG_FORMAT", "json".into()),
        ("RUST_LOG", "warn".into()),
        // Every simulated client comes through nginx from 127.0.0.1.
        ("VALIDATION_MISSES_PER_MINUTE", "100000000".into()),
        ("RATE_LIMIT_BURST", "100000".into()),
        ("RATE_LIMIT_PER_MINUTE", "100000000".into()),
    ];
    let mut env: Vec<(String, String)> =
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    // jemalloc's own options, passed through to compare allocator settings
    // (`_RJEM_MALLOC_CONF=background_thread:false bench/soak`).
    if let Ok(conf) = std::env::var("_RJEM_MALLOC_CONF") {
        env.push(("_RJEM_MALLOC_CONF".into(), conf));
    }
    env
}

/// Starts nginx in front of the replicas, as a platform's router: round robin, keep-alive to
/// the replicas, WebSocket upgrades passed through, a failed connection retried on the other
/// one.
pub(crate) async fn start_nginx(
    binary: &str,
    dir: &Path,
    port: u16,
    replicas: &[u16],
) -> Result<NginxProcess, Failure> {
    let dir = dir.join("nginx");
    let servers: String = replicas
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p};\n"))
        .collect();
    let http = format!(
        r#"    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    upstream sfgate {{
{servers}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://sfgate;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_next_upstream error timeout;
            proxy_read_timeout 3600s;
            proxy_buffering off;
        }}
    }}
"#
    );
    let config = nginx_process::config(&dir, "1", 4096, &http);
    let nginx = NginxProcess::spawn(binary, &dir, &config)
        .map_err(|e| fail(format!("cannot run {binary}: {e}")))?;
    if let Err(e) = wait_ok(
        &format!("http://127.0.0.1:{port}{HEALTH_PATH}"),
        Duration::from_secs(10),
    )
    .await
    {
        return Err(fail(format!("{e}: {}", nginx.error_log())));
    }
    Ok(nginx)
}

/// A process's memory and descriptors, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProcessFigures {
    /// Resident set (KiB).
    pub(crate) rss_kib: u64,
    /// Its anonymous part (KiB): the heap and stacks, as opposed to the mapped binary.
    pub(crate) anon_kib: u64,
    pub(crate) fds: u64,
}

/// RSS (KiB, in all and anonymous) and open descriptors of a process, from /proc.
pub(crate) fn rss_and_fds(pid: u32) -> Option<ProcessFigures> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcessFigures {
        rss_kib: kib("VmRSS:")?,
        anon_kib: kib("RssAnon:").unwrap_or(0),
        fds,
    })
}

/// CPU time a process has used (user and system, in clock ticks), from /proc.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis, the state is field 3; user and system time
    // are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// The machine's CPU time over all cores (clock ticks), from /proc/stat: what every process
/// used, what the hypervisor gave to other guests (steal), and the time that passed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MachineTicks {
    pub(crate) busy: u64,
    pub(crate) steal: u64,
    pub(crate) all: u64,
}

pub(crate) fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let n: Vec<u64> = line
        .split_whitespace()
        .take(8)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let [user, nice, system, idle, iowait, irq, softirq, steal] = n[..] else {
        return None;
    };
    let all = user + nice + system + idle + iowait + irq + softirq + steal;
    Some(MachineTicks {
        busy: all - idle - iowait - steal,
        steal,
        all,
    })
}

/// The allocator's figures a replica reports at `/metrics` (bytes): in use, kept resident, its
/// own bookkeeping, kept as address space only; and what it holds that grows with traffic:
/// identities cached, logouts and revocations remembered (entries, and the bytes their sets
/// take).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AllocatorFigures {
    pub(crate) allocated: u64,
    pub(crate) resident: u64,
    pub(crate) metadata: u64,
    pub(crate) retained: u64,
    pub(crate) identities: u64,
    pub(crate) logouts: u64,
    pub(crate) logout_bytes: u64,
    /// WebSocket tunnels open (`sfgate_upgraded_connections`).
    pub(crate) tunnels: u64,
}

/// Reads a replica's `sfgate_allocator_*_bytes` gauges from its metrics listener.
pub(crate) async fn allocator_figures(
    http: &reqwest::Client,
    metrics_port: u16,
) -> Option<AllocatorFigures> {
    let text = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    };
    // A labelled gauge, summed over its labels.
    let sum = |name: &str| {
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    Some(AllocatorFigures {
        allocated: gauge("sfgate_allocator_allocated_bytes")?,
        resident: gauge("sfgate_allocator_resident_bytes")?,
        // Absent from replicas built before the gauge existed.
        metadata: gauge("sfgate_allocator_metadata_bytes").unwrap_or(0),
        retained: gauge("sfgate_allocator_retained_bytes")?,
        identities: gauge("sfgate_identity_cache_entries").unwrap_or(0),
        logouts: sum("sfgate_logouts_remembered"),
        logout_bytes: sum("sfgate_logouts_remembered_bytes"),
        tunnels: gauge("sfgate_upgraded_connections").unwrap_or(0),
    })
}

/// The ports a replica's connections may lead to, to tell its descriptors apart.
pub(crate) struct Peers {
    /// The replica's own port: connections in from nginx (and the driver's probes).
    pub(crate) own: u16,
    pub(crate) redis: u16,
    pub(crate) emulator: u16,
    pub(crate) app: Vec<u16>,
}

/// A replica's open descriptors by what they are, so that a growth can be told apart: a pool
/// that grew with the load (connections in from nginx, out to Salesforce or the app) or
/// something never closed.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FdKinds {
    pub(crate) from_nginx: u64,
    pub(crate) redis: u64,
    pub(crate) salesforce: u64,
    pub(crate) app: u64,
    pub(crate) listening: u64,
    /// Sockets to anything else, and sockets already gone from the TCP tables.
    pub(crate) other_sockets: u64,
    /// epoll, eventfd, pipes, files, /dev/null.
    pub(crate) other: u64,
}

impl FdKinds {
    /// `nginx 8, Redis 3, …` (kinds with none left out).
    pub(crate) fn describe(&self) -> String {
        [
            ("from nginx", self.from_nginx),
            ("Redis", self.redis),
            ("Salesforce", self.salesforce),
            ("app", self.app),
            ("listening", self.listening),
            ("other sockets", self.other_sockets),
            ("not sockets", self.other),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Reads `/proc/<pid>/fd` and the kernel's TCP tables: each socket by the port it is connected
/// to (or listens on).
pub(crate) fn fd_kinds(pid: u32, peers: &Peers) -> Option<FdKinds> {
    // inode → (local port, remote port, listening)
    let mut tcp = std::collections::HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |f: Option<&&str>| {
                f.and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if let (Some(local), Some(remote), Some(state), Some(inode)) = (
                port(fields.get(1)),
                port(fields.get(2)),
                fields.get(3),
                fields.get(9),
            ) {
                tcp.insert(inode.to_string(), (local, remote, *state == "0A"));
            }
        }
    }
    let mut kinds = FdKinds::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        else {
            kinds.other += 1;
            continue;
        };
        match tcp.get(inode) {
            Some((_, _, true)) => kinds.listening += 1,
            Some((local, _, _)) if *local == peers.own => kinds.from_nginx += 1,
            Some((_, remote, _)) if *remote == peers.redis => kinds.redis += 1,
            Some((_, remote, _)) if *remote == peers.emulator => kinds.salesforce += 1,
            Some((_, remote, _)) if peers.app.contains(remote) => kinds.app += 1,
            _ => kinds.other_sockets += 1,
        }
    }
    Some(kinds)
}
