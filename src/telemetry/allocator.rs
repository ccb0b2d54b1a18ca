//! The memory allocator's settings and figures (jemalloc, the binary's global allocator).
//!
//! jemalloc returns freed pages to the system on a decay schedule (dirty pages after 10 s),
//! but without background threads that schedule only advances when the arena that owns the
//! pages allocates or frees again. sfgate serves on one thread per core, each with its own
//! arena: after a burst, a thread that goes quiet keeps the burst's pages resident for as long
//! as it stays quiet, which a soak shows as RSS that never comes back down. With background
//! threads, jemalloc purges every arena on schedule whatever its thread does
//! ([`purge_in_background`], turned on by `src/main.rs` at start).
//!
//! The allocator's own figures go to `/metrics` ([`record`]), so that RSS can be told apart:
//! memory in use (`allocated`), pages kept by the allocator (`resident` beyond `active`), the
//! allocator's own bookkeeping (`metadata`), and address space kept without memory behind it
//! (`retained`).
//!
//! `metadata` tells the allocator's bookkeeping apart from pages that hold the program's
//! memory: after a burst of connections RSS stays somewhat above its level before the burst
//! while memory in use is back where it was (docs/soak.md); with this gauge flat through such
//! a step, the step is partly used pages, not bookkeeping.

/// Turns on jemalloc's background purging threads (at most one per CPU). Returns whether they
/// are on afterwards; an allocator built without them (another platform) leaves them off.
pub fn purge_in_background() -> bool {
    match tikv_jemalloc_ctl::background_thread::write(true) {
        Ok(()) => background_purging(),
        Err(e) => {
            tracing::warn!(error = %e, "jemalloc background purging unavailable");
            false
        }
    }
}

/// Whether jemalloc's background purging threads are on.
pub fn background_purging() -> bool {
    tikv_jemalloc_ctl::background_thread::read().unwrap_or(false)
}

/// The allocator's figures, in bytes, as of now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Memory handed out to the program and not freed.
    pub allocated: u64,
    /// Pages holding allocated memory (allocated plus the unused part of those pages).
    pub active: u64,
    /// Pages the allocator keeps resident: active, its metadata, and freed pages not yet
    /// returned to the system.
    pub resident: u64,
    /// The allocator's own bookkeeping: its extent records and tables (never returned to the
    /// system; their touched pages are in `resident`).
    pub metadata: u64,
    /// Address space kept mapped without memory behind it (returned pages, reused later).
    pub retained: u64,
}

/// Reads the allocator's figures (refreshing jemalloc's statistics first). `None` when the
/// statistics cannot be read.
pub fn figures() -> Option<Figures> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(Figures {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        metadata: stats::metadata::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}

/// Sets the `sfgate_allocator_*_bytes` gauges from [`figures`]; called when `/metrics` is read.
pub fn record() {
    if let Some(f) = figures() {
        metrics::gauge!("sfgate_allocator_allocated_bytes").set(f.allocated as f64);
        metrics::gauge!("sfgate_allocator_active_bytes").set(f.active as f64);
        metrics::gauge!("sfgate_allocator_resident_bytes").set(f.resident as f64);
        metrics::gauge!("sfgate_allocator_metadata_bytes").set(f.metadata as f64);
        metrics::gauge!("sfgate_allocator_retained_bytes").set(f.retained as f64);
    }
}
