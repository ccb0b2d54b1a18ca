//! The oracle: what every request of the soak should get, what it got, and what the app saw.
//!
//! Each request the driver sends carries an `X-Soak-Id`; before sending, the client states its
//! expectation ([`Expect`]), decided from what the driver knows (who logged out when, which
//! tokens expired or were revoked at Salesforce, whether Redis was up since). After the run,
//! [`Oracle::judge`] joins the answers with the app's record of what reached it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// What a request should get.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expect {
    /// Reach the app as this user (username).
    Admit(&'static str),
    /// Never reach the app.
    Refuse,
    /// Either is right (a documented window: cache TTL, propagation after a Redis outage).
    Either(&'static str),
}

/// One answered (or failed) request.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) id: u64,
    /// Which simulated client sent it (`browser`, `api-opaque`, `bad:forged`, ...).
    pub(crate) client: &'static str,
    /// `GET /app/x` and the like, never a token.
    pub(crate) what: String,
    pub(crate) expect: Expect,
    pub(crate) sent: f64,
    pub(crate) done: f64,
    /// 0: no HTTP answer (connection error, timeout).
    pub(crate) status: u16,
    pub(crate) retry_after: bool,
    /// The answer came from the app (it sets `X-Soak-App`).
    pub(crate) from_app: bool,
    /// A browser was sent to log in again, or its session cookie was removed.
    pub(crate) login_again: bool,
    /// A browser session's request (counts for "sessions lost").
    pub(crate) session: bool,
    /// A short note: the error text for status 0, the `error` field of a JSON answer.
    pub(crate) note: String,
    /// For requests to sfgate's own routes (login, logout): whether the answer was the right
    /// one, as the client judged it (for an expected refusal: whether it was refused).
    pub(crate) own_ok: Option<bool>,
    /// A digest of the credential used (0: none, or one Salesforce is not asked about), for
    /// counting Salesforce calls per credential.
    pub(crate) cred: u64,
    /// For a replayed credential: when it was logged out or revoked.
    pub(crate) ended_at: Option<f64>,
}

impl Outcome {
    /// The request reached the app (or, on sfgate's own routes, got what was asked for).
    pub(crate) fn admitted(&self) -> bool {
        match (self.own_ok, &self.expect) {
            (Some(ok), Expect::Refuse) => !ok,
            (Some(ok), _) => ok,
            (None, _) => (self.from_app && (200..300).contains(&self.status)) || self.status == 101,
        }
    }
}

/// What the app received for one request.
#[derive(Debug, Clone)]
pub(crate) struct AppSeen {
    pub(crate) replica: usize,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) username: Option<String>,
    pub(crate) user_id: Option<String>,
    /// Identity-header values or look-alike names the driver forged and that reached the app.
    pub(crate) forged: Vec<String>,
    pub(crate) at: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FaultKind {
    EmulatorSlow,
    EmulatorFailing,
    EmulatorHanging,
    JwksRotation,
    RedisDown,
    AppRestart,
    RollingRestart,
    Burst,
}

impl FaultKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::EmulatorSlow => "Salesforce slow (2 s)",
            Self::EmulatorFailing => "Salesforce failing (503)",
            Self::EmulatorHanging => "Salesforce hanging",
            Self::JwksRotation => "JWKS key rotation",
            Self::RedisDown => "Redis killed and restarted",
            Self::AppRestart => "app restarted",
            Self::RollingRestart => "replica 1 SIGTERM'd and restarted",
            Self::Burst => "burst at 5 × the rate",
        }
    }
}

/// A fault as it happened: from its start to its end plus the settle time.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) kind: FaultKind,
    pub(crate) start: f64,
    pub(crate) end: Option<f64>,
    pub(crate) settle: f64,
}

impl Window {
    pub(crate) fn label(&self) -> String {
        match self.end {
            Some(end) => format!("{} [{:.1} s – {:.1} s]", self.kind.name(), self.start, end),
            None => format!("{} [from {:.1} s]", self.kind.name(), self.start),
        }
    }
}

/// A WebSocket that closed or failed without the client asking.
#[derive(Debug, Clone)]
pub(crate) struct WsDrop {
    pub(crate) at: f64,
    /// The replica its handshake went through (from the app's record), if known.
    pub(crate) replica: Option<usize>,
    pub(crate) reason: String,
}

/// A component that exited without the soak stopping it.
#[derive(Debug, Clone)]
pub(crate) struct Crash {
    pub(crate) at: f64,
    pub(crate) component: String,
    pub(crate) status: String,
}

pub(crate) struct Oracle {
    started: Instant,
    next_id: std::sync::atomic::AtomicU64,
    pub(crate) outcomes: Mutex<Vec<Outcome>>,
    pub(crate) app: Mutex<HashMap<u64, Vec<AppSeen>>>,
    /// App requests without a soak id (nothing the driver sent should arrive like that).
    pub(crate) app_unattributed: Mutex<Vec<AppSeen>>,
    pub(crate) windows: Mutex<Vec<Window>>,
    pub(crate) ws_drops: Mutex<Vec<WsDrop>>,
    pub(crate) crashes: Mutex<Vec<Crash>>,
    /// Open WebSockets: handshake id → the replica it went through.
    pub(crate) ws_open: Mutex<HashMap<u64, Option<usize>>>,
    /// Findings written down during the run, for the report.
    pub(crate) notes: Mutex<Vec<String>>,
    /// Requests the driver could not start because too many were in flight.
    pub(crate) skipped: std::sync::atomic::AtomicU64,
}

impl Oracle {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            next_id: std::sync::atomic::AtomicU64::new(1),
            outcomes: Mutex::new(Vec::new()),
            app: Mutex::new(HashMap::new()),
            app_unattributed: Mutex::new(Vec::new()),
            windows: Mutex::new(Vec::new()),
            ws_drops: Mutex::new(Vec::new()),
            crashes: Mutex::new(Vec::new()),
            ws_open: Mutex::new(HashMap::new()),
            notes: Mutex::new(Vec::new()),
            skipped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Seconds since the soak started.
    pub(crate) fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn record(&self, outcome: Outcome) {
        if let Ok(mut o) = self.outcomes.lock() {
            o.push(outcome);
        }
    }

    pub(crate) fn app_saw(&self, id: Option<u64>, seen: AppSeen) {
        match id {
            Some(id) => {
                if let Ok(mut app) = self.app.lock() {
                    app.entry(id).or_default().push(seen);
                }
            }
            None => {
                if let Ok(mut u) = self.app_unattributed.lock() {
                    u.push(seen);
                }
            }
        }
    }

    pub(crate) fn replica_of(&self, id: u64) -> Option<usize> {
        self.app
            .lock()
            .ok()
            .and_then(|a| a.get(&id).and_then(|v| v.first().map(|s| s.replica)))
    }

    pub(crate) fn fault_started(&self, kind: FaultKind, settle: f64) -> usize {
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        w.push(Window {
            kind,
            start: self.now(),
            end: None,
            settle,
        });
        w.len() - 1
    }

    pub(crate) fn fault_ended(&self, index: usize) {
        let now = self.now();
        if let Ok(mut w) = self.windows.lock() {
            if let Some(w) = w.get_mut(index) {
                w.end = Some(now);
            }
        }
    }

    pub(crate) fn crashed(&self, component: String, status: String) {
        let at = self.now();
        if let Ok(mut c) = self.crashes.lock() {
            c.push(Crash {
                at,
                component,
                status,
            });
        }
    }

    pub(crate) fn ws_dropped(&self, replica: Option<usize>, reason: String) {
        let at = self.now();
        if let Ok(mut d) = self.ws_drops.lock() {
            d.push(WsDrop {
                at,
                replica,
                reason,
            });
        }
    }

    pub(crate) fn note(&self, note: String) {
        if let Ok(mut n) = self.notes.lock() {
            n.push(note);
        }
    }

    pub(crate) fn socket_opened(&self, id: u64, replica: Option<usize>) {
        if let Ok(mut o) = self.ws_open.lock() {
            o.insert(id, replica);
        }
    }

    pub(crate) fn socket_closed(&self, id: u64) {
        if let Ok(mut o) = self.ws_open.lock() {
            o.remove(&id);
        }
    }

    /// Open sockets per replica (`replica number: count`).
    pub(crate) fn open_sockets(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        if let Ok(o) = self.ws_open.lock() {
            for r in o.values() {
                let key = r.map_or("unknown".to_string(), |r| format!("replica {}", r + 1));
                *counts.entry(key).or_default() += 1;
            }
        }
        counts
    }

    /// Redis outages so far: `(down_at, up_at)`; `up_at` is `None` while it is down.
    pub(crate) fn redis_outages(&self) -> Vec<(f64, Option<f64>)> {
        self.windows
            .lock()
            .map(|w| {
                w.iter()
                    .filter(|w| w.kind == FaultKind::RedisDown)
                    .map(|w| (w.start, w.end))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How long after a logout through sfgate every replica must refuse the token (Redis pub/sub
/// "within a second", with room for a loaded machine).
pub(crate) const PROPAGATION: f64 = 2.0;
/// How long after Redis is back a replica has reconnected and replayed missed revocations.
pub(crate) const REDIS_RECOVERY: f64 = 5.0;

/// The expectation for a credential logged out through sfgate at `logout_at`, used at `now`
/// (never later than twice the cache TTL after the logout: sfgate's own memory of it).
///
/// With Redis up the whole time every replica refuses it within [`PROPAGATION`]. If Redis was
/// down at any time since the logout, a replica that did not handle it may accept it from its
/// own cache until Redis is back (the documented one-process guarantee), and must refuse it
/// once it has reconnected; an opaque token confirmed revoked at Salesforce is also refused
/// once every cached verdict has run out.
pub(crate) fn after_logout(
    oracle: &Oracle,
    user: &'static str,
    logout_at: f64,
    now: f64,
    revoked_at_salesforce: bool,
    cache_ttl: f64,
) -> Expect {
    let mut heard_by = Some(logout_at + PROPAGATION);
    for (down, up) in oracle.redis_outages() {
        if down > now || up.is_some_and(|u| u < logout_at) {
            continue;
        }
        heard_by = match (heard_by, up) {
            (Some(h), Some(u)) => Some(h.max(u + REDIS_RECOVERY)),
            _ => None,
        };
    }
    let refused_by_salesforce = revoked_at_salesforce && now > logout_at + cache_ttl + PROPAGATION;
    if heard_by.is_some_and(|h| now > h) || refused_by_salesforce {
        Expect::Refuse
    } else {
        Expect::Either(user)
    }
}
