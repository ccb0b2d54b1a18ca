//! Sending one request to the upstream app and bringing its answer back, both bodies streamed.
//!
//! Nothing here buffers a body: the request body goes out as the client sends it and the
//! response body comes back as the upstream sends it, so a 100 MB upload or download costs a
//! few chunks of memory. `UPSTREAM_TIMEOUT` bounds waiting, not transferring (like Go's
//! `ResponseHeaderTimeout`, which oauth2-proxy uses): the clock restarts whenever a chunk of the
//! request body goes out, so it measures how long the upstream takes to answer once the request
//! is sent; a long download is never cut off.

use super::error::ProxyError;
use super::headers;
use crate::auth::Authenticated;
use crate::config::Config;
use axum::body::{Body, HttpBody as _};
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use futures_util::StreamExt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use url::Url;

/// The upstream app and the client that talks to it.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base: Url,
    timeout: Duration,
}

impl Upstream {
    /// A client of its own, apart from the Salesforce one: no redirects followed (the browser
    /// must see the upstream's redirects), no overall timeout (it would cut long downloads),
    /// and a connect timeout so a dead upstream fails fast with 502.
    pub fn new(base: Url, timeout: Duration) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            client,
            base,
            timeout,
        })
    }

    /// `UPSTREAM_URL` + the request's path and query. A path the URL parser would change is
    /// refused, so the upstream gets exactly the path the skip-auth rules saw (`/public/../admin`
    /// must not reach `/admin` past a rule for `^/public/`).
    pub fn target(&self, path: &str, query: Option<&str>) -> Result<Url, ProxyError> {
        let wanted = format!("{}{path}", self.base.path().trim_end_matches('/'));
        let mut url = self.base.clone();
        url.set_path(&wanted);
        url.set_query(query);
        if url.path() == wanted {
            Ok(url)
        } else {
            Err(ProxyError::UnnormalizedPath)
        }
    }

    /// Forwards the request and returns the upstream's response, hop-by-hop headers removed.
    pub async fn forward(
        &self,
        config: &Config,
        parts: Parts,
        body: Body,
        auth: Option<&Authenticated>,
    ) -> Result<Response, ProxyError> {
        if is_upgrade(&parts.headers) {
            return Err(ProxyError::Upgrade);
        }
        let url = self.target(parts.uri.path(), parts.uri.query())?;
        let headers = upstream_headers(config, &parts, auth);
        let progress = Arc::new(Notify::new());
        let mut request = self.client.request(parts.method, url).headers(headers);
        // A bodiless request stays bodiless (no `Transfer-Encoding: chunked` on a GET).
        if body.size_hint().exact() != Some(0) {
            let notify = progress.clone();
            let stream = body
                .into_data_stream()
                .inspect(move |_| notify.notify_one());
            request = request.body(reqwest::Body::wrap_stream(stream));
        }
        let response = until_idle(request.send(), &progress, self.timeout).await?;
        Ok(into_response(response))
    }
}

/// Waits for the upstream's response headers, failing after `idle` without progress.
async fn until_idle(
    send: impl Future<Output = reqwest::Result<reqwest::Response>>,
    progress: &Notify,
    idle: Duration,
) -> Result<reqwest::Response, ProxyError> {
    tokio::pin!(send);
    loop {
        tokio::select! {
            result = &mut send => return result.map_err(classify),
            _ = progress.notified() => {}
            _ = tokio::time::sleep(idle) => return Err(ProxyError::Timeout),
        }
    }
}

fn classify(e: reqwest::Error) -> ProxyError {
    // Without the URL: its query string may carry codes or tokens, which are never logged.
    let e = e.without_url();
    tracing::warn!(error = %e, "upstream request failed");
    if e.is_timeout() && !e.is_connect() {
        ProxyError::Timeout
    } else {
        ProxyError::Unreachable
    }
}

/// A WebSocket (or other protocol) upgrade: `Connection: upgrade` with an `Upgrade` header.
fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// The request headers the upstream gets: identity headers from sfgate only, credentials
/// removed (or the token passed on when configured), forwarding headers set.
fn upstream_headers(config: &Config, parts: &Parts, auth: Option<&Authenticated>) -> HeaderMap {
    let mut out = parts.headers.clone();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    headers::remove_hop_by_hop(&mut out);
    headers::remove_by_name_rule(&mut out, config.underscore_headers);
    headers::remove_credentials(&mut out);
    // The upstream's own host name goes in `Host`; the client's is in `X-Forwarded-Host`.
    out.remove(header::HOST);
    // sfgate already answered any `100-continue` to the client by reading the body.
    out.remove(header::EXPECT);
    headers::set_forwarded(
        &mut out,
        &headers::Forwarded {
            client,
            host,
            trust_proxy: config.trust_proxy,
        },
    );
    if let Some(auth) = auth {
        out.extend(headers::identity_headers(&auth.identity));
        if let Some(assertion) = parts.extensions.get::<crate::policy::SignedAssertion>() {
            out.insert(crate::policy::X_SFGATE_ASSERTION, assertion.0.clone());
        }
        if config.pass_access_token {
            headers::insert_access_token(&mut out, &auth.token, &auth.instance);
        }
    }
    out
}

fn into_response(mut upstream: reqwest::Response) -> Response {
    let status = upstream.status();
    let mut headers = std::mem::take(upstream.headers_mut());
    headers::remove_hop_by_hop(&mut headers);
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
