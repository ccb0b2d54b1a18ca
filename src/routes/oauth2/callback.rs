//! The OAuth callback (the path of `SF_REDIRECT_URI`): finishes the login
//! ([`Login::finish`]) and answers.
//!
//! Browsers then leave the callback at once (post/redirect/get): a 303 to `return_to` or to the
//! welcome page, so the single-use code leaves the address bar and the history, and reload,
//! Back and Forward show a page instead of "the login cookie is missing". A repeated callback
//! (reload, Back) from a browser that already holds a live session goes to the welcome page
//! too. API clients that ask for JSON get the token response instead.

use super::answer::{accepts_json, see_other_no_store, token_json, with_cookie};
use super::params::query_params;
use crate::auth::login::{Finished, Login};
use crate::error::wants_html;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

pub(super) async fn callback(
    State(login): State<Login>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let json_caller = accepts_json(&headers) && !wants_html(&headers);
    let finished = match query_params(query.as_deref()) {
        Ok(params) => login.finish(&headers, &params, json_caller).await,
        Err(e) => Err(e),
    };
    let response = match finished {
        Ok(finished) => answer(finished, json_caller, login.paths().welcome),
        Err(e) => {
            tracing::warn!(error = %e, "login failed");
            e.into_response()
        }
    };
    // Success or failure, this login attempt is over.
    with_cookie(response, login.login_cookie_removal())
}

/// Back where the login started, else tokens for a JSON caller or the welcome page for a
/// browser; with the new session cookie.
fn answer(finished: Finished, json_caller: bool, welcome_path: &'static str) -> Response {
    let welcome = || see_other_no_store(HeaderValue::from_static(welcome_path));
    let Finished::LoggedIn {
        return_to,
        tokens,
        session_cookie,
    } = finished
    else {
        return welcome();
    };
    let response = match &return_to {
        Some(return_to) => see_other_no_store(
            HeaderValue::from_str(return_to.as_str()).unwrap_or(HeaderValue::from_static("/")),
        ),
        None if json_caller => token_json(&tokens),
        None => welcome(),
    };
    with_cookie(response, session_cookie)
}
