//! Revocation everywhere at once, and through an outage.
//!
//! A logout on one replica must stop the token on all of them within a second, without
//! adding a Redis round trip to the cached hot path. So a revocation (1) writes a tombstone
//! next to the token's shared verdict and deletes the verdict, (2) appends a sealed message to
//! the revocation log (a sorted set scored by when the revocation may be forgotten), and (3)
//! publishes the same sealed message. Each replica's subscriber marks the digest in a local
//! set that the validator checks on every request (an in-memory lookup).
//!
//! Messages are sealed with a key derived from `SESSION_SECRET` (see `keys.rs`): the token's
//! digest never appears in Redis, and a message that does not open (forged, altered) is
//! ignored and counted. A forged revocation could only refuse more, but it cannot be made
//! without the secret either. Messages are a tagged enum ([`Revoked`]), so other kinds of
//! revocation can travel the same way; a kind this version does not know is ignored.
//!
//! What if a replica cannot hear? Pub/sub does not queue for a disconnected subscriber. From
//! the moment the subscription is lost or any Redis command fails (whichever is noticed
//! first) until this replica has caught up again, it is *deaf*:
//! the hook the validator registered ([`SharedStore::on_hearing_change`]) drops every verdict
//! cached before the outage, caps new ones at `REDIS_OUTAGE_CACHE_TTL` and sends JWTs to
//! Salesforce instead of checking them locally, so a logout elsewhere (which also revoked the
//! token at Salesforce) takes effect within that bound. Catching up, after (re)subscribing:
//! the revocations made here meanwhile (kept in a bounded queue) are written and published,
//! then the whole revocation log is read back and marked. Only then is the replica hearing
//! (and `/readyz` up) again.
//!
//! A user, too, can be revoked ([`Revoked::User`], `sfgate revoke-user`): every replica keeps
//! the user's revocation time in memory, refuses that user's credentials issued or first
//! checked before it, and turns the tokens of that user it has cached into token revocations
//! (so they stay refused once their verdicts expire, and other replicas hear of them). The
//! message stays in the log for as long as a session can last, so a replica started later
//! knows it too.

use super::keys::{
    hex, rejected, Purpose, REVOCATION_CHANNEL, REVOCATION_GENERATION, REVOCATION_LOG,
    REVOCATION_SEALED_AS,
};
use super::redis_store::{describe, RedisStore};
use super::revocation_cache::now_ms;
use super::{Digest, SharedStore, StoreError};
use crate::config::Config;
use crate::domain::SalesforceId;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the subscriber checks that its connection still answers.
const PING_EVERY: Duration = Duration::from_secs(1);
/// Waits between subscription attempts while Redis is unreachable.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// However long a JWT claims to live, a revocation is remembered no longer than this.
const MAX_KEEP: Duration = Duration::from_secs(24 * 3600);
/// However long a session may last, a logged-out refresh token is remembered no longer.
const MAX_SESSION_KEEP: Duration = Duration::from_secs(366 * 24 * 3600);

/// What a revocation message says. Tagged, so that further kinds can be added; replicas
/// ignore kinds they do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Revoked {
    /// One token, by the validator's digest of instance and token (hex), refused everywhere
    /// until `until_ms` (milliseconds since the epoch).
    Token { digest: String, until_ms: u64 },
    /// Every credential of a user issued (or first checked) before `at_ms`, refused until
    /// `until_ms` (both milliseconds since the epoch). `by` names the operator, for the audit
    /// line each replica writes.
    User {
        user_id: SalesforceId,
        at_ms: u64,
        until_ms: u64,
        by: String,
    },
}

/// What became of a revocation beyond this replica (the logout answer says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shared {
    /// No `REDIS_URL`: there are no other replicas to tell.
    NotShared,
    /// Written to Redis and published to every replica.
    Published,
    /// Redis is unreachable: kept here and written when it returns.
    Queued,
}

impl SharedStore {
    /// Whether the token with this digest was revoked on any replica. In memory only: this
    /// runs on every request, cached or not.
    pub fn is_revoked(&self, digest: &Digest) -> bool {
        match self {
            Self::Local => false,
            Self::Redis(store) => store.revocations.marked.contains(digest),
        }
    }

    /// Whether this replica dropped a revocation to make room (a flood of logouts beyond what
    /// it holds) that would still be in force: then a token absent from its set may still be
    /// revoked. In memory only.
    pub fn forgot_revocations(&self) -> bool {
        match self {
            Self::Local => false,
            Self::Redis(store) => store.revocations.marked.forgot_any(),
        }
    }

    /// The revocations of every replica this one holds in memory (for `/metrics`); `None`
    /// without Redis.
    pub fn revoked_figures(&self) -> Option<super::TombstoneFigures> {
        match self {
            Self::Local => None,
            Self::Redis(store) => Some(store.revocations.marked.figures()),
        }
    }

    /// When `user` was revoked on any replica (milliseconds since the epoch), if it was. In
    /// memory only: this runs on every request.
    pub fn user_revoked_at(&self, user: &SalesforceId) -> Option<u64> {
        match self {
            Self::Local => None,
            Self::Redis(store) => store.revocations.users.get(user).map(|(at, _)| at),
        }
    }

    /// Registers what to do when a user is revoked: forget what was cached for that user, and
    /// answer the digests of that user's tokens known here. Without Redis, never called.
    pub fn on_user_revoked(
        &self,
        hook: impl Fn(&SalesforceId, u64) -> Vec<Digest> + Send + Sync + 'static,
    ) {
        if let Self::Redis(store) = self {
            let _ = store.revocations.on_user.set(Box::new(hook));
        }
    }

    /// Registers what to do when a token is revoked on any replica (this one included):
    /// forget what was cached for it. Without Redis, never called (a logout evicts itself).
    pub fn on_token_revoked(
        &self,
        hook: impl Fn(Digest) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync + 'static,
    ) {
        if let Self::Redis(store) = self {
            let _ = store.revocations.on_token.set(Box::new(hook));
        }
    }

    /// Tells every replica that the token with this digest is revoked, for at least `keep`
    /// (a JWT's remaining life; never less than the identity caches can hold a verdict).
    /// Kept and written when Redis returns if it cannot be told now.
    ///
    /// This replica refuses the digest from the call on, before the returned future runs:
    /// with Redis, this set is the only one that remembers it here (see [`Self::is_shared`]).
    pub fn revoke(
        &self,
        digest: &Digest,
        keep: Duration,
    ) -> impl std::future::Future<Output = Shared> + Send + 'static {
        self.revoke_within(digest, keep, MAX_KEEP)
    }

    /// [`Self::revoke`] for a credential that outlives any JWT (a session's refresh token):
    /// kept for all of `keep`, which the caller bounds (by `SESSION_MAX_AGE`).
    pub fn revoke_for(
        &self,
        digest: &Digest,
        keep: Duration,
    ) -> impl std::future::Future<Output = Shared> + Send + 'static {
        self.revoke_within(digest, keep, MAX_SESSION_KEEP)
    }

    fn revoke_within(
        &self,
        digest: &Digest,
        keep: Duration,
        max_keep: Duration,
    ) -> impl std::future::Future<Output = Shared> + Send + 'static {
        let marked = match self {
            Self::Local => None,
            Self::Redis(store) => {
                let keep = keep.max(store.revocations.min_keep).min(max_keep);
                let until_ms = now_ms() + keep.as_millis() as u64;
                store.revocations.mark(*digest, until_ms);
                Some((store.clone(), *digest, until_ms))
            }
        };
        async move {
            let Some((store, digest, until_ms)) = marked else {
                return Shared::NotShared;
            };
            if publish(&store, &digest, until_ms).await {
                Shared::Published
            } else {
                store.revocations.pending.insert(digest, until_ms);
                Shared::Queued
            }
        }
    }

    /// Whether revocations made here are remembered by this store (with Redis: in the set
    /// every replica's revocations are heard into, for at least as long as asked), so that the
    /// caller need not remember them a second time.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }

    /// Registers what to do when this replica stops (`false`) or starts again (`true`) to
    /// hear revocations; called at once with the present state. Without Redis, never called.
    pub fn on_hearing_change(&self, hook: impl Fn(bool) + Send + Sync + 'static) {
        if let Self::Redis(store) = self {
            hook(store.health.hearing());
            let _ = store.revocations.on_hearing.set(Box::new(hook));
        }
    }

    /// `REDIS_OUTAGE_CACHE_TTL`; `None` without Redis.
    pub fn outage_cache_ttl(&self) -> Option<Duration> {
        match self {
            Self::Local => None,
            Self::Redis(store) => Some(store.outage_cache_ttl),
        }
    }
}

/// Tombstones, drop the shared verdicts, log and publish (under every secret of a rotation,
/// so that replicas on either hear it). `false` when Redis did not take it.
async fn publish(store: &RedisStore, digest: &Digest, until_ms: u64) -> bool {
    let message = Revoked::Token {
        digest: hex(digest),
        until_ms,
    };
    publish_message(store, &message, Some(digest), until_ms)
        .await
        .is_some()
}

/// Logs and publishes `message` (for a token, `digest`, also tombstones it and drops its
/// shared verdict). How many subscribers heard it (under the current secret), or `None`
/// when Redis did not take it.
async fn publish_message(
    store: &RedisStore,
    message: &Revoked,
    digest: Option<&Digest>,
    until_ms: u64,
) -> Option<u64> {
    let json = serde_json::to_string(message).ok()?;
    let keep_ms = until_ms.saturating_sub(now_ms()).max(1);
    let mut pipe = redis::pipe();
    for (i, keys) in store.keys.all().enumerate() {
        let sealed = keys.sealer.seal(REVOCATION_SEALED_AS, json.clone())?;
        if let Some(digest) = digest {
            pipe.cmd("SET")
                .arg(keys.name(Purpose::Tombstone, digest))
                .arg(1)
                .arg("PX")
                .arg(keep_ms)
                .ignore()
                .cmd("DEL")
                .arg(keys.name(Purpose::Identity, digest))
                .ignore();
        }
        pipe.cmd("ZADD")
            .arg(REVOCATION_LOG)
            .arg(until_ms)
            .arg(&sealed)
            .ignore()
            .cmd("PUBLISH")
            .arg(REVOCATION_CHANNEL)
            .arg(&sealed);
        // Only the first (current secret's) count is answered.
        if i > 0 {
            pipe.ignore();
        }
    }
    // The log forgets what has expired and never outgrows what a replica would track.
    pipe.cmd("ZREMRANGEBYSCORE")
        .arg(REVOCATION_LOG)
        .arg("-inf")
        .arg(now_ms())
        .ignore()
        .cmd("ZREMRANGEBYRANK")
        .arg(REVOCATION_LOG)
        .arg(0)
        .arg(-i64::try_from(store.revocations.max).unwrap_or(i64::MAX) - 1)
        .ignore();
    let mut conn = store.conn();
    let (heard,): (u64,) = store.run("revoke", pipe.query_async(&mut conn)).await?;
    Some(heard)
}

/// Marks what a sealed message says. One that does not open is counted and ignored; one
/// that opens but is of a kind this version does not know is ignored.
async fn apply(store: &Arc<RedisStore>, sealed: String) {
    let Some(json) = store.keys.open("revocation", REVOCATION_SEALED_AS, sealed) else {
        return;
    };
    match serde_json::from_str::<Revoked>(&json) {
        Ok(Revoked::Token { digest, until_ms }) => match unhex(&digest) {
            Some(digest) => heard(store, digest, until_ms).await,
            None => rejected("revocation"),
        },
        Ok(Revoked::User {
            user_id,
            at_ms,
            until_ms,
            by,
        }) => apply_user(store, user_id, at_ms, until_ms, &by).await,
        Err(_) => tracing::debug!("ignored a revocation of a kind this version does not know"),
    }
}

/// A token revoked on some replica: refused here from now on, and whatever this replica
/// cached for it forgotten at once. Refusing it by the mark alone would not be enough: the
/// mark can be dropped to make room (a flood of revocations), and a verdict cached before
/// would then be served again until it expires. So no verdict outlives the news of its
/// token's revocation here, as none outlives a logout made here.
async fn heard(store: &RedisStore, digest: Digest, until_ms: u64) {
    store.revocations.mark(digest, until_ms);
    if let Some(forget) = store.revocations.on_token.get() {
        forget(digest).await;
    }
}

/// Remembers a user's revocation (the latest, if there are several), and revokes the tokens
/// of that user this replica knows, here at once and on every replica. The log is read again
/// on every (re)subscription: a revocation already known is not applied twice.
async fn apply_user(
    store: &Arc<RedisStore>,
    user: SalesforceId,
    at_ms: u64,
    until_ms: u64,
    by: &str,
) {
    let users = &store.revocations.users;
    if until_ms <= now_ms() || users.get(&user).is_some_and(|(known, _)| known >= at_ms) {
        return;
    }
    users.insert(user.clone(), (at_ms, until_ms));
    metrics::counter!("sfgate_users_revoked_total").increment(1);
    tracing::warn!(
        audit = "user_revoked",
        user_id = %user,
        by,
        revoked_at_ms = at_ms,
        "user revoked: sessions and tokens issued before this are refused"
    );
    let Some(hook) = store.revocations.on_user.get() else {
        return;
    };
    let digests = hook(&user, at_ms);
    if digests.is_empty() {
        return;
    }
    for digest in &digests {
        heard(store, *digest, until_ms).await;
    }
    // Another replica may have checked none of these tokens yet, or shares their verdicts.
    let store = store.clone();
    tokio::spawn(async move {
        for digest in digests {
            if !publish(&store, &digest, until_ms).await {
                store.revocations.pending.insert(digest, until_ms);
            }
        }
    });
}

/// After (re)subscribing: write the revocations made here while Redis was away (and, if Redis
/// lost the log meanwhile, every revocation this replica holds), then read the log back
/// (revocations this replica may have missed). `false` if Redis failed meanwhile.
async fn catch_up(store: &Arc<RedisStore>) -> bool {
    let Some(generation) = log_generation(store).await else {
        return false;
    };
    let known = store
        .revocations
        .generation
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    // Another generation than the one read before (or none before it was set again): Redis
    // lost the log since. Remembered only once written back, so a failure midway is retried
    // at the next catch-up.
    if known.as_ref().is_some_and(|known| *known != generation) && !write_back(store).await {
        return false;
    }
    *store
        .revocations
        .generation
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(generation);
    for (digest, until_ms) in store.revocations.pending.iter() {
        if !publish(store, &digest, until_ms).await {
            return false;
        }
        store.revocations.pending.invalidate(&*digest);
    }
    let mut conn = store.conn();
    let logged: Option<Vec<String>> = store
        .run(
            "revocation_log",
            redis::cmd("ZRANGEBYSCORE")
                .arg(REVOCATION_LOG)
                .arg(now_ms())
                .arg("+inf")
                .query_async(&mut conn),
        )
        .await;
    let Some(logged) = logged else {
        return false;
    };
    for sealed in logged {
        apply(store, sealed).await;
    }
    true
}

/// The revocation log's generation (`None` if Redis did not answer). A Redis restarted
/// without persistence, flushed or replaced comes back without the log: a replica started
/// afterwards would learn none of the revocations made before, and would admit a logged-out
/// JWT until its `exp`. The generation tells the replicas that were running: the first
/// replica to find none sets one, and a replica that read another before knows the log was
/// lost.
async fn log_generation(store: &Arc<RedisStore>) -> Option<String> {
    let get = || {
        let mut conn = store.conn();
        async move {
            store
                .run(
                    "revocation_log",
                    redis::cmd("GET")
                        .arg(REVOCATION_GENERATION)
                        .query_async::<Option<String>>(&mut conn),
                )
                .await
        }
    };
    if let Some(current) = get().await? {
        return Some(current);
    }
    let fresh = uuid::Uuid::new_v4().to_string();
    let mut conn = store.conn();
    let set: Option<String> = store
        .run(
            "revocation_log",
            redis::cmd("SET")
                .arg(REVOCATION_GENERATION)
                .arg(&fresh)
                .arg("NX")
                .query_async(&mut conn),
        )
        .await?;
    match set {
        Some(_) => Some(fresh),
        // Another replica set it first: theirs.
        None => get().await?,
    }
}

/// Writes every revocation this replica holds (its own and those it heard) back to a log Redis
/// lost: tokens and users alike, each until its own end. The replica stays deaf meanwhile, so
/// it checks JWTs at Salesforce until the log is whole again. `false` if Redis failed.
async fn write_back(store: &Arc<RedisStore>) -> bool {
    let tokens = store.revocations.marked.in_force();
    let users: Vec<(Arc<SalesforceId>, (u64, u64))> = store.revocations.users.iter().collect();
    tracing::warn!(
        tokens = tokens.len(),
        users = users.len(),
        "Redis lost the revocation log: writing back the revocations this replica holds"
    );
    metrics::counter!("sfgate_revocation_log_rewrites_total").increment(1);
    for (digest, left) in tokens {
        let until_ms = now_ms() + left.as_millis() as u64;
        if !publish(store, &digest, until_ms).await {
            return false;
        }
    }
    for (user, (at_ms, until_ms)) in users {
        if until_ms <= now_ms() {
            continue;
        }
        let message = Revoked::User {
            user_id: (*user).clone(),
            at_ms,
            until_ms,
            by: "written back after Redis lost the revocation log".into(),
        };
        if publish_message(store, &message, None, until_ms)
            .await
            .is_none()
        {
            return false;
        }
    }
    true
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
            pubsub.subscribe(REVOCATION_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => describe(&e),
                    _ => "timed out".to_string(),
                };
                strong.health.subscriber_down(&reason);
                strong.set_hearing(false);
                drop(strong);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
        };
        wait = RETRY_MIN;
        strong.health.subscriber_up();
        if catch_up(&strong).await {
            strong.set_hearing(true);
        }
        // Once per subscription: a Redis replaced or reconfigured meanwhile is read again.
        super::eviction_policy::report(&strong).await;
        let timeout = strong.timeout;
        drop(strong);
        let reason = listen(&store, pubsub, timeout).await;
        match (store.upgrade(), reason) {
            (Some(strong), Some(reason)) => {
                strong.health.subscriber_down(reason);
                strong.set_hearing(false);
            }
            _ => return,
        }
    }
}

/// Applies messages until the connection fails (`Some(reason)`) or the store is gone (`None`);
/// retries catching up each tick until it succeeds.
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
                match message.get_payload::<String>() {
                    Ok(sealed) => apply(&strong, sealed).await,
                    Err(_) => rejected("revocation"),
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
                if !strong.health.hearing() && catch_up(&strong).await {
                    strong.set_hearing(true);
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

/// What `sfgate revoke-user` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRevocation {
    pub user_id: SalesforceId,
    /// Credentials issued or first checked before this are refused (ms since the epoch).
    pub at_ms: u64,
    /// Until when replicas remember it (ms since the epoch).
    pub until_ms: u64,
    /// How many replicas were listening when it was published.
    pub replicas_heard: u64,
}

/// Why a user could not be revoked.
#[derive(Debug, thiserror::Error)]
pub enum RevokeUserError {
    #[error("REDIS_URL is not set: revoking a user needs the Redis the replicas share")]
    NoRedis,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("Redis did not take the revocation (unreachable, or it failed); nothing was revoked")]
    Unreachable,
}

/// How long a user's revocation is remembered: as long as a session can last, and at least as
/// long as any token revocation.
pub fn user_revocation_keep(config: &Config) -> Duration {
    config.session.max_age.max(MAX_KEEP)
}

/// `sfgate revoke-user`: logs and publishes a [`Revoked::User`] for `user`, made now by `by`,
/// through the Redis the configuration names.
pub async fn revoke_user(
    config: &Config,
    user: SalesforceId,
    by: &str,
) -> Result<UserRevocation, RevokeUserError> {
    let redis = config.redis.as_ref().ok_or(RevokeUserError::NoRedis)?;
    let previous = config.session.previous_secret.as_ref().map(|s| s.expose());
    let store = RedisStore::connect(
        redis,
        config.session.secret.expose(),
        previous,
        config.cache.ttl,
    )?;
    let at_ms = now_ms();
    let until_ms = at_ms + user_revocation_keep(config).as_millis() as u64;
    let message = Revoked::User {
        user_id: user.clone(),
        at_ms,
        until_ms,
        by: by.to_string(),
    };
    let replicas_heard = publish_message(&store, &message, None, until_ms)
        .await
        .ok_or(RevokeUserError::Unreachable)?;
    Ok(UserRevocation {
        user_id: user,
        at_ms,
        until_ms,
        replicas_heard,
    })
}

/// The digest a message names, from its lower-case hex.
fn unhex(hex: &str) -> Option<Digest> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        digest[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_by_kind_and_digests_round_trip() {
        let digest: Digest = std::array::from_fn(|i| i as u8 * 7);
        let message = Revoked::Token {
            digest: hex(&digest),
            until_ms: 5,
        };
        let json = serde_json::to_string(&message).expect("json");
        assert!(json.contains(r#""kind":"token""#), "{json}");
        assert_eq!(
            serde_json::from_str::<Revoked>(&json).expect("back"),
            message
        );
        assert_eq!(unhex(&hex(&digest)), Some(digest));
        for bad in ["", "zz", &"0".repeat(63), &"g".repeat(64), &"é".repeat(32)] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
        // A kind from a newer version is not mistaken for a token.
        assert!(serde_json::from_str::<Revoked>(r#"{"kind":"group","id":"x"}"#).is_err());
        // A user message must name a valid user id, in its 18-character form once read.
        assert!(serde_json::from_str::<Revoked>(
            r#"{"kind":"user","user_id":"x","at_ms":1,"until_ms":2,"by":"o"}"#
        )
        .is_err());
        let user = Revoked::User {
            user_id: SalesforceId::parse("0055j00000AlIcE").expect("id"),
            at_ms: 1,
            until_ms: 2,
            by: "ops".into(),
        };
        let json = serde_json::to_string(&user).expect("json");
        assert!(
            json.contains(r#""kind":"user""#) && json.contains("0055j00000AlIcEAAV"),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Revoked>(&json).expect("back"), user);
    }
}
