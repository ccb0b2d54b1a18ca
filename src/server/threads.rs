//! Thread-per-core serving: one OS thread per serving slot (`SERVER_THREADS`), each running a
//! current-thread tokio runtime that accepts on its own listener and serves its connections
//! start to end. No task moves between threads, so no wakeup crosses cores and nothing on a
//! request's path is shared with another thread but what must be (the application's state:
//! identity cache, revocations, rate limits, Redis).
//!
//! What the threads share: the `MAX_CONNECTIONS` semaphore (one limit for the process), the
//! stop signal, and a count of threads still serving so that upgraded connections (WebSockets) are closed only once
//! every thread has finished its in-flight requests. The caller's runtime runs `shutdown` and
//! whatever the application spawned at start (background tasks); the serving threads run
//! only what requests spawn.

use super::accept::{self, Gate, Handoff, Incoming};
use super::{ConnectionLimits, Listeners, Served};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// Run on every serving thread once all threads have finished their in-flight requests,
/// before the thread's runtime ends (the gateway closes its WebSocket tunnels there: each
/// tunnel runs on the thread that opened it).
pub type AfterDrain = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What one serving thread starts from.
enum Source {
    Listener(std::net::TcpListener),
    Handed(mpsc::UnboundedReceiver<Handoff>),
    /// The thread that accepts for all (one shared listener): its own connections come back
    /// to it through the first receiver.
    Acceptor {
        listener: std::net::TcpListener,
        handoff: Vec<mpsc::UnboundedSender<Handoff>>,
        own: mpsc::UnboundedReceiver<Handoff>,
    },
}

/// Serves `app` on `listeners`, one thread per listener (or per `threads` of a shared one),
/// until `shutdown` completes. Then every thread stops accepting, lets its connections finish
/// their requests, and, once all have, runs `after_drain`; this returns when every thread has
/// ended. A thread that cannot start its runtime or listener stops the whole server.
pub async fn serve_threads(
    listeners: Listeners,
    app: impl Into<Served>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    after_drain: Option<AfterDrain>,
) -> io::Result<()> {
    let app = app.into();
    let sources = sources(listeners);
    let gate = Gate::new(limits.max_connections);
    let (stop, stopped) = watch::channel(false);
    let serving = Arc::new(watch::Sender::new(sources.len()));
    let mut ended = Vec::with_capacity(sources.len());
    let mut failed: Option<io::Error> = None;
    let threads = sources.len();
    for (index, source) in sources.into_iter().enumerate() {
        let (done, end) = oneshot::channel();
        let thread = Thread {
            index,
            app: app.clone(),
            limits,
            gate: gate.clone(),
            stopped: stopped.clone(),
            serving: serving.clone(),
            after_drain: after_drain.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("sfgate-{index}"))
            .spawn(move || {
                let _ = done.send(thread.run(source));
            });
        match spawned {
            Ok(_) => ended.push(end),
            Err(e) => {
                // The threads that never started have nothing to drain.
                serving.send_modify(|n| *n -= threads - index);
                failed = Some(e);
                let _ = stop.send(true);
                break;
            }
        }
    }
    if let Some(e) = failed {
        for end in ended {
            let _ = end.await;
        }
        return Err(e);
    }
    // Until shutdown is asked for, or a thread ends on its own (it could not start).
    let mut first_end = futures_util::future::select_all(ended);
    let mut result = Ok(());
    tokio::select! {
        () = shutdown => {}
        (ended_early, _, rest) = &mut first_end => {
            result = ended_early.unwrap_or(Ok(()));
            let _ = stop.send(true);
            for end in rest {
                result = result.and(end.await.unwrap_or(Ok(())));
            }
            return result;
        }
    }
    let _ = stop.send(true);
    for end in first_end.into_inner() {
        result = result.and(end.await.unwrap_or(Ok(())));
    }
    result
}

fn sources(listeners: Listeners) -> Vec<Source> {
    match listeners {
        Listeners::PerThread(listeners) => listeners.into_iter().map(Source::Listener).collect(),
        Listeners::Shared { listener, threads } => {
            let (senders, mut receivers): (Vec<_>, Vec<_>) = (0..threads.max(1))
                .map(|_| mpsc::unbounded_channel())
                .unzip();
            let own = receivers.remove(0);
            let mut sources = vec![Source::Acceptor {
                listener,
                handoff: senders,
                own,
            }];
            sources.extend(receivers.into_iter().map(Source::Handed));
            sources
        }
    }
}

/// One serving thread's share of the server.
struct Thread {
    index: usize,
    app: Served,
    limits: ConnectionLimits,
    gate: Arc<Gate>,
    stopped: watch::Receiver<bool>,
    /// Threads still serving: each one, once its connections have finished, counts itself
    /// out and waits for the others before closing tunnels.
    serving: Arc<watch::Sender<usize>>,
    after_drain: Option<AfterDrain>,
}

impl Thread {
    fn run(self, source: Source) -> io::Result<()> {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                // Nothing to drain; the other threads must not wait for this one.
                self.serving.send_modify(|n| *n -= 1);
                return Err(e);
            }
        };
        runtime.block_on(self.serve(source))
    }

    async fn serve(self, source: Source) -> io::Result<()> {
        let incoming = match source {
            Source::Listener(listener) => TcpListener::from_std(listener).map(Incoming::Listener),
            Source::Handed(handed) => Ok(Incoming::Handed(handed)),
            Source::Acceptor {
                listener,
                handoff,
                own,
            } => TcpListener::from_std(listener).map(|listener| {
                tokio::spawn(hand_out(
                    listener,
                    handoff,
                    self.gate.clone(),
                    stop_signal(self.stopped.clone()),
                ));
                Incoming::Handed(own)
            }),
        };
        let result = match incoming {
            Ok(incoming) => {
                let accepted = metrics::counter!(
                    "sfgate_connections_accepted_total",
                    "thread" => self.index.to_string()
                );
                accept::serve_loop(
                    incoming,
                    self.app,
                    self.limits,
                    self.gate,
                    stop_signal(self.stopped),
                    Some(accepted),
                )
                .await;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, thread = self.index, "cannot listen");
                Err(e)
            }
        };
        self.serving.send_modify(|n| *n -= 1);
        let _ = self.serving.subscribe().wait_for(|n| *n == 0).await;
        if let Some(after_drain) = self.after_drain {
            after_drain().await;
        }
        result
    }
}

/// Resolves once the server is told to stop (or its controller is gone).
async fn stop_signal(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Accepts on the one shared listener and hands each connection, with its slot, to the
/// threads in turn, until `stop`.
async fn hand_out(
    listener: TcpListener,
    threads: Vec<mpsc::UnboundedSender<Handoff>>,
    gate: Arc<Gate>,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut next = 0;
    loop {
        // One acceptor: it may hold a slot while it waits in `accept`.
        let permit = tokio::select! {
            permit = gate.slot() => match permit {
                Some(permit) => permit,
                None => break,
            },
            () = &mut stop => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = accept::accept(&listener) => accepted,
            () = &mut stop => break,
        };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand over a connection");
                continue;
            }
        };
        let handoff = Handoff {
            stream,
            remote,
            permit,
        };
        // A thread that has stopped takes no more; try the others.
        let mut handoff = handoff;
        let mut tries = threads.len();
        loop {
            let thread = &threads[next % threads.len()];
            next = next.wrapping_add(1);
            match thread.send(handoff) {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) if tries > 1 => {
                    handoff = back;
                    tries -= 1;
                }
                Err(_) => return,
            }
        }
    }
}
