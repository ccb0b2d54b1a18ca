//! The process's metrics recorder.
//!
//! Instrumented code uses the `metrics` facade (`metrics::counter!` and friends); this module
//! installs the one Prometheus recorder behind it. The recorder is process-wide (the facade has
//! a single global slot), so it is installed once and every gateway in the process (tests start
//! many) shares it. No HTTP listener of the exporter's own: the gateway serves the text itself
//! at `/metrics` (`routes/metrics.rs`), behind `METRICS_TOKEN` when set.
//!
//! Label values are bounded on purpose: routes are the matched route templates (never raw
//! paths), methods outside the standard set become `other`, statuses are three digits.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Seconds: from a cached identity check (sub-millisecond) to a slow Salesforce (timeouts).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Histograms are drained into their buckets by an upkeep pass; without one they grow.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder behind the `metrics` facade, once per process, and returns
/// its handle; later calls return the same handle. Called when an application is assembled
/// (`AppState::new`), before anything records, so handles taken later (the
/// validator keeps its counters) count into this recorder.
///
/// If another recorder was installed first (an embedding program's own), sfgate's metrics go
/// there and `/metrics` serves only what this recorder saw; that is logged once, not fatal.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(LATENCY_BUCKETS) {
            Ok(b) => b,
            // Only an empty list is refused; the list above is not empty.
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        let upkeep = handle.clone();
        // A thread, not a task: tests run many short-lived runtimes in one process.
        let spawned = std::thread::Builder::new()
            .name("sfgate-metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

/// HELP lines, so a scrape explains itself.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "sfgate_http_requests_total",
        "Requests answered, by method, matched route template and status"
    );
    describe_histogram!(
        "sfgate_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a request, by method and matched route template"
    );
    describe_counter!(
        "sfgate_identity_validations_total",
        "Identity checks, by outcome: valid, invalid, org_refused, instance_refused, upstream_error"
    );
    describe_counter!(
        "sfgate_identity_cache_total",
        "Identity cache lookups, by result: hit, miss, disabled"
    );
    describe_gauge!(
        "sfgate_identity_cache_entries",
        "Identity verdicts held in the cache"
    );
    describe_histogram!(
        "sfgate_salesforce_call_seconds",
        Unit::Seconds,
        "Latency of calls to Salesforce, by endpoint: token, userinfo, revoke"
    );
    // Trust boundary (docs/security.md).
    describe_counter!(
        "sfgate_validation_budget_exceeded_total",
        "Requests refused with 429 because their client spent its Salesforce validation budget"
    );
    describe_gauge!("sfgate_connections_open", "Client connections open");
    // What grows with the rate of logouts (store/tombstones.rs).
    describe_gauge!(
        "sfgate_logouts_remembered",
        "Logged-out or revoked credentials remembered, by set: access_tokens and refresh_tokens logged out here, revoked_anywhere (every replica's, with REDIS_URL)"
    );
    describe_gauge!(
        "sfgate_logouts_remembered_bytes",
        Unit::Bytes,
        "Memory the sets of sfgate_logouts_remembered take"
    );
    describe_gauge!(
        "sfgate_redis_may_evict",
        "1 when Redis has a memory limit and an evicting maxmemory-policy (it may delete sfgate's keys when full), 0 when not; read at each subscription"
    );
    describe_counter!(
        "sfgate_revocation_log_rewrites_total",
        "Times this replica found Redis had lost the revocation log and wrote back the revocations it holds"
    );
    describe_counter!(
        "sfgate_tunnels_moved_total",
        "Tunnels moved to the tunnel threads once upgraded (a tunnel to an app over TLS stays on the thread that accepted it)"
    );
    describe_gauge!(
        "sfgate_logouts_forgotten_in_force_seconds",
        Unit::Seconds,
        "How much longer a logout or revocation its set dropped to make room would still be in force, by set (0: none); while access_tokens or revoked_anywhere is above 0, JWTs are checked at Salesforce rather than locally"
    );
    describe_counter!(
        "sfgate_tombstones_forgotten_early_total",
        "Logouts or revocations forgotten before their time because their set was full"
    );
    // The allocator's figures (telemetry/allocator.rs), to tell what RSS is made of.
    for (name, what) in [
        (
            "sfgate_allocator_allocated_bytes",
            "Memory in use by the process (jemalloc)",
        ),
        (
            "sfgate_allocator_active_bytes",
            "Pages holding memory in use (jemalloc)",
        ),
        (
            "sfgate_allocator_resident_bytes",
            "Pages jemalloc keeps resident, freed ones not yet returned included",
        ),
        (
            "sfgate_allocator_metadata_bytes",
            "jemalloc's own bookkeeping (its extent records and tables)",
        ),
        (
            "sfgate_allocator_retained_bytes",
            "Address space jemalloc keeps without memory behind it",
        ),
    ] {
        describe_gauge!(name, Unit::Bytes, what);
    }
    describe_counter!(
        "sfgate_connections_limited_total",
        "Times a new connection had to wait because MAX_CONNECTIONS were open"
    );
    describe_counter!(
        "sfgate_connections_idle_closed_total",
        "Connections closed for having no request in progress for HEADER_READ_TIMEOUT"
    );
    describe_counter!(
        "sfgate_logins_total",
        "Logins, by result: started, completed, failed"
    );
    describe_counter!(
        "sfgate_session_refreshes_total",
        "Session access tokens renewed with the session's refresh token"
    );
    describe_counter!(
        "sfgate_session_renewals_total",
        "Session renewals, by outcome: renewed (called Salesforce), shared (answered by another request's renewal), refused, unavailable"
    );
    describe_counter!(
        "sfgate_rate_limited_total",
        "Requests refused with 429, by route"
    );
    describe_counter!(
        "sfgate_proxy_requests_total",
        "Requests proxied upstream, by upstream status"
    );
    // [redis] Shared state for replicas (src/store/), only with REDIS_URL.
    describe_gauge!(
        "sfgate_redis_up",
        "1 while Redis answers and the revocation feed is subscribed, else 0"
    );
    describe_counter!(
        "sfgate_redis_outages_total",
        "Times Redis became unreachable (each outage once)"
    );
    describe_counter!(
        "sfgate_redis_errors_total",
        "Failed or timed-out Redis calls, by operation"
    );
    describe_counter!(
        "sfgate_redis_identity_total",
        "Shared identity cache lookups after a local miss, by result: hit, miss"
    );
    describe_counter!(
        "sfgate_redis_state_replays_total",
        "Login states refused because another replica had used them"
    );
}
