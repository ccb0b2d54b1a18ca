//! The emulated userinfo endpoint and identity URL.

use crate::state::{EmulatorState, Endpoint};
use crate::users::{self, long_id};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

fn bad_token(body: &'static str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain")],
        body,
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn urls(state: &EmulatorState, user: usize) -> serde_json::Value {
    let u = users::user(user);
    let base = &state.base_url;
    json!({
        "enterprise": format!("{base}/services/Soap/c/{{version}}/{}", long_id(u.org_id)),
        "rest": format!("{base}/services/data/v{{version}}/"),
        "profile": format!("{base}/{}", long_id(u.user_id)),
    })
}

pub(crate) async fn userinfo(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
) -> Response {
    if let Some(fault) = state.enter(Endpoint::UserInfo).await {
        return fault;
    }
    let Some(user) = bearer(&headers).and_then(|t| state.access_user(t)) else {
        return bad_token("Bad_OAuth_Token");
    };
    let u = users::user(user);
    let profile = state.profile(user);
    let (given, family) = u
        .display_name
        .split_once(' ')
        .unwrap_or((u.display_name, ""));
    Json(json!({
        "sub": state.identity_url(user),
        "user_id": long_id(u.user_id),
        "organization_id": long_id(u.org_id),
        "preferred_username": u.username,
        "nickname": u.username.split('@').next().unwrap_or(u.username),
        "name": u.display_name,
        "email": profile.email,
        "email_verified": true,
        "given_name": given,
        "family_name": family,
        "zoneinfo": "Europe/London",
        "locale": "en_US",
        "active": profile.active,
        "user_type": profile.user_type,
        "updated_at": "2026-01-01T00:00:00Z",
        "urls": urls(&state, user),
    }))
    .into_response()
}

pub(crate) async fn identity(
    State(state): State<Arc<EmulatorState>>,
    Path((org, user_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(fault) = state.enter(Endpoint::Identity).await {
        return fault;
    }
    let Some((user, scope)) = bearer(&headers).and_then(|t| state.access_grant(t)) else {
        return bad_token("Bad_OAuth_Token");
    };
    let u = users::user(user);
    let profile = state.profile(user);
    if long_id(&org) != long_id(u.org_id) || long_id(&user_id) != long_id(u.user_id) {
        return bad_token("Bad_Id");
    }
    let mut answer = json!({
        "id": state.identity_url(user),
        "asserted_user": true,
        "user_id": long_id(u.user_id),
        "organization_id": long_id(u.org_id),
        "username": u.username,
        "nick_name": u.username.split('@').next().unwrap_or(u.username),
        "display_name": u.display_name,
        "email": profile.email,
        "active": profile.active,
        "user_type": profile.user_type,
        "urls": urls(&state, user),
    });
    // Salesforce Help, "Identity URLs": with the custom_permissions scope, a map of the
    // Connected App's custom permissions to whether the user has each. Not in userinfo.
    if scope.split_whitespace().any(|s| s == "custom_permissions") {
        let map: serde_json::Map<String, serde_json::Value> = profile
            .custom_permissions
            .iter()
            .map(|(name, granted)| (name.clone(), serde_json::Value::Bool(*granted)))
            .collect();
        answer["custom_permissions"] = serde_json::Value::Object(map);
    }
    Json(answer).into_response()
}
