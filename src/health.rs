//! Liveness and readiness.
//!
//! Readiness reports the outcome of the last real call to Salesforce instead of making one per
//! probe: probes every few seconds from every replica would otherwise become traffic of their
//! own, and a Salesforce hiccup should show as "degraded", not take every replica out at once.

use serde::Serialize;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Serialize)]
pub struct LastCall {
    pub ok: bool,
    pub at_unix: u64,
    pub endpoint: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Default)]
pub struct Readiness {
    last: Mutex<Option<LastCall>>,
}

impl Readiness {
    pub fn record(&self, endpoint: &'static str, error: Option<String>) {
        let call = LastCall {
            ok: error.is_none(),
            at_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            endpoint,
            error,
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some(call);
        }
    }

    pub fn last(&self) -> Option<LastCall> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
}
