//! The binary's allocator settings: jemalloc purges freed memory from background threads, so
//! that a serving thread gone quiet after a burst does not keep the burst's pages; an
//! operator's own `_RJEM_MALLOC_CONF` wins. The allocator's figures are in `/metrics`.

use crate::common::metric;
use crate::helpers::sfgate_process::*;
use std::time::Duration;

/// The names of a process's threads, from /proc.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|name| name.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts the real binary, waits for it to answer, and returns its thread names and a scrape
/// of `/metrics`.
async fn started_with(extra: &[(&str, String)]) -> (Vec<String>, String) {
    let started = start_on_free_port(|| extra.iter().map(|(k, v)| (*k, v.clone())).collect()).await;
    let pid = started.gateway.child.id();
    // jemalloc starts its background threads on demand; give them a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut names = thread_names(pid);
    while !names.iter().any(|n| n.contains("jemalloc_bg")) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        names = thread_names(pid);
    }
    let scrape = reqwest::get(format!("http://127.0.0.1:{}/metrics", started.port))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    (names, scrape)
}

#[tokio::test]
async fn the_binary_purges_freed_memory_from_background_threads_and_reports_its_allocator() {
    let (threads, scrape) = started_with(&[]).await;
    assert!(
        threads.iter().any(|n| n == "jemalloc_bg_thd"),
        "no jemalloc background thread among {threads:?}"
    );
    let resident = metric(&scrape, "sfgate_allocator_resident_bytes", &[]);
    let allocated = metric(&scrape, "sfgate_allocator_allocated_bytes", &[]);
    assert!(allocated > 0.0, "allocated {allocated}");
    assert!(
        resident >= allocated,
        "resident {resident} < allocated {allocated}"
    );
    assert!(
        scrape.contains("sfgate_allocator_retained_bytes"),
        "{scrape}"
    );
    // The allocator's own bookkeeping, apart.
    let metadata = metric(&scrape, "sfgate_allocator_metadata_bytes", &[]);
    assert!(metadata > 0.0, "metadata {metadata}");
}

#[tokio::test]
async fn an_operators_malloc_conf_chooses_the_allocator_options() {
    let (threads, _) =
        started_with(&[("_RJEM_MALLOC_CONF", "background_thread:false".to_string())]).await;
    assert!(
        !threads.iter().any(|n| n == "jemalloc_bg_thd"),
        "background threads started against the operator's choice: {threads:?}"
    );
}
