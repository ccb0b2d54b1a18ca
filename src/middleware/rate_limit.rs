//! Rate limits on the login routes, per client address and per route.
//!
//! The routes that start logins or spend codes, passwords and refresh tokens are where brute
//! force and credential stuffing land, and each request becomes a call to Salesforce (whose
//! own limit, 3 600 logins per user per hour, would then lock out the real user). Each limited
//! route has its own budget per client: `RATE_LIMIT_BURST` requests at once, refilled at
//! `RATE_LIMIT_PER_MINUTE`. A refused request gets 429 with `Retry-After`.
//!
//! The client is the socket's peer address. Behind a proxy that is the proxy, so with
//! `TRUST_PROXY=true` the **rightmost** `X-Forwarded-For` entry is used instead: Heroku's
//! router (like most proxies) appends the address it saw to whatever the client sent, so the
//! rightmost entry is the one a client cannot forge; entries to its left are client-supplied.
//! Without `TRUST_PROXY` the header is ignored, or anyone could pick a fresh address per
//! request. IPv6 clients are keyed by their /64, since one host commonly holds the whole /64.
//!
//! Memory stays bounded: the limiter (governor's keyed GCRA) forgets clients whose budget has
//! refilled, swept every [`SWEEP_EVERY`]; if more than [`MAX_CLIENTS`] are still tracked after
//! a sweep (a flood from very many addresses), the table is started afresh.

use crate::config::{Config, RateLimit};
use crate::error::ErrorResponse;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often stale clients are forgotten.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Clients tracked at most between sweeps before the table is reset.
pub const MAX_CLIENTS: usize = 200_000;

type Key = (Arc<str>, IpAddr);

/// The limiter shared by the limited routes of one gateway.
pub struct LoginRateLimiter {
    quota: Quota,
    trust_proxy: bool,
    max_clients: usize,
    limiter: RwLock<Arc<DefaultKeyedRateLimiter<Key>>>,
    last_sweep: Mutex<Instant>,
    clock: DefaultClock,
}

impl LoginRateLimiter {
    pub fn new(config: &Config) -> Self {
        Self::with_limits(
            config.server.rate_limit,
            config.server.trust_proxy,
            MAX_CLIENTS,
        )
    }

    fn with_limits(limit: RateLimit, trust_proxy: bool, max_clients: usize) -> Self {
        let quota = quota(limit);
        Self {
            quota,
            trust_proxy,
            max_clients,
            limiter: RwLock::new(Arc::new(DefaultKeyedRateLimiter::keyed(quota))),
            last_sweep: Mutex::new(Instant::now()),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when `client` has spent its budget on `route`.
    pub fn check(&self, route: &str, client: IpAddr) -> Result<(), Duration> {
        self.sweep_if_due();
        let limiter = match self.limiter.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        limiter
            .check_key(&(Arc::from(route), client))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Clients currently tracked (for tests and the curious).
    pub fn tracked(&self) -> usize {
        match self.limiter.read() {
            Ok(l) => l.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    fn sweep_if_due(&self) {
        {
            let Ok(mut last) = self.last_sweep.try_lock() else {
                return; // another request is sweeping
            };
            if last.elapsed() < SWEEP_EVERY {
                return;
            }
            *last = Instant::now();
        }
        self.sweep();
    }

    /// Forgets clients whose budget has refilled; resets the table if it is still too big.
    fn sweep(&self) {
        let limiter = match self.limiter.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        limiter.retain_recent();
        limiter.shrink_to_fit();
        if limiter.len() > self.max_clients {
            tracing::warn!(
                tracked = limiter.len(),
                "rate limiter tracks too many clients; starting its table afresh"
            );
            let fresh = Arc::new(DefaultKeyedRateLimiter::keyed(self.quota));
            match self.limiter.write() {
                Ok(mut l) => *l = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            }
        }
    }

    /// The address a request is counted against.
    pub fn client_key(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        client_address(headers, peer, self.trust_proxy)
    }
}

/// The client a request is counted against, for every per-client limit: the peer address, or
/// with `TRUST_PROXY` the rightmost `X-Forwarded-For` entry; IPv6 cut to its /64.
pub fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>, trust_proxy: bool) -> IpAddr {
    let forwarded = trust_proxy
        .then(|| rightmost_forwarded_for(headers))
        .flatten();
    let ip = forwarded
        .or(peer.map(|p| p.ip()))
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    normalise(ip)
}

fn quota(limit: RateLimit) -> Quota {
    // Config refuses zeros; `MIN` keeps this total anyway.
    let per_minute = NonZeroU32::new(limit.per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

/// The last address in the last `X-Forwarded-For` header: the one the nearest proxy added.
fn rightmost_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// IPv4-mapped IPv6 becomes IPv4; other IPv6 addresses are cut to their /64.
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Middleware (a `route_layer` on the limited routes).
pub async fn enforce(
    State(limiter): State<Arc<LoginRateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = limiter.client_key(request.headers(), peer);
    match limiter.check(&route, client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            metrics::counter!("sfgate_rate_limited_total", "route" => route).increment(1);
            tracing::warn!(client = %client, "rate limited");
            // Round up: a client told to wait 0 s would come straight back.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ErrorResponse::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from this address; retry in {secs} s"),
            )
            .with_retry_after(Duration::from_secs(secs.max(1)))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_rightmost_forwarded_address_is_the_client() {
        let mut h = HeaderMap::new();
        assert_eq!(rightmost_forwarded_for(&h), None);
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 10.0.0.1,203.0.113.7"),
        );
        assert_eq!(
            rightmost_forwarded_for(&h),
            Some("203.0.113.7".parse().expect("ip"))
        );
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        assert_eq!(
            rightmost_forwarded_for(&h),
            Some("198.51.100.2".parse().expect("ip"))
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(rightmost_forwarded_for(&h), None);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(normalise(a), normalise(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(
            normalise(mapped),
            "192.0.2.1".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn budget_is_per_route_and_per_client() {
        let limit = RateLimit {
            burst: 2,
            per_minute: 1,
        };
        let limiter = LoginRateLimiter::with_limits(limit, false, MAX_CLIENTS);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(limiter.check("/x", a).is_ok());
        assert!(limiter.check("/x", a).is_ok());
        let wait = limiter.check("/x", a).expect_err("limited");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limiter.check("/y", a).is_ok());
        assert!(limiter.check("/x", b).is_ok());
        assert_eq!(limiter.tracked(), 3);
    }

    fn client(i: u32) -> IpAddr {
        IpAddr::from(i.to_be_bytes())
    }

    #[test]
    fn clients_whose_budget_refilled_are_forgotten() {
        // 6 000 a minute: a spent budget of 1 refills in 10 ms.
        let limit = RateLimit {
            burst: 1,
            per_minute: 6_000,
        };
        let limiter = LoginRateLimiter::with_limits(limit, false, MAX_CLIENTS);
        for i in 0..500 {
            assert!(limiter.check("/x", client(i)).is_ok());
        }
        assert_eq!(limiter.tracked(), 500);
        std::thread::sleep(Duration::from_millis(50));
        limiter.sweep();
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn a_flood_of_addresses_cannot_grow_the_table_past_its_cap() {
        let limit = RateLimit {
            burst: 5,
            per_minute: 1,
        };
        let limiter = LoginRateLimiter::with_limits(limit, false, 100);
        for i in 0..1_000 {
            let _ = limiter.check("/x", client(i));
        }
        assert_eq!(limiter.tracked(), 1_000);
        limiter.sweep();
        assert_eq!(limiter.tracked(), 0, "reset past the cap");
        // Below the cap, recent clients are kept and still limited.
        for _ in 0..5 {
            assert!(limiter.check("/x", client(1)).is_ok());
        }
        limiter.sweep();
        assert_eq!(limiter.tracked(), 1);
        assert!(limiter.check("/x", client(1)).is_err());
    }
}
