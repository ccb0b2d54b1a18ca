//! Revocation everywhere at once.
//!
//! A logout on one replica must stop the token on all of them within a second, without
//! adding a Redis round trip to the cached hot path. So a revocation (1) writes a tombstone
//! next to the token's shared verdict and deletes the verdict, then (2) publishes the token's
//! digest. Each replica's subscriber marks the digest in a local set that the validator checks
//! on every request (an in-memory lookup) and clears the local cache entry.
//!
//! What if a replica missed messages? Pub/sub does not queue for a disconnected subscriber, so
//! every (re)subscription clears the replica's local identity cache: verdicts are fetched
//! again, through the shared level that revocations cleared. A revocation made while Redis was
//! unreachable is kept (bounded, for the cache's TTL) and published when Redis returns.

use super::redis_store::{describe, RedisStore, PREFIX};
use super::{hex, Digest, SharedStore};
use futures_util::StreamExt;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// The channel revocations are published on.
pub(super) const CHANNEL: &str = "sfgate:revocations";
/// How often the subscriber checks that its connection still answers.
const PING_EVERY: Duration = Duration::from_secs(1);
/// Waits between subscription attempts while Redis is unreachable.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Bounds memory under a flood of logouts; beyond it the least recent go first.
const MAX_TRACKED: u64 = 100_000;

type ClearHook = Box<dyn Fn() + Send + Sync>;

pub(super) struct Revocations {
    /// Digests revoked anywhere, for as long as any replica may hold a verdict for them.
    marked: moka::sync::Cache<Digest, ()>,
    /// Revocations made here while Redis was unreachable, to publish when it returns.
    pending: moka::sync::Cache<Digest, ()>,
    /// Clears this replica's local identity cache (set by the validator).
    clear_local: OnceLock<ClearHook>,
    ttl: Duration,
}

impl Revocations {
    pub(super) fn new(identity_ttl: Duration) -> Self {
        // A verdict read from the shared level lives up to one TTL there and one locally.
        let ttl = (identity_ttl * 2).max(Duration::from_secs(1));
        let cache = || {
            moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_live(ttl)
                .build()
        };
        Self {
            marked: cache(),
            pending: cache(),
            clear_local: OnceLock::new(),
            ttl,
        }
    }
}

pub(super) fn tombstone_key(digest: &Digest) -> String {
    format!("{PREFIX}revoked:{}", hex(digest))
}

impl SharedStore {
    /// Whether the token with this digest was revoked on any replica. In memory only: this
    /// runs on every request, cached or not.
    pub fn is_revoked(&self, digest: &Digest) -> bool {
        match self {
            Self::Local => false,
            Self::Redis(store) => store.revocations.marked.contains_key(digest),
        }
    }

    /// Tells every replica that the token with this digest is revoked. Kept and retried when
    /// Redis returns if it cannot be told now.
    pub async fn revoke(&self, digest: &Digest) {
        if let Self::Redis(store) = self {
            store.revocations.marked.insert(*digest, ());
            if !publish(store, digest).await {
                store.revocations.pending.insert(*digest, ());
            }
        }
    }

    /// Registers how to clear this replica's local identity cache, which happens whenever the
    /// subscription (re)starts (messages may have been missed meanwhile).
    pub fn on_resubscribe(&self, clear: impl Fn() + Send + Sync + 'static) {
        if let Self::Redis(store) = self {
            let _ = store.revocations.clear_local.set(Box::new(clear));
        }
    }
}

/// Tombstone, drop the shared verdict, tell the others. `false` when Redis did not take it.
async fn publish(store: &RedisStore, digest: &Digest) -> bool {
    let mut conn = store.conn();
    let ttl_ms = store.revocations.ttl.as_millis() as u64;
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(tombstone_key(digest))
        .arg(1)
        .arg("PX")
        .arg(ttl_ms)
        .ignore()
        .cmd("DEL")
        .arg(super::identity_cache::verdict_key(digest))
        .ignore()
        .cmd("PUBLISH")
        .arg(CHANNEL)
        .arg(&digest[..])
        .ignore();
    store
        .run("revoke", pipe.query_async::<()>(&mut conn))
        .await
        .is_some()
}

/// Starts the subscriber. It holds the store weakly, so it ends when the gateway is dropped.
pub(super) fn spawn_subscriber(store: &Arc<RedisStore>) {
    tokio::spawn(subscribe_forever(Arc::downgrade(store)));
}

async fn subscribe_forever(store: Weak<RedisStore>) {
    // Connect the command connection now rather than on the first request, with the
    // connection's own (longer) time limit.
    if let Some(strong) = store.upgrade() {
        let mut conn = strong.conn();
        strong
            .run_within(
                strong.connect_timeout,
                "connect",
                redis::cmd("PING").query_async::<()>(&mut conn),
            )
            .await;
    }
    let mut wait = RETRY_MIN;
    loop {
        let Some(strong) = store.upgrade() else {
            return;
        };
        let connected = tokio::time::timeout(strong.connect_timeout, async {
            let mut pubsub = strong.client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => {
                strong.health.subscriber_down(&describe(&e));
                drop(strong);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
            Err(_) => {
                strong.health.subscriber_down("timed out");
                drop(strong);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
        };
        wait = RETRY_MIN;
        strong.health.subscriber_up();
        catch_up(&strong).await;
        let timeout = strong.timeout;
        drop(strong);
        let reason = listen(&store, pubsub, timeout).await;
        match (store.upgrade(), reason) {
            (Some(strong), Some(reason)) => strong.health.subscriber_down(reason),
            _ => return,
        }
    }
}

/// After (re)subscribing: forget local verdicts (revocations may have been missed) and
/// publish the revocations made here while Redis was away.
async fn catch_up(store: &RedisStore) {
    if let Some(clear) = store.revocations.clear_local.get() {
        clear();
    }
    for (digest, ()) in store.revocations.pending.iter() {
        if publish(store, &digest).await {
            store.revocations.pending.invalidate(&*digest);
        }
    }
}

/// Applies messages until the connection fails (`Some(reason)`) or the store is gone (`None`).
async fn listen(
    store: &Weak<RedisStore>,
    pubsub: redis::aio::PubSub,
    timeout: Duration,
) -> Option<&'static str> {
    let (mut sink, mut messages) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Some("the subscription connection closed");
                };
                let strong = store.upgrade()?;
                if let Ok(digest) = <Digest>::try_from(message.get_payload_bytes()) {
                    strong.revocations.marked.insert(digest, ());
                }
            }
            _ = ping.tick() => {
                let strong = store.upgrade()?;
                // Commands recover on use; without traffic, this tick probes them too.
                if !strong.health.commands_ok() {
                    let mut conn = strong.conn();
                    strong
                        .run("ping", redis::cmd("PING").query_async::<()>(&mut conn))
                        .await;
                }
                drop(strong);
                let answered = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                if !matches!(answered, Ok(Ok(_))) {
                    return Some("the subscription connection stopped answering");
                }
            }
        }
    }
}
