//! What every handler shares: built once at start from the configuration.

use crate::auth::login::{Login, LoginSettings};
use crate::auth::{
    AuthParts, Authenticator, CookieSealer, IdentityValidator, Renewals, TokenChecks,
};
use crate::config::Config;
use crate::proxy::{Upstream, UpstreamError, UpstreamOptions};
use crate::readiness::Readiness;
use crate::salesforce::{self, IdentityClient, SalesforceOAuth};
use crate::store::{SharedStore, StoreError};
use axum::extract::FromRef;
use std::ops::Deref;
use std::sync::Arc;

/// Cheap to clone (one `Arc`), as axum's `State` wants.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    /// Who is calling: policy, validator, cookies, the OAuth client, renewals, readiness.
    pub auth: Authenticator,
    /// Gateway mode's upstream app, when `UPSTREAM_URL` is set.
    pub upstream: Option<Upstream>,
    /// The login: start, callback, grants, refresh, Canvas, logout, and its replay guard.
    pub login: Login,
    /// Signs `X-Sfgate-Assertion` when `ASSERTION_KEY` is set.
    pub assertion: Option<Arc<crate::headers::AssertionSigner>>,
    /// What replicas share (`REDIS_URL`); `Local` keeps every guarantee in-process.
    pub store: SharedStore,
    /// The process's metrics recorder, served at `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

/// Handlers, the identity layer, forward auth and the proxy take `State<Authenticator>`.
impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The login routes take `State<Login>`.
impl FromRef<AppState> for Login {
    fn from_ref(state: &AppState) -> Self {
        state.login.clone()
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Why the application could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot build Salesforce endpoint URLs from SF_LOGIN_URL: {0}")]
    Url(#[from] url::ParseError),
    #[error("cannot build the upstream client: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("the listener has no local address")]
    Bind,
    #[error("cannot listen on METRICS_ADDR {addr}: {source}")]
    MetricsListener {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, StateError> {
        // Before anything records: handles taken earlier would count into nothing.
        let metrics = crate::telemetry::metrics::install().clone();
        let http = salesforce::http_client(config.salesforce.timeout)?;
        let readiness = Arc::new(Readiness::new(
            config.salesforce.instance_policy.extra_origins(),
        ));
        let oauth = SalesforceOAuth::new(&config.salesforce, http.clone(), readiness.clone())?;
        let store = SharedStore::from_config(&config)?;
        let mut identity_client = IdentityClient::new(http.clone());
        if config.policy.needs_permissions() {
            identity_client =
                identity_client.with_custom_permissions(config.salesforce.instance_policy.clone());
        }
        let assertion = match (&config.assertion.key, &config.assertion.audience) {
            (Some(key), Some(audience)) => Some(Arc::new(crate::headers::AssertionSigner::new(
                key,
                config.public_origin(),
                audience.clone(),
            ))),
            _ => None,
        };
        let validator = IdentityValidator::new(
            identity_client,
            readiness.clone(),
            config.salesforce.allowed_orgs.clone(),
            &config.cache,
        )
        .with_miss_budget(crate::auth::miss_budget::MissBudget::new(&config))
        .with_token_checks(TokenChecks::from_config(&config, http.clone()))
        .with_store(store.clone());
        let renewals = Renewals::new(oauth.clone(), config.session.renewal_grace)
            .with_store(store.clone(), config.salesforce.instance_policy.clone());
        let upstream = match &config.gateway.upstream_url {
            Some(url) => Some(Upstream::new(
                url,
                UpstreamOptions {
                    timeout: config.gateway.upstream_timeout,
                    http2: config.gateway.upstream_http2,
                    websocket_idle: config.gateway.websocket_idle_timeout,
                    idle_timeout: config.gateway.upstream_idle_timeout,
                },
            )?),
            None => None,
        };
        let cookies = CookieSealer::new(
            config.session.secret.expose(),
            config.is_https(),
            config.session.ttl,
        )
        .with_previous_secret(config.session.previous_secret.as_ref().map(|s| s.expose()))
        .with_session_max_age(config.session.max_age);
        let auth = Authenticator::new(AuthParts {
            policy: config.policy.clone(),
            instance_policy: config.salesforce.instance_policy.clone(),
            path_policy: crate::domain::PathPolicy {
                allow_encoded_slashes: config.gateway.allow_encoded_slashes,
            },
            validator,
            cookies,
            oauth,
            renewals,
            readiness,
            paths: config.paths(),
            assertion: assertion.clone(),
        });
        let login = Login::new(
            auth.clone(),
            store.clone(),
            LoginSettings::from_config(&config),
        );
        Ok(Self(Arc::new(Inner {
            config,
            auth,
            upstream,
            login,
            assertion,
            store,
            metrics,
        })))
    }
}
