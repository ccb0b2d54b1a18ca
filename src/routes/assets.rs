//! The stylesheet and script of sfgate's pages, served by sfgate itself: no external assets,
//! and a Content-Security-Policy of `'self'` with no inline code.

use crate::state::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const CSS: &str = include_str!("../../assets/sfgate.css");
const JS: &str = include_str!("../../assets/sfgate.js");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/sfgate.css", get(css))
        .route("/assets/sfgate.js", get(js))
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
