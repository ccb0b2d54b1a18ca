//! The stylesheet and script of sfgate's pages, served by sfgate itself: no external assets,
//! and a Content-Security-Policy of `'self'` with no inline code.

use super::OwnRoutes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const CSS: &str = include_str!("../../assets/sfgate.css");
const JS: &str = include_str!("../../assets/sfgate.js");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// The assets, and `/favicon.ico` when sfgate is the whole site. In gateway mode that path
/// belongs to the upstream app (its own icon); sfgate's pages name theirs with
/// `<link rel="icon" href="/assets/favicon.svg">`, which works in both modes.
pub(super) fn router(gateway_mode: bool) -> OwnRoutes {
    let router = OwnRoutes::new()
        .reserve("/assets")
        .route("/assets/sfgate.css", get(css))
        .route("/assets/sfgate.js", get(js))
        .route("/assets/favicon.svg", get(favicon));
    if gateway_mode {
        router
    } else {
        router.route("/favicon.ico", get(favicon))
    }
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
