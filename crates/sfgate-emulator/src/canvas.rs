//! A Lightning page hosting a Canvas app: `GET /canvas/host?user=<username>` POSTs a signed
//! request, as Salesforce does, into an iframe showing the Connected App's Canvas App URL.
//!
//! The signed request carries a fresh access token for the user (no refresh token, as for a
//! Canvas app without the `refresh_token` scope), the instance URL and the user's and org's
//! context, signed with the Connected App's consumer secret.

use crate::state::EmulatorState;
use crate::users::{self, long_id, DemoUser};
use askama::Template;
use aws_lc_rs::hmac;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use std::sync::Arc;

/// The only algorithm Salesforce signs Canvas requests with.
const ALGORITHM: &str = "HMACSHA256";

#[derive(Template)]
#[template(path = "emulator/canvas.html")]
struct HostPage<'a> {
    canvas_url: &'a str,
    signed_request: &'a str,
    display_name: &'a str,
    org_name: &'a str,
}

pub(crate) async fn host(
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
    let Some(index) = users::user_index(&username) else {
        return (StatusCode::NOT_FOUND, "no such user").into_response();
    };
    let user = users::user(index);
    let grant = state.issue(index, "api", false);
    let signed = sign_request(
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
    user: &DemoUser,
    token: &str,
    canvas_url: &str,
) -> serde_json::Value {
    let user_id = long_id(user.user_id);
    json!({
        "algorithm": ALGORITHM,
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
                "organizationId": long_id(user.org_id),
                "name": user.org_name,
            },
        },
    })
}

/// Signs a Canvas request as Salesforce does: `base64(HMAC-SHA256(secret, body)) + "." + body`,
/// where `body` is the base64 of the JSON context. Public so tests can forge and alter signed
/// requests the way Salesforce would send them.
pub fn sign_request(context: &serde_json::Value, secret: &[u8]) -> String {
    let encoded = STANDARD.encode(context.to_string());
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        encoded.as_bytes(),
    );
    format!("{}.{encoded}", STANDARD.encode(mac))
}
