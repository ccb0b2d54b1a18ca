//! Adding a protected route of your own to sfgate, runnable against the built-in emulator:
//!
//! ```sh
//! cargo run --example protected_route          # serves http://127.0.0.1:3000
//! LOGIN=$(curl -s -d username=alice@acme.example -d password=alice-demo-1 http://127.0.0.1:3000/oauth2/password)
//! TOKEN=$(echo "$LOGIN" | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)
//! INSTANCE=$(echo "$LOGIN" | grep -o '"instance_url":"[^"]*"' | cut -d'"' -f4)
//! curl -H "Authorization: Bearer $TOKEN" -H "X-Instance-Url: $INSTANCE" http://127.0.0.1:3000/api/reports
//! # reports for Alice Admin in org 00D5j00000AcMe1EAF
//! ```
//!
//! With a real Connected App, build the state from `Config::from_env()` instead of the demo's
//! environment and drop the emulator.

use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use sfgate::auth::require_identity;
use sfgate::config::Config;
use sfgate::demo;
use sfgate::domain::Identity;
use sfgate::startup;
use sfgate::state::AppState;
use sfgate_emulator::{demo_users, Emulator, EmulatorConfig};
use tokio::net::TcpListener;

/// Runs only for a caller whose Salesforce identity the layer has confirmed: the `Identity`
/// extractor refuses to run the handler otherwise.
async fn reports(identity: Identity) -> String {
    // `label()`: the display name, else the username, else the user id (a JWT-based token
    // whose profile could not be fetched carries only ids).
    format!(
        "reports for {} in org {}\n",
        identity.label(),
        identity.organization_id
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    sfgate::telemetry::init(sfgate::config::LogFormat::Text);
    let listener = TcpListener::bind(("127.0.0.1", 3000)).await?;
    let gateway = format!("http://{}", listener.local_addr()?);

    // The emulator stands in for Salesforce, configured as `sfgate demo` does.
    let mut emulator_config = EmulatorConfig::new(demo::DEMO_CLIENT_ID, demo::DEMO_CLIENT_SECRET);
    emulator_config.redirect_uris = vec![format!("{gateway}/oauth2/callback")];
    let emulator = Emulator::start(emulator_config, 0).await?;
    let org = demo_users().first().map_or("00D5j00000AcMe1", |u| u.org_id);
    let env = demo::environment(
        &emulator.base_url(),
        &format!("{gateway}/oauth2/callback"),
        org,
    );
    let state = AppState::new(Config::from_map(&env)?)?;

    // Your routes, behind the identity layer.
    let mine = Router::new()
        .route("/api/reports", get(reports))
        .route_layer(from_fn_with_state(state.clone(), require_identity));
    let app = startup::app_with_routes(state, mine);

    println!("serving {gateway} (GET /api/reports needs a Salesforce identity); Ctrl-C stops");
    startup::serve(listener, app, startup::shutdown_signal()).await?;
    emulator.shutdown().await;
    Ok(())
}
