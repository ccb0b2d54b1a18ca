//! `GET /`: what sfgate is, a login button, and who is logged in.

use crate::auth::session::{Session, SessionUser};
use crate::state::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    user: Option<&'a SessionUser>,
    instance_url: Option<&'a str>,
    revocation_failed: bool,
}

pub(super) async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // The page only shows who the cookie says is logged in; protected routes re-check with
    // Salesforce. An unreadable cookie simply shows the logged-out page.
    let session: Option<Session> = state.cookies.open_session(&headers).ok().flatten();
    let page = HomePage {
        user: session.as_ref().map(|s| &s.user),
        instance_url: session.as_ref().map(|s| s.instance_url.as_str()),
        revocation_failed: url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .any(|(k, v)| k == "logout" && v == "revocation_failed"),
    };
    match page.render() {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "home page failed to render");
            crate::error::ErrorResponse::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the page could not be rendered",
            )
            .into_response()
        }
    }
}
