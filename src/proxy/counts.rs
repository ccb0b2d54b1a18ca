//! The proxy's counters by status (`sfgate_proxy_requests_total`, `sfgate_upgrades_total`).

use axum::http::StatusCode;
use metrics::Counter;
use std::cell::RefCell;
use std::collections::HashMap;

/// Counter handles by status, per thread and metric. The `metrics` macro allocates the label
/// value and looks the key up in the recorder's registry on every call; here each status is
/// resolved once per thread (the recorder is installed before any request is served, and
/// statuses are few), and a request costs one small map lookup.
#[derive(Default)]
struct ByStatus {
    proxied: HashMap<u16, Counter>,
    upgrades: HashMap<u16, Counter>,
}

thread_local! {
    static HANDLES: RefCell<ByStatus> = RefCell::new(ByStatus::default());
}

/// Counts one proxied request (`sfgate_proxy_requests_total{status}`).
pub(super) fn proxied(status: StatusCode) {
    HANDLES.with_borrow_mut(|h| count(&mut h.proxied, "sfgate_proxy_requests_total", status));
}

/// Counts one protocol upgrade attempt (`sfgate_upgrades_total{status}`).
pub(super) fn upgrade(status: StatusCode) {
    HANDLES.with_borrow_mut(|h| count(&mut h.upgrades, "sfgate_upgrades_total", status));
}

fn count(handles: &mut HashMap<u16, Counter>, name: &'static str, status: StatusCode) {
    handles
        .entry(status.as_u16())
        .or_insert_with(|| metrics::counter!(name, "status" => status.as_str().to_owned()))
        .increment(1);
}
