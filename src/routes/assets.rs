//! The stylesheet and script of sfgate's pages, served by sfgate itself: no external assets,
//! and a Content-Security-Policy of `'self'` with no inline code.

use super::OwnRoutes;
use crate::prefix_paths::PrefixPaths;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const CSS: &str = include_str!("../../assets/sfgate.css");
const JS: &str = include_str!("../../assets/sfgate.js");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// The assets under sfgate's prefix, which sfgate's pages name, in both modes. When sfgate is
/// the whole site it also keeps `/assets/` (older pages and bookmarks) and `/favicon.ico`; in
/// gateway mode those paths belong to the upstream app (its own assets and icon).
pub(super) fn router(paths: &PrefixPaths, gateway_mode: bool) -> OwnRoutes {
    let router = OwnRoutes::new()
        .route(paths.asset_css, get(css))
        .route(paths.asset_js, get(js))
        .route(paths.asset_favicon, get(favicon));
    if gateway_mode {
        return router;
    }
    router
        .reserve("/assets")
        .route("/assets/sfgate.css", get(css))
        .route("/assets/sfgate.js", get(js))
        .route("/assets/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
}

/// An SVG icon; browsers go by the content type, so it serves `/favicon.ico` too.
async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}
