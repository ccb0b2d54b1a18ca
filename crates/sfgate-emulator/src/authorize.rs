//! The emulated login and consent page at `/services/oauth2/authorize`.

use crate::records::CodeGrant;
use crate::state::{EmulatorState, Endpoint, CODE_LIFETIME};
use crate::users;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "emulator/login.html")]
struct LoginPage<'a> {
    /// Where the form posts: this same path, at the login host or under a site's prefix.
    action: &'a str,
    params: &'a AuthorizeParams,
    error: Option<&'a str>,
    scopes: Vec<&'a str>,
    /// Everyone who can sign in, with their passwords: this is an emulator, and a newcomer
    /// should not have to look them up.
    users: &'static [users::DemoUser],
}

#[derive(Template)]
#[template(path = "emulator/error.html")]
struct ErrorPage<'a> {
    error: &'a str,
    description: &'a str,
    /// Where the page links back to. Salesforce shows a redirect URI mismatch on its own page
    /// and never redirects; the emulator does the same, but its page offers a link to the
    /// redirect URI that was sent, with the error, so sfgate's callback can explain it.
    back: Option<String>,
}

#[derive(Default)]
pub(crate) struct AuthorizeParams {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
}

impl AuthorizeParams {
    fn from_map(map: &HashMap<String, String>) -> Self {
        let get = |k: &str| map.get(k).cloned().filter(|v| !v.is_empty());
        Self {
            response_type: get("response_type").unwrap_or_default(),
            client_id: get("client_id").unwrap_or_default(),
            redirect_uri: get("redirect_uri").unwrap_or_default(),
            state: get("state"),
            scope: get("scope").unwrap_or_else(|| "api".into()),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            prompt: get("prompt"),
            login_hint: get("login_hint"),
        }
    }
}

fn parse(raw: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// Problems Salesforce shows on its own page (no redirect: the redirect URI is not trusted).
fn check_client(state: &EmulatorState, p: &AuthorizeParams) -> Result<(), Response> {
    if p.client_id != state.client_id {
        return Err(error_page("invalid_client_id", "client identifier invalid"));
    }
    if !state.redirect_uri_registered(&p.redirect_uri) {
        let description = "redirect_uri must match configuration";
        let back = error_url(p, "redirect_uri_mismatch", description);
        return Err(error_page_with_link(
            "redirect_uri_mismatch",
            description,
            back,
        ));
    }
    Ok(())
}

/// Problems reported back to the (trusted) redirect URI.
fn check_request(state: &EmulatorState, p: &AuthorizeParams) -> Result<(), Response> {
    if p.response_type != "code" {
        return Err(redirect_error(
            p,
            "unsupported_response_type",
            "response type not supported",
        ));
    }
    if p.code_challenge_method
        .as_deref()
        .is_some_and(|m| m != "S256")
    {
        return Err(redirect_error(
            p,
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if state.require_pkce && p.code_challenge.is_none() {
        return Err(redirect_error(
            p,
            "invalid_request",
            "missing required code challenge",
        ));
    }
    Ok(())
}

pub(crate) async fn page(
    State(state): State<Arc<EmulatorState>>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
) -> Response {
    state.enter(Endpoint::Authorize).await;
    let params = AuthorizeParams::from_map(&parse(query.unwrap_or_default().as_bytes()));
    if let Err(r) = check_client(&state, &params).and_then(|_| check_request(&state, &params)) {
        return r;
    }
    render(uri.path(), &params, None, StatusCode::OK)
}

pub(crate) async fn submit(
    State(state): State<Arc<EmulatorState>>,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> Response {
    state.enter(Endpoint::Authorize).await;
    let form = parse(&body);
    let params = AuthorizeParams::from_map(&form);
    if let Err(r) = check_client(&state, &params).and_then(|_| check_request(&state, &params)) {
        return r;
    }
    if form.get("action").map(String::as_str) != Some("allow") {
        return redirect_error(&params, "access_denied", "end-user denied authorization");
    }
    let username = form.get("username").map(String::as_str).unwrap_or("");
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let Some(user) = users::user_index(username).filter(|&i| users::user(i).password == password)
    else {
        return render(
            uri.path(),
            &params,
            Some("Please check your username and password."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let code = state.store_code(CodeGrant {
        client_id: params.client_id.clone(),
        redirect_uri: params.redirect_uri.clone(),
        user,
        scope: params.scope.clone(),
        code_challenge: params.code_challenge.clone(),
        expires_ms: state.now_ms() + CODE_LIFETIME.as_millis() as u64,
    });
    redirect(&params, &[("code", code.as_str())])
}

fn render(
    action: &str,
    params: &AuthorizeParams,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let page = LoginPage {
        action,
        params,
        error,
        scopes: params.scope.split_whitespace().collect(),
        users: users::demo_users(),
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error_page(error: &str, description: &str) -> Response {
    error_page_with_link(error, description, None)
}

fn error_page_with_link(error: &str, description: &str, back: Option<String>) -> Response {
    let page = ErrorPage {
        error,
        description,
        back,
    };
    let html = page.render().unwrap_or_else(|_| description.to_string());
    (StatusCode::BAD_REQUEST, Html(html)).into_response()
}

fn redirect_error(params: &AuthorizeParams, error: &str, description: &str) -> Response {
    redirect(
        params,
        &[("error", error), ("error_description", description)],
    )
}

/// The redirect URI with the error appended, when it is an http(s) URL.
fn error_url(params: &AuthorizeParams, error: &str, description: &str) -> Option<String> {
    let url = with_pairs(
        params,
        &[("error", error), ("error_description", description)],
    )?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

fn with_pairs(params: &AuthorizeParams, pairs: &[(&str, &str)]) -> Option<url::Url> {
    let mut url = url::Url::parse(&params.redirect_uri).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(state) = &params.state {
            q.append_pair("state", state);
        }
    }
    Some(url)
}

fn redirect(params: &AuthorizeParams, pairs: &[(&str, &str)]) -> Response {
    let Some(url) = with_pairs(params, pairs) else {
        return error_page("redirect_uri_mismatch", "redirect_uri is not a URL");
    };
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => error_page("invalid_request", "cannot redirect"),
    }
}
