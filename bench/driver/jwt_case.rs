//! Case (h): first requests with distinct tokens, each used once. JWT-based access tokens are
//! checked locally (no call once the issuer's keys and the user's profile are cached), opaque
//! ones cost a `userinfo` round trip each; both are compared with one cached token driven the
//! same way (same client, same concurrency). Issue 15's target: distinct JWTs at >= 0.8x the
//! cached throughput, distinct opaque tokens at < 0.05x with the emulator's 50 ms latency.
//!
//! Self-contained on purpose (its own client loop), so it does not depend on how the driver is
//! organised; main.rs only calls [`run`] and appends [`JwtCase::markdown`].

use futures_util::stream::{self, StreamExt};
use serde_json::Value;
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

pub(crate) struct JwtCase {
    pub(crate) jwt_tokens: usize,
    pub(crate) opaque_tokens: usize,
    pub(crate) cached_rps: f64,
    pub(crate) jwt_rps: f64,
    pub(crate) opaque_rps: f64,
    /// Requests the emulator received while the distinct JWTs were checked.
    pub(crate) jwt_calls: u64,
    pub(crate) opaque_calls: u64,
    pub(crate) failures: u64,
}

impl JwtCase {
    pub(crate) fn jwt_ratio(&self) -> f64 {
        self.jwt_rps / self.cached_rps.max(f64::MIN_POSITIVE)
    }

    pub(crate) fn opaque_ratio(&self) -> f64 {
        self.opaque_rps / self.cached_rps.max(f64::MIN_POSITIVE)
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
        format!(
            "\n## (h) First requests with distinct tokens, each used once\n\n\
             {n} JWTs (and {o} opaque tokens), {c} at a time, measured with the driver's own\n\
             client (so the rows compare with each other, not with the wrk rows above). The\n\
             cached row ({n} requests with one token) and the distinct-JWT row are measured in\n\
             {r} alternating rounds.\n\n\
             | tokens | requests/s | x cached | calls at Salesforce | target |\n\
             |---|---:|---:|---:|---|\n\
             | one cached token | {cached:.0} | 1.00 | - | - |\n\
             | distinct JWT access tokens (validated locally) | {jwt:.0} | {jr:.2} | {jc} | >= 0.8x: {jm} |\n\
             | distinct opaque tokens (userinfo, emulator latency) | {opaque:.0} | {or:.3} | {oc} | < 0.05x: {om} |\n",
            n = self.jwt_tokens,
            o = self.opaque_tokens,
            c = CONCURRENCY,
            r = ROUNDS,
            cached = self.cached_rps,
            jwt = self.jwt_rps,
            jr = self.jwt_ratio(),
            jc = self.jwt_calls,
            jm = mark(self.jwt_ratio() >= 0.8),
            opaque = self.opaque_rps,
            or = self.opaque_ratio(),
            oc = self.opaque_calls,
            om = mark(self.opaque_ratio() < 0.05),
        )
    }
}

/// Runs the case against a gateway `gw` (default `SF_TOKEN_VALIDATION=auto`) and the
/// emulator `emu`, with the emulator's latency as configured.
pub(crate) async fn run(
    http: &reqwest::Client,
    gw: &str,
    emu: &str,
    jwt_count: usize,
    opaque_count: usize,
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
    let mut jwt_calls = 0;
    for distinct in jwts.chunks(chunk) {
        let started = Instant::now();
        failures += count_failures(http, gw, emu, &same, CONCURRENCY).await;
        cached_time += started.elapsed();
        cached_sent += same.len();
        let before = total_calls(http, emu).await?;
        let started = Instant::now();
        failures += count_failures(http, gw, emu, distinct, CONCURRENCY).await;
        jwt_time += started.elapsed();
        jwt_calls += total_calls(http, emu).await? - before;
    }
    let cached_rps = cached_sent as f64 / cached_time.as_secs_f64();
    let jwt_rps = jwt_count as f64 / jwt_time.as_secs_f64();

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
        jwt_calls,
        opaque_calls,
        failures,
    })
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
    let url = format!("{gw}/oauth2/userinfo");
    stream::iter(tokens.iter())
        .map(|token| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let status = http
                    .get(&url)
                    .bearer_auth(token)
                    .header("x-instance-url", emu)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                u64::from(status.ok() != Some(200))
            }
        })
        .buffer_unordered(concurrency)
        .fold(0u64, |sum, bad| async move { sum + bad })
        .await
}
