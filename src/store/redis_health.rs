//! Whether Redis is usable, as `/readyz`, the logs and the metrics see it.
//!
//! Three things must hold for the shared guarantees: commands work (shared cache, login
//! states, renewals), the revocation subscription is up, and this replica has caught up on
//! what it may have missed while it was not (it *hears* revocations, see `revocation.rs`).
//! Any failing makes sfgate degraded, not down: it serves with local guarantees, and
//! `/readyz` says so until all three hold again. The change of state is logged once (not once per request)
//! and counted; each failed call is counted. While commands fail, at most one call per
//! [`PROBE_EVERY`] tries Redis, so an outage costs requests no waiting for timeouts.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// While Redis is down, how often a request may try it again.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What `/readyz` shows under `redis`.
#[derive(Debug, Clone, Serialize)]
pub struct StoreStatus {
    /// `up`, `connecting` (never subscribed yet) or `down`.
    pub status: &'static str,
    /// Why it is not up; no URL, no key, no value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StoreStatus {
    pub fn is_up(&self) -> bool {
        self.status == "up"
    }
}

pub(super) struct StoreHealth {
    commands_ok: AtomicBool,
    subscribed: AtomicBool,
    ever_subscribed: AtomicBool,
    /// Subscribed and caught up: revocations made anywhere reach this replica.
    hearing: AtomicBool,
    degraded: AtomicBool,
    last_probe_ms: AtomicU64,
    reason: Mutex<Option<String>>,
}

impl StoreHealth {
    pub(super) fn new() -> Self {
        metrics::gauge!("sfgate_redis_up").set(0.0);
        Self {
            commands_ok: AtomicBool::new(true),
            subscribed: AtomicBool::new(false),
            ever_subscribed: AtomicBool::new(false),
            hearing: AtomicBool::new(false),
            degraded: AtomicBool::new(false),
            last_probe_ms: AtomicU64::new(0),
            reason: Mutex::new(None),
        }
    }

    /// Whether a command should go to Redis now: always while it works, once per
    /// [`PROBE_EVERY`] while it does not.
    pub(super) fn should_try(&self) -> bool {
        if self.commands_ok.load(Ordering::Relaxed) {
            return true;
        }
        let now = now_ms();
        let last = self.last_probe_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= PROBE_EVERY.as_millis() as u64
            && self
                .last_probe_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    pub(super) fn commands_ok(&self) -> bool {
        self.commands_ok.load(Ordering::Relaxed)
    }

    pub(super) fn command_ok(&self) {
        if !self.commands_ok.swap(true, Ordering::Relaxed) {
            self.changed();
        }
    }

    pub(super) fn command_failed(&self, op: &'static str, error: &str) {
        metrics::counter!("sfgate_redis_errors_total", "op" => op).increment(1);
        tracing::debug!(op, error, "Redis call failed");
        self.set_reason(format!("{op}: {error}"));
        self.last_probe_ms.store(now_ms(), Ordering::Relaxed);
        if self.commands_ok.swap(false, Ordering::Relaxed) {
            self.changed();
        }
    }

    /// Returns whether this is a re-subscription (the replica may have missed revocations).
    pub(super) fn subscriber_up(&self) -> bool {
        let again = self.ever_subscribed.swap(true, Ordering::Relaxed);
        self.subscribed.store(true, Ordering::Relaxed);
        // The subscription proves Redis answers: let commands try again at once.
        self.last_probe_ms.store(0, Ordering::Relaxed);
        self.changed();
        again
    }

    pub(super) fn hearing(&self) -> bool {
        self.hearing.load(Ordering::Relaxed)
    }

    /// Returns whether this changed the state.
    pub(super) fn set_hearing(&self, hearing: bool) -> bool {
        let changed = self.hearing.swap(hearing, Ordering::Relaxed) != hearing;
        if changed {
            self.changed();
        }
        changed
    }

    pub(super) fn subscriber_down(&self, error: &str) {
        metrics::counter!("sfgate_redis_errors_total", "op" => "subscribe").increment(1);
        self.set_reason(format!("revocation subscription: {error}"));
        self.subscribed.store(false, Ordering::Relaxed);
        self.changed();
    }

    fn ever_subscribed(&self) -> bool {
        self.ever_subscribed.load(Ordering::Relaxed)
    }

    fn set_reason(&self, reason: String) {
        if let Ok(mut r) = self.reason.lock() {
            *r = Some(reason);
        }
    }

    fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    /// Logs and counts a change between working and degraded, once per change.
    fn changed(&self) {
        let up = self.is_up();
        metrics::gauge!("sfgate_redis_up").set(if up { 1.0 } else { 0.0 });
        if up {
            if self.degraded.swap(false, Ordering::Relaxed) {
                tracing::info!("Redis reachable again: shared guarantees restored");
            }
            if let Ok(mut r) = self.reason.lock() {
                *r = None;
            }
        } else if self.reason().is_some() && !self.degraded.swap(true, Ordering::Relaxed) {
            metrics::counter!("sfgate_redis_outages_total").increment(1);
            tracing::warn!(
                reason = self.reason().unwrap_or_default(),
                "Redis unreachable: serving with this replica's local guarantees until it returns"
            );
        }
    }

    fn is_up(&self) -> bool {
        self.commands_ok.load(Ordering::Relaxed)
            && self.subscribed.load(Ordering::Relaxed)
            && self.hearing()
    }

    pub(super) fn status(&self) -> StoreStatus {
        let subscribed = self.subscribed.load(Ordering::Relaxed);
        let status = if self.is_up() {
            "up"
        } else if !subscribed && !self.ever_subscribed() && self.reason().is_none() {
            "connecting"
        } else {
            "down"
        };
        let catching_up = (status == "down" && subscribed && !self.hearing())
            .then(|| "catching up on revocations made while Redis was unreachable".to_string());
        StoreStatus {
            status,
            error: (status != "up")
                .then(|| self.reason().or(catching_up))
                .flatten(),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outages() -> f64 {
        crate::telemetry::metrics::install()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("sfgate_redis_outages_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn an_outage_is_counted_once_however_many_calls_fail_and_recovery_clears_it() {
        crate::telemetry::metrics::install();
        let health = StoreHealth::new();
        assert_eq!(health.status().status, "connecting");
        health.subscriber_up();
        assert_eq!(health.status().status, "down", "not caught up yet");
        assert!(health.set_hearing(true));
        assert!(health.status().is_up());

        let before = outages();
        for _ in 0..50 {
            health.command_failed("identity_get", "connection failed");
        }
        health.subscriber_down("the subscription connection closed");
        assert!(health.set_hearing(false));
        assert!(!health.set_hearing(false), "no change");
        assert_eq!(outages() - before, 1.0, "one outage, not one per call");
        let status = health.status();
        assert_eq!(status.status, "down");
        assert!(status.error.is_some_and(|e| e.contains("subscription")));
        // While down, calls are let through about once a second, not every time.
        let tries = (0..100).filter(|_| health.should_try()).count();
        assert!(tries <= 1, "{tries}");

        assert!(health.subscriber_up(), "a re-subscription");
        health.command_ok();
        assert_eq!(health.status().status, "down", "degraded until caught up");
        health.set_hearing(true);
        let status = health.status();
        assert!(status.is_up());
        assert!(status.error.is_none());
        health.command_failed("revoke", "timed out");
        assert_eq!(outages() - before, 2.0, "the next outage counts again");
    }
}
