//! Bad input and Salesforce faults, table-driven: every row is one raw HTTP request (method,
//! path, headers as raw bytes, body) written on a `TcpStream`, so nothing a client library
//! refuses to send is out of reach. For every row the status (and the JSON `error` code) is
//! exactly what is expected, no handler panics, nothing answers 500, and `/healthz` still
//! answers afterwards.
//!
//! The whole binary logs at trace level into memory; each test ends by checking that none of
//! the tokens, codes, cookies, states or secrets it used reached the log.

use crate::common::*;
use sfgate::auth::session::{LoginState, LOGIN_COOKIE, SESSION_COOKIE};
use sfgate::auth::{CookieSealer, Session, SessionUser};
use sfgate::salesforce::emulator::{Endpoint, Fault};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OTHER_SECRET: &str = "another-session-secret-for-a-second-gateway";

// ---------------------------------------------------------------------------------------------
// Log capture and panic watch (shared by the whole binary, see helpers::log_watch).

use crate::helpers::log_watch::{assert_no_panics, log_text, watch};

/// Every secret this test used must be absent from everything logged so far.
fn assert_secrets_not_logged(secrets: &[String]) {
    let log = log_text();
    assert!(
        log.contains("request finished"),
        "the capture must see the gateway's request logs"
    );
    for secret in secrets {
        assert!(secret.len() >= 12, "too short to search for: {secret:?}");
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the log: {}...",
            &secret[..8]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Raw requests.

use crate::common::raw_http::{send_raw, Answer};

/// One row of a table: a request and what must come back.
struct Row {
    name: String,
    method: &'static str,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// A whole request written as is, for input no request line can be built from.
    raw: Option<Vec<u8>>,
    status: u16,
    code: Option<&'static str>,
}

fn get(name: impl Into<String>, path: impl Into<String>) -> Row {
    Row {
        name: name.into(),
        method: "GET",
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
        raw: None,
        status: 0,
        code: None,
    }
}

fn post(name: impl Into<String>, path: impl Into<String>) -> Row {
    Row {
        method: "POST",
        ..get(name, path)
    }
}

fn raw_request(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Row {
    Row {
        raw: Some(bytes.into()),
        ..get(name, "")
    }
}

impl Row {
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }
    fn bearer(self, token: &str, instance: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
            .header("x-instance-url", instance)
    }
    fn body(mut self, content_type: &str, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self.header("content-type", content_type)
    }
    fn expect(mut self, status: u16, code: Option<&'static str>) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    fn bytes(&self, addr: SocketAddr) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = format!(
            "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
            self.method, self.path
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !self.body.is_empty() || self.method == "POST" {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

async fn healthz_ok(addr: SocketAddr) -> bool {
    let answer = send_raw(
        addr,
        format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    answer.status == 200
}

/// Runs every row against the gateway and checks the row's promise and the common ones.
async fn run_rows(app: &TestApp, rows: Vec<Row>) -> Vec<Answer> {
    let addr = app.gateway.addr;
    let mut answers = Vec::new();
    for row in rows {
        assert!(row.status != 0, "{}: row has no expectation", row.name);
        let answer = send_raw(addr, &row.bytes(addr)).await;
        assert_eq!(
            answer.status,
            row.status,
            "{}: {}\n{}",
            row.name,
            answer.head,
            answer.text().chars().take(300).collect::<String>()
        );
        assert_ne!(answer.status, 500, "{}: no 500 for bad input", row.name);
        if let Some(code) = row.code {
            assert_eq!(
                answer.error_code().as_deref(),
                Some(code),
                "{}: {}",
                row.name,
                answer.text()
            );
        }
        assert!(
            healthz_ok(addr).await,
            "{}: the gateway stopped serving",
            row.name
        );
        assert_no_panics();
        answers.push(answer);
    }
    answers
}

// ---------------------------------------------------------------------------------------------
// Logins and cookies.

/// A login that went through Salesforce's form and is about to come back to the callback.
struct PendingLogin {
    /// The callback path and query (`/oauth2/callback?code=...&state=...`).
    callback: String,
    /// `sfgate_login=...`, as the browser would send it.
    login_cookie: String,
    code: String,
    state: String,
}

async fn pending_login(app: &TestApp) -> PendingLogin {
    let start = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("authorize");
    let start = expect_status(start, 302).await;
    let login_cookie = cookie_pair(&set_cookies(start.headers()), LOGIN_COOKIE);
    let to_salesforce = reqwest::Url::parse(&location(start.headers())).expect("url");
    let mut form: Vec<(String, String)> = to_salesforce
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.extend([
        ("username".into(), ALICE.0.into()),
        ("password".into(), ALICE.1.into()),
        ("action".into(), "allow".into()),
    ]);
    let answer = app
        .http
        .post(format!(
            "{}/services/oauth2/authorize",
            app.emulator.base_url()
        ))
        .form(&form)
        .send()
        .await
        .expect("submit");
    let back = reqwest::Url::parse(&location(answer.headers())).expect("callback url");
    let q = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect("callback parameter")
    };
    PendingLogin {
        callback: format!("{}?{}", back.path(), back.query().unwrap_or_default()),
        login_cookie,
        code: q("code"),
        state: q("state"),
    }
}

/// `name=value` of the cookie `name` set by a response (not its removal).
fn cookie_pair(set_cookies: &[String], name: &str) -> String {
    set_cookies
        .iter()
        .filter(|c| c.starts_with(&format!("{name}=")) && !c.starts_with(&format!("{name}=;")))
        .map(|c| c.split(';').next().expect("pair").to_string())
        .next()
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"))
}

/// `sfgate_session=...` from a completed login.
async fn session_cookie(app: &TestApp) -> String {
    let login = pending_login(app).await;
    let r = app
        .http
        .get(app.url(&login.callback))
        .header("cookie", &login.login_cookie)
        .send()
        .await
        .expect("callback");
    let r = expect_status_for(r, 303, "login completes").await;
    cookie_pair(&set_cookies(r.headers()), SESSION_COOKIE)
}

fn value_of(pair: &str) -> String {
    pair.split_once('=').expect("name=value").1.to_string()
}

/// Flips one character in the middle of the sealed value.
fn tampered(pair: &str) -> String {
    let (name, value) = pair.split_once('=').expect("pair");
    let mut chars: Vec<char> = value.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    format!("{name}={}", chars.into_iter().collect::<String>())
}

fn truncated(pair: &str) -> String {
    let (name, value) = pair.split_once('=').expect("pair");
    format!("{name}={}", &value[..value.len() / 2])
}

fn expired_session(token: &str, instance: &str) -> (String, String) {
    let sealer = CookieSealer::new(SESSION_SECRET.as_bytes(), false, Duration::from_secs(60));
    let session = Session {
        access_token: token.to_string().into(),
        refresh_token: None,
        instance_url: instance.to_string(),
        user: SessionUser {
            user_id: "0055j00000AlIcE".into(),
            org_id: ACME.into(),
            username: ALICE.0.into(),
            display_name: "Alice Admin".into(),
            email: None,
        },
        login_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    };
    let seal = |ttl| {
        let header = sealer.seal(SESSION_COOKIE, &session, ttl).expect("sealed");
        header
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_string()
    };
    (seal(Duration::ZERO), seal(Duration::from_secs(60)))
}

fn expired_login_cookie(state: &str) -> String {
    let sealer = CookieSealer::new(SESSION_SECRET.as_bytes(), false, Duration::from_secs(60));
    let login = LoginState {
        state: state.to_string(),
        pkce_verifier: "v".repeat(43),
        return_to: None,
    };
    let header = sealer
        .seal(LOGIN_COOKIE, &login, Duration::ZERO)
        .expect("sealed");
    header
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_string()
}

/// A loopback "server" that accepts connections and does `behaviour` with each.
async fn misbehaving_server(
    behaviour: &'static str,
) -> (String, Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                match behaviour {
                    "close" => drop(socket),
                    "not_http" => {
                        let _ = socket.write_all(b"hello, this is not HTTP\r\n\r\n").await;
                    }
                    _ => {}
                }
            });
        }
    });
    (format!("http://{addr}"), hits)
}

// ---------------------------------------------------------------------------------------------
// The tables.

#[tokio::test]
async fn malformed_repeated_and_oversized_credential_headers_are_refused() {
    watch();
    let app = spawn_app().await;
    let t = app.tokens(ALICE.0);
    let (tok, inst) = (t.access_token.as_str(), t.instance_url.as_str());
    // Just under the 32 KB header cap (with the other headers), and just over it.
    let big = "a".repeat(30 * 1024);
    let over = "a".repeat(sfgate::header_limit::MAX_HEADER_BYTES);
    let rows = vec![
        get("control: a valid bearer token", "/api/me")
            .bearer(tok, inst)
            .expect(200, None),
        get("control: the scheme is case-insensitive", "/api/me")
            .header("authorization", format!("bEaReR {tok}"))
            .header("x-instance-url", inst)
            .expect(200, None),
        get("Basic instead of Bearer", "/api/me")
            .header("authorization", "Basic dXNlcjpwdw==")
            .expect(401, Some("invalid_request")),
        get("Bearer with no token", "/api/me")
            .header("authorization", "Bearer")
            .header("x-instance-url", inst)
            .expect(401, Some("invalid_request")),
        get("Bearer followed by spaces only", "/api/me")
            .header("authorization", "Bearer    ")
            .header("x-instance-url", inst)
            .expect(401, Some("invalid_request")),
        get("a token with a space in it", "/api/me")
            .header("authorization", format!("Bearer {tok} extra"))
            .header("x-instance-url", inst)
            .expect(401, Some("invalid_request")),
        get("a tab instead of a space after the scheme", "/api/me")
            .header("authorization", format!("Bearer\t{tok}"))
            .header("x-instance-url", inst)
            .expect(401, Some("invalid_request")),
        get("an empty Authorization header", "/api/me")
            .header("authorization", "")
            .expect(401, Some("invalid_request")),
        get("a token without X-Instance-Url", "/api/me")
            .header("authorization", format!("Bearer {tok}"))
            .expect(401, Some("invalid_request")),
        get("a legacy bearer header without instanceurl", "/api/me")
            .header("bearer", tok)
            .expect(401, Some("invalid_request")),
        get(
            "a bad Authorization is not rescued by good legacy headers",
            "/api/me",
        )
        .header("authorization", "Bearer forged-token-value")
        .header("x-instance-url", inst)
        .header("bearer", tok)
        .header("instanceurl", inst)
        .expect(401, Some("invalid_token")),
        get("Authorization twice", "/api/me")
            .bearer(tok, inst)
            .header("authorization", "Bearer other-token-value")
            .expect(400, Some("invalid_request")),
        get("legacy bearer twice", "/api/me")
            .header("bearer", tok)
            .header("bearer", tok)
            .header("instanceurl", inst)
            .expect(400, Some("invalid_request")),
        get("X-Instance-Url twice", "/api/me")
            .bearer(tok, inst)
            .header("x-instance-url", inst)
            .expect(400, Some("invalid_request")),
        get("instanceurl twice", "/api/me")
            .header("bearer", tok)
            .header("instanceurl", inst)
            .header("instanceurl", inst)
            .expect(400, Some("invalid_request")),
        get("a token one byte over the length limit", "/api/me")
            .bearer(&"t".repeat(4097), inst)
            .expect(401, Some("invalid_request")),
        get("a 30 KB Authorization header", "/api/me")
            .bearer(&big, inst)
            .expect(401, Some("invalid_request")),
        get("a 30 KB X-Instance-Url", "/api/me")
            .bearer(tok, &format!("https://{big}.my.salesforce.com"))
            .expect(401, Some("invalid_request")),
        get("a 30 KB session cookie", "/api/me")
            .header("cookie", format!("{SESSION_COOKIE}={big}"))
            .expect(401, Some("invalid_token")),
        get("a 30 KB unrelated header is tolerated", "/healthz")
            .header("x-junk", &big)
            .expect(200, None),
        get(
            "an Authorization header over the 32 KB header cap",
            "/api/me",
        )
        .bearer(&over, inst)
        .expect(431, Some("request_header_fields_too_large")),
        get("a session cookie over the 32 KB header cap", "/api/me")
            .header("cookie", format!("{SESSION_COOKIE}={over}"))
            .expect(431, Some("request_header_fields_too_large")),
        get("headers over the 32 KB cap, even on /healthz", "/healthz")
            .header("x-junk", &over)
            .expect(431, Some("request_header_fields_too_large")),
        get("headers beyond the server's 400 KB limit", "/api/me")
            .header("x-junk", "a".repeat(500 * 1024))
            .expect(431, None),
        get("non-UTF-8 bytes in Authorization", "/api/me")
            .header("authorization", b"Bearer \xff\xfe\xfd")
            .header("x-instance-url", inst)
            .expect(400, Some("invalid_request")),
        get("non-UTF-8 bytes in X-Instance-Url", "/api/me")
            .header("authorization", format!("Bearer {tok}"))
            .header("x-instance-url", b"https://acme.my.salesforce.com\xc3\x28")
            .expect(400, Some("invalid_request")),
        get("non-UTF-8 bytes in the legacy bearer header", "/api/me")
            .header("bearer", b"\x80\x81\x82")
            .header("instanceurl", inst)
            .expect(400, Some("invalid_request")),
        get("a non-UTF-8 Cookie header counts as no cookie", "/api/me")
            .header("cookie", b"sfgate_session=\xff\xfe")
            .expect(401, Some("unauthorized")),
        get("a control character in a header value", "/api/me")
            .header("authorization", b"Bearer abc\x01def")
            .header("x-instance-url", inst)
            .expect(400, None),
        get("a NUL byte in a header value", "/api/me")
            .header(
                "x-instance-url",
                b"https://a.my.salesforce.com\x00.evil.example",
            )
            .expect(400, None),
        get("a header name with a space", "/api/me")
            .header("bad header", "x")
            .expect(400, None),
        get("a non-ASCII header name", "/api/me")
            .header("b\u{e9}arer", tok)
            .expect(400, None),
        get("obsolete line folding", "/api/me")
            .header("authorization", format!("Bearer\r\n {tok}"))
            .expect(400, None),
        get("a thousand headers", "/api/me")
            .header(
                "x-a",
                (0..1000)
                    .map(|i| format!("v\r\nx-h{i}: v"))
                    .collect::<String>(),
            )
            .expect(431, None),
    ];
    run_rows(&app, rows).await;
    assert_no_panics();
    assert_secrets_not_logged(&[
        t.access_token.clone(),
        t.refresh_token.clone().expect("refresh"),
        CLIENT_SECRET.to_string(),
        SESSION_SECRET.to_string(),
    ]);
}

#[tokio::test]
async fn every_refused_instance_url_form_makes_no_outgoing_request() {
    watch();
    let app = spawn_app().await;
    let t = app.tokens(ALICE.0);
    // A server that would answer "valid" for anything, named as the instance in many ways.
    let liar = StubServer::start(
        200,
        "application/json",
        format!(r#"{{"user_id":"0055j00000AlIcE","organization_id":"{ACME}","preferred_username":"evil"}}"#),
    )
    .await;
    let liar_port = liar.addr.port();
    let emulator = app.emulator.base_url();
    let emulator_port = app.emulator.addr().port();
    let refused: Vec<(&str, String)> = vec![
        ("http", "http://acme.my.salesforce.com".into()),
        ("http to the liar", liar.url()),
        (
            "https to the liar",
            format!("https://127.0.0.1:{liar_port}"),
        ),
        (
            "localhost instead of the listed 127.0.0.1",
            format!("http://localhost:{emulator_port}"),
        ),
        ("userinfo", "https://user:pw@acme.my.salesforce.com".into()),
        (
            "userinfo hiding the liar",
            format!("http://acme.my.salesforce.com@127.0.0.1:{liar_port}"),
        ),
        (
            "userinfo on the listed origin",
            format!("http://user@127.0.0.1:{emulator_port}"),
        ),
        ("query", "https://acme.my.salesforce.com?x=1".into()),
        ("query on the listed origin", format!("{emulator}?x=1")),
        ("fragment", "https://acme.my.salesforce.com#frag".into()),
        ("fragment on the listed origin", format!("{emulator}#frag")),
        (
            "path",
            "https://acme.my.salesforce.com/services/data".into(),
        ),
        (
            "path on the listed origin",
            format!("{emulator}/services/oauth2/userinfo"),
        ),
        (
            "non-default port",
            "https://acme.my.salesforce.com:8443".into(),
        ),
        (
            "explicit port 443 on http",
            "http://acme.my.salesforce.com:443".into(),
        ),
        (
            "the listed origin on another port",
            format!("http://127.0.0.1:{liar_port}"),
        ),
        ("IPv4 literal", "https://13.110.0.1".into()),
        ("IPv6 literal", "https://[::1]".into()),
        ("decimal IPv4", "https://2130706433".into()),
        ("hex IPv4", "https://0x7f.0.0.1".into()),
        (
            "look-alike suffix",
            "https://login.salesforce.com.evil.example".into(),
        ),
        (
            "look-alike without the dot",
            "https://evilsalesforce.com".into(),
        ),
        ("the bare suffix", "https://salesforce.com".into()),
        ("trailing dot", "https://acme.my.salesforce.com.".into()),
        (
            "percent-encoded look-alike",
            "https://acme.my.salesforce.com%2eevil.example".into(),
        ),
        (
            "IDN look-alike, as punycode",
            "https://acme.my.salesforce.xn--cm-jbc".into(),
        ),
        (
            "IDN look-alike in the suffix",
            "https://acme.my.xn--slesforce-0yh.com".into(),
        ),
        (
            "a label longer than DNS allows",
            format!("https://{}.my.salesforce.com", "a".repeat(64)),
        ),
        ("unknown host", "https://unknown.example".into()),
        ("javascript scheme", "javascript:alert(1)".into()),
        ("file scheme", "file:///etc/passwd".into()),
        ("no scheme", "acme.my.salesforce.com".into()),
        ("empty", "".into()),
    ];
    let mut rows = Vec::new();
    for (name, instance) in &refused {
        rows.push(
            get(format!("Bearer, {name}: {instance}"), "/api/me")
                .bearer(&t.access_token, instance)
                .expect(401, Some("invalid_request")),
        );
        rows.push(
            get(format!("legacy headers, {name}: {instance}"), "/secured")
                .header("bearer", &t.access_token)
                .header("instanceurl", instance)
                .expect(401, Some("invalid_request")),
        );
    }
    // A header value must be ASCII: a raw Unicode look-alike is not even read as text.
    rows.push(
        get("IDN look-alike as raw UTF-8", "/api/me")
            .bearer(&t.access_token, "https://acme.my.salesforce.c\u{3bf}m")
            .expect(400, Some("invalid_request")),
    );
    let answers = run_rows(&app, rows).await;
    for answer in &answers[..answers.len() - 1] {
        assert!(
            answer.text().contains("instance URL"),
            "the refusal names the instance URL rule: {}",
            answer.text()
        );
    }
    assert_eq!(liar.hits(), 0, "a refused instance is never called");
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 0);
    assert_eq!(app.emulator.calls(Endpoint::Identity), 0);
    assert_secrets_not_logged(std::slice::from_ref(&t.access_token));
}

#[tokio::test]
async fn tampered_truncated_foreign_and_expired_cookies_are_refused() {
    watch();
    let app = spawn_app().await;
    let session = session_cookie(&app).await;
    // A second gateway with another SESSION_SECRET mints cookies that are genuine, elsewhere.
    let other = spawn_app_with(|env| {
        env.insert("SESSION_SECRET".into(), OTHER_SECRET.into());
    })
    .await;
    let foreign_session = session_cookie(&other).await;
    let foreign_login = pending_login(&other).await;
    let t = app.tokens(ALICE.0);
    let (expired, fresh) = expired_session(&t.access_token, &t.instance_url);
    let login = pending_login(&app).await;
    let state = login.state.clone();
    let callback_with = |cookie: &str| {
        get(
            format!("callback with {cookie:.40}"),
            login.callback.clone(),
        )
        .header("cookie", cookie)
    };
    let token_calls = app.emulator.calls(Endpoint::Token);

    let rows = vec![
        get("control: the real session cookie", "/api/me")
            .header("cookie", &session)
            .expect(200, None),
        get(
            "control: a session cookie sealed with 60 s to live",
            "/api/me",
        )
        .header("cookie", &fresh)
        .expect(200, None),
        get("a tampered session cookie", "/api/me")
            .header("cookie", tampered(&session))
            .expect(401, Some("invalid_token")),
        get("a truncated session cookie", "/api/me")
            .header("cookie", truncated(&session))
            .expect(401, Some("invalid_token")),
        get("a session cookie sealed by another gateway", "/api/me")
            .header("cookie", &foreign_session)
            .expect(401, Some("invalid_token")),
        get("an expired session cookie", "/api/me")
            .header("cookie", &expired)
            .expect(401, Some("invalid_token")),
        get("an expired session cookie, from a browser", "/api/me")
            .header("cookie", &expired)
            .header("accept", "text/html")
            .expect(303, None),
        get("a login cookie offered as the session", "/api/me")
            .header(
                "cookie",
                format!("{SESSION_COOKIE}={}", value_of(&login.login_cookie)),
            )
            .expect(401, Some("invalid_token")),
        get("an empty session cookie", "/api/me")
            .header("cookie", format!("{SESSION_COOKIE}="))
            .expect(401, Some("invalid_token")),
        get("a session cookie of percent signs", "/api/me")
            .header("cookie", format!("{SESSION_COOKIE}=%%%%%%"))
            .expect(401, Some("invalid_token")),
        get(
            "a tampered session cookie on the home page shows it logged out",
            "/",
        )
        .header("cookie", tampered(&session))
        .expect(200, None),
        // 200 with an empty `revoked` list (a bare 204 before logout said what it revoked).
        post("logout with a tampered session cookie", "/oauth2/logout")
            .header("cookie", tampered(&session))
            .expect(200, None),
        post("refresh with a foreign session cookie", "/oauth2/refresh")
            .header("cookie", &foreign_session)
            .expect(401, Some("invalid_token")),
        callback_with(&tampered(&login.login_cookie)).expect(400, Some("invalid_request")),
        callback_with(&truncated(&login.login_cookie)).expect(400, Some("invalid_request")),
        callback_with(&foreign_login.login_cookie).expect(400, Some("invalid_request")),
        callback_with(&expired_login_cookie(&state)).expect(400, Some("invalid_request")),
        callback_with(&format!("{LOGIN_COOKIE}={}", value_of(&session)))
            .expect(400, Some("invalid_request")),
        get("callback without a login cookie", login.callback.clone())
            .expect(400, Some("invalid_request")),
    ];
    let answers = run_rows(&app, rows).await;
    // Refused session cookies are removed; the home page does not crash on one.
    for answer in &answers[2..6] {
        assert!(
            answer
                .header("set-cookie")
                .iter()
                .any(|c| c.starts_with("sfgate_session=;")),
            "a refused session cookie is cleared: {}",
            answer.head
        );
    }
    assert_eq!(
        answers[6].header("location"),
        ["/oauth2/authorize?return_to=%2Fapi%2Fme"]
    );
    assert!(answers[10].text().contains("Log in with Salesforce"));
    assert!(answers[13].text().contains("login cookie"));
    assert_eq!(
        app.emulator.calls(Endpoint::Token),
        token_calls,
        "no refused login cookie reaches the token endpoint"
    );
    let mut secrets = vec![
        value_of(&session),
        value_of(&foreign_session),
        value_of(&login.login_cookie),
        value_of(&foreign_login.login_cookie),
        value_of(&expired),
        login.code.clone(),
        login.state.clone(),
        foreign_login.code.clone(),
        t.access_token.clone(),
        OTHER_SECRET.to_string(),
    ];
    secrets.push(SESSION_SECRET.into());
    assert_secrets_not_logged(&secrets);
}

#[tokio::test]
async fn replayed_states_reused_codes_and_confused_callbacks_are_refused() {
    watch();
    let app = spawn_app().await;
    let done = pending_login(&app).await;
    let first = send_raw(
        app.gateway.addr,
        &get("complete", done.callback.clone())
            .header("cookie", &done.login_cookie)
            .bytes(app.gateway.addr),
    )
    .await;
    assert_eq!(first.status, 303, "the real callback completes");
    let a = pending_login(&app).await;
    let b = pending_login(&app).await;
    let cb = |query: String| format!("/oauth2/callback?{query}");
    let token_calls = app.emulator.calls(Endpoint::Token);
    let huge = "c".repeat(60 * 1024);

    let rows = vec![
        get(
            "a replayed callback (same state, same cookie)",
            done.callback.clone(),
        )
        .header("cookie", &done.login_cookie)
        .expect(400, Some("invalid_request")),
        get(
            "both code and error",
            cb(format!(
                "code={}&error=access_denied&state={}",
                a.code, a.state
            )),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get(
            "both error and code, error first",
            cb(format!(
                "error=access_denied&state={}&code={}",
                a.state, a.code
            )),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get(
            "state from another login",
            cb(format!("code={}&state={}", a.code, b.state)),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get("no state", cb(format!("code={}", a.code)))
            .header("cookie", &a.login_cookie)
            .expect(400, Some("invalid_request")),
        get("an empty state", cb(format!("code={}&state=", a.code)))
            .header("cookie", &a.login_cookie)
            .expect(400, Some("invalid_request")),
        get(
            "state given twice",
            cb(format!(
                "code={}&state={}&state={}",
                a.code, a.state, a.state
            )),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get("no code", cb(format!("state={}", a.state)))
            .header("cookie", &a.login_cookie)
            .expect(400, Some("invalid_request")),
        get("an empty code", cb(format!("code=&state={}", a.state)))
            .header("cookie", &a.login_cookie)
            .expect(400, Some("invalid_request")),
        get(
            "state in non-UTF-8 percent-encoding",
            cb(format!("code={}&state=%ff%fe", a.code)),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_request")),
        get(
            "a 60 KB code without a login cookie",
            cb(format!("code={huge}&state=x")),
        )
        .expect(400, Some("invalid_request")),
        get(
            "five thousand parameters",
            cb((0..5_000).map(|i| format!("p{i}=v&")).collect()),
        )
        .expect(400, Some("invalid_request")),
        get(
            "a query longer than the server accepts",
            cb(format!("code={}", "c".repeat(70 * 1024))),
        )
        .expect(414, None),
        get(
            "denied at Salesforce",
            cb(format!(
                "error=access_denied&error_description=end-user+denied&state={}",
                a.state
            )),
        )
        .expect(403, Some("access_denied")),
        get(
            "another Salesforce error",
            cb("error=invalid_scope&error_description=%3Cb%3E".into()),
        )
        .expect(400, Some("access_denied")),
        get(
            "a huge error description",
            cb(format!("error=server_error&error_description={huge}")),
        )
        .expect(400, Some("access_denied")),
        get(
            "a 60 KB return_to is ignored",
            format!("/oauth2/authorize?return_to=/{huge}"),
        )
        .expect(302, None),
        get(
            "a 60 KB query on a protected route",
            format!("/api/me?x={huge}"),
        )
        .expect(401, Some("unauthorized")),
    ];
    run_rows(&app, rows).await;
    assert_eq!(
        app.emulator.calls(Endpoint::Token),
        token_calls,
        "none of these reached the token endpoint"
    );

    // Login A's code with login B's cookie and state: the code is bound to A's PKCE challenge,
    // so Salesforce refuses it, and it is used up.
    let rows = vec![
        get(
            "a code injected into another login",
            cb(format!("code={}&state={}", a.code, b.state)),
        )
        .header("cookie", &b.login_cookie)
        .expect(400, Some("invalid_grant")),
        get(
            "the injected code, now with its own login",
            a.callback.clone(),
        )
        .header("cookie", &a.login_cookie)
        .expect(400, Some("invalid_grant")),
    ];
    run_rows(&app, rows).await;

    // A code without PKCE, exchanged twice through the token route: the second is refused.
    let code = code_without_pkce(&app).await;
    let rows = vec![
        post("first use of a code", "/oauth2/token")
            .body("application/x-www-form-urlencoded", format!("code={code}"))
            .expect(200, None),
        post("second use of the same code", "/oauth2/token")
            .body("application/x-www-form-urlencoded", format!("code={code}"))
            .expect(400, Some("invalid_grant")),
    ];
    let answers = run_rows(&app, rows).await;
    let tokens: serde_json::Value = serde_json::from_slice(&answers[0].body).expect("json");
    assert_secrets_not_logged(&[
        done.code,
        done.state,
        value_of(&done.login_cookie),
        a.code,
        a.state,
        value_of(&a.login_cookie),
        b.code,
        b.state,
        value_of(&b.login_cookie),
        code,
        tokens["access_token"].as_str().expect("token").to_string(),
        tokens["refresh_token"].as_str().expect("token").to_string(),
        CLIENT_SECRET.to_string(),
    ]);
}

/// A code issued to an app that ran the authorize step itself, without PKCE.
async fn code_without_pkce(app: &TestApp) -> String {
    let redirect = format!("{}/oauth2/callback", app.base);
    let form = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect.as_str()),
        ("state", "s"),
        ("scope", "api refresh_token"),
        ("username", ALICE.0),
        ("password", ALICE.1),
        ("action", "allow"),
    ];
    let answer = app
        .http
        .post(format!(
            "{}/services/oauth2/authorize",
            app.emulator.base_url()
        ))
        .form(&form)
        .send()
        .await
        .expect("submit");
    let back = reqwest::Url::parse(&location(answer.headers())).expect("url");
    back.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code")
}

#[tokio::test]
async fn malformed_bodies_and_requests_are_refused() {
    watch();
    let app = spawn_app_with_password_flow().await;
    let addr = app.gateway.addr;
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let rows = vec![
        post("invalid JSON", "/oauth2/token")
            .body("application/json", "{\"code\": ")
            .expect(400, Some("invalid_request")),
        post("JSON nested 20 000 deep", "/oauth2/token")
            .body("application/json", &deep)
            .expect(400, Some("invalid_request")),
        post("a JSON array instead of an object", "/oauth2/token")
            .body("application/json", "[\"code\"]")
            .expect(400, Some("invalid_request")),
        post("a code that is not a string", "/oauth2/token")
            .body("application/json", "{\"code\": 42}")
            .expect(400, Some("invalid_request")),
        post("an unsupported content type", "/oauth2/token")
            .body("text/plain", "code=abc")
            .expect(400, Some("invalid_request")),
        post("a form with a parameter twice", "/oauth2/token")
            .body("application/x-www-form-urlencoded", "code=a&code=b")
            .expect(400, Some("invalid_request")),
        post("non-UTF-8 form bytes", "/oauth2/password")
            .body("application/x-www-form-urlencoded", b"username=\xff\xfe&password=\xc3\x28")
            .expect(400, Some("invalid_grant")),
        post("a body over the 64 KB limit", "/oauth2/token")
            .body("application/x-www-form-urlencoded", "a".repeat(64 * 1024 + 1))
            .expect(413, None),
        post("a refresh token of garbage", "/oauth2/refresh")
            .body("application/x-www-form-urlencoded", "refresh_token=%00%01%02")
            .expect(401, Some("invalid_grant")),
        get("TRACE on a protected route, unauthenticated: refused before routing", "/api/me")
            .method("TRACE")
            .expect(401, Some("unauthorized")),
        get("TRACE on a public route", "/healthz")
            .method("TRACE")
            .expect(405, None),
        get("an extension method", "/healthz")
            .method("FROB")
            .expect(405, None),
        get("a dot-dot path", "/api/../secured").expect(404, None),
        get("a non-UTF-8 percent-encoded path", "/api/%ff%fe").expect(404, None),
        raw_request("a request line of garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec())
            .expect(400, None),
        raw_request("HTTP/1.1 without Host", b"GET /healthz HTTP/1.1\r\nconnection: close\r\n\r\n".to_vec())
            .expect(200, None),
        raw_request(
            "Content-Length and Transfer-Encoding together",
            format!("POST /oauth2/token HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n").into_bytes(),
        )
        .expect(400, None),
        raw_request(
            "two different Content-Lengths",
            format!("POST /oauth2/token HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\ncode=").into_bytes(),
        )
        .expect(400, None),
        raw_request(
            "a body shorter than its Content-Length",
            format!("POST /oauth2/token HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\ncode=x").into_bytes(),
        )
        .expect(0, None),
    ];
    // The last row sends half a body and closes its side: no answer is the right answer, as
    // long as the server keeps serving.
    let (complete, short) = {
        let mut rows = rows;
        let short = rows.pop().expect("row");
        (rows, short)
    };
    run_rows(&app, complete).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(&short.raw.clone().expect("raw"))
        .await
        .expect("write");
    stream.shutdown().await.expect("half-close");
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "{}: the connection is closed", short.name);
    assert!(healthz_ok(addr).await, "{}: still serving", short.name);
    assert_no_panics();
    assert_secrets_not_logged(&[CLIENT_SECRET.to_string(), SESSION_SECRET.to_string()]);
}

#[tokio::test]
async fn salesforce_faults_fail_closed_and_the_gateway_keeps_serving() {
    watch();
    let (closer, closer_hits) = misbehaving_server("close").await;
    let (not_http, _) = misbehaving_server("not_http").await;
    let err500 = StubServer::start(500, "text/html", "<h1>Internal Server Error</h1>".into()).await;
    let huge = StubServer::start(
        200,
        "application/json",
        format!("{{\"x\":\"{}\"}}", "a".repeat(300 * 1024)),
    )
    .await;
    let wrong_shape = StubServer::start(
        200,
        "application/json",
        r#"{"user_id":5,"organization_id":[]}"#.into(),
    )
    .await;
    let stubs = [
        closer.clone(),
        not_http.clone(),
        err500.url(),
        huge.url(),
        wrong_shape.url(),
    ];
    let app = spawn_app_with(|env| {
        // Beyond this, Salesforce is "slow".
        env.insert("SALESFORCE_TIMEOUT".into(), "1".into());
        env.insert("IDENTITY_CACHE_TTL".into(), "0".into());
        let listed = format!("{},{}", env["SF_INSTANCE_ORIGINS"], stubs.join(","));
        env.insert("SF_INSTANCE_ORIGINS".into(), listed);
    })
    .await;
    let t = app.tokens(ALICE.0);
    let me = |name: &str, instance: &str| {
        get(name.to_string(), "/api/me").bearer(&t.access_token, instance)
    };
    let emulator = app.emulator.base_url();

    // Instances that answer 500, garbage, too much, the wrong shape, not HTTP, or hang up.
    let rows = vec![
        me("instance answers 500", &err500.url()).expect(502, Some("temporarily_unavailable")),
        me("instance answers 300 KB", &huge.url()).expect(502, Some("temporarily_unavailable")),
        me("instance answers the wrong JSON shape", &wrong_shape.url())
            .expect(502, Some("temporarily_unavailable")),
        me("instance closes the connection", &closer).expect(503, Some("temporarily_unavailable")),
        me("instance does not speak HTTP", &not_http).expect(503, Some("temporarily_unavailable")),
    ];
    run_rows(&app, rows).await;
    assert!(closer_hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // The emulator's own fault switches on userinfo.
    for (fault, status) in [
        (Fault::ServerError, 502),
        (Fault::Garbage, 502),
        (Fault::Slow(Duration::from_millis(1500)), 504),
        (Fault::Hang, 504),
    ] {
        app.emulator
            .set_fault_for(Endpoint::UserInfo, fault.clone());
        run_rows(
            &app,
            vec![me(&format!("userinfo {fault:?}"), &emulator)
                .expect(status, Some("temporarily_unavailable"))],
        )
        .await;
    }
    // A connection closed mid-answer surfaces as a broken body (502) or a broken connection
    // (503) depending on how far the response got; either way it fails closed.
    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::CloseConnection);
    let closed = send_raw(
        app.gateway.addr,
        &me("userinfo closes", &emulator).bytes(app.gateway.addr),
    )
    .await;
    assert!(matches!(closed.status, 502 | 503), "{}", closed.head);
    assert_eq!(
        closed.error_code().as_deref(),
        Some("temporarily_unavailable")
    );
    app.emulator.set_fault(Fault::None);

    // The token endpoint failing in the middle of a browser login.
    let mut secrets = vec![t.access_token.clone(), CLIENT_SECRET.to_string()];
    for (fault, status) in [
        (Fault::ServerError, 502),
        (Fault::Garbage, 502),
        (Fault::Slow(Duration::from_millis(1500)), 504),
        (Fault::Hang, 504),
    ] {
        let login = pending_login(&app).await;
        app.emulator.set_fault_for(Endpoint::Token, fault.clone());
        run_rows(
            &app,
            vec![get(
                format!("callback, token endpoint {fault:?}"),
                login.callback.clone(),
            )
            .header("cookie", &login.login_cookie)
            .expect(status, Some("temporarily_unavailable"))],
        )
        .await;
        app.emulator.set_fault(Fault::None);
        secrets.extend([login.code, login.state, value_of(&login.login_cookie)]);
    }
    let login = pending_login(&app).await;
    app.emulator
        .set_fault_for(Endpoint::Token, Fault::CloseConnection);
    let closed = send_raw(
        app.gateway.addr,
        &get("callback, token endpoint closes", login.callback.clone())
            .header("cookie", &login.login_cookie)
            .bytes(app.gateway.addr),
    )
    .await;
    assert!(matches!(closed.status, 502 | 503), "{}", closed.head);
    secrets.extend([login.code, login.state, value_of(&login.login_cookie)]);

    // Token fine, userinfo broken: the login still fails closed, with no session.
    app.emulator.set_fault(Fault::None);
    let login = pending_login(&app).await;
    app.emulator
        .set_fault_for(Endpoint::UserInfo, Fault::ServerError);
    let answers = run_rows(
        &app,
        vec![get("callback, userinfo down", login.callback.clone())
            .header("cookie", &login.login_cookie)
            .expect(502, Some("temporarily_unavailable"))],
    )
    .await;
    assert!(!answers[0]
        .header("set-cookie")
        .iter()
        .any(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;")));
    secrets.extend([login.code, login.state, value_of(&login.login_cookie)]);

    // Refresh and logout with Salesforce down.
    let refresh = t.refresh_token.clone().expect("refresh token");
    app.emulator.set_fault_for(Endpoint::Token, Fault::Hang);
    app.emulator.set_fault_for(Endpoint::Revoke, Fault::Hang);
    let answers = run_rows(
        &app,
        vec![
            post("refresh, token endpoint hangs", "/oauth2/refresh")
                .body(
                    "application/x-www-form-urlencoded",
                    format!("refresh_token={refresh}"),
                )
                .expect(504, Some("temporarily_unavailable")),
            post("logout, revoke hangs", "/oauth2/logout")
                .bearer(&t.access_token, &emulator)
                .expect(200, Some("revocation_failed")),
        ],
    )
    .await;
    assert!(answers[1]
        .header("set-cookie")
        .iter()
        .any(|c| c.starts_with("sfgate_session=;")));
    secrets.push(refresh);

    // Salesforce back: the same token works again (its revocation never happened), and so does
    // a new login.
    app.emulator.set_fault(Fault::None);
    run_rows(&app, vec![me("recovered", &emulator).expect(200, None)]).await;
    let session = session_cookie(&app).await;
    secrets.push(value_of(&session));
    assert_secrets_not_logged(&secrets);
}

#[tokio::test]
async fn text_from_the_query_cannot_forge_log_lines() {
    watch();
    let app = spawn_app().await;
    let forged = "FORGED-LOG-LINE INFO sfgate login completed user_id=0055j00000AlIcE";
    let encoded = urlencode(forged);
    let rows = vec![
        get(
            "a newline in error_description",
            format!("/oauth2/callback?error=access_denied&error_description=x%0A{encoded}"),
        )
        .expect(403, Some("access_denied")),
        get(
            "a carriage return in error",
            format!("/oauth2/callback?error=x%0D%0A{encoded}"),
        )
        .expect(400, Some("access_denied")),
        get(
            "a newline in a repeated parameter's name",
            format!("/oauth2/callback?a%0A{encoded}=1&a%0A{encoded}=2"),
        )
        .expect(400, Some("invalid_request")),
    ];
    run_rows(&app, rows).await;
    let log = log_text();
    for line in log.lines().filter(|l| l.contains("FORGED-LOG-LINE")) {
        assert!(
            !line.starts_with("FORGED-LOG-LINE"),
            "a client started its own log line:\n{line}"
        );
    }
    assert!(
        !log.contains('\r'),
        "a carriage return reached the log (it can hide or rewrite lines on a terminal)"
    );
}
