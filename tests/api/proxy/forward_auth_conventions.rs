//! Forward auth as each front proxy asks: nginx (`X-Original-URI`), Traefik and Caddy
//! (`X-Forwarded-Uri`, `-Method`, `-Host`, `-Proto`), Envoy (the original path appended to the
//! auth path), with the exact headers each sends; one source per request, never the client's
//! when sources disagree; browsers sent to `/oauth2/start` where the proxy expects it.

use super::*;

const SCOPE: &str = "api custom_permissions";
const BOB: &str = "bob@acme.example";

async fn app_with_style(style: &str) -> TestApp {
    let style = style.to_owned();
    TestApp::builder()
        .env("SF_SCOPES", SCOPE)
        .env("TRUST_PROXY", "true")
        .env("ROUTE_RULES", "/admin/=perm:Sfgate_Admin")
        .env("FORWARD_AUTH_STYLE", style)
        .spawn()
        .await
}

/// Bob (no `Sfgate_Admin`) asks through `path` with `headers`, as the proxy would.
async fn ask_as_bob(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let t = app
        .emulator
        .issue_tokens_with_scope(BOB, SCOPE)
        .expect("bob");
    let mut request = app
        .http
        .request(method, app.url(path))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.expect("forward auth")
}

async fn error_code(r: reqwest::Response, status: u16) -> String {
    let r = expect_status(r, status).await;
    let body: Value = r.json().await.expect("json");
    body["error"].as_str().unwrap_or_default().to_owned()
}

/// What Traefik's forwardAuth sends for `GET /admin/x?y=1` on app.example.com.
const TRAEFIK: &[(&str, &str)] = &[
    ("x-forwarded-method", "GET"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "app.example.com"),
    ("x-forwarded-uri", "/admin/x?y=1"),
    ("x-forwarded-for", "203.0.113.7"),
];

/// The exploit: Traefik's header names `/admin/x` (what it routes), the client's own
/// `X-Original-URI` names `/app/x`. In `auto` sfgate refuses; named, it reads the proxy's.
#[tokio::test]
async fn disagreeing_sources_are_refused_in_auto_and_the_named_proxys_source_wins() {
    let mut with_client_header = TRAEFIK.to_vec();
    with_client_header.push(("x-original-uri", "/app/x"));

    let auto = app_with_style("auto").await;
    let r = ask_as_bob(
        &auto,
        reqwest::Method::GET,
        "/oauth2/auth",
        &with_client_header,
    )
    .await;
    assert_eq!(error_code(r, 400).await, "ambiguous_original_request");
    // An Envoy suffix beside a header is two sources too.
    let r = ask_as_bob(
        &auto,
        reqwest::Method::GET,
        "/oauth2/auth/app/x",
        &[("x-original-uri", "/admin/x")],
    )
    .await;
    assert_eq!(error_code(r, 400).await, "ambiguous_original_request");
    // Alone, each source is judged.
    let r = ask_as_bob(&auto, reqwest::Method::GET, "/oauth2/auth", TRAEFIK).await;
    assert_eq!(error_code(r, 403).await, "access_denied");
    let r = ask_as_bob(
        &auto,
        reqwest::Method::GET,
        "/oauth2/auth",
        &[("x-original-uri", "/app/x")],
    )
    .await;
    expect_status(r, 202).await;

    for style in ["traefik", "caddy"] {
        let named = app_with_style(style).await;
        let r = ask_as_bob(
            &named,
            reqwest::Method::GET,
            "/oauth2/auth",
            &with_client_header,
        )
        .await;
        assert_eq!(error_code(r, 403).await, "access_denied", "{style}");
    }
    // nginx overwrites X-Original-URI; a client's X-Forwarded-Uri is not read.
    let nginx = app_with_style("nginx").await;
    let r = ask_as_bob(
        &nginx,
        reqwest::Method::GET,
        "/oauth2/auth",
        &[
            ("x-original-uri", "/admin/x"),
            ("x-forwarded-uri", "/app/x"),
        ],
    )
    .await;
    assert_eq!(error_code(r, 403).await, "access_denied");
    // ingress-nginx sends the full URL; a client's X-Original-URI beside it must agree.
    let ingress = [
        ("x-original-url", "https://app.example.com/admin/x?y=1"),
        ("x-original-method", "GET"),
        ("x-sent-from", "nginx-ingress-controller"),
    ];
    let r = ask_as_bob(&nginx, reqwest::Method::GET, "/oauth2/auth", &ingress).await;
    assert_eq!(error_code(r, 403).await, "access_denied");
    let mut with_client_header = ingress.to_vec();
    with_client_header.push(("x-original-uri", "/public/x"));
    let r = ask_as_bob(
        &nginx,
        reqwest::Method::GET,
        "/oauth2/auth",
        &with_client_header,
    )
    .await;
    assert_eq!(error_code(r, 400).await, "ambiguous_original_request");
}

/// Envoy's HTTP ext_authz with `path_prefix: /oauth2/auth` asks `/oauth2/auth<original>` with
/// the original method; the original query stays on it.
#[tokio::test]
async fn envoy_asks_with_the_original_path_appended_and_its_method() {
    let app = app_with_style("envoy").await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    ] {
        let r = ask_as_bob(&app, method.clone(), "/oauth2/auth/admin/x?y=/public/", &[]).await;
        assert_eq!(error_code(r, 403).await, "access_denied", "{method}");
        let r = ask_as_bob(&app, method.clone(), "/oauth2/auth/public/x?y=1", &[]).await;
        expect_status_for(r, 202, &method).await;
    }
    for spelling in [
        "/oauth2/auth/ADMIN/x",
        "/oauth2/auth/%41dmin/x",
        "/oauth2/auth//admin/x",
    ] {
        let r = ask_as_bob(&app, reqwest::Method::GET, spelling, &[]).await;
        assert!(
            matches!(r.status().as_u16(), 400 | 403),
            "{spelling}: {}",
            r.status()
        );
    }
    let r = ask_as_bob(&app, reqwest::Method::GET, "/oauth2/auth/", &[]).await;
    expect_status(r, 202).await;
    // Envoy's style reads no header: a client's claims change nothing.
    let r = ask_as_bob(
        &app,
        reqwest::Method::GET,
        "/oauth2/auth/admin/x",
        &[
            ("x-original-uri", "/public/x"),
            ("x-forwarded-uri", "/public/x"),
        ],
    )
    .await;
    assert_eq!(error_code(r, 403).await, "access_denied");
}

/// Without `TRUST_PROXY` nothing names the original request: route rules refuse everyone,
/// whatever the headers or path claim.
#[tokio::test]
async fn no_source_is_read_without_trust_proxy() {
    let app = TestApp::builder()
        .env("SF_SCOPES", SCOPE)
        .env("ROUTE_RULES", "/admin/=perm:Sfgate_Admin")
        .spawn()
        .await;
    for (path, headers) in [
        ("/oauth2/auth", TRAEFIK.to_vec()),
        ("/oauth2/auth/public/x", vec![]),
        ("/oauth2/auth", vec![("x-original-uri", "/public/x")]),
    ] {
        let r = ask_as_bob(&app, reqwest::Method::GET, path, &headers).await;
        let r = expect_status(r, 403).await;
        let body: Value = r.json().await.expect("json");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("TRUST_PROXY")),
            "{body}"
        );
    }
}

/// Traefik and Caddy hand the auth answer to the browser: a browser with no session gets
/// 302 to `/oauth2/start?rd=<the original path and query>`; nginx and Envoy get 401 (nginx
/// redirects with its own `error_page`). API clients get 401 everywhere.
#[tokio::test]
async fn browsers_are_sent_to_the_login_only_where_the_front_proxy_expects_it() {
    let browser = |app: &TestApp, path: &str, headers: &[(&str, &str)]| {
        let mut request = app.http.get(app.url(path)).header("accept", "text/html");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send()
    };
    for style in ["traefik", "caddy", "auto"] {
        let app = app_with_style(style).await;
        let r = browser(&app, "/oauth2/auth", TRAEFIK).await.expect("r");
        let r = expect_status_for(r, 302, style).await;
        assert_eq!(
            location(r.headers()),
            "/oauth2/start?rd=%2Fadmin%2Fx%3Fy%3D1",
            "{style}"
        );
        let r = app
            .http
            .get(app.url("/oauth2/auth"))
            .header("accept", "application/json")
            .headers(header_map(&[("x-forwarded-uri", "/admin/x")]))
            .send()
            .await
            .expect("r");
        expect_status_for(r, 401, style).await;
    }
    for (style, path, headers) in [
        (
            "nginx",
            "/oauth2/auth",
            vec![("x-original-uri", "/admin/x")],
        ),
        ("auto", "/oauth2/auth", vec![("x-original-uri", "/admin/x")]),
        ("envoy", "/oauth2/auth/admin/x", vec![]),
        ("auto", "/oauth2/auth/admin/x", vec![]),
    ] {
        let app = app_with_style(style).await;
        let r = browser(&app, path, &headers).await.expect("r");
        let r = expect_status_for(r, 401, style).await;
        assert!(r.headers().get("location").is_none());
    }
}

/// `/oauth2/start?rd=…` (oauth2-proxy's login start) lands on `rd` after the login, and only
/// on a path of this site.
#[tokio::test]
async fn oauth2_start_lands_on_rd_after_login_and_never_off_site() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(
            &browser,
            "/oauth2/start?rd=%2Fapp%2Fx%3Fy%3D1",
            ALICE,
            "allow",
        )
        .await;
    let r = get_accepting(&browser, callback, "text/html").await;
    let r = expect_status(r, 303).await;
    assert_eq!(location(r.headers()), "/app/x?y=1");
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let browser = browser_client();
        let path = format!("/oauth2/start?rd={}", urlencode(evil));
        let callback = app
            .authorize_at_emulator(&browser, &path, ALICE, "allow")
            .await;
        let r = get_accepting(&browser, callback, "text/html").await;
        let r = expect_status(r, 303).await;
        assert_eq!(location(r.headers()), "/oauth2/welcome", "{evil}");
    }
}
