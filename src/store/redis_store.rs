//! The Redis connection: one multiplexed, self-reconnecting connection for commands, and the
//! bounded way every command is run.

use super::keys::KeyRing;
use super::redis_health::StoreHealth;
use super::revocation_cache::Revocations;
use super::StoreError;
use crate::config::RedisConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisResult;
use secrecy::ExposeSecret;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// At least this long for a new connection: a TLS handshake on a busy dyno can take a while.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisStore {
    pub(super) client: redis::Client,
    conn: ConnectionManager,
    pub(super) timeout: Duration,
    /// Making a connection (TCP, TLS, AUTH) may take longer than one command.
    pub(super) connect_timeout: Duration,
    pub(super) health: StoreHealth,
    pub(super) revocations: Revocations,
    /// Names token-derived keys and seals values (see `keys.rs`).
    pub(super) keys: KeyRing,
    /// `REDIS_OUTAGE_CACHE_TTL`.
    pub(super) outage_cache_ttl: Duration,
}

impl RedisStore {
    /// Sets the client up without connecting: the first command (or the subscriber) connects,
    /// and the connection manager reconnects after a failure by itself.
    pub(super) fn connect(
        config: &RedisConfig,
        session_secret: &[u8],
        previous_secret: Option<&[u8]>,
        identity_ttl: Duration,
    ) -> Result<Arc<Self>, StoreError> {
        // A `rediss://` URL's TLS uses the same provider as every other client.
        crate::crypto::install_tls_provider();
        // The client's errors do not echo the URL, but say nothing more than needed anyway.
        let client = redis::Client::open(config.url.expose_secret())
            .map_err(|e| StoreError::Client(format!("{:?}", e.kind())))?;
        let connect_timeout = config.timeout.max(CONNECT_TIMEOUT);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| StoreError::Client(format!("{:?}", e.kind())))?;
        Ok(Arc::new(Self {
            client,
            conn,
            timeout: config.timeout,
            connect_timeout,
            health: StoreHealth::new(),
            revocations: Revocations::new(identity_ttl, config.revocations_max),
            keys: KeyRing::new(session_secret, previous_secret),
            outage_cache_ttl: config.outage_cache_ttl,
        }))
    }

    /// A handle on the shared connection (cheap: the connection is multiplexed).
    pub(super) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs one Redis call within the timeout. `None` when Redis is known to be down (no
    /// waiting), when the call fails or times out: the caller then keeps its local guarantee.
    pub(super) async fn run<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Option<T> {
        self.run_within(self.timeout, op, call).await
    }

    /// [`Self::run`] with another limit (connecting).
    pub(super) async fn run_within<T>(
        &self,
        limit: Duration,
        op: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Option<T> {
        if !self.health.should_try() {
            return None;
        }
        let span = crate::telemetry::spans::redis(op);
        let outcome = tokio::time::timeout(limit, call);
        let outcome =
            crate::telemetry::spans::in_call_span(span, outcome, |o| !matches!(o, Ok(Ok(_)))).await;
        match outcome {
            Ok(Ok(value)) => {
                self.health.command_ok();
                Some(value)
            }
            Ok(Err(e)) => {
                self.failed(op, &describe(&e));
                None
            }
            Err(_) => {
                self.failed(op, "timed out");
                None
            }
        }
    }
}

impl RedisStore {
    /// A failed command is evidence that revocations may not be heard either (the
    /// subscription may not have noticed yet): the replica is deaf until it has caught up.
    fn failed(&self, op: &'static str, error: &str) {
        self.health.command_failed(op, error);
        self.set_hearing(false);
    }

    /// Records whether this replica hears revocations, telling the validator on a change.
    pub(super) fn set_hearing(&self, hearing: bool) {
        if self.health.set_hearing(hearing) {
            self.revocations.hearing_changed(hearing);
        }
    }
}

/// A Redis error in words that hold no key, value or URL.
pub(super) fn describe(e: &redis::RedisError) -> String {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        "connection failed".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        format!("{:?}", e.kind())
    }
}
