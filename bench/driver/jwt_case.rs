//! Case (h): first requests with distinct tokens, each used once. JWT-based access tokens are
//! checked locally (no call once the issuer's keys and the user's profile are cached), opaque
//! ones cost a `userinfo` round trip each; both are compared with one cached token driven the
//! same way (same client, same concurrency). Issue 15's targets: distinct JWTs at >= 0.8x the
//! cached throughput, distinct opaque tokens at < 0.05x with the emulator's 50 ms latency.
//!
//! Issue 26's target is measured here too: the gateway's CPU time per first request with a new
//! JWT, minus its CPU time per cached request measured the same way in the same rounds, against
//! the time of one RSA-2048 verification as `openssl speed` measures it in the same run
//! (goal: at most 1.3 verifications' worth). CPU time is read from
//! `/proc/<pid>/task/*/schedstat` (nanoseconds) around each round, so the driver's own client
//! is not counted.
//!
//! Self-contained on purpose (its own client loop), so it does not depend on how the driver is
//! organised; main.rs only calls [`run`] and appends [`JwtCase::markdown`].

use super::load::drive;
use serde_json::Value;
use sfgate::salesforce::rs256::Rs256Key;
use std::time::{Duration, Instant};

type Failure = Box<dyn std::error::Error + Send + Sync>;

const CONCURRENCY: usize = 64;
/// Alternating rounds of cached and distinct-JWT requests.
const ROUNDS: usize = 10;
/// Distinct JWTs: enough that each round lasts long enough (~0.1 s) for a burst of load from
/// elsewhere not to decide it.
pub(crate) const JWT_TOKENS: usize = 10_000;
/// Distinct opaque tokens: each costs a 50 ms emulated round trip, so fewer tell as much.
pub(crate) const OPAQUE_TOKENS: usize = 2_000;
/// The goal for the added CPU per new JWT, in RSA-2048 verifications.
pub(crate) const VERIFY_GOAL: f64 = 1.3;

pub(crate) struct JwtCase {
    pub(crate) jwt_tokens: usize,
    pub(crate) opaque_tokens: usize,
    /// sfgate's cached and distinct-JWT rows (its CPU: all the gateway's threads).
    pub(crate) gateway: Rows,
    /// The same rows on the JWT floor ([`super::jwt_floor`]; its CPU: its own threads).
    pub(crate) floor: Rows,
    pub(crate) opaque_rps: f64,
    /// One RSA-2048 verification, µs, from `openssl speed` in the same run.
    pub(crate) verify: Option<Verify>,
    /// One RS256 verification by sfgate's own verifier (AWS-LC, a prepared key), µs of CPU,
    /// in the same run: the floor of a new JWT's cost in sfgate's design.
    pub(crate) own_verify_us: Option<f64>,
    /// Requests the emulator received while the distinct JWTs were checked.
    pub(crate) jwt_calls: u64,
    pub(crate) opaque_calls: u64,
    pub(crate) failures: u64,
}

/// `openssl speed rsa2048`'s verification rate, and the command that measured it.
pub(crate) struct Verify {
    pub(crate) per_second: f64,
    pub(crate) command: String,
    pub(crate) version: String,
}

impl Verify {
    pub(crate) fn us(&self) -> f64 {
        1e6 / self.per_second
    }
}

/// One server's requests of one kind over the alternated rounds, and what they cost it.
#[derive(Default)]
pub(crate) struct Phase {
    requests: usize,
    time: Duration,
    /// `None` once any reading failed (no /proc, the process gone).
    usage: Option<super::Usage>,
    read_failed: bool,
}

impl Phase {
    /// Runs `send` (which answers how many requests failed and how many it sent), timing it
    /// and reading `usage` around it (outside the timing: reading /proc takes time too).
    async fn measure<U, F, Fut>(&mut self, usage: U, send: F) -> u64
    where
        U: Fn() -> Option<super::Usage>,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (u64, usize)>,
    {
        let before = usage();
        let started = Instant::now();
        let (failures, sent) = send().await;
        self.time += started.elapsed();
        match (before, usage()) {
            (Some(before), Some(after)) if !self.read_failed => {
                self.usage
                    .get_or_insert_with(Default::default)
                    .add(&after.since(&before));
            }
            _ => {
                self.read_failed = true;
                self.usage = None;
            }
        }
        self.requests += sent;
        failures
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.time.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// CPU µs per request (time on a CPU, nanosecond counters).
    fn cpu_us(&self) -> Option<f64> {
        let usage = self.usage?;
        (self.requests > 0).then(|| usage.run_ns as f64 / 1000.0 / self.requests as f64)
    }

    /// User and system µs per request (clock ticks of 10 ms: coarse, so only over all rounds)
    /// and how often per request the scheduler took a CPU from the server's threads.
    fn split(&self) -> Option<(f64, f64, f64)> {
        let usage = self.usage?;
        let n = self.requests.max(1) as f64;
        Some((
            usage.user_ticks as f64 * 10_000.0 / n,
            usage.system_ticks as f64 * 10_000.0 / n,
            usage.preempted as f64 / n,
        ))
    }
}

/// A server's cached row and distinct-JWT row.
#[derive(Default)]
pub(crate) struct Rows {
    cached: Phase,
    jwt: Phase,
}

impl Rows {
    fn jwt_ratio(&self) -> f64 {
        self.jwt.rps() / self.cached.rps().max(f64::MIN_POSITIVE)
    }

    /// CPU µs a new JWT adds to a request, over a cached one.
    fn added_cpu_us(&self) -> Option<f64> {
        Some(self.jwt.cpu_us()? - self.cached.cpu_us()?)
    }

    /// The added user and system µs and preemptions per request.
    fn added_split(&self) -> Option<(f64, f64, f64)> {
        let (cu, cs, cp) = self.cached.split()?;
        let (ju, js, jp) = self.jwt.split()?;
        Some((ju - cu, js - cs, jp - cp))
    }
}

impl JwtCase {
    pub(crate) fn jwt_ratio(&self) -> f64 {
        self.gateway.jwt_ratio()
    }

    pub(crate) fn opaque_ratio(&self) -> f64 {
        self.opaque_rps / self.gateway.cached.rps().max(f64::MIN_POSITIVE)
    }

    /// CPU µs a new JWT adds to a request through sfgate, over a cached one.
    pub(crate) fn added_cpu_us(&self) -> Option<f64> {
        self.gateway.added_cpu_us()
    }

    /// The added CPU in RSA-2048 verifications.
    pub(crate) fn verifications(&self) -> Option<f64> {
        Some(self.added_cpu_us()? / self.verify.as_ref()?.us())
    }

    /// The same for the JWT floor: the bound of this measure on this machine.
    pub(crate) fn floor_verifications(&self) -> Option<f64> {
        Some(self.floor.added_cpu_us()? / self.verify.as_ref()?.us())
    }

    /// The floor's line for the report's target table: what bounds the ratio, in this run.
    pub(crate) fn floor_result(&self) -> Option<String> {
        let v = self.verify.as_ref()?;
        let floor_added = self.floor.added_cpu_us()?;
        let mut text = format!(
            "one RSA-2048 verification by `openssl speed`: {:.1} µs, the ratio's denominator; \
             the JWT floor (thread-per-core, sfgate's parse, hash and verification, a plain map; \
             bench/driver/jwt_floor.rs) adds {floor_added:.1} µs = **{:.2} verifications** in the \
             same rounds",
            v.us(),
            floor_added / v.us(),
        );
        if let Some(own) = self.own_verify_us {
            text.push_str(&format!(
                "; sfgate's own RS256 verification alone (AWS-LC, prepared key, one quiet core): \
                 {own:.1} µs = {:.2}",
                own / v.us()
            ));
        }
        if let Some(added) = self.added_cpu_us() {
            text.push_str(&format!(
                "; sfgate adds {:.1} µs more than the floor",
                added - floor_added
            ));
        }
        Some(text)
    }

    /// The target's result cell: both numbers and the ratio.
    pub(crate) fn verify_result(&self) -> String {
        match (self.added_cpu_us(), &self.verify, self.verifications()) {
            (Some(added), Some(verify), Some(ratio)) => format!(
                "{ratio:.2} ({added:.1} µs added = {jwt:.1} − {cached:.1} µs; one verification {v:.1} µs)",
                jwt = self.gateway.jwt.cpu_us().unwrap_or_default(),
                cached = self.gateway.cached.cpu_us().unwrap_or_default(),
                v = verify.us(),
            ),
            _ => "not measured".into(),
        }
    }

    /// Problems that mean the case did not *work* (as opposed to missing a speed target).
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.failures > 0 {
            problems.push(format!(
                "(h) {} requests were not answered 200",
                self.failures
            ));
        }
        if self.jwt_calls != 0 {
            problems.push(format!(
                "(h) distinct JWTs of a known user cost {} calls at Salesforce (expected 0)",
                self.jwt_calls
            ));
        }
        problems
    }

    pub(crate) fn markdown(&self) -> String {
        let mark = |ok: bool| if ok { "met" } else { "MISSED" };
        let cpu = |us: Option<f64>| us.map_or("-".to_string(), |us| format!("{us:.1}"));
        let verify = self.verify.as_ref().map_or_else(
            || "`openssl speed` did not run: no verification time to compare with.".to_string(),
            |v| {
                format!(
                    "One RSA-2048 verification: {us:.1} µs ({rate:.0} verify/s, `{cmd}`, {version}, \
                     one core, in this run).",
                    us = v.us(),
                    rate = v.per_second,
                    cmd = v.command,
                    version = v.version,
                )
            },
        );
        let verify = match self.own_verify_us {
            Some(own) => format!(
                "{verify} sfgate's own RS256 verification (AWS-LC, the prepared key it checks \
                 tokens with, one core, in this run): {own:.1} µs."
            ),
            None => verify,
        };
        let verifications = self.verifications().map_or(String::new(), |r| {
            format!(" = {r:.2} verifications: {}", mark(r <= VERIFY_GOAL))
        });
        let split = |phase: &Phase| {
            phase
                .split()
                .map_or("- | - | -".to_string(), |(u, sys, p)| {
                    format!("{u:.1} | {sys:.1} | {p:.2}")
                })
        };
        let added_split = |rows: &Rows| {
            rows.added_split().map_or(String::new(), |(u, sys, p)| {
                format!(" ({u:+.1} µs user, {sys:+.1} µs system, {p:+.2} preemptions per request)")
            })
        };
        let floor_added = self
            .floor_verifications()
            .map_or(String::new(), |r| format!(" = {r:.2} verifications"));
        let beside_floor = match (self.added_cpu_us(), self.floor.added_cpu_us()) {
            (Some(gateway), Some(floor)) => format!(
                " sfgate's added CPU is {:.2} × the floor's ({:+.1} µs).",
                gateway / floor.max(f64::MIN_POSITIVE),
                gateway - floor
            ),
            _ => String::new(),
        };
        format!(
            "\n## (h) First requests with distinct tokens, each used once\n\n\
             {n} JWTs (and {o} opaque tokens), {c} at a time, measured with the driver's own\n\
             client (so the rows compare with each other, not with the wrk rows above). The\n\
             cached rows ({n} requests with one token) and the distinct-JWT rows are measured in\n\
             {r} alternating rounds, on sfgate and on the JWT floor (bench/driver/jwt_floor.rs: a\n\
             thread-per-core server that hashes the token, looks it up in a plain map and, on a\n\
             miss, parses and verifies it with sfgate's own functions; nothing else). CPU µs per\n\
             request is the server's (sfgate: all its threads; the floor: its own threads) from\n\
             `schedstat` over the same rounds; its user and system parts come from `stat`'s clock\n\
             ticks (10 ms each, so only the sums over all rounds mean anything), preemptions are\n\
             the times the scheduler took a CPU from the server's threads while they could run\n\
             (`nonvoluntary_ctxt_switches`).\n\n\
             | server | tokens | requests/s | x cached | CPU µs/request | user µs | system µs | preemptions/request | calls at Salesforce | target |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---|\n\
             | sfgate | one cached token | {cached:.0} | 1.00 | {ccpu} | {csplit} | - | - |\n\
             | sfgate | distinct JWT access tokens (validated locally) | {jwt:.0} | {jr:.2} | {jcpu} | {jsplit} | {jc} | >= 0.8x: {jm} |\n\
             | sfgate | distinct opaque tokens (userinfo, emulator latency) | {opaque:.0} | {or:.3} | - | - | - | - | {oc} | < 0.05x: {om} |\n\
             | JWT floor | one cached token | {fcached:.0} | 1.00 | {fccpu} | {fcsplit} | - | - |\n\
             | JWT floor | distinct JWT access tokens | {fjwt:.0} | {fjr:.2} | {fjcpu} | {fjsplit} | - | - |\n\n\
             Added CPU per first request with a new JWT: {added} µs{verifications} (goal <= {goal}\n\
             verifications){gsplit}. The JWT floor adds {fadded} µs{floor_added}{fsplit}.{beside_floor}\n\
             {verify}\n",
            n = self.jwt_tokens,
            o = self.opaque_tokens,
            c = CONCURRENCY,
            r = ROUNDS,
            cached = self.gateway.cached.rps(),
            ccpu = cpu(self.gateway.cached.cpu_us()),
            csplit = split(&self.gateway.cached),
            jwt = self.gateway.jwt.rps(),
            jr = self.jwt_ratio(),
            jcpu = cpu(self.gateway.jwt.cpu_us()),
            jsplit = split(&self.gateway.jwt),
            jc = self.jwt_calls,
            jm = mark(self.jwt_ratio() >= 0.8),
            opaque = self.opaque_rps,
            or = self.opaque_ratio(),
            oc = self.opaque_calls,
            om = mark(self.opaque_ratio() < 0.05),
            fcached = self.floor.cached.rps(),
            fccpu = cpu(self.floor.cached.cpu_us()),
            fcsplit = split(&self.floor.cached),
            fjwt = self.floor.jwt.rps(),
            fjr = self.floor.jwt_ratio(),
            fjcpu = cpu(self.floor.jwt.cpu_us()),
            fjsplit = split(&self.floor.jwt),
            added = cpu(self.added_cpu_us()),
            gsplit = added_split(&self.gateway),
            fadded = cpu(self.floor.added_cpu_us()),
            fsplit = added_split(&self.floor),
            goal = VERIFY_GOAL,
        )
    }
}

/// Runs the case against a gateway `gw` (process `pid`, default `SF_TOKEN_VALIDATION=auto`)
/// and the emulator `emu`, with the emulator's latency as configured; then `openssl speed`
/// for `openssl_seconds` per operation.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    http: &reqwest::Client,
    gw: &str,
    pid: Option<u32>,
    emu: &str,
    jwt_count: usize,
    opaque_count: usize,
    openssl_seconds: u64,
) -> Result<JwtCase, Failure> {
    // Keys and alice's profile are fetched by the first JWT; not part of the measurement.
    let warm = super::issue_tokens_as(http, emu, 1, "jwt").await?;
    let cached = warm[0].clone();
    let mut failures = count_failures(http, gw, emu, &warm, 1).await;
    let jwts = super::issue_tokens_as(http, emu, jwt_count, "jwt").await?;
    // The floor checks the same tokens (its verdicts are its own) with the emulator's key.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let floor = super::jwt_floor::start(
        http,
        emu,
        super::CLIENT_ID,
        cores,
        super::jwt_floor::JWT_FLOOR_THREADS,
        Default::default(),
    )
    .await?;
    failures += count_failures(http, &floor, emu, &warm, 1).await;
    // The cached baseline (one token, `jwt_count` requests) and the distinct JWTs are measured in
    // alternating rounds, on sfgate and on the floor, so that load from other processes on a
    // shared machine falls on all four alike instead of on whichever ran at a bad moment.
    let chunk = jwt_count.div_ceil(ROUNDS).max(1);
    let same: Vec<String> = vec![cached; chunk];
    let (mut gateway, mut floor_rows) = (Rows::default(), Rows::default());
    let gateway_usage = || pid.and_then(super::Usage::of_process);
    let floor_usage = || super::Usage::of_own_threads(super::jwt_floor::JWT_FLOOR_THREADS);
    let mut jwt_calls = 0;
    for distinct in jwts.chunks(chunk) {
        failures += gateway
            .cached
            .measure(gateway_usage, || send_all(http, gw, emu, &same))
            .await;
        let calls_before = total_calls(http, emu).await?;
        failures += gateway
            .jwt
            .measure(gateway_usage, || send_all(http, gw, emu, distinct))
            .await;
        jwt_calls += total_calls(http, emu).await? - calls_before;
        failures += floor_rows
            .cached
            .measure(floor_usage, || send_all(http, &floor, emu, &same))
            .await;
        failures += floor_rows
            .jwt
            .measure(floor_usage, || send_all(http, &floor, emu, distinct))
            .await;
    }

    let opaque = super::issue_tokens_as(http, emu, opaque_count, "opaque").await?;
    let before = total_calls(http, emu).await?;
    let started = Instant::now();
    failures += count_failures(http, gw, emu, &opaque, CONCURRENCY).await;
    let opaque_rps = opaque_count as f64 / started.elapsed().as_secs_f64();
    let opaque_calls = total_calls(http, emu).await? - before;

    Ok(JwtCase {
        jwt_tokens: jwt_count,
        opaque_tokens: opaque_count,
        gateway,
        floor: floor_rows,
        opaque_rps,
        verify: openssl_verify(openssl_seconds).await,
        own_verify_us: tokio::task::spawn_blocking(move || {
            own_verify_us(usize::try_from(openssl_seconds.max(1) * 20_000).unwrap_or(20_000))
        })
        .await
        .ok()
        .flatten(),
        jwt_calls,
        opaque_calls,
        failures,
    })
}

/// One RS256 verification with sfgate's own verifier ([`Rs256Key`]: AWS-LC, the key prepared
/// as when an issuer's key set is fetched), in µs of the measuring thread's CPU, over `count`
/// verifications of a signature over 900 bytes (about a Salesforce JWT's signed part).
fn own_verify_us(count: usize) -> Option<f64> {
    use base64::Engine;
    use jsonwebtoken::Algorithm;
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(sfgate_emulator::FOREIGN_KEY.as_bytes()).ok()?;
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).ok()?;
    let jwk = serde_json::to_value(&jwk).ok()?;
    let prepared = Rs256Key::from_jwk(jwk["n"].as_str()?, jwk["e"].as_str()?).ok()?;
    let message = vec![b'a'; 900];
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jsonwebtoken::crypto::sign(&message, &key, Algorithm::RS256).ok()?)
        .ok()?;
    let thread_cpu_ns = || -> Option<u64> {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let before = thread_cpu_ns()?;
    for _ in 0..count {
        if !prepared.verify(
            std::hint::black_box(&message),
            std::hint::black_box(&signature),
        ) {
            return None;
        }
    }
    let after = thread_cpu_ns()?;
    Some(after.checked_sub(before)? as f64 / count.max(1) as f64 / 1000.0)
}

/// `openssl speed -seconds N rsa2048`: its verifications per second (the `verify/s` column of
/// the `rsa 2048 bits` line), or `None` when openssl is missing or prints something else.
async fn openssl_verify(seconds: u64) -> Option<Verify> {
    let args = ["speed", "-seconds", &seconds.to_string(), "rsa2048"].map(String::from);
    let out = tokio::process::Command::new("openssl")
        .args(&args)
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    let version = tokio::process::Command::new("openssl")
        .arg("version")
        .output()
        .await
        .map(|o| {
            // "OpenSSL 3.0.22 25 Aug 2026 (Library: ...)": the part before the library's.
            let text = String::from_utf8_lossy(&o.stdout);
            text.split(" (Library")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    Some(Verify {
        per_second: parse_verify_per_second(&String::from_utf8_lossy(&out.stdout))?,
        command: format!("openssl {}", args.join(" ")),
        version,
    })
}

/// From `openssl speed`'s table: the header names the columns (`sign verify sign/s verify/s`,
/// newer releases add `encrypt`, `decrypt` and theirs), the `rsa 2048 bits` line has the values.
pub(crate) fn parse_verify_per_second(output: &str) -> Option<f64> {
    let mut column = None;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "verify/s") {
            column = Some(i);
        } else if let (Some(i), Some(rest)) = (column, line.trim().strip_prefix("rsa 2048 bits")) {
            return rest.split_whitespace().nth(i)?.parse().ok();
        }
    }
    None
}

async fn total_calls(http: &reqwest::Client, emu: &str) -> Result<u64, Failure> {
    let stats: Value = http
        .get(format!("{emu}/__emulator/stats"))
        .send()
        .await?
        .json()
        .await?;
    Ok(stats
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0))
}

/// Each token once, `concurrency` at a time; returns how many were not answered 200.
async fn count_failures(
    http: &reqwest::Client,
    gw: &str,
    emu: &str,
    tokens: &[String],
    concurrency: usize,
) -> u64 {
    tokens.len() as u64 - drive(http, gw, emu, tokens, 1, concurrency).await
}

/// [`count_failures`], and how many requests were sent: for [`Phase::measure`].
async fn send_all(
    http: &reqwest::Client,
    base: &str,
    emu: &str,
    tokens: &[String],
) -> (u64, usize) {
    (
        count_failures(http, base, emu, tokens, CONCURRENCY).await,
        tokens.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::parse_verify_per_second;

    #[test]
    fn reads_the_verify_column_of_either_openssl_layout() {
        let three_zero = "                  sign    verify    sign/s verify/s\n\
                          rsa 2048 bits 0.000246s 0.000017s   4063.6  58346.2\n";
        assert_eq!(parse_verify_per_second(three_zero), Some(58346.2));
        let three_two = "                   sign    verify    encrypt   decrypt   sign/s verify/s  encr./s  decr./s\n\
                         rsa 2048 bits 0.000600s 0.000020s 0.000020s 0.000590s   1666.7  50000.0  49000.0   1700.0\n";
        assert_eq!(parse_verify_per_second(three_two), Some(50000.0));
        assert_eq!(parse_verify_per_second("openssl: unknown algorithm"), None);
    }
}
