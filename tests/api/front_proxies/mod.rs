//! Forward auth behind the real front proxies people run: nginx (`auth_request`, with the
//! ingress-nginx `auth-url`/`auth-signin` pattern) and Caddy (`forward_auth`), each started by
//! the test on a loopback port with a generated configuration (the one docs/front-proxies.md
//! shows), in front of sfgate (standalone, no `UPSTREAM_URL`) and an echo app.
//!
//! Without the binary a test says it was skipped and passes; with `CI=true` it fails instead
//! (as tests/browser.rs treats Chromium), so CI cannot go green without having run them.

mod caddy;
mod nginx;

use crate::common::*;
use crate::helpers::upstream::start_echo;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The users of the scenario: Alice has `Sfgate_Admin`, Bob has not.
const BOB: (&str, &str) = ("bob@acme.example", "bob-demo-2");
const SCOPE: &str = "api custom_permissions";

/// The front proxy's binary, or `None` after saying why the test is skipped. Under `CI=true`
/// a missing binary is a failure.
fn binary_or_skip(test: &str, names: &[&str], package: &str) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path_var)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file());
    if found.is_none() {
        let why = format!(
            "{} not found; install with `apt-get install -y {package}`",
            names.join(" or ")
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("front-proxy test {test} cannot run in CI (CI=true): {why}");
        }
        let _ = writeln!(std::io::stderr(), "SKIPPED front-proxy test {test}: {why}");
    }
    found
}

/// A front proxy process, killed (by its own pid) when dropped, with its temp directory.
struct FrontProxy {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl FrontProxy {
    /// Starts `command` (configured in `dir`) and waits until `port` accepts connections.
    async fn start(mut command: Command, dir: tempfile::TempDir, port: u16, log: PathBuf) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).expect("log file"),
            ))
            .spawn()
            .expect("the front proxy starts");
        let mut proxy = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            log,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return proxy;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("the front proxy exited ({status}):\n{}", proxy.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the front proxy did not listen on {port}:\n{}",
            proxy.logs()
        );
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The proxy's own logs, for failure messages.
    fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "{}\n{}",
            read(&self.dir.path().join("stderr.log")),
            read(&self.log)
        )
    }
}

impl Drop for FrontProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sfgate standalone, its callback on the front proxy's port (the browser only talks to the
/// proxy), with a route rule and `TRUST_PROXY` (the proxy sends the original request).
async fn sfgate_behind(proxy_port: u16, extra: &[(&str, &str)]) -> TestApp {
    let redirect_uri = format!("http://127.0.0.1:{proxy_port}/oauth2/callback");
    let emulator_redirect = redirect_uri.clone();
    TestApp::builder()
        .emulator(move |emulator| emulator.redirect_uris.push(emulator_redirect))
        .env("SF_REDIRECT_URI", redirect_uri)
        .env("SF_SCOPES", SCOPE)
        .env("TRUST_PROXY", "true")
        .env("ROUTE_RULES", "/admin/=perm:Sfgate_Admin")
        .envs(extra)
        .spawn()
        .await
}

/// A browser's login that starts at `start` on the front proxy: follows the redirects the
/// proxy and sfgate give, fills in the emulator's form, and returns where the browser lands
/// (the callback's `Location`).
async fn browser_login(
    app: &TestApp,
    browser: &reqwest::Client,
    start: String,
    user: (&str, &str),
    proxy: &FrontProxy,
) -> String {
    let emulator = app.emulator.base_url();
    let mut url = start;
    // Through the proxy (302 to /oauth2/start, then 302 to Salesforce).
    for _ in 0..4 {
        if url.starts_with(emulator.as_str()) {
            break;
        }
        let r = get_accepting(browser, &url, "text/html").await;
        assert!(
            r.status().is_redirection(),
            "{url}: {} {}\n{}",
            r.status(),
            r.text().await.unwrap_or_default(),
            proxy.logs()
        );
        let next = location(r.headers());
        url = if next.starts_with('/') {
            proxy.url(&next)
        } else {
            next
        };
    }
    assert!(url.starts_with(emulator.as_str()), "ended at {url}");
    let page = browser.get(&url).send().await.expect("login page");
    expect_status_for(page, 200, "emulator login page").await;
    let mut form: Vec<(String, String)> = reqwest::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.push(("username".into(), user.0.into()));
    form.push(("password".into(), user.1.into()));
    form.push(("action".into(), "allow".into()));
    let answer = browser
        .post(format!("{emulator}/services/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .expect("submit");
    let answer = expect_status_for(answer, 302, "emulator should redirect back").await;
    let callback = location(answer.headers());
    assert!(callback.starts_with(&proxy.base), "{callback}");
    let r = get_accepting(browser, &callback, "text/html").await;
    let r = expect_status_for(
        r,
        303,
        format!("callback through the proxy\n{}", proxy.logs()),
    )
    .await;
    location(r.headers())
}

/// The scenario every front proxy must pass. `browser_redirect` is what an unauthenticated
/// browser asking for `/app/page?x=1` gets from the proxy.
async fn scenario(proxy: &FrontProxy, app: &TestApp) {
    // A browser logs in through the front proxy and lands where it was going.
    let browser = browser_client();
    let landed = browser_login(app, &browser, proxy.url("/app/page?x=1"), ALICE, proxy).await;
    assert_eq!(landed, "/app/page?x=1");
    let r = get_accepting(&browser, proxy.url(&landed), "text/html").await;
    let r = expect_status_for(r, 200, proxy.logs()).await;
    let seen: Value = r.json().await.expect("the app's echo");
    assert_eq!(seen["path"], "/app/page");
    assert_eq!(received(&seen, "x-salesforce-username"), [ALICE.0]);
    assert_eq!(received(&seen, "x-forwarded-email"), [ALICE.0]);
    // The route rule: Alice has Sfgate_Admin.
    let r = get_accepting(&browser, proxy.url("/admin/x"), "text/html").await;
    expect_status_for(r, 200, "alice on /admin/x").await;

    // Bearer calls: identity headers copied to the app, forged ones overwritten, the token
    // kept from the app.
    let bob = app
        .emulator
        .issue_tokens_with_scope(BOB.0, SCOPE)
        .expect("bob");
    let as_bob = |path: &str| {
        app.http
            .get(proxy.url(path))
            .bearer_auth(&bob.access_token)
            .header("x-instance-url", &bob.instance_url)
            .header("x-salesforce-user-id", "005FORGED0000001")
            .header("x-salesforce-username", "mallory@evil.example")
            .send()
    };
    let r = as_bob("/app/api?q=1").await.expect("bob");
    let r = expect_status_for(r, 200, proxy.logs()).await;
    let seen: Value = r.json().await.expect("echo");
    assert_eq!(received(&seen, "x-salesforce-username"), [BOB.0]);
    let user_id = received(&seen, "x-salesforce-user-id");
    assert_eq!(user_id.len(), 1);
    assert_ne!(user_id[0], "005FORGED0000001");
    assert!(received(&seen, "authorization").is_empty(), "{seen}");
    assert!(received(&seen, "x-instance-url").is_empty(), "{seen}");
    // Bob lacks Sfgate_Admin: refused in every spelling the app might read as /admin.
    for path in ["/admin/x", "/ADMIN/x", "/%61dmin/x", "/admin/x?to=/public/"] {
        let r = as_bob(path).await.expect("bob");
        assert_eq!(r.status(), 403, "{path}\n{}", proxy.logs());
    }
    // A client's own copy of another convention's header cannot move the judged path.
    let r = app
        .http
        .get(proxy.url("/admin/x"))
        .bearer_auth(&bob.access_token)
        .header("x-instance-url", &bob.instance_url)
        .header("x-original-uri", "/public/x")
        .header("x-forwarded-uri", "/public/x")
        .send()
        .await
        .expect("bob");
    assert!(
        !r.status().is_success(),
        "a client-chosen original URI admitted Bob: {}",
        r.status()
    );

    // Logout through the proxy: the session is gone, the next page asks for a login again.
    let r = browser
        .post(proxy.url("/oauth2/logout"))
        .header("accept", "text/html")
        .header("origin", &proxy.base)
        .send()
        .await
        .expect("logout");
    expect_status_for(r, 303, "logout").await;
    let r = get_accepting(&browser, proxy.url("/app/page"), "text/html").await;
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(
        location(r.headers()).contains("/oauth2/")
            || location(r.headers()).contains("/services/oauth2/authorize")
    );
}

/// Writes `text` to `dir/name`, returning the path.
fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("config written");
    path
}

/// `template` with `{SFGATE}`, `{APP}` and `{PORT}` filled in.
fn fill(template: &str, sfgate: &str, app: &str, port: u16) -> String {
    template
        .replace("{SFGATE}", sfgate)
        .replace("{APP}", app)
        .replace("{PORT}", &port.to_string())
}

/// The echo app, and its address as `host:port`.
async fn app_server() -> (StubServer, String) {
    let echo = start_echo().await;
    let addr = echo.addr.to_string();
    (echo, addr)
}
