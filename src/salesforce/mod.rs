//! The Salesforce side: talking to Salesforce's OAuth and identity endpoints. (The emulator
//! that stands in for Salesforce in demo mode and in every test is a crate of its own,
//! crates/sfgate-emulator.)

pub mod canvas;
mod error;
pub mod introspect;
pub mod jwks;
pub mod jwt;
pub mod oauth;
pub mod rs256;
mod signature;
pub mod userinfo;

pub use error::{transient_failure, SalesforceError};
pub use oauth::{SalesforceOAuth, TokenSet};
pub use signature::verify_signature;
pub use userinfo::IdentityClient;

use crate::domain::Identity;
use std::time::Duration;

/// The one HTTP client for calls to Salesforce. Redirects are never followed: a token or code
/// must go only to the host sfgate chose, never to wherever an answer points (the `oauth2`
/// crate's docs ask for this to prevent SSRF). Timeouts keep a slow Salesforce from holding
/// requests open.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    crate::crypto::install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("sfgate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Maps a transport failure inside the `oauth2` crate to sfgate's error.
fn http_client_error(e: &oauth2::HttpClientError<reqwest::Error>) -> SalesforceError {
    match e {
        oauth2::HttpClientError::Reqwest(inner) => SalesforceError::from_reqwest(inner),
        _ => SalesforceError::Unreachable,
    }
}

/// Records how long a call to Salesforce took (`sfgate_salesforce_call_seconds{endpoint}`),
/// failures included: a slow failing Salesforce is exactly what the histogram is for. While
/// traces are exported the call is also a span of its own, marked failed when it failed.
pub(crate) async fn timed<T: CallOutcome>(
    endpoint: &'static str,
    call: impl std::future::Future<Output = T>,
) -> T {
    let started = std::time::Instant::now();
    let span = crate::telemetry::spans::salesforce(endpoint);
    let result = crate::telemetry::spans::in_call_span(span, call, T::failed).await;
    metrics::histogram!("sfgate_salesforce_call_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Whether a call to Salesforce failed, for its trace span: an error, or an answer that is
/// one (an HTTP error status read by the caller itself).
pub(crate) trait CallOutcome {
    fn failed(&self) -> bool;
}

impl<T: CallAnswer, E> CallOutcome for Result<T, E> {
    fn failed(&self) -> bool {
        self.as_ref().map_or(true, CallAnswer::failed)
    }
}

/// A successful call's value; only a raw HTTP response can still be a failure.
pub(crate) trait CallAnswer {
    fn failed(&self) -> bool {
        false
    }
}

impl CallAnswer for reqwest::Response {
    fn failed(&self) -> bool {
        self.status().is_client_error() || self.status().is_server_error()
    }
}
impl CallAnswer for Identity {}
impl CallAnswer for Option<introspect::Introspection> {}
impl CallAnswer for serde_json::Value {}
impl<F: oauth2::ExtraTokenFields> CallAnswer
    for oauth2::StandardTokenResponse<F, oauth2::basic::BasicTokenType>
{
}
