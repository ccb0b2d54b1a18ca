//! The trust boundary (issue 11): the app behind sfgate sees exactly what sfgate verified.
//!
//! Requests are written as raw bytes on a `TcpStream` wherever a client library would
//! normalise them (header name spelling, encoded paths), against the real gateway in gateway
//! mode, with a real upstream that echoes what it received.

use crate::common::*;
use axum::extract::Request;
use axum::{Json, Router};
use futures_util::StreamExt;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// Log capture, for the request-id test.

use crate::helpers::log_watch::{log_text, watch};

// ---------------------------------------------------------------------------------------------
// The upstream app and raw requests.

/// The upstream app: echoes the method, path and every header (name as received, values) as
/// JSON, and counts requests.
async fn start_echo() -> StubServer {
    StubServer::serve(Router::new().fallback(echo)).await
}

async fn echo(request: Request) -> Json<Value> {
    let headers: Vec<Value> = request
        .headers()
        .iter()
        .map(|(name, value)| json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())]))
        .collect();
    Json(json!({
        "path": request.uri().path(),
        "headers": headers,
    }))
}

/// The (name, value) pairs the echo app received.
fn received(echoed: &Value) -> Vec<(String, String)> {
    echoed["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().expect("name").to_string(),
                pair[1].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

fn received_value(echoed: &Value, name: &str) -> Option<String> {
    received(echoed)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

async fn gateway(echo: &StubServer, extra: &[(&str, &str)]) -> TestApp {
    spawn_gateway_for(&echo.url(), extra).await
}

use crate::common::raw_http::Answer;

/// Sends one raw HTTP/1.1 request (`Connection: close` is added) and reads the whole answer.
async fn send_raw(addr: SocketAddr, request_line: &str, headers: &[(&str, &str)]) -> Answer {
    let mut raw = format!("{request_line}\r\nHost: gw.example\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let answer = crate::common::raw_http::send_raw(addr, raw.as_bytes()).await;
    assert_ne!(answer.status, 0, "no status in {}", answer.head);
    answer
}

// ---------------------------------------------------------------------------------------------
// 1. Header names.

/// Every header an app may read as "sfgate vouches for this", and the other headers sfgate owns.
const PROTECTED: [&str; 18] = [
    "X-Salesforce-User-Id",
    "X-Salesforce-Org-Id",
    "X-Salesforce-Username",
    "X-Salesforce-Instance-Url",
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Sfgate-Assertion",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Real-IP",
    "X-Instance-Url",
    "X-Request-Id",
    "Forwarded",
    "X-Forwarded-Prefix",
    "X-Original-URL",
    "Authorization",
];

const CREDENTIALS: [&str; 2] = ["Authorization", "X-Instance-Url"];

/// Whether the app could read `name` as `protected`: same letters, `-` and `_` alike.
fn reads_as(name: &str, protected: &str) -> bool {
    let fold = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    fold(name) == fold(protected)
}

/// The look-alike, sent on a skip-auth route and with real credentials, never reaches the
/// app under any spelling the app could read as the protected name.
async fn assert_forgery_does_not_reach_the_app(
    app: &TestApp,
    bearer: &str,
    instance: &str,
    spelling: &str,
    protected: &str,
) {
    // Not a safe request id either (a space), so an exact `X-Request-Id` is replaced too.
    const FORGED: &str = "FORGED 0055j00000EvIl1";
    for (path, credentials) in [("/public/x", false), ("/private/x", true)] {
        let mut headers = vec![(spelling, FORGED)];
        let auth = format!("Bearer {bearer}");
        if credentials {
            headers.push(("Authorization", &auth));
            headers.push(("X-Instance-Url", instance));
        }
        let answer = send_raw(app.gateway.addr, &format!("GET {path} HTTP/1.1"), &headers).await;
        assert_eq!(
            answer.status,
            200,
            "{spelling} on {path}: {}",
            answer.text()
        );
        let echoed = answer.json();
        for (name, value) in received(&echoed) {
            assert!(
                !(reads_as(&name, protected) && value.contains(FORGED)),
                "{spelling} on {path} reached the app as {name}: {value}"
            );
            assert!(
                !value.contains(FORGED),
                "the forged value reached the app in {name}: {value}"
            );
        }
    }
}

#[tokio::test]
async fn underscore_look_alikes_of_owned_headers_never_reach_the_upstream() {
    let echo = start_echo().await;
    for setting in ["drop", "keep"] {
        let app = gateway(
            &echo,
            &[
                ("SKIP_AUTH_ROUTES", "GET=^/public/"),
                ("PROXY_UNDERSCORE_HEADERS", setting),
            ],
        )
        .await;
        let tokens = app.tokens(ALICE.0);
        for spelling in [
            "X_Salesforce_User_Id",
            "x_salesforce_user-id",
            "X-Salesforce_Org_Id",
            "X_FORWARDED_EMAIL",
            "X_Forwarded_For",
            "X-Forwarded_For",
            "X_Real_IP",
            "X_Sfgate_Assertion",
            "x_instance_url",
            "X_Request_Id",
        ] {
            let protected = PROTECTED
                .iter()
                .find(|p| reads_as(spelling, p))
                .expect("a protected name");
            assert_forgery_does_not_reach_the_app(
                &app,
                &tokens.access_token,
                &tokens.instance_url,
                spelling,
                protected,
            )
            .await;
        }
        // The real identity still arrives, from sfgate.
        let auth = format!("Bearer {}", tokens.access_token);
        let answer = send_raw(
            app.gateway.addr,
            "GET /private/x HTTP/1.1",
            &[
                ("Authorization", &auth),
                ("X-Instance-Url", &tokens.instance_url),
                ("X_Custom_Thing", "mine"),
            ],
        )
        .await;
        let echoed = answer.json();
        assert!(received_value(&echoed, "x-salesforce-user-id").is_some());
        // Other underscore names follow the setting.
        assert_eq!(
            received_value(&echoed, "x_custom_thing").is_some(),
            setting == "keep",
            "{setting}: {echoed}"
        );
    }
}

#[tokio::test]
async fn forward_auth_refuses_look_alikes_it_cannot_strip() {
    let app = spawn_app().await;
    let tokens = app.tokens(ALICE.0);
    let auth = format!("Bearer {}", tokens.access_token);
    let ok = send_raw(
        app.gateway.addr,
        "GET /oauth2/auth HTTP/1.1",
        &[
            ("Authorization", &auth),
            ("X-Instance-Url", &tokens.instance_url),
            ("X-Custom_Thing", "not owned"),
        ],
    )
    .await;
    assert_eq!(ok.status, 202, "{}", ok.head);
    let refused = send_raw(
        app.gateway.addr,
        "GET /oauth2/auth HTTP/1.1",
        &[
            ("Authorization", &auth),
            ("X-Instance-Url", &tokens.instance_url),
            ("X_Salesforce_User_Id", "0055j00000EvIl1"),
            ("Accept", "text/html"),
        ],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.head);
    assert_eq!(refused.json()["error"], "invalid_request");
}

/// Every spelling an app could read as `name`: each letter in either case, each `-` as `-`
/// or `_`.
fn spelling_of(name: &'static str) -> impl Strategy<Value = String> {
    let parts: Vec<BoxedStrategy<String>> = name
        .chars()
        .map(|c| match c {
            '-' => prop_oneof![Just("-".to_string()), Just("_".to_string())].boxed(),
            c => prop_oneof![
                Just(c.to_ascii_lowercase().to_string()),
                Just(c.to_ascii_uppercase().to_string())
            ]
            .boxed(),
        })
        .collect();
    parts.prop_map(|p| p.concat())
}

fn any_protected_spelling() -> impl Strategy<Value = (String, &'static str)> {
    proptest::sample::select(PROTECTED.to_vec())
        .prop_flat_map(|name| (spelling_of(name), Just(name)))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

struct PropGateway {
    app: TestApp,
    _echo: StubServer,
    bearer: String,
    instance: String,
}

fn prop_gateway() -> &'static PropGateway {
    static GW: OnceLock<PropGateway> = OnceLock::new();
    GW.get_or_init(|| {
        runtime().block_on(async {
            let echo = start_echo().await;
            let app = gateway(
                &echo,
                &[
                    ("SKIP_AUTH_ROUTES", "GET=^/public/"),
                    ("PROXY_UNDERSCORE_HEADERS", "keep"),
                ],
            )
            .await;
            let tokens = app.tokens(ALICE.0);
            PropGateway {
                bearer: tokens.access_token.clone(),
                instance: tokens.instance_url.clone(),
                app,
                _echo: echo,
            }
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// For any casing and `-`/`_` spelling of a protected name, nothing of the client's value
    /// reaches the upstream, with or without credentials (and with underscore names kept, so
    /// only the look-alike rule stands between the client and the app).
    #[test]
    fn no_spelling_of_a_protected_header_carries_a_client_value((spelling, protected) in any_protected_spelling()) {
        let gw = prop_gateway();
        // Credential headers spelled exactly are the credentials themselves (sfgate reads and
        // then removes them, tested elsewhere); their look-alikes are tested here.
        prop_assume!(spelling.contains('_') || !CREDENTIALS.contains(&protected));
        runtime().block_on(assert_forgery_does_not_reach_the_app(
            &gw.app, &gw.bearer, &gw.instance, &spelling, protected,
        ));
    }
}

#[tokio::test]
async fn skipped_requests_cannot_ask_the_app_for_another_method() {
    let echo = start_echo().await;
    let app = gateway(
        &echo,
        &[
            ("SKIP_AUTH_ROUTES", "POST=^/webhook$"),
            ("PROXY_UNDERSCORE_HEADERS", "keep"),
        ],
    )
    .await;
    let answer = send_raw(
        app.gateway.addr,
        "POST /webhook HTTP/1.1",
        &[
            ("Content-Length", "0"),
            ("X-HTTP-Method-Override", "DELETE"),
            ("X-HTTP-Method", "DELETE"),
            ("X_Method_Override", "DELETE"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    let echoed = answer.json();
    for (name, value) in received(&echoed) {
        assert!(!value.contains("DELETE"), "{name}: {value} reached the app");
    }
    // Authenticated requests keep them: apps use them legitimately.
    let tokens = app.tokens(ALICE.0);
    let auth = format!("Bearer {}", tokens.access_token);
    let answer = send_raw(
        app.gateway.addr,
        "POST /api/items HTTP/1.1",
        &[
            ("Content-Length", "0"),
            ("Authorization", &auth),
            ("X-Instance-Url", &tokens.instance_url),
            ("X-HTTP-Method-Override", "PATCH"),
        ],
    )
    .await;
    assert_eq!(
        received_value(&answer.json(), "x-http-method-override").as_deref(),
        Some("PATCH")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Paths.

#[tokio::test]
async fn encoded_and_ambiguous_paths_are_refused_before_skip_auth_rules() {
    let echo = start_echo().await;
    let app = gateway(&echo, &[("SKIP_AUTH_ROUTES", r"GET=^/public/,GET=\.css$")]).await;
    for path in [
        "/public/..%2fadmin",
        "/public/..%2Fadmin",
        "/public/%2e%2e/admin",
        "/public/%2e%2e%2fadmin",
        "/public/%252e%252e/admin",
        "/public/%25252e%25252e%25252fadmin",
        "/public/..%5cadmin",
        "/public/..\\admin",
        "/public/..;/admin",
        "/public/%2e%2e;x=1/admin",
        "/public/..%3b/admin",
        "/public/x%00.css",
        "/public/%0d%0aX:y",
        "/public/%c0%ae%c0%ae/admin",
        "/public/%ef%bc%8e%ef%bc%8e/admin",
        "/public/%2525252e%2525252e/admin",
    ] {
        for accept in ["application/json", "text/html"] {
            let answer = send_raw(
                app.gateway.addr,
                &format!("GET {path} HTTP/1.1"),
                &[("Accept", accept)],
            )
            .await;
            assert_eq!(answer.status, 400, "{path}: {}", answer.head);
            if accept == "application/json" {
                assert_eq!(answer.json()["error"], "invalid_request", "{path}");
            } else {
                assert!(answer.text().contains("<html"), "{path}: an HTML page");
            }
        }
    }
    assert_eq!(echo.hits(), 0, "nothing ambiguous reached the upstream");

    // What apps use still works: encoded text, `;` in ordinary segments, dots inside names.
    for path in [
        "/public/a%20b",
        "/public/x;v=1/y",
        "/public/a.b..c",
        "/app.css",
    ] {
        let answer = send_raw(app.gateway.addr, &format!("GET {path} HTTP/1.1"), &[]).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.head);
        assert_eq!(
            answer.json()["path"],
            path,
            "the upstream gets the path as sent"
        );
    }
    // A rule must match every reading: to Tomcat `/admin;.css` is `/admin`.
    for path in ["/admin;.css", "/admin%3b.css", "/admin%3B.css"] {
        let answer = send_raw(app.gateway.addr, &format!("GET {path} HTTP/1.1"), &[]).await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.head);
    }
}

#[tokio::test]
async fn encoded_slashes_pass_only_when_allowed_and_never_around_dot_segments() {
    let echo = start_echo().await;
    let app = gateway(
        &echo,
        &[
            ("SKIP_AUTH_ROUTES", "GET=^/public/"),
            ("ALLOW_ENCODED_SLASHES", "true"),
        ],
    )
    .await;
    let answer = send_raw(app.gateway.addr, "GET /public/a%2Fb HTTP/1.1", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.json()["path"], "/public/a%2Fb");
    for path in ["/public/..%2fadmin", "/public/..%5cadmin"] {
        let answer = send_raw(app.gateway.addr, &format!("GET {path} HTTP/1.1"), &[]).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.head);
    }
    let strict = gateway(&echo, &[("SKIP_AUTH_ROUTES", "GET=^/public/")]).await;
    let answer = send_raw(strict.gateway.addr, "GET /public/a%2Fb HTTP/1.1", &[]).await;
    assert_eq!(answer.status, 400, "{}", answer.head);
}

// ---------------------------------------------------------------------------------------------
// 4. Request ids.

#[tokio::test]
async fn unsafe_request_ids_are_replaced_before_they_are_logged_or_forwarded() {
    watch();
    let echo = start_echo().await;
    let app = gateway(&echo, &[("SKIP_AUTH_ROUTES", "GET=^/public/")]).await;
    let kept = "3f2b8c1e-0d4a-4c8e-9a3b-2f5d6e7f8a9b";
    let answer = send_raw(
        app.gateway.addr,
        "GET /public/kept HTTP/1.1",
        &[("X-Request-Id", kept)],
    )
    .await;
    assert_eq!(
        received_value(&answer.json(), "x-request-id").as_deref(),
        Some(kept)
    );
    assert!(answer.head.contains(kept), "echoed back: {}", answer.head);

    let long = "a".repeat(65);
    for forged in [
        "LOGFORGE status=200 user_id=0055j00000AlIcE",
        "LOGFORGE\"}{\"user_id\":\"x",
        long.as_str(),
    ] {
        let answer = send_raw(
            app.gateway.addr,
            "GET /public/replaced HTTP/1.1",
            &[("X-Request-Id", forged)],
        )
        .await;
        assert_eq!(answer.status, 200);
        let forwarded = received_value(&answer.json(), "x-request-id").expect("an id");
        assert_ne!(forwarded, forged);
        assert_eq!(forwarded.len(), 36, "a generated UUID: {forwarded}");
        assert!(!answer.head.contains(forged));
    }
    // Two ids at once: neither is kept.
    let answer = send_raw(
        app.gateway.addr,
        "GET /public/two HTTP/1.1",
        &[("X-Request-Id", "one"), ("X-Request-Id", "two")],
    )
    .await;
    let forwarded = received_value(&answer.json(), "x-request-id").expect("an id");
    assert_eq!(forwarded.len(), 36, "{forwarded}");

    let log = log_text();
    assert!(log.contains(kept), "a safe id is logged");
    assert!(
        !log.contains("LOGFORGE"),
        "a forged id reached the log:\n{log}"
    );
    assert!(!log.contains(&long));
}

// ---------------------------------------------------------------------------------------------
// 5. sfgate's cookies, in any spelling sfgate reads.

#[tokio::test]
async fn the_session_cookie_in_an_encoded_spelling_is_read_and_never_forwarded() {
    let echo = start_echo().await;
    let app = gateway(&echo, &[]).await;
    let browser = browser_client();
    let r = app.login(&browser, ALICE).await;
    let pair = set_cookies(r.headers())
        .into_iter()
        .find(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;"))
        .expect("session cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let value = pair.split_once('=').expect("pair").1.to_string();
    for name in ["sfgate%5Fsession", "%73fgate_session", "sfgate_%73ession"] {
        let cookie = format!("theme=dark; {name}={value}");
        let answer = send_raw(
            app.gateway.addr,
            "GET /private/x HTTP/1.1",
            &[("Cookie", &cookie)],
        )
        .await;
        assert_eq!(answer.status, 200, "{name} is read as the session");
        let echoed = answer.json();
        assert_eq!(
            received_value(&echoed, "cookie").as_deref(),
            Some("theme=dark"),
            "{name}: {echoed}"
        );
        assert!(
            !answer.text().contains(&value),
            "the sealed session reached the app"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Per-client Salesforce budget.

/// A client whose connections come from `source` (another loopback address is another client).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

#[tokio::test]
async fn one_client_cannot_spend_more_than_its_salesforce_validation_budget() {
    use sfgate::salesforce::emulator::Endpoint;
    let app = spawn_app_with(|env| {
        env.insert("VALIDATION_MISSES_PER_MINUTE".into(), "3".into());
    })
    .await;
    let instance = app.emulator.base_url();
    let attacker = client_from("127.0.0.1");
    let bad = |i: u32| format!("{ACME}!invented-token-{i}");
    let get = |client: &reqwest::Client, token: String| {
        client
            .get(app.url("/api/me"))
            .bearer_auth(token)
            .header("x-instance-url", &instance)
            .send()
    };
    // Real users behind one address (an office NAT) cost nothing: valid tokens give their
    // call back.
    for _ in 0..5 {
        let good = app.tokens(ALICE.0);
        let r = get(&attacker, good.access_token).await.expect("request");
        expect_status(r, 200).await;
    }
    let before = app.emulator.calls(Endpoint::UserInfo);
    for i in 0..3 {
        let r = get(&attacker, bad(i)).await.expect("request");
        expect_status_for(r, 401, format!("token {i} is checked at Salesforce")).await;
    }
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), before + 3);

    let r = get(&attacker, bad(3)).await.expect("request");
    let r = expect_status(r, 429).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(
        app.emulator.calls(Endpoint::UserInfo),
        before + 3,
        "the refused token cost no Salesforce call"
    );
    // Tokens already known cost nothing and are still answered.
    let r = get(&attacker, bad(0)).await.expect("request");
    assert_eq!(
        r.status(),
        401,
        "a known bad token is answered from the cache"
    );
    let good = app.tokens(ALICE.0);
    let r = get(&attacker, good.access_token.clone())
        .await
        .expect("request");
    assert_eq!(
        r.status(),
        429,
        "a new token, even a good one, waits for the budget"
    );

    // Another client address has a budget of its own.
    let other = client_from("127.0.0.2");
    let r = get(&other, bad(100)).await.expect("request");
    expect_status(r, 401).await;
    let r = get(&other, good.access_token.clone())
        .await
        .expect("request");
    expect_status(r, 200).await;
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), before + 5);
    // The valid token's call was given back: the other client still has 3 - 1 = 2 bad ones.
    for i in 101..103 {
        let r = get(&other, bad(i)).await.expect("request");
        expect_status_for(r, 401, format!("token {i}")).await;
    }
    let r = get(&other, bad(103)).await.expect("request");
    expect_status(r, 429).await;

    let scrape = scrape(&app).await;
    assert!(metric(&scrape, "sfgate_validation_budget_exceeded_total", &[]) >= 2.0);
}

// ---------------------------------------------------------------------------------------------
// Connection limits: HTTP/2 deadlines and MAX_CONNECTIONS (raw h2c with prior knowledge).

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut frame = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The client preface and an empty SETTINGS frame.
fn h2_hello() -> Vec<u8> {
    let mut hello = H2_PREFACE.to_vec();
    hello.extend(h2_frame(0x4, 0, 0, &[]));
    hello
}

/// `GET /` with authority `x`, HPACK-encoded from the static table.
const GET_ROOT_HPACK: [u8; 6] = [0x82, 0x86, 0x84, 0x41, 0x01, b'x'];

/// Reads until the server closes the connection; `Err` if still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(seen),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// The frame types (and their streams) in a byte stream from the server.
fn frames(mut bytes: &[u8]) -> Vec<(u8, u32)> {
    let mut out = Vec::new();
    while bytes.len() >= 9 {
        let len =
            (usize::from(bytes[0]) << 16) | (usize::from(bytes[1]) << 8) | usize::from(bytes[2]);
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        out.push((bytes[3], stream));
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    out
}

async fn plain_server(
    limits: sfgate::server::ConnectionLimits,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sfgate::server::serve(
        listener,
        app,
        async {
            let _ = stopped.await;
        },
        limits,
    ));
    (addr, stop)
}

#[tokio::test]
async fn http2_connections_without_a_complete_request_are_closed_at_the_deadline() {
    let deadline = Duration::from_millis(600);
    let (addr, _stop) = plain_server(sfgate::server::ConnectionLimits {
        header_read_timeout: deadline,
        ..Default::default()
    })
    .await;
    // Deadline, then the grace for a graceful close, plus generous slack for a loaded machine.
    let limit = deadline + sfgate::server::CLOSE_GRACE + Duration::from_secs(4);

    // Before the first connection is accepted, so the deadline cannot have started earlier.
    let started = std::time::Instant::now();
    // 1. The preface, then nothing.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(&h2_hello()).await.expect("write");
    // 2. A HEADERS frame without END_HEADERS: its CONTINUATION never comes.
    let mut incomplete = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = h2_hello();
    bytes.extend(h2_frame(0x1, 0x1, 1, &GET_ROOT_HPACK[..2]));
    incomplete.write_all(&bytes).await.expect("write");
    // 3. Not even a preface.
    let mut silent = TcpStream::connect(addr).await.expect("connect");

    for (what, stream) in [
        ("preface only", &mut idle),
        ("incomplete HEADERS", &mut incomplete),
        ("nothing at all", &mut silent),
    ] {
        let answer = closed_within(stream, limit).await;
        assert!(answer.is_ok(), "{what}: still open after {limit:?}");
    }
    assert!(
        started.elapsed() >= deadline,
        "closed no earlier than the deadline ({:?})",
        started.elapsed()
    );

    // A complete HTTP/2 request is answered, and the connection then closes once idle.
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = h2_hello();
    bytes.extend(h2_frame(0x1, 0x5, 1, &GET_ROOT_HPACK));
    ok.write_all(&bytes).await.expect("write");
    let seen = closed_within(&mut ok, limit)
        .await
        .expect("closed once idle");
    let frames = frames(&seen);
    assert!(
        frames.contains(&(0x1, 1)),
        "a HEADERS response on stream 1: {frames:?}"
    );
    assert!(
        frames.contains(&(0x7, 0)),
        "a GOAWAY before closing: {frames:?}"
    );
}

#[tokio::test]
async fn an_open_request_keeps_its_connection_past_the_idle_deadline() {
    let deadline = Duration::from_millis(300);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // A response body that takes three deadlines to arrive.
    let app = Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            let stream = futures_util::stream::iter(0..3).then(|_| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"tick\n"))
            });
            axum::body::Body::from_stream(stream)
        }),
    );
    tokio::spawn(sfgate::server::serve(
        listener,
        app,
        std::future::pending(),
        sfgate::server::ConnectionLimits {
            header_read_timeout: deadline,
            ..Default::default()
        },
    ));
    let answer = send_raw(addr, "GET /slow HTTP/1.1", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "tick\ntick\ntick\n");
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_until_one_closes() {
    watch();
    let (addr, _stop) = plain_server(sfgate::server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 2,
        ..Default::default()
    })
    .await;
    let mut first = TcpStream::connect(addr).await.expect("connect");
    first.write_all(&h2_hello()).await.expect("write");
    let mut second = TcpStream::connect(addr).await.expect("connect");
    second.write_all(&h2_hello()).await.expect("write");
    // Both are being served: each gets the server's SETTINGS.
    for stream in [&mut first, &mut second] {
        let mut buf = [0u8; 9];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf))
            .await
            .expect("served in time")
            .expect("settings");
        assert_eq!(buf[3], 0x4, "a SETTINGS frame");
    }

    let third = tokio::spawn(send_raw(addr, "GET / HTTP/1.1", &[]));
    let fourth = tokio::spawn(send_raw(addr, "GET / HTTP/1.1", &[]));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !third.is_finished() && !fourth.is_finished(),
        "connections beyond the limit are held off"
    );

    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("answered once a slot is free")
        .expect("task");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "ok");
    drop(second);
    let answer = tokio::time::timeout(Duration::from_secs(10), fourth)
        .await
        .expect("answered once another slot is free")
        .expect("task");
    assert_eq!(answer.status, 200);
    let said = log_text().matches("connection limit reached").count();
    assert_eq!(
        said, 1,
        "the limit is logged once, not per waiting connection"
    );
}

#[tokio::test]
async fn the_gateway_applies_header_read_timeout_to_http2() {
    let app = spawn_app_with(|env| {
        env.insert("HEADER_READ_TIMEOUT".into(), "1".into());
    })
    .await;
    let started = std::time::Instant::now();
    let mut idle = TcpStream::connect(app.gateway.addr).await.expect("connect");
    idle.write_all(&h2_hello()).await.expect("write");
    let closed = closed_within(&mut idle, Duration::from_secs(8)).await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/2 connection to the gateway stayed open"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the deadline"
    );
}

#[tokio::test]
async fn http2_peers_that_stop_answering_pings_are_dropped_even_mid_request() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // A request that stays in progress far longer than the test: only the pings can end it.
    let app = Router::new().route(
        "/",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            "late"
        }),
    );
    tokio::spawn(sfgate::server::serve(
        listener,
        app,
        std::future::pending(),
        sfgate::server::ConnectionLimits {
            header_read_timeout: Duration::from_secs(600),
            keep_alive_interval: Duration::from_millis(300),
            keep_alive_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    ));
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = h2_hello();
    bytes.extend(h2_frame(0x1, 0x5, 1, &GET_ROOT_HPACK));
    silent.write_all(&bytes).await.expect("write");
    // Never answers the server's PING.
    let seen = closed_within(&mut silent, Duration::from_secs(10))
        .await
        .expect("dropped once its pings went unanswered");
    assert!(
        frames(&seen).contains(&(0x6, 0)),
        "the server pinged first: {:?}",
        frames(&seen)
    );
}
