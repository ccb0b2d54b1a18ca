//! Gateway mode over HTTP: the real gateway and emulator, plus an echo app as the upstream,
//! all on loopback; and forward auth for nginx and Traefik.

use crate::common::*;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{any, get};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sfgate::salesforce::emulator::{Endpoint, Fault};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

const CHUNK_LEN: usize = 64 * 1024;
static CHUNK: [u8; CHUNK_LEN] = [b'x'; CHUNK_LEN];
const HUNDRED_MB: u64 = 100 * 1024 * 1024;

/// The upstream app: echoes what it received as JSON, streams or counts large bodies, and can
/// be slow. Counts every request that reaches it.
async fn start_echo() -> StubServer {
    StubServer::serve(
        Router::new()
            .route("/download/{n}", get(download))
            .route("/upload", any(upload))
            .route("/slow", get(slow))
            .route("/slow-body", get(slow_body))
            .fallback(echo),
    )
    .await
}

async fn echo(request: Request) -> Json<Value> {
    let headers = headers_json(request.headers());
    let (version, method, path, query) = (
        format!("{:?}", request.version()),
        request.method().to_string(),
        request.uri().path().to_string(),
        request.uri().query().map(str::to_string),
    );
    let body = axum::body::to_bytes(request.into_body(), 1024 * 1024)
        .await
        .unwrap_or_default();
    Json(json!({
        "version": version,
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn download(Path(n): Path<u64>) -> Response {
    let chunks = n / CHUNK_LEN as u64;
    let stream = futures_util::stream::iter(0..chunks)
        .map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK)));
    Response::new(Body::from_stream(stream))
}

async fn upload(request: Request) -> Json<Value> {
    let mut stream = request.into_body().into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received += bytes.len() as u64,
            Err(_) => break,
        }
    }
    Json(json!({ "received": received }))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(4)).await;
    "late"
}

/// Headers at once, then the body over about 2.4 s.
async fn slow_body() -> Response {
    let stream = futures_util::stream::iter(0..4).then(|i| async move {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        Ok::<_, std::io::Error>(Bytes::from_static(b"tick\n"))
    });
    Response::new(Body::from_stream(stream))
}

async fn gateway_for(echo: &StubServer, extra: &[(&str, &str)]) -> TestApp {
    spawn_gateway_for(&echo.url(), extra).await
}

fn one(echoed: &Value, name: &str) -> String {
    let values = received(echoed, name);
    assert_eq!(values.len(), 1, "{name}: {values:?} in {echoed}");
    values[0].clone()
}

const IDENTITY_HEADERS: [&str; 7] = [
    "x-salesforce-user-id",
    "x-salesforce-org-id",
    "x-salesforce-username",
    "x-salesforce-instance-url",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
];

fn spoofed(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    IDENTITY_HEADERS
        .iter()
        .fold(request, |r, name| r.header(*name, "spoofed"))
}

/// The resident set size of this test process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// The highest RSS seen while it runs, sampled from a thread of its own every few
/// milliseconds: a buffered body freed at the end would not show in a before/after reading.
struct PeakRss {
    stop: Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<u64>,
}

impl PeakRss {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = rss();
            while !flag.load(Ordering::SeqCst) {
                peak = peak.max(rss());
                std::thread::sleep(Duration::from_millis(2));
            }
            peak.max(rss())
        });
        Self { stop, sampler }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.sampler.join().expect("sampler")
    }
}

/// Sends raw bytes to the gateway (for requests a URL library would normalise first) and
/// returns the status code.
async fn raw_status(app: &TestApp, request: &str) -> u16 {
    let answer = crate::common::raw_http::send_raw(app.gateway.addr, request.as_bytes()).await;
    assert_ne!(answer.status, 0, "no status in {}", answer.head);
    answer.status
}

#[tokio::test]
async fn authenticated_request_reaches_the_upstream_with_identity_headers() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let t = app.tokens(ALICE.0);
    let r = spoofed(
        app.http
            .put(app.url("/app/items/7?sort=name&x=%20y"))
            .bearer_auth(&t.access_token)
            .header("x-instance-url", &t.instance_url)
            .header("x-custom", "kept")
            .header("x-forwarded-for", "6.6.6.6")
            .header("connection", "x-private")
            .header("x-private", "dropped")
            .body("payload"),
    )
    .send()
    .await
    .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["path"], "/app/items/7");
    assert_eq!(echoed["query"], "sort=name&x=%20y");
    assert_eq!(echoed["body"], "payload");
    assert_eq!(one(&echoed, "content-length"), "7");
    let org18 = sfgate::domain::OrgId::parse(ACME).expect("org").to_string();
    assert_eq!(one(&echoed, "x-salesforce-org-id"), org18);
    let user_id = one(&echoed, "x-salesforce-user-id");
    assert_eq!(user_id.len(), 18);
    assert_eq!(one(&echoed, "x-forwarded-user"), user_id);
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
    assert_eq!(one(&echoed, "x-forwarded-preferred-username"), ALICE.0);
    assert_eq!(one(&echoed, "x-forwarded-email"), "alice@acme.example");
    assert_eq!(
        one(&echoed, "x-salesforce-instance-url"),
        app.emulator.base_url()
    );
    assert_eq!(one(&echoed, "x-custom"), "kept");
    assert_eq!(one(&echoed, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(one(&echoed, "x-forwarded-proto"), "http");
    assert_eq!(
        one(&echoed, "x-forwarded-host"),
        app.gateway.addr.to_string()
    );
    assert_eq!(one(&echoed, "host"), echo.addr.to_string());
    for gone in ["authorization", "x-instance-url", "x-private", "connection"] {
        assert!(received(&echoed, gone).is_empty(), "{gone} in {echoed}");
    }
}

#[tokio::test]
async fn legacy_credentials_are_accepted_and_not_passed_on() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/app"))
        .header("bearer", &t.access_token)
        .header("instanceurl", &t.instance_url)
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
    assert!(received(&echoed, "bearer").is_empty(), "{echoed}");
    assert!(received(&echoed, "instanceurl").is_empty(), "{echoed}");
    // A bodiless GET stays bodiless upstream.
    assert!(
        received(&echoed, "transfer-encoding").is_empty(),
        "{echoed}"
    );
    assert!(received(&echoed, "content-length").is_empty(), "{echoed}");
}

#[tokio::test]
async fn a_path_in_upstream_url_is_kept_as_a_prefix() {
    let echo = start_echo().await;
    let upstream = format!("{}/base/", echo.url());
    let app = spawn_app_with(|env| {
        env.insert("UPSTREAM_URL".into(), upstream);
    })
    .await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/app/x?y=1", &t.access_token, &t.instance_url)
        .await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["path"], "/base/app/x");
    assert_eq!(echoed["query"], "y=1");
}

#[tokio::test]
async fn forwarded_headers_from_a_trusted_proxy_are_extended() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[("TRUST_PROXY", "true")]).await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/app"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .send()
        .await
        .expect("request");
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(one(&echoed, "x-forwarded-for"), "203.0.113.7, 127.0.0.1");
    assert_eq!(one(&echoed, "x-forwarded-proto"), "https");
    assert_eq!(one(&echoed, "x-forwarded-host"), "app.example.com");
}

#[tokio::test]
async fn session_cookies_are_stripped_and_other_cookies_kept() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let login = app.login(&browser_client(), ALICE).await;
    let login = expect_status(login, 303).await;
    let session = set_cookies(login.headers())
        .into_iter()
        .find(|c| c.starts_with("sfgate_session="))
        .and_then(|c| c.split(';').next().map(str::to_string))
        .expect("session cookie");
    let r = app
        .http
        .get(app.url("/dashboard"))
        .header(
            "cookie",
            format!("theme=dark; {session}; sfgate_login=stale"),
        )
        .header("cookie", "lang=en")
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
    let cookies = received(&echoed, "cookie").join("; ");
    assert!(cookies.contains("theme=dark"), "{cookies}");
    assert!(cookies.contains("lang=en"), "{cookies}");
    assert!(!cookies.contains("sfgate_"), "{cookies}");
}

#[tokio::test]
async fn pass_access_token_forwards_the_token_and_instance() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[("PASS_ACCESS_TOKEN", "true")]).await;
    let t = app.tokens(ALICE.0);
    let r = app
        .http
        .get(app.url("/app"))
        .header("bearer", &t.access_token)
        .header("instanceurl", &t.instance_url)
        .send()
        .await
        .expect("request");
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(
        one(&echoed, "authorization"),
        format!("Bearer {}", t.access_token)
    );
    assert_eq!(one(&echoed, "x-instance-url"), t.instance_url);
    assert!(received(&echoed, "bearer").is_empty(), "{echoed}");
}

#[tokio::test]
async fn skip_auth_routes_are_proxied_without_credentials_and_without_spoofed_identity() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[("SKIP_AUTH_ROUTES", "GET=^/public/,^/webhook$")]).await;
    let r = spoofed(
        app.http
            .get(app.url("/public/logo.png"))
            .header("authorization", "Bearer x"),
    )
    .send()
    .await
    .expect("request");
    let r = expect_status(r, 200).await;
    let echoed: Value = r.json().await.expect("json");
    for name in IDENTITY_HEADERS.iter().chain(&["authorization"]) {
        assert!(received(&echoed, name).is_empty(), "{name} in {echoed}");
    }
    for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
        let r = app
            .http
            .request(method.clone(), app.url("/webhook"))
            .send()
            .await
            .expect("request");
        expect_status_for(r, 200, format!("{method} /webhook")).await;
    }
    let hits = echo.hits();
    // The method-specific rule lets only GET through; the rule sees the path, not the query.
    let r = app
        .http
        .post(app.url("/public/logo.png"))
        .send()
        .await
        .expect("request");
    expect_status(r, 401).await;
    let r = app
        .http
        .get(app.url("/private?next=/public/"))
        .send()
        .await
        .expect("request");
    expect_status(r, 401).await;
    assert_eq!(
        echo.hits(),
        hits,
        "refused requests never reach the upstream"
    );
}

#[tokio::test]
async fn dot_segments_cannot_escape_a_skip_auth_rule() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[("SKIP_AUTH_ROUTES", "^/public/")]).await;
    for path in ["/public/../admin", "/public/%2e%2e/admin", "/public/./x"] {
        let status = raw_status(
            &app,
            &format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn unauthenticated_api_requests_get_401_and_never_reach_the_upstream() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let r = app
        .http
        .post(app.url("/app/items"))
        .body("x")
        .send()
        .await
        .expect("request");
    let r = expect_status(r, 401).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"sfgate\"");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");

    let r = app
        .get_with_token("/app", &format!("{ACME}!bogus"), &app.emulator.base_url())
        .await;
    let r = expect_status(r, 401).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token");

    let carol = app.tokens(CAROL.0);
    let r = app
        .get_with_token("/app", &carol.access_token, &carol.instance_url)
        .await;
    expect_status(r, 403).await;
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn browsers_without_a_session_are_sent_to_the_login_with_return_to() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let r = get_accepting(
        &app.http,
        app.url("/reports/q3?tab=sales"),
        "text/html,application/xhtml+xml",
    )
    .await;
    let r = expect_status(r, 303).await;
    assert_eq!(
        location(r.headers()),
        "/oauth2/authorize?return_to=%2Freports%2Fq3%3Ftab%3Dsales"
    );
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn a_renewed_session_cookie_is_set_on_the_proxied_response() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[("IDENTITY_CACHE_TTL", "0")]).await;
    let browser = browser_client();
    assert_eq!(app.login(&browser, ALICE).await.status(), 303);
    app.emulator.expire_access_tokens();
    let token_calls = app.emulator.calls(Endpoint::Token);
    let r = browser.get(app.url("/app")).send().await.expect("request");
    let r = expect_status(r, 200).await;
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls + 1);
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
    // The renewed cookie works without another renewal.
    let r = browser.get(app.url("/app")).send().await.expect("request");
    expect_status(r, 200).await;
    assert_eq!(app.emulator.calls(Endpoint::Token), token_calls + 1);
}

#[tokio::test]
async fn hundred_megabyte_upload_and_download_stream_without_buffering() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let t = app.tokens(ALICE.0);
    let before = rss();

    let peak = PeakRss::start();
    let chunks = HUNDRED_MB / CHUNK_LEN as u64;
    let body = futures_util::stream::iter(0..chunks)
        .map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK)));
    let r = app
        .http
        .post(app.url("/upload"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    let r = expect_status(r, 200).await;
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["received"], HUNDRED_MB);
    let upload_growth = peak.finish().saturating_sub(before);

    let peak = PeakRss::start();
    let r = app
        .get_with_token(
            &format!("/download/{HUNDRED_MB}"),
            &t.access_token,
            &t.instance_url,
        )
        .await;
    let r = expect_status(r, 200).await;
    let mut stream = r.bytes_stream();
    let mut downloaded = 0u64;
    while let Some(chunk) = stream.next().await {
        downloaded += chunk.expect("chunk").len() as u64;
    }
    assert_eq!(downloaded, HUNDRED_MB);
    let download_growth = peak.finish().saturating_sub(before);

    // Buffering either body would add 100 MB at its peak; streaming costs a few chunks (the
    // bound leaves room for allocator noise from tests running in parallel).
    let limit = 25 * 1024 * 1024;
    assert!(
        upload_growth < limit,
        "upload grew RSS by {upload_growth} bytes at its peak"
    );
    assert!(
        download_growth < limit,
        "download grew RSS by {download_growth} bytes at its peak"
    );
}

#[tokio::test]
async fn the_upstream_gets_http_1_1_by_default_and_http_2_with_upstream_http2() {
    let echo = start_echo().await;
    for (setting, version) in [("false", "HTTP/1.1"), ("true", "HTTP/2.0")] {
        let app = gateway_for(&echo, &[("UPSTREAM_HTTP2", setting)]).await;
        let t = app.tokens(ALICE.0);
        let r = spoofed(
            app.http
                .post(app.url("/app/h2?x=1"))
                .bearer_auth(&t.access_token)
                .header("x-instance-url", &t.instance_url),
        )
        .body("over two")
        .send()
        .await
        .expect("request");
        let r = expect_status_for(r, 200, &setting).await;
        let echoed: Value = r.json().await.expect("json");
        assert_eq!(echoed["version"], version);
        assert_eq!(echoed["path"], "/app/h2");
        assert_eq!(echoed["query"], "x=1");
        assert_eq!(echoed["body"], "over two");
        assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
        assert!(received(&echoed, "authorization").is_empty());
    }
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let app = spawn_app_with(|env| {
        env.insert("UPSTREAM_URL".into(), upstream);
    })
    .await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/app", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 502).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "bad_gateway");
    assert!(body["error_description"].as_str().is_some());
}

#[tokio::test]
async fn slow_upstream_is_504_but_a_slow_body_is_not_cut_off() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[("UPSTREAM_TIMEOUT", "1")]).await;
    let t = app.tokens(ALICE.0);
    let started = std::time::Instant::now();
    let r = app
        .get_with_token("/slow", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 504).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "gateway_timeout");

    // The timeout covers waiting for the response headers, not transferring the body.
    let r = app
        .get_with_token("/slow-body", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 200).await;
    assert_eq!(r.text().await.expect("body"), "tick\n".repeat(4));
}

#[tokio::test]
async fn own_routes_are_served_by_sfgate_and_never_proxied() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let r = app.http.get(app.url("/healthz")).send().await.expect("r");
    expect_status(r, 200).await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/secured", &t.access_token, &t.instance_url)
        .await;
    assert_eq!(r.text().await.expect("body"), "Accessing secured resource");
    for path in ["/oauth2/nothing-here", "/assets/missing.css"] {
        let r = app
            .get_with_token(path, &t.access_token, &t.instance_url)
            .await;
        let r = expect_status_for(r, 404, &path).await;
        // sfgate's own answer, so sfgate's page policies apply.
        assert!(
            r.headers().contains_key("content-security-policy"),
            "{path}"
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
    }
    let scraped = scrape(&app).await;
    assert!(scraped.contains("sfgate_http_requests_total"), "{scraped}");
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn proxied_requests_are_counted_as_proxy_and_keep_the_upstreams_headers() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let t = app.tokens(ALICE.0);
    // DELETE is used by no other test in this binary, which shares one metrics recorder.
    let series = |route: &'static str, status: &'static str| {
        [("method", "DELETE"), ("route", route), ("status", status)]
    };
    let before = scrape(&app).await;
    let refused = app.http.delete(app.url("/app/x")).send().await.expect("r");
    expect_status(refused, 401).await;
    let browser_refused = app
        .http
        .delete(app.url("/app/x"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("r");
    expect_status(browser_refused, 303).await;
    let proxied = app
        .http
        .delete(app.url("/app/x"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .send()
        .await
        .expect("r");
    let proxied = expect_status(proxied, 200).await;
    // sfgate's page policies are for its own pages; the upstream sets its own.
    for own in [
        "content-security-policy",
        "x-frame-options",
        "cache-control",
    ] {
        assert!(
            proxied.headers().get(own).is_none(),
            "{own} on a proxied answer"
        );
    }
    let after = scrape(&app).await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    let requests = "sfgate_http_requests_total";
    assert_eq!(grew(requests, &series("proxy", "401")), 1.0, "{after}");
    assert_eq!(grew(requests, &series("proxy", "303")), 1.0, "{after}");
    assert_eq!(grew(requests, &series("proxy", "200")), 1.0, "{after}");
    assert_eq!(grew(requests, &series("unmatched", "401")), 0.0);
    assert!(grew("sfgate_proxy_requests_total", &[("status", "200")]) >= 1.0);
}

#[tokio::test]
async fn own_routes_keep_their_body_limit_in_gateway_mode() {
    let echo = start_echo().await;
    let app = gateway_for(&echo, &[]).await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("code={}", "a".repeat(100 * 1024)))
        .send()
        .await
        .expect("request");
    expect_status(r, 413).await;
}

#[tokio::test]
async fn without_an_upstream_unknown_paths_are_404() {
    let app = spawn_app().await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/app", &t.access_token, &t.instance_url)
        .await;
    expect_status(r, 404).await;
}

async fn forward_auth(app: &TestApp, headers: HeaderMap) -> reqwest::Response {
    app.http
        .get(app.url("/oauth2/auth"))
        .headers(headers)
        .send()
        .await
        .expect("forward auth")
}

fn header_map(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                axum::http::HeaderName::from_static(k),
                v.parse().expect("value"),
            )
        })
        .collect()
}

#[tokio::test]
async fn forward_auth_answers_202_with_identity_headers_for_every_credential_form() {
    let app = spawn_app().await;
    let t = app.tokens(ALICE.0);
    let bearer = format!("Bearer {}", t.access_token);
    let header_forms = [
        header_map(&[
            ("authorization", &bearer),
            ("x-instance-url", &t.instance_url),
        ]),
        header_map(&[
            ("bearer", &t.access_token),
            ("instanceurl", &t.instance_url),
        ]),
    ];
    for headers in header_forms {
        let r = forward_auth(&app, headers).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()["x-salesforce-username"], ALICE.0);
        assert_eq!(r.headers()["x-forwarded-email"], "alice@acme.example");
        assert_eq!(
            r.headers()["x-salesforce-instance-url"],
            app.emulator.base_url().as_str()
        );
        for name in IDENTITY_HEADERS {
            assert!(r.headers().contains_key(name), "{name}");
        }
        assert!(!r.headers().contains_key("authorization"));
    }
    let browser = browser_client();
    assert_eq!(app.login(&browser, ALICE).await.status(), 303);
    let r = browser
        .head(app.url("/oauth2/auth"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["x-salesforce-username"], ALICE.0);
}

#[tokio::test]
async fn forward_auth_renews_an_expired_session_and_returns_the_cookie() {
    let app = spawn_app_with(|env| {
        env.insert("IDENTITY_CACHE_TTL".into(), "0".into());
    })
    .await;
    let browser = browser_client();
    assert_eq!(app.login(&browser, ALICE).await.status(), 303);
    app.emulator.expire_access_tokens();
    let r = browser
        .get(app.url("/oauth2/auth"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["x-salesforce-username"], ALICE.0);
    assert!(set_cookies(r.headers())
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
}

#[tokio::test]
async fn forward_auth_refuses_with_json_and_never_redirects() {
    let app = spawn_app().await;
    let r = forward_auth(&app, header_map(&[("accept", "text/html")])).await;
    let r = expect_status(r, 401).await;
    assert!(r.headers().get("location").is_none());
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("application/json"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
    for name in IDENTITY_HEADERS {
        assert!(body.get(name).is_none());
    }

    let carol = app.tokens(CAROL.0);
    let r = forward_auth(
        &app,
        header_map(&[
            ("bearer", &carol.access_token),
            ("instanceurl", &carol.instance_url),
            ("accept", "text/html"),
        ]),
    )
    .await;
    let r = expect_status(r, 403).await;
    assert!(!r.headers().contains_key("x-salesforce-user-id"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "org_not_allowed");
}

#[tokio::test]
async fn forward_auth_reports_salesforce_trouble_as_502_503_and_504() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_instance = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let origins = dead_instance.clone();
    let app = spawn_app_with(move |env| {
        let emulator = env["SF_INSTANCE_ORIGINS"].clone();
        env.insert(
            "SF_INSTANCE_ORIGINS".into(),
            format!("{emulator},{origins}"),
        );
    })
    .await;
    let t = app.tokens(ALICE.0);
    let with_token =
        |instance: &str| header_map(&[("bearer", &t.access_token), ("instanceurl", instance)]);

    let r = forward_auth(&app, with_token(&dead_instance)).await;
    expect_status(r, 503).await;

    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let r = forward_auth(&app, with_token(&t.instance_url)).await;
    expect_status(r, 502).await;

    app.emulator.set_fault_for(Endpoint::UserInfo, Fault::Hang);
    let r = forward_auth(&app, with_token(&t.instance_url)).await;
    let r = expect_status(r, 504).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable");
}
