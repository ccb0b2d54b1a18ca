//! The layers every request passes, one concern per file; `startup.rs` stacks them.

pub mod catch_panic;
pub mod header_limit;
pub mod observe;
pub mod rate_limit;
pub mod request_id;
pub mod request_metrics;
pub mod security_headers;
pub mod sensitive;

/// Response extension on every answer the gateway-mode proxy gave for an upstream path
/// (forwarded or refused): security headers leave it alone (the upstream application owns its
/// headers), and request metrics label it `proxy` rather than lumping it with 404s. Defined here, beside its readers, so they need not know the proxy.
#[derive(Clone, Copy, Debug)]
pub struct Proxied;
