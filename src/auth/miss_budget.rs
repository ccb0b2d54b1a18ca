//! A per-client budget of Salesforce validation calls.
//!
//! A token sfgate has not seen costs one `userinfo` call, and a client can invent tokens
//! without end: every distinct bad token would spend the org's API budget (and Salesforce's
//! own rate limits, which then refuse real users). **Rule:** each client address may cause at
//! most `VALIDATION_MISSES_PER_MINUTE` validation calls (cache misses) per minute that do not
//! confirm a valid token; beyond it the request is answered `429` with `Retry-After` and
//! `{"error":"rate_limited"}` without calling Salesforce, and
//! `sfgate_validation_budget_exceeded_total` counts it.
//!
//! Each miss reserves one unit before the call (so a burst of concurrent misses cannot all
//! get through), and a call that confirms a valid token gives its unit back: many real users
//! behind one address (an office NAT) each cost a miss per `IDENTITY_CACHE_TTL` and never
//! exhaust the budget, while invented tokens do. Cache hits (known good or known bad tokens)
//! cost nothing, and so do JWT access tokens checked locally against a cached key (the budget
//! protects Salesforce, and they call nothing; the validator decides, per miss). With the
//! cache switched off (`IDENTITY_CACHE_TTL=0`) there are no misses and no budget: the operator
//! chose a Salesforce call per request.
//!
//! The client is identified as for the login rate limits ([`crate::middleware::rate_limit`]): the peer
//! address, or the rightmost `X-Forwarded-For` entry from a `TRUST_PROXY` peer, IPv6 per /64.
//! Budgets are counted in fixed one-minute windows, in a table bounded to
//! [`MAX_CLIENTS`] clients (the least recently seen are forgotten first). The validator is reached from
//! several places (the identity layer, the proxy, forward auth, session renewal), so the
//! client is not threaded through each of them: [`scope`] (a middleware around the whole app)
//! runs each request with its client in a task-local, and [`MissBudget::charge`] reads it at
//! the one place a Salesforce call is about to be made. Work outside a request (none today)
//! has no client and is not limited.

use super::AuthError;
use crate::config::Config;
use crate::middleware::rate_limit::{client_address, MAX_CLIENTS};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use futures_util::future::Either;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

tokio::task_local! {
    static CLIENT: IpAddr;
}

/// The budget's period.
pub const WINDOW: Duration = Duration::from_secs(60);

/// One client's spending in the current window.
struct Window {
    started: Instant,
    spent: u32,
}

pub struct MissBudget {
    per_window: u32,
    trust_proxy: bool,
    /// `None`: no budget (validators built outside a gateway).
    clients: Option<moka::sync::Cache<IpAddr, Arc<Mutex<Window>>>>,
}

/// One reserved validation call; [`Reservation::give_back`] returns it.
pub struct Reservation(Option<(Arc<Mutex<Window>>, Instant)>);

impl MissBudget {
    pub fn new(config: &Config) -> Self {
        Self {
            per_window: config.cache.misses_per_minute,
            trust_proxy: config.server.trust_proxy,
            clients: Some(
                moka::sync::Cache::builder()
                    .max_capacity(MAX_CLIENTS as u64)
                    .time_to_idle(WINDOW)
                    .build(),
            ),
        }
    }

    /// No budget at all.
    pub fn unlimited() -> Self {
        Self {
            per_window: u32::MAX,
            trust_proxy: false,
            clients: None,
        }
    }

    /// Reserves one validation call for the current request's client, or refuses.
    pub fn reserve(&self) -> Result<Reservation, AuthError> {
        let Some(clients) = &self.clients else {
            return Ok(Reservation(None));
        };
        let Ok(client) = CLIENT.try_with(|c| *c) else {
            return Ok(Reservation(None));
        };
        let window = clients.get_with(client, || {
            Arc::new(Mutex::new(Window {
                started: Instant::now(),
                spent: 0,
            }))
        });
        let mut w = match window.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        if w.started.elapsed() >= WINDOW {
            *w = Window {
                started: Instant::now(),
                spent: 0,
            };
        }
        if w.spent >= self.per_window {
            let wait = WINDOW.saturating_sub(w.started.elapsed());
            metrics::counter!("sfgate_validation_budget_exceeded_total").increment(1);
            tracing::warn!(client = %client, "Salesforce validation budget spent; refusing");
            return Err(AuthError::RateLimited(round_up(wait)));
        }
        w.spent += 1;
        let started = w.started;
        drop(w);
        Ok(Reservation(Some((window, started))))
    }

    /// The client a request is counted against.
    fn client(&self, request: &Request) -> Option<IpAddr> {
        self.clients.as_ref()?;
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Some(client_address(request.headers(), peer, self.trust_proxy))
    }
}

impl Reservation {
    /// The call confirmed a valid token: it does not count against the client.
    pub fn give_back(self) {
        let Some((window, started)) = self.0 else {
            return;
        };
        let mut w = match window.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        if w.started == started {
            w.spent = w.spent.saturating_sub(1);
        }
    }
}

/// Whole seconds, rounded up and at least one: a client told to wait 0 s comes straight back.
fn round_up(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// Runs every request with its client known to [`MissBudget::reserve`]. A layer of its own
/// rather than `from_fn`, which would box its inner service and its future on every request.
#[derive(Clone)]
pub struct ScopeLayer(pub super::Authenticator);

impl<S> Layer<S> for ScopeLayer {
    type Service = Scope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Scope {
            inner,
            auth: self.0.clone(),
        }
    }
}

/// [`ScopeLayer`]'s service: the inner future runs inside the client's task-local scope.
#[derive(Clone)]
pub struct Scope<S> {
    inner: S,
    auth: super::Authenticator,
}

impl<S> Service<Request> for Scope<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<TaskLocalFuture<IpAddr, S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.auth.validator().miss_budget().client(&request) {
            Some(client) => Either::Left(CLIENT.scope(client, self.inner.call(request))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(per_window: u32) -> MissBudget {
        MissBudget {
            per_window,
            trust_proxy: false,
            clients: Some(moka::sync::Cache::builder().max_capacity(100).build()),
        }
    }

    #[tokio::test]
    async fn reservations_count_until_given_back_per_client() {
        let b = budget(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let c: IpAddr = "192.0.2.2".parse().expect("ip");
        CLIENT
            .scope(a, async {
                // Two calls in flight at once use the whole budget...
                let first = b.reserve().expect("first");
                let _second = b.reserve().expect("second");
                assert!(matches!(b.reserve(), Err(AuthError::RateLimited(_))));
                // ...and a call that confirmed a valid token frees its unit.
                first.give_back();
                let _third = b.reserve().expect("third");
                let Err(AuthError::RateLimited(wait)) = b.reserve() else {
                    panic!("spent");
                };
                assert!(wait >= Duration::from_secs(59) && wait <= WINDOW);
            })
            .await;
        CLIENT
            .scope(c, async { assert!(b.reserve().is_ok(), "another client") })
            .await;
        // Outside a request there is no client and no budget.
        assert!(b.reserve().is_ok());
    }
}
