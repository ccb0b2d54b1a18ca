//! The `sfgate` binary as an operator runs it: configuration errors, `.env`, `check`, `serve`
//! with graceful shutdown, `demo` and `emulator`. Every child runs in an empty environment and a
//! throwaway directory, so nothing from the developer's machine leaks in.

mod common;

use common::{expect_status, expect_status_for};
use regex::Regex;
use reqwest::redirect::Policy;
use sfgate_emulator::{Emulator, EmulatorConfig};
use std::collections::HashMap;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sfgate");
const SECRET: &str = "cli-test-session-secret-0123456789-abcdef";
const CLIENT_SECRET: &str = "cli-test-client-secret";

fn command(dir: &tempfile::TempDir, env: &HashMap<&str, String>) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .current_dir(dir.path())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

async fn run(args: &[&str], env: &HashMap<&str, String>) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    run_in(&dir, args, env).await
}

async fn run_in(dir: &tempfile::TempDir, args: &[&str], env: &HashMap<&str, String>) -> Output {
    let out = command(dir, env).args(args).output();
    tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the command finishes")
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn valid_env(login_url: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("SF_CLIENT_ID", "cli-client".to_string()),
        ("SF_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        (
            "SF_REDIRECT_URI",
            "http://127.0.0.1:3000/oauth2/callback".to_string(),
        ),
        ("SF_LOGIN_URL", login_url.to_string()),
        ("SF_INSTANCE_ORIGINS", login_url.to_string()),
        ("SF_ALLOWED_ORGS", "00D5j00000AcMe1".to_string()),
        ("SESSION_SECRET", SECRET.to_string()),
    ])
}

#[tokio::test]
async fn an_empty_environment_exits_2_naming_every_missing_variable() {
    for args in [&[][..], &["serve"][..], &["check"][..]] {
        let out = run(args, &HashMap::new()).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let said = text(&out);
        for variable in [
            "SF_CLIENT_ID",
            "SF_CLIENT_SECRET",
            "SF_REDIRECT_URI",
            "SF_ALLOWED_ORGS",
            "SESSION_SECRET",
        ] {
            assert!(
                said.contains(variable),
                "{args:?} does not name {variable}: {said}"
            );
        }
    }
}

#[tokio::test]
async fn every_problem_is_reported_at_once_and_secrets_are_not_echoed() {
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("SESSION_SECRET", "short-but-secret-value".to_string());
    env.insert("PORT", "eighty".to_string());
    env.insert("SF_ALLOWED_ORGS", "00D5j00000AcMe1,not-an-org".to_string());
    env.insert("SF_LOGIN_URL", "http://login.salesforce.com".to_string());
    let out = run(&["check"], &env).await;
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out);
    for variable in ["SESSION_SECRET", "PORT", "SF_ALLOWED_ORGS", "SF_LOGIN_URL"] {
        assert!(said.contains(variable), "{variable} not named: {said}");
    }
    assert!(!said.contains("short-but-secret-value"), "{said}");
    assert!(!said.contains(CLIENT_SECRET), "{said}");
}

#[tokio::test]
async fn check_accepts_a_valid_environment_and_the_nodejs_names() {
    let out = run(&["check"], &valid_env("https://login.salesforce.com")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("/oauth2/callback"));

    let mut legacy = valid_env("https://login.salesforce.com");
    for (new, old) in [
        ("SF_CLIENT_ID", "CLIENT_ID"),
        ("SF_CLIENT_SECRET", "CLIENT_SECRET_ID"),
        ("SF_REDIRECT_URI", "REDIRECT_URI"),
    ] {
        let v = legacy.remove(new).expect("set");
        legacy.insert(old, v);
    }
    legacy.insert(
        "REDIRECT_URI",
        "http://127.0.0.1:3000/oauth2/success".to_string(),
    );
    let out = run(&["check"], &legacy).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("/oauth2/success"), "{}", text(&out));
}

#[tokio::test]
async fn dotenv_is_read_and_the_real_environment_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file: String = valid_env("https://test.salesforce.com")
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    std::fs::write(dir.path().join(".env"), file).expect(".env");
    let out = run_in(&dir, &["check"], &HashMap::new()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("test.salesforce.com"), "{}", text(&out));

    let real = HashMap::from([("SF_ALLOWED_ORGS", "garbage".to_string())]);
    let out = run_in(&dir, &["check"], &real).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("SF_ALLOWED_ORGS"));

    std::fs::write(dir.path().join(".env"), "SF_CLIENT_ID='unterminated\n").expect(".env");
    let out = run_in(&dir, &["check"], &HashMap::new()).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreadable .env is a configuration error"
    );
    assert!(text(&out).contains(".env"));
}

/// Reads a child's stdout line by line until `pattern` matches; returns its first group.
async fn wait_for(
    lines: &mut Lines<BufReader<ChildStdout>>,
    pattern: &str,
    seen: &mut String,
) -> String {
    let re = Regex::new(pattern).expect("regex");
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(c) = re.captures(&line) {
                return Some(c.get(1).map_or("", |m| m.as_str()).to_string());
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(v)) => v,
        _ => panic!("never printed /{pattern}/; output so far:\n{seen}"),
    }
}

fn stdout_lines(child: &mut Child) -> Lines<BufReader<ChildStdout>> {
    BufReader::new(child.stdout.take().expect("piped stdout")).lines()
}

#[tokio::test]
async fn serve_finishes_in_flight_requests_on_sigterm() {
    let mut emulator_config = EmulatorConfig::new("cli-client", CLIENT_SECRET);
    // Each validation takes a second: long enough to send SIGTERM while one is in flight.
    emulator_config.latency = Duration::from_millis(1500);
    let emulator = Emulator::start(emulator_config, 0).await.expect("emulator");
    let grant = emulator.issue_tokens("alice@acme.example").expect("alice");

    let mut env = valid_env(&emulator.base_url());
    let old = env.remove("SF_CLIENT_ID").expect("set");
    env.insert("CLIENT_ID", old);
    env.insert("HOST", "127.0.0.1".to_string());
    env.insert("PORT", "0".to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = command(&dir, &env)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = stdout_lines(&mut child);
    let mut seen = String::new();
    let port = wait_for(
        &mut lines,
        r"sfgate listening.*127\.0\.0\.1:(\d+)",
        &mut seen,
    )
    .await;
    assert!(
        seen.contains("CLIENT_ID"),
        "the legacy name is mentioned once: {seen}"
    );

    let url = format!("http://127.0.0.1:{port}");
    sfgate::crypto::install_tls_provider();
    let http = reqwest::Client::new();
    expect_status(
        http.get(format!("{url}/healthz"))
            .send()
            .await
            .expect("healthz"),
        200,
    )
    .await;
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = format!("{url}/api/me");
        let instance = emulator.base_url();
        let token = grant.access_token.clone();
        async move {
            http.get(url)
                .bearer_auth(token)
                .header("x-instance-url", instance)
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());

    let answer = in_flight
        .await
        .expect("join")
        .expect("the in-flight request is answered");
    expect_status(answer, 200).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after draining")
        .expect("status");
    assert!(status.success(), "{status:?}");
    // Nothing listens any more.
    assert!(http.get(format!("{url}/healthz")).send().await.is_err());
}

/// An upstream whose every answer takes 1.5 s.
async fn slow_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        "done"
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Threads that accepted at least one connection, from `sfgate_connections_accepted_total`.
fn threads_that_accepted(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|line| line.starts_with("sfgate_connections_accepted_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .filter(|count| *count > 0.0)
        .count()
}

#[tokio::test]
async fn serve_on_four_threads_spreads_connections_and_drains_every_thread_on_sigterm() {
    let upstream = slow_upstream().await;
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("HOST", "127.0.0.1".to_string());
    env.insert("PORT", "0".to_string());
    env.insert("SERVER_THREADS", "4".to_string());
    env.insert("UPSTREAM_URL", upstream);
    env.insert("SKIP_AUTH_ROUTES", "^/slow/".to_string());
    // Gateway mode serves metrics only on a listener of their own.
    let metrics_port = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        free.local_addr().expect("addr").port()
    };
    env.insert("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = command(&dir, &env)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = stdout_lines(&mut child);
    let mut seen = String::new();
    let port = wait_for(
        &mut lines,
        r"sfgate listening addr=127\.0\.0\.1:(\d+)",
        &mut seen,
    )
    .await;
    assert!(seen.contains("threads=4"), "{seen}");
    let url = format!("http://127.0.0.1:{port}");

    // Sixteen clients, a connection each, all with a request in flight.
    let mut in_flight = Vec::new();
    for i in 0..16 {
        let url = format!("{url}/slow/{i}");
        in_flight.push(tokio::spawn(async move {
            sfgate::crypto::install_tls_provider();
            reqwest::Client::new().get(url).send().await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    sfgate::crypto::install_tls_provider();
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let threads = threads_that_accepted(&metrics);
    assert!(
        threads > 1,
        "connections all went to one thread:\n{metrics}"
    );

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    for request in in_flight {
        let answer = request
            .await
            .expect("join")
            .expect("every in-flight request is answered");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.expect("body"), "done");
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after draining")
        .expect("status");
    assert!(status.success(), "{status:?}");
    sfgate::crypto::install_tls_provider();
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
}

#[tokio::test]
async fn demo_serves_the_whole_login_flow_with_one_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = command(&dir, &HashMap::new())
        .args(["demo", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = stdout_lines(&mut child);
    let mut seen = String::new();
    let gateway = wait_for(&mut lines, r"Open (http://127\.0\.0\.1:\d+)/", &mut seen).await;
    let emulator = wait_for(
        &mut lines,
        r"emulated at (http://127\.0\.0\.1:\d+)",
        &mut seen,
    )
    .await;
    wait_for(
        &mut lines,
        r"(alice@acme\.example)\s+password alice-demo-1",
        &mut seen,
    )
    .await;

    sfgate::crypto::install_tls_provider();
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let start = browser
        .get(format!("{gateway}/oauth2/authorize"))
        .send()
        .await
        .expect("authorize");
    let start = expect_status(start, 302).await;
    let to_salesforce = start.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(to_salesforce.starts_with(&emulator), "{to_salesforce}");
    let page = browser
        .get(&to_salesforce)
        .send()
        .await
        .expect("login page");
    expect_status(page, 200).await;
    let mut form: Vec<(String, String)> = reqwest::Url::parse(&to_salesforce)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    for (k, v) in [
        ("username", "alice@acme.example"),
        ("password", "alice-demo-1"),
        ("action", "allow"),
    ] {
        form.push((k.to_string(), v.to_string()));
    }
    let back = browser
        .post(format!("{emulator}/services/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .expect("submit");
    let back = expect_status(back, 302).await;
    let callback = back.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    let done = browser
        .get(&callback)
        .header("accept", "text/html")
        .send()
        .await
        .expect("callback");
    let done = expect_status_for(done, 303, "the callback redirects to the welcome page").await;
    let welcome = format!(
        "{gateway}{}",
        done.headers()["location"].to_str().expect("ascii")
    );
    let done = browser
        .get(welcome)
        .header("accept", "text/html")
        .send()
        .await
        .expect("welcome page");
    let done = expect_status(done, 200).await;
    assert!(done
        .text()
        .await
        .expect("page")
        .contains("alice@acme.example"));
    let me = browser
        .get(format!("{gateway}/api/me"))
        .send()
        .await
        .expect("me");
    expect_status(me, 200).await;
    let _ = child.kill().await;
}

#[tokio::test]
async fn the_emulator_runs_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = command(&dir, &HashMap::new())
        .args(["emulator", "--port", "0", "--latency-ms", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = stdout_lines(&mut child);
    let mut seen = String::new();
    let base = wait_for(
        &mut lines,
        r"Salesforce emulator on (http://127\.0\.0\.1:\d+)",
        &mut seen,
    )
    .await;
    sfgate::crypto::install_tls_provider();
    let r = reqwest::get(format!("{base}/__emulator/stats"))
        .await
        .expect("stats");
    expect_status(r, 200).await;
    sfgate::crypto::install_tls_provider();
    let r = reqwest::Client::new()
        .get(format!("{base}/services/oauth2/userinfo"))
        .bearer_auth("nonsense")
        .send()
        .await
        .expect("userinfo");
    expect_status(r, 403).await;
    let _ = child.kill().await;
}

#[tokio::test]
async fn env_example_documents_every_variable_and_works_once_filled_in() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
        .expect(".env.example");
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    // The configuration is read in src/config/, one file per group of variables.
    let config: String = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config"))
        .expect("src/config")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("config file"))
        .collect();
    // Every variable the configuration reads, by the names it is read with.
    let read = Regex::new(r#"\(\s*"([A-Z][A-Z0-9_]+)""#).expect("regex");
    let mut names: Vec<&str> = read
        .captures_iter(&config)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 20, "found only {names:?}");
    for name in names {
        let legacy = ["CLIENT_ID", "CLIENT_SECRET_ID", "REDIRECT_URI"].contains(&name);
        assert!(
            example.contains(&format!("\n{name}=")) || legacy && example.contains(name),
            ".env.example does not document {name}"
        );
        // One table row per variable, so the reference stays easy to extend.
        assert!(
            reference.contains(&format!("\n| `{name}` |"))
                || legacy && reference.contains(&format!("`{name}`")),
            "docs/configuration.md has no row for {name}"
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let filled: String = example
        .lines()
        .map(|line| match line.split_once('=') {
            Some(("SF_CLIENT_ID", _)) => "SF_CLIENT_ID=example-client".to_string(),
            Some(("SF_CLIENT_SECRET", _)) => "SF_CLIENT_SECRET=example-secret".to_string(),
            Some(("SF_ALLOWED_ORGS", _)) => "SF_ALLOWED_ORGS=00D5j00000AcMe1".to_string(),
            Some(("SESSION_SECRET", _)) => format!("SESSION_SECRET={SECRET}"),
            _ => line.to_string(),
        })
        .map(|line| line + "\n")
        .collect();
    std::fs::write(dir.path().join(".env"), filled).expect(".env");
    let out = run_in(&dir, &["check"], &HashMap::new()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Starts `sfgate demo` with `args` and `env`; returns the child, the gateway URL and the banner.
async fn start_demo(args: &[&str], env: &HashMap<&str, String>) -> (Child, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = command(&dir, env)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = stdout_lines(&mut child);
    let mut seen = String::new();
    let gateway = wait_for(&mut lines, r"Open (http://127\.0\.0\.1:\d+)/ ", &mut seen).await;
    wait_for(&mut lines, r"(Press Ctrl-C to stop)", &mut seen).await;
    // The demo logs every request to stdout: keep draining it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // The working directory may go: the demo reads nothing from it after start.
    drop(dir);
    (child, gateway, seen)
}

async fn through_gateway(gateway: &str) -> serde_json::Value {
    sfgate::crypto::install_tls_provider();
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{gateway}/oauth2/password"))
        .form(&[
            ("username", "alice@acme.example"),
            ("password", "alice-demo-1"),
        ])
        .send()
        .await
        .expect("password flow")
        .json()
        .await
        .expect("json");
    assert!(
        login["refresh_token"].is_string(),
        "the demo grants a refresh token: {login}"
    );
    let r = http
        .get(format!("{gateway}/app/x"))
        .bearer_auth(login["access_token"].as_str().expect("token"))
        .header(
            "x-instance-url",
            login["instance_url"].as_str().expect("instance"),
        )
        .send()
        .await
        .expect("proxied");
    let r = expect_status(r, 200).await;
    r.json().await.expect("the upstream's json")
}

#[tokio::test]
async fn demo_upstream_flag_and_upstream_url_both_run_gateway_mode() {
    let upstream = sfgate::demo::sample_app::SampleApp::start()
        .await
        .expect("an upstream app");
    let flag = ["demo", "--port", "0", "--upstream", &upstream.base_url()];
    let (child, gateway, banner) = start_demo(&flag, &HashMap::new()).await;
    assert!(
        banner.contains(&format!("go to {} (your app)", upstream.base_url())),
        "{banner}"
    );
    let body = through_gateway(&gateway).await;
    assert_eq!(body["path"], "/app/x");
    assert_eq!(
        body["headers"]["x-salesforce-username"],
        "alice@acme.example"
    );
    drop(child);

    let env = HashMap::from([("UPSTREAM_URL", upstream.base_url())]);
    let (child, gateway, _) = start_demo(&["demo", "--port", "0"], &env).await;
    let body = through_gateway(&gateway).await;
    assert_eq!(
        body["headers"]["x-salesforce-username"],
        "alice@acme.example"
    );
    drop(child);
}

#[tokio::test]
async fn demo_with_sample_app_shows_gateway_mode_in_one_command() {
    let (child, gateway, banner) = start_demo(
        &["demo", "--port", "0", "--with-sample-app"],
        &HashMap::new(),
    )
    .await;
    assert!(banner.contains("the built-in sample app"), "{banner}");
    let body = through_gateway(&gateway).await;
    assert_eq!(body["app"], "sfgate sample app");
    assert_eq!(body["credentials_received"], serde_json::json!([]));
    // A browser without a session is sent to log in and brought back to /app.
    sfgate::crypto::install_tls_provider();
    let r = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
        .get(format!("{gateway}/app"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    let r = expect_status(r, 303).await;
    assert_eq!(
        r.headers()["location"],
        "/oauth2/authorize?return_to=%2Fapp"
    );
    drop(child);
}

#[tokio::test]
async fn demo_refuses_an_upstream_and_the_sample_app_together() {
    let env = HashMap::from([("UPSTREAM_URL", "http://127.0.0.1:9".to_string())]);
    let out = run(&["demo", "--port", "0", "--with-sample-app"], &env).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("choose one"), "{}", text(&out));
}

#[tokio::test]
async fn a_misspelt_variable_is_named_with_the_one_it_was_meant_to_be() {
    let mut env = valid_env("https://login.salesforce.com");
    let orgs = env.remove("SF_ALLOWED_ORGS").expect("set");
    env.insert("SF_ALLOWED_ORG", orgs);
    let out = run(&["check"], &env).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("invalid configuration (2 problems):"), "{all}");
    assert!(all.contains("SF_ALLOWED_ORGS: is required"), "{all}");
    assert!(
        all.contains(
            "SF_ALLOWED_ORG: is not a variable sfgate reads: did you mean SF_ALLOWED_ORGS?"
        ),
        "{all}"
    );
}

/// The typos that used to start sfgate with a default in their place (a sandbox user sent to
/// production by `SF_LOGIN_URI`): each one stops `check` and `serve`, and all are named at once.
const TYPOS: &[(&str, &str, &str)] = &[
    (
        "SF_LOGIN_URI",
        "https://test.salesforce.com",
        "SF_LOGIN_URL",
    ),
    ("UPSTREAM_UR", "http://127.0.0.1:9", "UPSTREAM_URL"),
    ("REDIS_ULR", "redis://127.0.0.1:6379", "REDIS_URL"),
    ("SKIP_AUTH_ROUTE", "GET=^/health$", "SKIP_AUTH_ROUTES"),
];

#[tokio::test]
async fn each_misspelt_variable_stops_check_and_serve_with_a_suggestion() {
    for (typo, value, meant) in TYPOS {
        let mut env = valid_env("https://login.salesforce.com");
        env.insert("HOST", "127.0.0.1".to_string());
        env.insert("PORT", "0".to_string());
        env.insert(typo, value.to_string());
        for args in [&["check"][..], &["serve"][..], &[][..]] {
            let out = run(args, &env).await;
            let all = text(&out);
            assert_eq!(out.status.code(), Some(2), "{typo} {args:?}: {all}");
            assert!(
                all.contains(&format!(
                    "{typo}: is not a variable sfgate reads: did you mean {meant}?"
                )),
                "{typo} {args:?}: {all}"
            );
            assert!(!all.contains("configuration is valid"), "{all}");
            assert!(!all.contains("sfgate listening"), "{all}");
        }
    }
}

#[tokio::test]
async fn every_misspelt_variable_is_named_at_once_and_the_escape_hatch_starts_anyway() {
    let mut env = valid_env("https://login.salesforce.com");
    for (typo, value, _) in TYPOS {
        env.insert(typo, value.to_string());
    }
    env.insert("SF_NOT_A_THING", "1".to_string());
    let out = run(&["check"], &env).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("invalid configuration (5 problems):"), "{all}");
    for (_, _, meant) in TYPOS {
        assert!(all.contains(&format!("did you mean {meant}?")), "{all}");
    }
    assert!(
        all.contains("SF_NOT_A_THING: is not a variable sfgate reads"),
        "{all}"
    );
    assert!(all.contains("SFGATE_ALLOW_UNKNOWN_VARS=true"), "{all}");

    env.insert("SFGATE_ALLOW_UNKNOWN_VARS", "true".to_string());
    let out = run(&["check"], &env).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains(
            "warning: SF_LOGIN_URI: is not a variable sfgate reads: did you mean SF_LOGIN_URL?"
        ),
        "{all}"
    );
    assert!(all.contains("warning: SF_NOT_A_THING"), "{all}");
}

#[tokio::test]
async fn variables_other_programs_set_do_not_stop_the_start() {
    let mut env = valid_env("https://login.salesforce.com");
    for (name, value) in [
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/home/app"),
        ("DATABASE_URL", "postgres://db/app"),
        ("RUST_LOG", "info"),
        ("PORT", "3000"),
        ("DYNO", "web.1"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("OTEL_SERVICE_NAME", "sfgate"),
        ("REDIS_TLS_URL", "rediss://cache:6380"),
        ("HTTPS_PROXY", "http://proxy:3128"),
    ] {
        env.insert(name, value.to_string());
    }
    let out = run(&["check"], &env).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("warning"), "{all}");
}

#[tokio::test]
async fn check_warns_about_a_lightning_login_host_and_names_the_my_domain_host() {
    let mut env = valid_env("https://login.salesforce.com");
    env.insert(
        "SF_LOGIN_URL",
        "https://acme.lightning.force.com".to_string(),
    );
    env.insert("SESSION_TIMEOUT", "60".to_string());
    let out = run(&["check"], &env).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "a warning, not an error: {all}");
    assert!(all.contains("warning: SF_LOGIN_URL:"), "{all}");
    assert!(all.contains("https://acme.my.salesforce.com"), "{all}");
    assert!(
        all.contains("warning: SESSION_TIMEOUT: is not a variable sfgate reads"),
        "{all}"
    );
}

#[tokio::test]
async fn serve_says_when_its_port_is_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("HOST", "127.0.0.1".to_string());
    env.insert("PORT", port.to_string());
    let out = run(&["serve"], &env).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "port {port} is in use; set PORT or stop the other process"
        )),
        "{all}"
    );
    drop(taken);
}

#[tokio::test]
async fn serve_start_up_names_the_allowed_orgs_the_upstream_and_misspelt_variables() {
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("HOST", "127.0.0.1".to_string());
    env.insert("PORT", "0".to_string());
    env.insert("UPSTREAM_URL", "http://127.0.0.1:9/base".to_string());
    env.insert("IDENTITY_CACHE_TLL", "30".to_string());
    // A misspelt name stops the start unless this says it belongs to another program.
    env.insert("SFGATE_ALLOW_UNKNOWN_VARS", "true".to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = command(&dir, &env)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = stdout_lines(&mut child);
    let mut seen = String::new();
    let line = wait_for(&mut lines, r"(sfgate listening.*)", &mut seen).await;
    assert!(line.contains("allowed_orgs=00D5j00000AcMe1EAF"), "{line}");
    assert!(line.contains("upstream=http://127.0.0.1:9"), "{line}");
    assert!(
        seen.contains("did you mean IDENTITY_CACHE_TTL?"),
        "the warning comes before the start-up line: {seen}"
    );
    let _ = child.kill().await;
}

#[tokio::test]
async fn demo_says_when_its_port_is_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = run(&["demo", "--port", &port], &HashMap::new()).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("port {port} is in use; pick another with --port")),
        "{all}"
    );
    drop(taken);
}

#[tokio::test]
async fn check_warns_when_a_loopback_redirect_uri_is_on_another_port_than_port() {
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("PORT", "3100".to_string());
    let out = run(&["check"], &env).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "a warning, not an error: {all}");
    assert!(
        all.contains("warning: SF_REDIRECT_URI: its port is 3000 but sfgate listens on PORT=3100"),
        "{all}"
    );
    env.insert("PORT", "3000".to_string());
    let out = run(&["check"], &env).await;
    assert!(!text(&out).contains("warning"), "{}", text(&out));
}

#[tokio::test]
async fn help_lists_every_variable_with_its_default() {
    for args in [&["--help"][..], &["serve", "--help"][..]] {
        let out = run(args, &HashMap::new()).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let said = text(&out);
        for v in sfgate::config::VARIABLES {
            let line = said
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", v.name)))
                .unwrap_or_else(|| panic!("{args:?} does not list {}:\n{said}", v.name));
            assert!(
                line.contains(&format!("[default: {}]", v.default)),
                "{args:?}: {line}"
            );
        }
    }
}

#[tokio::test]
async fn config_prints_the_effective_configuration_without_any_secret() {
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("METRICS_TOKEN", "cli-metrics-token-value".to_string());
    env.insert(
        "REDIS_URL",
        "redis://:cli-redis-password@127.0.0.1:6379".to_string(),
    );
    env.insert("UPSTREAM_URL", "http://127.0.0.1:8080".to_string());
    env.insert("METRICS_ADDR", "127.0.0.1:9100".to_string());
    let out = run(&["config"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    for secret in [
        SECRET,
        CLIENT_SECRET,
        "cli-metrics-token-value",
        "cli-redis-password",
    ] {
        assert!(!said.contains(secret), "{secret} printed:\n{said}");
    }
    for shown in [
        "SF_CLIENT_ID=cli-client",
        "SF_CLIENT_SECRET=<redacted>",
        "SESSION_SECRET=<redacted>",
        "UPSTREAM_URL=http://127.0.0.1:8080",
        "METRICS_ADDR=127.0.0.1:9100",
        "PORT=  # default: 3000",
        "# gateway mode: sfgate answers under /oauth2/, every other path goes to http://127.0.0.1:8080",
        "/metrics on 127.0.0.1:9100",
    ] {
        assert!(said.contains(shown), "{shown} missing:\n{said}");
    }
    // An invalid configuration is reported as `check` does, and nothing is printed as valid.
    env.insert(
        "SF_REDIRECT_URI",
        "http://127.0.0.1:3000/callback".to_string(),
    );
    let out = run(&["config"], &env).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("under /oauth2/"), "{}", text(&out));
}

#[tokio::test]
async fn revoke_user_without_redis_url_exits_2_saying_it_needs_it() {
    let env = valid_env("https://login.salesforce.com");
    let out = run(&["revoke-user", "0055j00000AlIcE"], &env).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("needs REDIS_URL"), "{}", text(&out));
    // A user id that is not one is a usage error too, before anything is published.
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("REDIS_URL", "redis://127.0.0.1:1".to_string());
    for bad in ["nobody", "00D5j00000AcMe1", "0055j00000AlIc!"] {
        let out = run(&["revoke-user", bad], &env).await;
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(
            text(&out).contains("not a Salesforce user id"),
            "{}",
            text(&out)
        );
    }
    // Unreachable Redis: nothing revoked, said so, exit 1.
    let out = run(&["revoke-user", "0055j00000AlIcE"], &env).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nothing was revoked"), "{}", text(&out));
}

#[tokio::test]
async fn revoke_user_publishes_and_prints_an_audit_line_without_secrets() {
    let Some(redis) = common::redis_server::RedisServer::start("cli_revoke_user") else {
        return;
    };
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("REDIS_URL", redis.url());
    let out = run(
        &["revoke-user", "0055j00000AlIcE", "--by", "ops-oncall"],
        &env,
    )
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for part in [
        "0055j00000AlIcEAAV",
        "ops-oncall",
        "user_revoked",
        "Freeze the user",
    ] {
        assert!(said.contains(part), "{part} not in: {said}");
    }
    assert!(
        !said.contains(SECRET) && !said.contains(CLIENT_SECRET),
        "{said}"
    );
    // The revocation log holds it, sealed: a replica started later reads it back.
    let mut conn = redis.connection();
    let logged: Vec<String> = redis::cmd("ZRANGE")
        .arg("sfgate:revocation-log")
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .expect("zrange");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(!logged[0].contains("AlIcE"), "sealed: {}", logged[0]);
}

#[tokio::test]
async fn proxy_prefix_moves_sfgates_paths_and_a_bad_one_exits_2() {
    let mut env = valid_env("https://login.salesforce.com");
    env.insert("UPSTREAM_URL", "http://127.0.0.1:9".to_string());
    env.insert("PROXY_PREFIX", "/sso".to_string());
    env.insert(
        "SF_REDIRECT_URI",
        "http://127.0.0.1:3000/sso/callback".to_string(),
    );
    let out = run(&["check"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("callback /sso/callback"),
        "{}",
        text(&out)
    );
    let out = run(&["config"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("sfgate answers under /sso/"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("PROXY_PREFIX=/sso\n"), "{}", text(&out));
    // The callback must follow the prefix in gateway mode.
    env.insert(
        "SF_REDIRECT_URI",
        "http://127.0.0.1:3000/oauth2/callback".to_string(),
    );
    let out = run(&["check"], &env).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("under /sso/"), "{}", text(&out));
    for bad in ["/", "/sso?x", "sso", "/a/../b"] {
        env.insert("PROXY_PREFIX", bad.to_string());
        for args in [&["check"][..], &["serve"][..]] {
            let out = run(args, &env).await;
            assert_eq!(out.status.code(), Some(2), "{bad} {args:?}: {}", text(&out));
            assert!(
                text(&out).contains("PROXY_PREFIX: "),
                "{bad}: {}",
                text(&out)
            );
        }
    }
}
