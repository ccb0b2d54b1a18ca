//! A Lightning page hosting a Canvas app: `GET /canvas/host?user=<username>` POSTs a signed
//! request, as Salesforce does, into an iframe showing the Connected App's Canvas App URL.
//!
//! The signed request carries a fresh access token for the user (no refresh token, as for a
//! Canvas app without the `refresh_token` scope), the instance URL and the user's and org's
//! context, signed with the Connected App's consumer secret.

use super::state::{self, EmulatorState};
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "emulator/canvas.html")]
struct HostPage<'a> {
    canvas_url: &'a str,
    signed_request: &'a str,
    display_name: &'a str,
    org_name: &'a str,
}

pub(super) async fn host(
    State(state): State<Arc<EmulatorState>>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(canvas_url) = state.canvas_url() else {
        return (
            StatusCode::NOT_FOUND,
            "no Canvas App URL is configured for this Connected App",
        )
            .into_response();
    };
    let username = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "alice@acme.example".into());
    let Some(index) = state::user_index(&username) else {
        return (StatusCode::NOT_FOUND, "no such user").into_response();
    };
    let user = state::user(index);
    let grant = state.issue(index, "api", false);
    let signed = crate::salesforce::canvas::sign(
        &context(&state, user, &grant.access_token, &canvas_url),
        state.client_secret.as_bytes(),
    );
    let page = HostPage {
        canvas_url: &canvas_url,
        signed_request: &signed,
        display_name: user.display_name,
        org_name: user.org_name,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The `CanvasRequest` Salesforce signs (the fields sfgate reads, and a few it does not).
fn context(
    state: &EmulatorState,
    user: &state::DemoUser,
    token: &str,
    canvas_url: &str,
) -> serde_json::Value {
    let user_id = state::long_id(user.user_id);
    json!({
        "algorithm": crate::salesforce::canvas::ALGORITHM,
        "issuedAt": null,
        "userId": user_id,
        "client": {
            "instanceId": null,
            "oauthToken": token,
            "refreshToken": null,
            "instanceUrl": state.base_url,
            "targetOrigin": state.base_url,
        },
        "context": {
            "application": {"canvasUrl": canvas_url, "authType": "SIGNED_REQUEST"},
            "user": {
                "userId": user_id,
                "userName": user.username,
                "email": user.email,
                "fullName": user.display_name,
                "userType": user.user_type,
            },
            "organization": {
                "organizationId": state::long_id(user.org_id),
                "name": user.org_name,
            },
        },
    })
}
