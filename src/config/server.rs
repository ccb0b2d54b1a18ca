//! The listener and what guards it: address, timeouts, connection and rate limits, logs, metrics.

use super::reader::Reader;
use secrecy::SecretString;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    /// `REQUEST_TIMEOUT`: sfgate's own routes answer within this.
    pub request_timeout: Duration,
    pub log_format: LogFormat,
    /// `METRICS_ADDR`: a listener of its own for `/metrics`. Gateway mode serves metrics only
    /// there (the main port's paths are the app's); standalone mode serves them on the main
    /// port unless this is set.
    pub metrics_addr: Option<SocketAddr>,
    /// `METRICS_TOKEN`: the bearer token `/metrics` asks for, when set.
    pub metrics_token: Option<SecretString>,
    /// `TRUST_PROXY`: take the client address and original URI from the proxy's headers.
    pub trust_proxy: bool,
    pub rate_limit: RateLimit,
    /// `MAX_CONNECTIONS`: open client connections at most; beyond it new ones wait.
    pub max_connections: usize,
    /// `HEADER_READ_TIMEOUT`: time to send a request's headers, and the longest a connection
    /// (HTTP/1 or HTTP/2) may stay open without a request in progress.
    pub header_read_timeout: Duration,
    /// `SERVER_THREADS`: serving threads, each with its own runtime, listener and upstream
    /// connections (default: the cores available to the process).
    pub threads: usize,
    /// `HTTP1_FAST_PATH`: HTTP/1.1 `GET` and `HEAD` requests without a body are read and
    /// answered by sfgate's own HTTP/1.1 code instead of the general server, in every mode
    /// (`crate::server::fast_path`). On unless turned off.
    pub http1_fast_path: bool,
}

/// How log lines are written: `text` for people, `json` for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Requests per period per client address on a rate-limited route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub per_minute: u32,
}

impl LogFormat {
    /// Part of [`super::Config`], and readable alone: logging starts only once the
    /// configuration is valid, so problems with the configuration itself go to stderr.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        match lookup("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Self::Text),
            Some(v) if v.is_empty() || v == "text" => Ok(Self::Text),
            Some(v) if v == "json" => Ok(Self::Json),
            Some(v) => Err(format!("must be `text` or `json`, got `{v}`")),
        }
    }
}

pub(super) fn parse(r: &mut Reader<'_>) -> ServerConfig {
    let port = r.parse_or("PORT", 3000u16, "a port number (0-65535)");
    let host = r.parse_or(
        "HOST",
        IpAddr::from([0, 0, 0, 0]),
        "an IP address such as 0.0.0.0 or 127.0.0.1",
    );
    let request_timeout = r.seconds("REQUEST_TIMEOUT", 30);
    if request_timeout.is_zero() {
        r.problem("REQUEST_TIMEOUT", "must be at least 1 second");
    }
    let log_format = match LogFormat::from_lookup(r.lookup) {
        Ok(f) => f,
        Err(m) => {
            r.problem("LOG_FORMAT", m);
            LogFormat::Text
        }
    };
    let metrics_addr = r.get("METRICS_ADDR").and_then(|raw| {
        raw.trim().parse().map_or_else(
            |_| {
                r.problem(
                    "METRICS_ADDR",
                    format!(
                        "must be an address and port such as 127.0.0.1:9100, got `{}`",
                        raw.trim()
                    ),
                );
                None
            },
            Some,
        )
    });
    let metrics_token = r.get("METRICS_TOKEN").map(SecretString::from);
    let trust_proxy = r.flag("TRUST_PROXY");
    let rate_limit = RateLimit {
        burst: r.parse_or("RATE_LIMIT_BURST", 20u32, "a whole number"),
        per_minute: r.parse_or("RATE_LIMIT_PER_MINUTE", 60u32, "a whole number"),
    };
    if rate_limit.burst == 0 {
        r.problem("RATE_LIMIT_BURST", "must be at least 1");
    }
    if rate_limit.per_minute == 0 {
        r.problem("RATE_LIMIT_PER_MINUTE", "must be at least 1");
    }
    let max_connections = r.parse_or("MAX_CONNECTIONS", 10_000usize, "a whole number");
    if max_connections == 0 {
        r.problem("MAX_CONNECTIONS", "must be at least 1");
    }
    let header_read_timeout = r.seconds("HEADER_READ_TIMEOUT", 10);
    if header_read_timeout.is_zero() {
        r.problem("HEADER_READ_TIMEOUT", "must be at least 1 second");
    }
    let threads = r.parse_or("SERVER_THREADS", default_threads(), "a whole number");
    if threads == 0 {
        r.problem("SERVER_THREADS", "must be at least 1");
    } else if threads > MAX_THREADS {
        r.problem(
            "SERVER_THREADS",
            format!("must be at most {MAX_THREADS} (one per core is the intent)"),
        );
    }
    let http1_fast_path = r.flag_or("HTTP1_FAST_PATH", true);
    ServerConfig {
        host,
        port,
        request_timeout,
        log_format,
        metrics_addr,
        metrics_token,
        trust_proxy,
        rate_limit,
        max_connections,
        header_read_timeout,
        threads,
        http1_fast_path,
    }
}

/// More serving threads than this is a typo, not a machine.
const MAX_THREADS: usize = 1024;

/// One serving thread per core the process may use (its CPU affinity and cgroup quota
/// included, as `std::thread::available_parallelism` reads them).
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
