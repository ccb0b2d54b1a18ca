//! The emulated token endpoint: authorization_code (with PKCE), refresh_token and password
//! grants, client authentication, and Salesforce's JSON errors.

use crate::grants::pkce_challenge;
use crate::jwt::second_app_token;
use crate::oauth_error::oauth_error;
use crate::records::TokenGrant;
use crate::state::{EmulatorState, Endpoint};
use crate::users;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) async fn token(
    State(state): State<Arc<EmulatorState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(fault) = state.enter(Endpoint::Token).await {
        return fault;
    }
    let at_site = uri.path().starts_with(&format!("{}/", crate::SITE_PATH));
    match grant(&state, &headers, &body) {
        Ok(grant) => Json(state.through_site(grant, at_site)).into_response(),
        Err(response) => response,
    }
}

/// The grant a token request asks for, or the error response.
fn grant(state: &EmulatorState, headers: &HeaderMap, body: &Bytes) -> Result<TokenGrant, Response> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if let Some(response) = second_app_token(state, headers, &form) {
        return Err(response);
    }
    authenticate_client(state, headers, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match get("grant_type") {
        None => Err(oauth_error("invalid_request", "grant type not specified")),
        Some("authorization_code") => authorization_code(
            state,
            get("code"),
            get("redirect_uri"),
            get("code_verifier"),
        ),
        Some("refresh_token") => {
            state.count_refresh_call();
            get("refresh_token")
                .and_then(|t| state.refresh(t))
                .ok_or_else(|| oauth_error("invalid_grant", "expired access/refresh token"))
        }
        Some("password") => {
            let user = get("username").and_then(users::user_index);
            match user.filter(|&u| Some(users::user(u).password) == get("password")) {
                Some(u) if state.password_grant_refresh_token => {
                    Ok(state.issue(u, "api refresh_token", true))
                }
                Some(u) => Ok(state.issue(u, "api", false)),
                None => Err(oauth_error("invalid_grant", "authentication failure")),
            }
        }
        Some(_) => Err(oauth_error(
            "unsupported_grant_type",
            "grant type not supported",
        )),
    }
}

/// Client credentials in the body (client_secret_post) or as HTTP Basic.
fn authenticate_client(
    state: &EmulatorState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), Response> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if id != state.client_id {
        return Err(oauth_error(
            "invalid_client_id",
            "client identifier invalid",
        ));
    }
    if secret != state.client_secret {
        return Err(oauth_error("invalid_client", "invalid client credentials"));
    }
    Ok(())
}

fn authorization_code(
    state: &EmulatorState,
    code: Option<&str>,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<TokenGrant, Response> {
    let Some(grant) = code.and_then(|c| state.take_code(c)) else {
        return Err(oauth_error("invalid_grant", "authentication failure"));
    };
    if grant.expires_ms <= state.now_ms() {
        return Err(oauth_error("invalid_grant", "expired authorization code"));
    }
    if grant.client_id != state.client_id {
        return Err(oauth_error("invalid_grant", "authentication failure"));
    }
    if redirect_uri != Some(grant.redirect_uri.as_str()) {
        return Err(oauth_error(
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ));
    }
    match (&grant.code_challenge, verifier) {
        (Some(challenge), Some(v)) if pkce_challenge(v) == *challenge => {}
        (None, None) => {}
        _ => return Err(oauth_error("invalid_grant", "invalid code verifier")),
    }
    let with_refresh = grant
        .scope
        .split_whitespace()
        .any(|s| s == "refresh_token" || s == "offline_access");
    Ok(state.issue(grant.user, &grant.scope, with_refresh))
}
