//! The threads tunnels run on: one small work-stealing runtime for the whole process, with as
//! many worker threads as cores, started with the first tunnel.
//!
//! Requests are served thread per core (`server::threads`): each request is short, and
//! keeping it on the thread that accepted its connection is what makes that fast. A tunnel is
//! the opposite: it lives for minutes or hours, and which thread accepted its connection says
//! nothing about how busy it will be. Left on that thread, a few busy WebSockets load one core
//! while the other idles (the benchmark's WebSocket case shows the difference: a bare relay on
//! a work-stealing runtime beats the same relay thread per core). So once upgraded, a tunnel's
//! two sockets move here, and the runtime's workers share the tunnels between them.

use std::sync::OnceLock;
use tokio::runtime::{Handle, Runtime};

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// The tunnel runtime's handle, started on first use; `None` if its threads could not be
/// started (tunnels then stay on the thread that accepted them, as a fallback).
pub(super) fn handle() -> Option<Handle> {
    RUNTIME
        .get_or_init(|| {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("sfgate-tunnels")
                .enable_all()
                .build()
            {
                Ok(runtime) => Some(runtime),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the tunnel threads; tunnels stay on their serving thread");
                    None
                }
            }
        })
        .as_ref()
        .map(|runtime| runtime.handle().clone())
}
