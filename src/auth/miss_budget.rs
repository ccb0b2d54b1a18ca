//! A per-client budget of Salesforce validation calls.
//!
//! A token sfgate has not seen costs one `userinfo` call, and a client can invent tokens
//! without end: every distinct bad token would spend the org's API budget (and Salesforce's
//! own rate limits, which then refuse real users). **Rule:** each client address may cause at
//! most `VALIDATION_MISSES_PER_MINUTE` validation calls (cache misses) per minute; beyond it
//! the request is answered `429` with `Retry-After` and `{"error":"rate_limited"}` without
//! calling Salesforce, and `sfgate_validation_budget_exceeded_total` counts it. Cache hits
//! (known good or known bad tokens) cost nothing, so a working client never notices. With the
//! cache switched off (`IDENTITY_CACHE_TTL=0`) there are no misses and no budget: the operator
//! chose a Salesforce call per request.
//!
//! The client is identified as for the login rate limits ([`crate::rate_limit`]): the peer
//! address, or the rightmost `X-Forwarded-For` entry from a `TRUST_PROXY` peer, IPv6 per /64;
//! the table of clients is swept and bounded the same way. The validator is reached from
//! several places (the identity layer, the proxy, forward auth, session renewal), so the
//! client is not threaded through each of them: [`scope`] (a middleware around the whole app)
//! runs each request with its client in a task-local, and [`MissBudget::charge`] reads it at
//! the one place a Salesforce call is about to be made. Work outside a request (none today)
//! has no client and is not limited.

use super::AuthError;
use crate::config::{Config, RateLimit};
use crate::rate_limit::{LoginRateLimiter, MAX_CLIENTS};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

tokio::task_local! {
    static CLIENT: IpAddr;
}

/// The key the budget is kept under in the shared limiter.
const ROUTE: &str = "salesforce-validation";

pub struct MissBudget {
    limiter: Option<LoginRateLimiter>,
}

impl MissBudget {
    pub fn new(config: &Config) -> Self {
        let per_minute = config.validation_misses_per_minute;
        let limit = RateLimit {
            burst: per_minute,
            per_minute,
        };
        Self {
            limiter: Some(LoginRateLimiter::with_limits(
                limit,
                config.trust_proxy,
                MAX_CLIENTS,
            )),
        }
    }

    /// No budget at all (validators built outside a gateway).
    pub fn unlimited() -> Self {
        Self { limiter: None }
    }

    /// Spends one validation call for the current request's client, or refuses.
    pub fn charge(&self) -> Result<(), AuthError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let Ok(client) = CLIENT.try_with(|c| *c) else {
            return Ok(());
        };
        limiter.check(ROUTE, client).map_err(|wait| {
            metrics::counter!("sfgate_validation_budget_exceeded_total").increment(1);
            tracing::warn!(client = %client, "Salesforce validation budget spent; refusing");
            AuthError::RateLimited(round_up(wait))
        })
    }

    /// The client a request is counted against.
    fn client(&self, request: &Request) -> Option<IpAddr> {
        let limiter = self.limiter.as_ref()?;
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Some(limiter.client_key(request.headers(), peer))
    }
}

/// Whole seconds, rounded up and at least one: a client told to wait 0 s comes straight back.
fn round_up(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// Middleware around the whole app: runs the request with its client known to [`charge`].
///
/// [`charge`]: MissBudget::charge
pub async fn scope(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.validator.miss_budget().client(&request) {
        Some(client) => CLIENT.scope(client, next.run(request)).await,
        None => next.run(request).await,
    }
}
