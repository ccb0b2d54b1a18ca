//! What both upstream clients keep per serving thread and per pool: their idle connections.
//!
//! A pool's idle connections live in a thread-local of the client's own, one entry per pool
//! (a process may run several gateways, as the tests do), so that taking and returning a
//! connection touches no lock and no atomic shared with another thread.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::LocalKey;

/// Idle connections kept per thread and pool at most; more are closed as they come back.
pub(super) const MAX_IDLE_PER_THREAD: usize = 1024;

/// A thread's queues, one per pool, by the pool's id.
pub(super) type Queues<Q> = RefCell<Vec<(u64, Q)>>;

static NEXT_POOL: AtomicU64 = AtomicU64::new(1);

/// A new pool's id, unique in the process.
pub(super) fn new_pool_id() -> u64 {
    NEXT_POOL.fetch_add(1, Ordering::Relaxed)
}

/// Runs `f` on this thread's queue of `pool` (made empty the first time); `None` while the
/// thread is being torn down.
pub(super) fn with_queue<Q: Default + 'static, R>(
    queues: &'static LocalKey<Queues<Q>>,
    pool: u64,
    f: impl FnOnce(&mut Q) -> R,
) -> Option<R> {
    queues
        .try_with(|queues| {
            let mut queues = queues.borrow_mut();
            let index = match queues.iter().position(|(id, _)| *id == pool) {
                Some(index) => index,
                None => {
                    queues.push((pool, Q::default()));
                    queues.len() - 1
                }
            };
            f(&mut queues[index].1)
        })
        .ok()
}
