//! `GET /` (standalone mode) and `GET {prefix}/sign_in` (both modes): what sfgate is, a login
//! button, and who is logged in.

use crate::auth::session::{Session, SessionUser};
use crate::config::Config;
use crate::shell_examples;
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
    logout: Option<LogoutNotice>,
    script: Vec<String>,
    /// `/api/me`, or `{prefix}/userinfo` in gateway mode.
    identity_path: &'static str,
    paths: &'static crate::prefix_paths::PrefixPaths,
}

/// What the page says after a logout (`/?logout=...`, set by `POST {prefix}/logout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogoutNotice {
    Done,
    RevocationFailed,
}

impl LogoutNotice {
    fn revocation_failed(&self) -> bool {
        *self == Self::RevocationFailed
    }

    fn from_query(query: Option<&str>) -> Option<Self> {
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "logout")
            .and_then(|(_, v)| match v.as_ref() {
                "done" => Some(Self::Done),
                "revocation_failed" => Some(Self::RevocationFailed),
                _ => None,
            })
    }
}

/// The "From a script" card: commands that work against this very gateway. With the password
/// flow on (demo mode) they log in by themselves; otherwise they name the instance when it is
/// known (the session's, or a configured login host that is also an instance, as the emulator is).
fn script_lines(config: &Config, session_instance: Option<&str>) -> Vec<String> {
    let origin = config.public_origin();
    let mut lines = Vec::new();
    if config.salesforce.enable_password_flow {
        lines.extend(shell_examples::login_lines_under(
            config.paths(),
            &origin,
            false,
        ));
    } else {
        let login_origin = config.salesforce.login_url.origin().ascii_serialization();
        let instance = session_instance.map(str::to_string).or_else(|| {
            config
                .salesforce
                .instance_policy
                .extra_origins()
                .contains(&login_origin)
                .then_some(login_origin)
        });
        lines.push("TOKEN=<your access token: the page after login shows it>".to_string());
        lines.push(format!(
            "INSTANCE={}",
            instance
                .as_deref()
                .unwrap_or("<your org's instance URL, e.g. https://yourorg.my.salesforce.com>")
        ));
    }
    lines.push(shell_examples::identity_line(
        &origin,
        config.identity_path(),
    ));
    lines
}

pub(super) async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // The page only shows who the cookie says is logged in; protected routes re-check with
    // Salesforce. An unreadable cookie simply shows the logged-out page.
    let session: Option<Session> = state.auth.session(&headers).ok().flatten();
    let instance_url = session.as_ref().map(|s| s.instance_url.as_str());
    let page = HomePage {
        user: session.as_ref().map(|s| &s.user),
        instance_url,
        logout: LogoutNotice::from_query(query.as_deref()),
        script: script_lines(&state.config, instance_url),
        identity_path: state.config.identity_path(),
        paths: state.config.paths(),
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
