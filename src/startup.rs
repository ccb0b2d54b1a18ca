//! Building the application and running the server.
//!
//! Layer order matters: sensitive headers are marked before the trace layer sees them, every
//! request gets an id before it is logged, and a panic anywhere still becomes a response. The
//! body limit and timeout apply to sfgate's own routes, not to proxied requests.

use crate::auth::miss_budget;
use crate::config::Config;
use crate::error;
use crate::error::Negotiate;
use crate::middleware::catch_panic::{CatchPanic, CatchPanicLayer};
use crate::middleware::header_limit::{HeaderLimit, HeaderLimitLayer};
use crate::middleware::observe::{Observe, ObserveLayer};
use crate::middleware::security_headers::{self, SecurityHeaders, SecurityHeadersLayer};
use crate::middleware::sensitive::{Sensitive, SensitiveLayer};
use crate::proxy;
use crate::routes;
use crate::server::{AfterDrain, ConnectionLimits, FastPath, Listeners, Served};
use crate::state::{AppState, StateError};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::{Layer, ServiceBuilder};
use tower_http::timeout::TimeoutLayer;

/// sfgate's own routes take small forms and JSON; nothing legitimate comes near this.
const MAX_OWN_BODY: usize = 64 * 1024;

/// The whole application, ready to serve.
///
/// The body limit and request timeout wrap sfgate's own routes only: in gateway mode the
/// proxy (the fallback) streams bodies of any size and applies `UPSTREAM_TIMEOUT` itself.
pub fn app(state: AppState) -> Router {
    app_with_routes(state, Router::new())
}

/// The whole application with routes of your own added to sfgate's (see
/// `examples/protected_route.rs`): they get the same middleware, limits and error pages, and
/// take precedence over gateway mode's proxy. Protect them with
/// `route_layer(from_fn_with_state(state, require_identity))`.
pub fn app_with_routes(state: AppState, extra: Router<AppState>) -> Router {
    built(state, extra).0
}

/// The application as the serving threads take it: the router, and (unless
/// `HTTP1_FAST_PATH` is off or traces are exported) the HTTP/1.1 fast path in front of it,
/// which answers bodiless `GET` and `HEAD` requests without hyper's server: sfgate's own
/// routes through the router, and in gateway mode the app's paths through the same middleware
/// and proxy without the router (`crate::server::fast_path`). Only for the application alone:
/// the fast path is handed this router, not one with routes of your own ([`app_with_routes`]),
/// which keep to [`serve`].
pub fn served(state: AppState) -> Served {
    let fast = state.config.server.http1_fast_path
        && crate::telemetry::spans::request_tracing(&state.config).is_none();
    let (router, gateway) = built(state.clone(), Router::new());
    if !fast {
        return Served::from(router);
    }
    let fast_path = match gateway {
        Some(gateway) => {
            let proxy = Middleware::new(&state).layer(proxy::service(gateway.clone()));
            let is_own = Arc::new(move |path: &str| (gateway.is_own)(path));
            FastPath::with_gateway(
                router.clone(),
                is_own,
                tower::util::BoxCloneService::new(proxy),
            )
        }
        None => FastPath::new(router.clone()),
    };
    Served::with_fast_path(router, fast_path)
}

/// The router, and the gateway it proxies for in gateway mode.
fn built(state: AppState, extra: Router<AppState>) -> (Router, Option<Arc<proxy::Gateway>>) {
    let (own, own_paths) = routes::router(state.clone());
    let own = own
        .merge(extra.with_state(state.clone()))
        .layer(DefaultBodyLimit::max(MAX_OWN_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            state.config.server.request_timeout,
        ));
    let (router, gateway) = match &state.upstream {
        // Set after the layers above, so proxied requests get neither of them.
        Some(upstream) => {
            let gateway = Arc::new(proxy::Gateway {
                auth: state.auth.clone(),
                config: state.config.clone(),
                upstream: upstream.clone(),
                is_own: Box::new(move |path| own_paths.contains(path)),
            });
            (proxy::behind(own, gateway.clone()), Some(gateway))
        }
        // Unknown paths get sfgate's JSON 404 (an HTML page for browsers).
        None => (own.fallback(|| async { error::not_found() }), None),
    };
    (with_middleware(router, &state), gateway)
}

/// The middleware every request passes, outermost first, applied with one `Router::layer`:
/// each `Router::layer` call puts a boxed route around every endpoint, and axum clones the
/// boxed service below each of them (and `from_fn` its inner service) on every request, so
/// one stack instead of one call per layer saves those clones on every request. sfgate's own
/// layers are plain tower layers rather than `from_fn`, which boxes its inner service and its
/// future on every request (measured in docs/benchmark.md).
fn with_middleware(router: Router, state: &AppState) -> Router {
    router.layer(
        ServiceBuilder::new()
            // OpenTelemetry's request span, only while traces are exported (src/telemetry/):
            // outside the log span, which then names the trace id.
            .option_layer(
                crate::telemetry::spans::request_tracing(&state.config)
                    .map(|t| from_fn_with_state(t, crate::telemetry::spans::trace_request)),
            )
            .layer(Middleware::new(state)),
    )
}

/// sfgate's own middleware, outermost first: one layer, so that the router and the HTTP/1.1
/// fast path wrap their requests in exactly the same stack.
#[derive(Clone)]
struct Middleware {
    pages: Arc<security_headers::PagePolicy>,
    paths: &'static crate::prefix_paths::PrefixPaths,
    auth: crate::auth::Authenticator,
}

/// [`Middleware`] around a service.
type Layered<S> =
    Sensitive<Observe<CatchPanic<HeaderLimit<Negotiate<SecurityHeaders<miss_budget::Scope<S>>>>>>>;

impl Middleware {
    fn new(state: &AppState) -> Self {
        Self {
            pages: security_headers::policy(&state.config),
            paths: state.config.paths(),
            auth: state.auth.clone(),
        }
    }
}

impl<S> Layer<S> for Middleware {
    type Service = Layered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServiceBuilder::new()
            // Credentials never printed, nor compressed into HTTP/2's shared tables.
            .layer(SensitiveLayer)
            // The request id, the log span and line, the metrics: outside the panic handler,
            // so panics are logged and counted too.
            .layer(ObserveLayer)
            .layer(CatchPanicLayer)
            .layer(HeaderLimitLayer)
            .layer(error::NegotiateLayer(self.paths))
            // Inside `negotiate`, so an HTML error page keeps them; skips proxied answers.
            .layer(SecurityHeadersLayer(self.pages.clone()))
            // Every request runs with its client known to the Salesforce validation budget.
            .layer(miss_budget::ScopeLayer(self.auth.clone()))
            .service(inner)
    }
}

/// Serves until `shutdown` completes, then finishes in-flight requests, with the default
/// connection limits.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, app, shutdown, ConnectionLimits::default()).await
}

/// [`serve`] with the connection limits from the configuration
/// ([`ConnectionLimits::from_config`]).
pub async fn serve_with_limits(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    crate::server::serve(listener, app, shutdown, limits).await
}

/// Serves the application for `state` on `listeners`, one thread per core
/// ([`crate::server::serve_threads`]), with the connection limits its configuration sets,
/// until `shutdown` completes; then, with in-flight requests finished on every thread, closes
/// the upgraded connections (WebSockets) gateway mode holds open.
///
/// Whatever `AppState::new` spawned (the Redis subscriber and other background work) lives on
/// the caller's runtime, which must keep running meanwhile.
pub async fn serve_state(
    listeners: Listeners,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let metrics = bind_metrics(&state.config)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    serve_state_with_metrics(listeners, metrics, state, shutdown).await
}

/// The metrics listener (`METRICS_ADDR`), when configured.
pub async fn bind_metrics(config: &Config) -> Result<Option<TcpListener>, StateError> {
    let Some(addr) = config.server.metrics_addr else {
        return Ok(None);
    };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| StateError::MetricsListener { addr, source })
}

/// Serves `/metrics` alone on its own listener, until aborted. Kept off the main port so that
/// in gateway mode every path there is the app's, and metrics are reachable only where the
/// operator binds them (loopback, a private network). It runs on the caller's runtime, beside
/// the background tasks, not on the serving threads.
async fn serve_metrics(listener: TcpListener, state: AppState) {
    if let Err(e) = axum::serve(listener, routes::metrics_router(state)).await {
        tracing::error!(error = %e, "metrics listener failed");
    }
}

/// [`serve_state`] with the metrics listener already bound (or none).
async fn serve_state_with_metrics(
    listeners: Listeners,
    metrics: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let metrics = metrics.map(|l| tokio::spawn(serve_metrics(l, state.clone())));
    let after_drain = state.upstream.as_ref().map(|upstream| {
        let tunnels = upstream.tunnels().clone();
        Arc::new(move || {
            let tunnels = tunnels.clone();
            Box::pin(async move { tunnels.close_all().await })
                as Pin<Box<dyn Future<Output = ()> + Send>>
        }) as AfterDrain
    });
    let limits = ConnectionLimits::from_config(&state.config);
    let result =
        crate::server::serve_threads(listeners, served(state), limits, shutdown, after_drain).await;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    result
}

/// A running gateway, for tests and demo mode.
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// Where `/metrics` listens when `METRICS_ADDR` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningGateway {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, waits for in-flight requests, and returns.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap_or(Ok(()))
    }
}

/// Starts the gateway on an already-bound listener (bind port 0 to get a free port), served by
/// `SERVER_THREADS` threads of its own: the first accepts and hands connections to the others
/// (binding one listener per thread is for [`Listeners::bind`]). Must be called inside a tokio
/// runtime, which keeps the gateway's background tasks.
pub async fn spawn(config: Config, listener: TcpListener) -> Result<RunningGateway, StateError> {
    let state = AppState::new(config)?;
    let addr = listener.local_addr().map_err(|_| StateError::Bind)?;
    let metrics = bind_metrics(&state.config).await?;
    let metrics_addr = metrics.as_ref().and_then(|l| l.local_addr().ok());
    let listener = listener.into_std().map_err(|_| StateError::Bind)?;
    let listeners = Listeners::from_listener(listener, state.config.server.threads);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_state_with_metrics(
        listeners,
        metrics,
        state.clone(),
        async {
            let _ = rx.await;
        },
    ));
    Ok(RunningGateway {
        addr,
        metrics_addr,
        state,
        shutdown: Some(tx),
        task,
    })
}

pub use crate::server::shutdown_signal;
