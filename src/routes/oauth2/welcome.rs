//! `GET {prefix}/welcome`: where browsers land after logging in.

use super::answer::see_other;
use crate::auth::session::SessionUser;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use secrecy::ExposeSecret;

#[derive(Template)]
#[template(path = "success.html")]
struct SuccessPage<'a> {
    user: &'a SessionUser,
    instance_url: &'a str,
    access_token: Option<&'a str>,
    curl: Option<String>,
    identity_path: &'static str,
    home_path: &'static str,
    paths: &'static crate::prefix_paths::PrefixPaths,
}

/// `GET {prefix}/welcome`: who is logged in, and (outside gateway mode) the access token with a
/// curl line to try it. Never cached; it carries no refresh token. In gateway mode the app
/// shares sfgate's origin, so the page shows no token a script of the app could read. Without
/// a session it sends the browser home.
pub(super) async fn welcome(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Ok(Some(session)) = state.auth.session(&headers) else {
        return see_other(HeaderValue::from_static(state.config.home_path()));
    };
    let access_token = state
        .upstream
        .is_none()
        .then(|| session.access_token.expose_secret());
    let curl = access_token.map(|token| {
        crate::shell_examples::api_me_literal(
            &state.config.public_origin(),
            token,
            session.instance_url.as_str(),
        )
    });
    let page = SuccessPage {
        user: &session.user,
        instance_url: &session.instance_url,
        access_token,
        curl,
        identity_path: state.config.identity_path(),
        home_path: state.config.home_path(),
        paths: state.config.paths(),
    };
    match page.render() {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "welcome page failed to render");
            crate::error::ErrorResponse::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the page could not be rendered",
            )
            .into_response()
        }
    }
}
