//! The HTTP client that posts spans to the collector.
//!
//! opentelemetry-otlp's own reqwest clients are built on reqwest 0.13, while sfgate (and the
//! `oauth2` crate) use 0.12; a second reqwest would mean a second copy of its whole stack.
//! The exporter runs on the batch processor's own thread, outside any async runtime, so the
//! client is reqwest 0.12's blocking one (the same rustls stack as every other client here),
//! created on that thread at its first export: a blocking client must not be created or
//! dropped inside the server's runtime.

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

/// A collector's answer is a small status message; anything larger is refused.
const MAX_RESPONSE: u64 = 1024 * 1024;

#[derive(Debug)]
pub(super) struct BlockingExportClient {
    timeout: Duration,
    client: OnceLock<reqwest::blocking::Client>,
}

impl BlockingExportClient {
    pub(super) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&reqwest::blocking::Client, HttpError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        crate::crypto::install_tls_provider();
        // Redirects are not followed: the headers may carry the collector's API key.
        let built = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .user_agent(concat!("sfgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(self.client.get_or_init(|| built))
    }
}

#[async_trait::async_trait]
impl HttpClient for BlockingExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::blocking::Request::try_from(request)?;
        let mut response = self.client()?.execute(request)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        response.take(MAX_RESPONSE).read_to_end(&mut body)?;
        let mut answer = Response::builder().status(status).body(Bytes::from(body))?;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}
