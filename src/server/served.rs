//! What the serving threads serve: the application's router, and (unless it is off) the
//! HTTP/1.1 fast path in front of it.

use super::fast_path::FastPath;
use axum::Router;

/// The router every connection can be served by, and the fast path that takes a connection
/// first when there is one ([`super::fast_path`]).
#[derive(Clone)]
pub struct Served {
    pub(super) router: Router,
    pub(super) fast_path: Option<FastPath>,
}

impl Served {
    /// `router`, with `fast_path` taking every connection first.
    pub fn with_fast_path(router: Router, fast_path: FastPath) -> Self {
        Self {
            router,
            fast_path: Some(fast_path),
        }
    }
}

impl From<Router> for Served {
    /// The router alone: every connection goes to the general HTTP server.
    fn from(router: Router) -> Self {
        Self {
            router,
            fast_path: None,
        }
    }
}
