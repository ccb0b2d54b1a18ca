//! sfgate's own routes, built through one table that remembers every path it adds: the router
//! and the list of paths gateway mode must never proxy come from the same calls, so they
//! cannot drift apart.

use crate::state::AppState;
use axum::routing::MethodRouter;
use axum::Router;
use std::sync::Arc;

/// A path sfgate owns.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnPath {
    /// One route.
    Exact(String),
    /// A namespace: the path itself and everything under it, routed or not.
    Under(&'static str),
}

/// A router of sfgate's own routes and the paths it owns.
pub(crate) struct OwnRoutes {
    router: Router<AppState>,
    paths: Vec<OwnPath>,
}

impl OwnRoutes {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    pub(crate) fn route(mut self, path: &str, method_router: MethodRouter<AppState>) -> Self {
        self.paths.push(OwnPath::Exact(path.to_owned()));
        self.router = self.router.route(path, method_router);
        self
    }

    /// [`Self::route`] when `enabled` (an optional feature's route); otherwise nothing.
    pub(crate) fn route_if(
        self,
        enabled: bool,
        path: &str,
        method_router: MethodRouter<AppState>,
    ) -> Self {
        if enabled {
            self.route(path, method_router)
        } else {
            self
        }
    }

    /// Claims `prefix` and every path under it: never proxied, even where no handler matches,
    /// so an upstream can neither shadow sfgate's routes there nor be reached through them.
    pub(crate) fn reserve(mut self, prefix: &'static str) -> Self {
        self.paths.push(OwnPath::Under(prefix));
        self
    }

    pub(crate) fn merge(mut self, other: OwnRoutes) -> Self {
        self.paths.extend(other.paths);
        self.router = self.router.merge(other.router);
        self
    }

    /// Changes the router without adding routes (to add a `route_layer`).
    pub(crate) fn map(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    pub(crate) fn into_parts(self) -> (Router<AppState>, OwnPaths) {
        (self.router, OwnPaths(self.paths.into()))
    }
}

/// The paths of sfgate's own routes, as the router was built.
#[derive(Debug, Clone)]
pub struct OwnPaths(Arc<[OwnPath]>);

impl OwnPaths {
    /// Whether `path` belongs to sfgate: such paths are never proxied.
    pub fn contains(&self, path: &str) -> bool {
        self.0.iter().any(|own| match own {
            OwnPath::Exact(route) => path == route,
            OwnPath::Under(prefix) => path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        })
    }
}
