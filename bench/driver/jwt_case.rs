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
    pub(crate) cached_rps: f64,
    pub(crate) jwt_rps: f64,
    pub(crate) opaque_rps: f64,
    /// The gateway's CPU µs per cached request and per first request with a new JWT.
    pub(crate) cached_cpu_us: Option<f64>,
    pub(crate) jwt_cpu_us: Option<f64>,
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

impl JwtCase {
    pub(crate) fn jwt_ratio(&self) -> f64 {
        self.jwt_rps / self.cached_rps.max(f64::MIN_POSITIVE)
    }

    pub(crate) fn opaque_ratio(&self) -> f64 {
        self.opaque_rps / self.cached_rps.max(f64::MIN_POSITIVE)
    }

    /// CPU µs a new JWT adds to a request, over a cached one.
    pub(crate) fn added_cpu_us(&self) -> Option<f64> {
        Some(self.jwt_cpu_us? - self.cached_cpu_us?)
    }

    /// The added CPU in RSA-2048 verifications.
    pub(crate) fn verifications(&self) -> Option<f64> {
        Some(self.added_cpu_us()? / self.verify.as_ref()?.us())
    }

    /// The target's result cell: both numbers and the ratio.
    pub(crate) fn verify_result(&self) -> String {
        match (self.added_cpu_us(), &self.verify, self.verifications()) {
            (Some(added), Some(verify), Some(ratio)) => format!(
                "{ratio:.2} ({added:.1} µs added = {jwt:.1} − {cached:.1} µs; one verification {v:.1} µs)",
                jwt = self.jwt_cpu_us.unwrap_or_default(),
                cached = self.cached_cpu_us.unwrap_or_default(),
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
        format!(
            "\n## (h) First requests with distinct tokens, each used once\n\n\
             {n} JWTs (and {o} opaque tokens), {c} at a time, measured with the driver's own\n\
             client (so the rows compare with each other, not with the wrk rows above). The\n\
             cached row ({n} requests with one token) and the distinct-JWT row are measured in\n\
             {r} alternating rounds; CPU µs per request is the gateway's (all its threads, from\n\
             `/proc/<pid>/task/*/schedstat`) over the same rounds.\n\n\
             | tokens | requests/s | x cached | gateway CPU µs/request | calls at Salesforce | target |\n\
             |---|---:|---:|---:|---:|---|\n\
             | one cached token | {cached:.0} | 1.00 | {ccpu} | - | - |\n\
             | distinct JWT access tokens (validated locally) | {jwt:.0} | {jr:.2} | {jcpu} | {jc} | >= 0.8x: {jm} |\n\
             | distinct opaque tokens (userinfo, emulator latency) | {opaque:.0} | {or:.3} | - | {oc} | < 0.05x: {om} |\n\n\
             Added CPU per first request with a new JWT: {added} µs{verifications} (goal <= {goal}\n\
             verifications). {verify}\n",
            n = self.jwt_tokens,
            o = self.opaque_tokens,
            c = CONCURRENCY,
            r = ROUNDS,
            cached = self.cached_rps,
            ccpu = cpu(self.cached_cpu_us),
            jwt = self.jwt_rps,
            jr = self.jwt_ratio(),
            jcpu = cpu(self.jwt_cpu_us),
            jc = self.jwt_calls,
            jm = mark(self.jwt_ratio() >= 0.8),
            opaque = self.opaque_rps,
            or = self.opaque_ratio(),
            oc = self.opaque_calls,
            om = mark(self.opaque_ratio() < 0.05),
            added = cpu(self.added_cpu_us()),
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
    // The cached baseline (one token, `jwt_count` requests) and the distinct JWTs are measured in
    // alternating rounds, so that load from other processes on a shared machine falls on both
    // alike instead of on whichever ran at a bad moment.
    let chunk = jwt_count.div_ceil(ROUNDS).max(1);
    let same: Vec<String> = vec![cached; chunk];
    let (mut cached_time, mut jwt_time, mut cached_sent) = (Duration::ZERO, Duration::ZERO, 0);
    let (mut cached_ns, mut jwt_ns) = (Some(0u64), Some(0u64));
    let cpu = || pid.and_then(super::process_cpu_ns);
    let add = |sum: Option<u64>, before: Option<u64>, after: Option<u64>| {
        Some(sum? + after?.checked_sub(before?)?)
    };
    let mut jwt_calls = 0;
    for distinct in jwts.chunks(chunk) {
        let (started, before) = (Instant::now(), cpu());
        failures += count_failures(http, gw, emu, &same, CONCURRENCY).await;
        cached_ns = add(cached_ns, before, cpu());
        cached_time += started.elapsed();
        cached_sent += same.len();
        let calls_before = total_calls(http, emu).await?;
        let (started, before) = (Instant::now(), cpu());
        failures += count_failures(http, gw, emu, distinct, CONCURRENCY).await;
        jwt_ns = add(jwt_ns, before, cpu());
        jwt_time += started.elapsed();
        jwt_calls += total_calls(http, emu).await? - calls_before;
    }
    let cached_rps = cached_sent as f64 / cached_time.as_secs_f64();
    let jwt_rps = jwt_count as f64 / jwt_time.as_secs_f64();
    let per_request = |ns: Option<u64>, n: usize| ns.map(|ns| ns as f64 / 1000.0 / n as f64);

    let opaque = super::issue_tokens_as(http, emu, opaque_count, "opaque").await?;
    let before = total_calls(http, emu).await?;
    let started = Instant::now();
    failures += count_failures(http, gw, emu, &opaque, CONCURRENCY).await;
    let opaque_rps = opaque_count as f64 / started.elapsed().as_secs_f64();
    let opaque_calls = total_calls(http, emu).await? - before;

    Ok(JwtCase {
        jwt_tokens: jwt_count,
        opaque_tokens: opaque_count,
        cached_rps,
        jwt_rps,
        opaque_rps,
        cached_cpu_us: per_request(cached_ns, cached_sent),
        jwt_cpu_us: per_request(jwt_ns, jwt_count),
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
