//! Routes of your own next to sfgate's (`startup::app_with_routes`, as
//! `examples/protected_route.rs` uses it): behind the identity layer they run only for a
//! confirmed caller, and they get sfgate's middleware like its own routes.

use crate::common::*;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use sfgate::auth::require_identity;
use sfgate::config::Config;
use sfgate::domain::Identity;
use sfgate::state::AppState;
use sfgate_emulator::{Emulator, EmulatorConfig};
use tokio::net::TcpListener;

async fn reports(identity: Identity) -> String {
    format!(
        "reports for {} in org {}\n",
        identity.username.as_deref().unwrap_or_default(),
        identity.organization_id
    )
}

#[tokio::test]
async fn a_route_of_your_own_behind_require_identity_runs_only_for_a_confirmed_caller() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut emulator_config = EmulatorConfig::new(CLIENT_ID, CLIENT_SECRET);
    emulator_config.redirect_uris = vec![format!("{base}/oauth2/callback")];
    let emulator = Emulator::start(emulator_config, 0).await.expect("emulator");
    let env = base_env(&emulator.base_url(), &format!("{base}/oauth2/callback"));
    let state = AppState::new(Config::from_map(&env).expect("config")).expect("state");
    let mine = Router::new()
        .route("/api/reports", get(reports))
        .route_layer(from_fn_with_state(state.clone(), require_identity));
    let app = sfgate::startup::app_with_routes(state, mine);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sfgate::startup::serve(listener, app, async {
        let _ = stopped.await;
    }));

    let http = plain_client();
    let grant = emulator.issue_tokens("alice@acme.example").expect("alice");
    let r = http
        .get(format!("{base}/api/reports"))
        .bearer_auth(&grant.access_token)
        .header("x-instance-url", &grant.instance_url)
        .send()
        .await
        .expect("reports");
    let r = expect_status(r, 200).await;
    // sfgate's middleware wraps it: a request id and the security headers.
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        r.text().await.expect("body"),
        "reports for alice@acme.example in org 00D5j00000AcMe1EAF\n"
    );

    let r = http
        .get(format!("{base}/api/reports"))
        .send()
        .await
        .expect("reports");
    let r = expect_status(r, 401).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");

    let r = http
        .get(format!("{base}/api/reports"))
        .bearer_auth("not-a-token")
        .header("x-instance-url", &grant.instance_url)
        .send()
        .await
        .expect("reports");
    expect_status(r, 401).await;

    // sfgate's own routes are still there.
    let r = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    expect_status(r, 200).await;
    let _ = stop.send(());
    let _ = server.await;
}

/// Panics on purpose (from the test's own file, so the panic watch does not count it).
async fn explodes() -> String {
    panic!("a handler of your own panicked on purpose")
}

#[tokio::test]
async fn a_panicking_route_answers_500_json_with_its_request_id_and_the_server_keeps_serving() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let env = base_env(
        "https://login.salesforce.com",
        &format!("{base}/oauth2/callback"),
    );
    let state = AppState::new(Config::from_map(&env).expect("config")).expect("state");
    let mine = Router::new().route("/explodes", get(explodes));
    let app = sfgate::startup::app_with_routes(state, mine);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sfgate::startup::serve(listener, app, async {
        let _ = stopped.await;
    }));

    let http = plain_client();
    for _ in 0..2 {
        let r = http
            .get(format!("{base}/explodes"))
            .header("x-request-id", "panic-test-1")
            .send()
            .await
            .expect("an answer, not a dropped connection");
        let r = expect_status(r, 500).await;
        assert_eq!(r.headers()["x-request-id"], "panic-test-1");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "server_error");
        assert_eq!(body["error_description"], "internal error");
    }
    let r = http
        .get(format!("{base}/oauth2/healthz"))
        .send()
        .await
        .expect("healthz");
    expect_status(r, 200).await;

    let _ = stop.send(());
    server.await.expect("join").expect("serve");
}
