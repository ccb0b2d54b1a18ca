//! Caddy's `forward_auth`, configured as docs/front-proxies.md shows.

use super::*;

const CONFIG: &str = include_str!("Caddyfile");

async fn start_caddy(binary: &Path, sfgate: &TestApp, app: &str, port: u16) -> FrontProxy {
    let dir = tempfile::tempdir().expect("temp dir");
    let sfgate_addr = sfgate.gateway.addr.to_string();
    let conf = write_config(
        dir.path(),
        "Caddyfile",
        &fill(CONFIG, &sfgate_addr, app, port),
    );
    let mut command = Command::new(binary);
    command
        .arg("run")
        .arg("--config")
        .arg(&conf)
        .arg("--adapter")
        .arg("caddyfile")
        // Caddy's data and config directories inside the test's own.
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    let log = dir.path().join("stderr.log");
    FrontProxy::start(command, dir, port, log).await
}

#[tokio::test]
async fn caddy_forward_auth_logs_in_browsers_judges_routes_and_copies_identity() {
    let Some(binary) = binary_or_skip("caddy", &["caddy"], "caddy") else {
        return;
    };
    for style in ["auto", "caddy"] {
        let port = free_port();
        let sfgate = sfgate_behind(port, &[("FORWARD_AUTH_STYLE", style)]).await;
        let (_echo, app) = app_server().await;
        let proxy = start_caddy(&binary, &sfgate, &app, port).await;
        scenario(&proxy, &sfgate).await;
        // Caddy hands sfgate's redirect to the browser: 302 to /oauth2/start with the page.
        let r = get_accepting(&sfgate.http, proxy.url("/app/page?x=1&y=2"), "text/html").await;
        let r = expect_status_for(r, 302, proxy.logs()).await;
        assert_eq!(
            location(r.headers()),
            "/oauth2/start?rd=%2Fapp%2Fpage%3Fx%3D1%26y%3D2"
        );
    }
}
