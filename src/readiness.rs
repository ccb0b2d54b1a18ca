//! Salesforce readiness: whether Salesforce answered sfgate's last real call (served by
//! `/readyz`, see `routes/health.rs`).
//!
//! Readiness reports the outcome of the last real call to Salesforce instead of making one per
//! probe: probes every few seconds from every replica would otherwise become traffic of their
//! own, and a Salesforce hiccup should show as "degraded", not take every replica out at once.

use crate::domain::InstanceUrl;
use serde::Serialize;
use std::collections::HashSet;
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

/// Instance origins remembered as genuine; beyond this many, new ones are not added (the
/// instances one deployment sees are a handful, so this only bounds memory under abuse).
const MAX_KNOWN_INSTANCES: usize = 10_000;

#[derive(Default)]
pub struct Readiness {
    last: Mutex<Option<LastCall>>,
    /// Instances whose failures say something about Salesforce: listed by the operator, named
    /// by a verified token response, or answered successfully before.
    known_instances: Mutex<HashSet<String>>,
}

impl Readiness {
    /// Instances in `SF_INSTANCE_ORIGINS` count from the start: the operator vouched for them.
    pub fn new(listed: &[String]) -> Self {
        Self {
            last: Mutex::new(None),
            known_instances: Mutex::new(listed.iter().cloned().collect()),
        }
    }

    /// A call to the login host (token, revoke): configured by the operator, so it always counts.
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

    /// A call to an instance a client named. A failure counts only for an instance known to be
    /// genuine: otherwise anyone could mark the gateway degraded by naming a Salesforce-looking
    /// host that does not exist (the allowlist admits any name under Salesforce's domains).
    pub fn record_instance(
        &self,
        instance: &InstanceUrl,
        endpoint: &'static str,
        error: Option<String>,
    ) {
        if error.is_none() {
            self.trust_instance(instance);
        } else if !self.knows(instance) {
            tracing::debug!(
                endpoint,
                "failure at an unproven instance: readiness unchanged"
            );
            return;
        }
        self.record(endpoint, error);
    }

    /// Remembers an instance Salesforce itself named (a verified token response) or that
    /// answered successfully.
    pub fn trust_instance(&self, instance: &InstanceUrl) {
        if let Ok(mut known) = self.known_instances.lock() {
            if known.len() < MAX_KNOWN_INSTANCES && !known.contains(instance.as_str()) {
                known.insert(instance.as_str().to_owned());
            }
        }
    }

    fn knows(&self, instance: &InstanceUrl) -> bool {
        self.known_instances
            .lock()
            .map(|known| known.contains(instance.as_str()))
            .unwrap_or(false)
    }

    pub fn last(&self) -> Option<LastCall> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InstancePolicy;

    fn instance(raw: &str) -> InstanceUrl {
        InstancePolicy::default().check(raw).expect("allowed")
    }

    #[test]
    fn failures_at_unproven_instances_do_not_degrade() {
        let readiness = Readiness::new(&[]);
        let unknown = instance("https://no-such-org.my.salesforce.com");
        readiness.record_instance(&unknown, "userinfo", Some("dns error".into()));
        assert!(readiness.last().is_none());

        let acme = instance("https://acme.my.salesforce.com");
        readiness.record_instance(&acme, "userinfo", None);
        assert!(readiness.last().is_some_and(|c| c.ok));
        readiness.record_instance(&unknown, "userinfo", Some("dns error".into()));
        assert!(readiness.last().is_some_and(|c| c.ok), "still ready");
        readiness.record_instance(&acme, "userinfo", Some("timed out".into()));
        assert!(
            readiness.last().is_some_and(|c| !c.ok),
            "a known instance failing counts"
        );
    }

    #[test]
    fn listed_and_token_named_instances_count_from_the_start() {
        let readiness = Readiness::new(&["https://acme.my.salesforce.com".to_string()]);
        let acme = instance("https://acme.my.salesforce.com");
        readiness.record_instance(&acme, "userinfo", Some("503".into()));
        assert!(readiness.last().is_some_and(|c| !c.ok));

        let readiness = Readiness::new(&[]);
        let globex = instance("https://globex.my.salesforce.com");
        readiness.trust_instance(&globex);
        readiness.record_instance(&globex, "userinfo", Some("503".into()));
        assert!(readiness.last().is_some_and(|c| !c.ok));
    }
}
