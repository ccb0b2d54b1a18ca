//! nginx's `auth_request` with the ingress-nginx sign-in pattern (`error_page 401 =
//! /oauth2/start?rd=$request_uri`), configured as docs/front-proxies.md shows.

use super::*;

const CONFIG: &str = include_str!("nginx.conf");

async fn start_nginx(binary: &Path, sfgate: &TestApp, app: &str, port: u16) -> FrontProxy {
    let dir = tempfile::tempdir().expect("temp dir");
    let sfgate_addr = sfgate.gateway.addr.to_string();
    let conf = write_config(
        dir.path(),
        "nginx.conf",
        &fill(CONFIG, &sfgate_addr, app, port),
    );
    let mut command = Command::new(binary);
    command
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path().join("error.log"));
    let log = dir.path().join("error.log");
    FrontProxy::start(command, dir, port, log).await
}

#[tokio::test]
async fn nginx_auth_request_logs_in_browsers_judges_routes_and_copies_identity() {
    let Some(binary) = binary_or_skip("nginx", &["nginx"], "nginx") else {
        return;
    };
    for style in ["auto", "nginx"] {
        let port = free_port();
        let sfgate = sfgate_behind(port, &[("FORWARD_AUTH_STYLE", style)]).await;
        let (_echo, app) = app_server().await;
        let proxy = start_nginx(&binary, &sfgate, &app, port).await;
        scenario(&proxy, &sfgate).await;
    }
}
