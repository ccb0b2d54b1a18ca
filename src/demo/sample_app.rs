//! The demo's sample app: a tiny upstream that shows which identity headers sfgate's gateway
//! mode sent it, as a page for browsers and JSON for curl. It trusts those headers the way a
//! real app behind sfgate would, and shows whether any Salesforce credential reached it (none
//! should, unless `PASS_ACCESS_TOKEN` is on).

use crate::prefix_paths::PrefixPaths;
use askama::Template;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Header prefixes worth showing: the identity and the forwarding facts sfgate adds.
const SHOWN_PREFIXES: &[&str] = &["x-salesforce-", "x-forwarded-"];
/// Headers that would carry a Salesforce credential to the app.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "bearer", "instanceurl", "x-instance-url"];

/// What the app received, in the order it shows it.
#[derive(Debug, serde::Serialize)]
struct Received {
    app: &'static str,
    method: String,
    path: String,
    /// Who sfgate says is logged in (`X-Forwarded-Preferred-Username`, else the user id).
    user: Option<String>,
    /// Identity and forwarding headers, by name.
    headers: BTreeMap<String, String>,
    /// Names of credential headers that reached the app (empty unless `PASS_ACCESS_TOKEN`).
    credentials_received: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "sample_app.html")]
struct Page<'a> {
    received: &'a Received,
    /// sfgate's paths in front of the app (its `PROXY_PREFIX`), for the page's links.
    paths: &'static PrefixPaths,
}

fn received(request: &Request) -> Received {
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .filter(|(name, _)| SHOWN_PREFIXES.iter().any(|p| name.as_str().starts_with(p)))
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let user = ["x-forwarded-preferred-username", "x-forwarded-user"]
        .iter()
        .find_map(|name| headers.get(*name).cloned());
    Received {
        app: "sfgate sample app",
        user,
        method: request.method().to_string(),
        path: request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
        headers,
        credentials_received: CREDENTIAL_HEADERS
            .iter()
            .copied()
            .filter(|name| request.headers().contains_key(*name))
            .collect(),
    }
}

async fn answer(paths: &'static PrefixPaths, request: Request) -> Response {
    let received = received(&request);
    if crate::error::wants_html(request.headers()) {
        return match (Page {
            received: &received,
            paths,
        })
        .render()
        {
            Ok(html) => Html(html).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
    }
    let mut response = axum::Json(&received).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// The sample app, answering every path, behind sfgate at its default prefix.
pub fn router() -> Router {
    router_behind(PrefixPaths::default_paths())
}

/// The sample app behind an sfgate whose own paths are `paths` (its links to sign out and
/// to `userinfo` follow them).
pub fn router_behind(paths: &'static PrefixPaths) -> Router {
    Router::new().fallback(move |request: Request| answer(paths, request))
}

/// A running sample app on loopback.
pub struct SampleApp {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl SampleApp {
    /// Binds a free port on 127.0.0.1 and serves in the background.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_behind(PrefixPaths::default_paths()).await
    }

    /// [`Self::start`] for an sfgate with another `PROXY_PREFIX`.
    pub async fn start_behind(paths: &'static PrefixPaths) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router_behind(paths))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self { addr, stop, task })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
