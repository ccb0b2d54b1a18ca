//! A person's login in a real browser: Debian's headless Chromium, driven through chromedriver
//! (WebDriver) by `fantoccini`, against the real gateway and the emulator on loopback.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`. Without them the tests say they
//! were skipped and why, and pass; with `CI=true` they fail instead, so CI cannot go green
//! without having run them. `SFGATE_CHROMIUM` and `SFGATE_CHROMEDRIVER` override the paths.

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Flags Chromium needs on these machines: no sandbox as root, and nothing that reaches for the
/// network on its own (the closed network refuses it, noisily and slowly).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,900",
];

const WAIT: Duration = Duration::from_secs(15);

/// Writes straight to stderr, past the test harness's capture of `println!`: a skipped test and
/// the screenshot's path must be visible in a plain `cargo test` run.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

fn find_tool(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(env_var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain([PathBuf::from("/usr/bin")])
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The browser and its driver, or why they are not there.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_tool("SFGATE_CHROMIUM", &["chromium", "chromium-browser"]);
    let driver = find_tool("SFGATE_CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Ok((c, d)),
        (c, d) => {
            let mut missing = Vec::new();
            if c.is_none() {
                missing.push("chromium (Debian package `chromium`)");
            }
            if d.is_none() {
                missing.push("chromedriver (Debian package `chromium-driver`)");
            }
            Err(format!(
                "not found: {}; install with `apt-get install -y chromium chromium-driver`",
                missing.join(", ")
            ))
        }
    }
}

/// `Some(tools)` to run; `None` after printing why the test is skipped. Under `CI=true` a missing
/// browser is a failure, not a skip.
fn tools_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match browser_tools() {
        Ok(tools) => Some(tools),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("browser test {test} cannot run in CI (CI=true): {why}")
        }
        Err(why) => {
            say(&format!("SKIPPED browser test {test}: {why}"));
            None
        }
    }
}

/// chromedriver as a child process in its own process group, and Chromium's profile directory.
/// Dropping it ends the whole group (chromedriver and any Chromium it started) and removes the
/// profile, also when the test fails half-way.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free port, and on another one when chromedriver exits because
    /// the port was taken between choosing it and binding it.
    fn start(chromedriver: &Path, test: &str) -> Self {
        for _ in 0..5 {
            if let Some(driver) = Self::start_on(chromedriver, test, free_port()) {
                return driver;
            }
        }
        panic!(
            "chromedriver exited before listening, 5 times (log: {})",
            Self::log_path(test).display()
        );
    }

    fn log_path(test: &str) -> PathBuf {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromedriver-{test}.log"))
    }

    /// `None` when chromedriver exited before listening on `port`.
    fn start_on(chromedriver: &Path, test: &str, port: u16) -> Option<Self> {
        use std::os::unix::process::CommandExt;
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let profile = tmp.join(format!("chromium-profile-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("profile dir");
        let log = Self::log_path(test);
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile,
        };
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if matches!(driver.child.try_wait(), Ok(Some(_))) {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {WAIT:?} (log: {})",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(driver)
    }

    async fn browser(&self, chromium: &Path) -> Client {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", self.profile.display()));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        // chromedriver speaks plain http on loopback: no TLS connector needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The negative pid names the process group: chromedriver and the browsers it started.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn text_of(browser: &Client, id: &str) -> String {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("element #{id} on the page: {e}"))
        .text()
        .await
        .expect("element text")
}

async fn click(browser: &Client, id: &str) {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("element #{id} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click #{id}: {e}"));
}

async fn type_into(browser: &Client, id: &str, text: &str) {
    let field = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("field #{id} on the page: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// The page's visible text (for a JSON answer: the JSON, which Chromium shows as text).
async fn page_text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text")
}

async fn save_screenshot(browser: &Client, name: &str) -> PathBuf {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG image");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).expect("write screenshot");
    say(&format!("screenshot: {}", path.display()));
    path
}

/// Opens the home page, clicks the login button and fills the emulator's Salesforce form.
async fn log_in_at_emulator(browser: &Client, app: &TestApp, action: &str) {
    browser.goto(&app.url("/")).await.expect("home page");
    assert_eq!(
        text_of(browser, "login").await,
        "Log in with Salesforce",
        "the logged-out home page offers a login"
    );
    click(browser, "login").await;
    type_into(browser, "username", ALICE.0).await;
    type_into(browser, "password", ALICE.1).await;
    let at = browser.current_url().await.expect("url");
    assert!(
        at.as_str().starts_with(&format!(
            "{}/services/oauth2/authorize",
            app.emulator.base_url()
        )),
        "the login button leads to Salesforce's login page, not {at}"
    );
    click(browser, action).await;
}

#[tokio::test]
async fn a_person_logs_in_sees_their_name_uses_the_api_and_logs_out() {
    let Some((chromium, chromedriver)) = tools_or_skip("login_flow") else {
        return;
    };
    let app = TestApp::builder().spawn().await;
    let driver = Driver::start(&chromedriver, "login_flow");
    let browser = driver.browser(&chromium).await;

    browser.goto(&app.url("/")).await.expect("home page");
    save_screenshot(&browser, "sfgate-home.png").await;
    log_in_at_emulator(&browser, &app, "allow").await;

    // The callback's success page names the person and shows a working curl line.
    assert_eq!(text_of(&browser, "welcome").await, "Welcome, Alice Admin");
    assert_eq!(text_of(&browser, "username").await, ALICE.0);
    assert!(text_of(&browser, "org-id").await.starts_with(ACME));
    assert!(text_of(&browser, "curl").await.ends_with("/api/me"));
    // Post/redirect/get: the code left the address bar for the welcome page.
    let at = browser.current_url().await.expect("url");
    assert_eq!(at.path(), "/oauth2/welcome");
    assert!(!at.as_str().contains("code="), "{at}");
    save_screenshot(&browser, "sfgate-success.png").await;

    // Reload shows the same page again, not "the login cookie is missing".
    browser.refresh().await.expect("reload");
    assert_eq!(text_of(&browser, "welcome").await, "Welcome, Alice Admin");
    // Back leads to the page before the login (no error page), Forward to the welcome page.
    browser.back().await.expect("back");
    let page = page_text(&browser).await;
    for error in ["400", "Bad Request", "login cookie", "already completed"] {
        assert!(!page.contains(error), "Back shows an error page: {page}");
    }
    browser.forward().await.expect("forward");
    assert_eq!(text_of(&browser, "welcome").await, "Welcome, Alice Admin");
    assert_eq!(
        browser.current_url().await.expect("url").path(),
        "/oauth2/welcome"
    );

    // The session cookie carries the browser to the protected API.
    click(&browser, "me").await;
    browser
        .wait()
        .at_most(WAIT)
        .for_url(&reqwest::Url::parse(&app.url("/api/me")).expect("url"))
        .await
        .expect("on /api/me");
    let me: serde_json::Value =
        serde_json::from_str(&page_text(&browser).await).expect("/api/me shows JSON");
    assert_eq!(me["username"], ALICE.0);
    assert_eq!(me["display_name"], "Alice Admin");

    // The home page knows who is logged in and offers the logout button.
    browser.goto(&app.url("/")).await.expect("home page");
    assert_eq!(text_of(&browser, "display-name").await, "Alice Admin");
    click(&browser, "logout").await;
    assert_eq!(
        text_of(&browser, "login").await,
        "Log in with Salesforce",
        "after logout the home page is logged out"
    );
    assert!(
        text_of(&browser, "logged-out")
            .await
            .starts_with("You are logged out."),
        "and says so"
    );
    assert!(
        app.emulator.calls(sfgate_emulator::Endpoint::Revoke) >= 1,
        "logout revoked the token at Salesforce"
    );

    // The same browser is now refused: a 401 page with a way back in.
    browser.goto(&app.url("/api/me")).await.expect("/api/me");
    let page = page_text(&browser).await;
    assert!(page.contains("401 Unauthorized"), "{page}");
    assert_eq!(text_of(&browser, "login").await, "Log in with Salesforce");
    let title = browser.title().await.expect("title");
    assert!(title.starts_with("401"), "{title}");

    browser.close().await.expect("close the browser");
    drop(driver);
}

#[tokio::test]
async fn denying_access_at_salesforce_shows_the_friendly_error_page() {
    let Some((chromium, chromedriver)) = tools_or_skip("deny") else {
        return;
    };
    let app = TestApp::builder().spawn().await;
    let driver = Driver::start(&chromedriver, "deny");
    let browser = driver.browser(&chromium).await;

    log_in_at_emulator(&browser, &app, "deny").await;
    let heading = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("h1"))
        .await
        .expect("a heading")
        .text()
        .await
        .expect("text");
    assert_eq!(heading, "You chose not to allow access");
    let page = page_text(&browser).await;
    assert!(page.contains("end-user denied authorization"), "{page}");
    assert!(page.contains("access_denied"), "{page}");
    assert_eq!(
        text_of(&browser, "login").await,
        "Log in with Salesforce",
        "the error page offers to try again"
    );
    save_screenshot(&browser, "sfgate-denied.png").await;
    assert_eq!(
        app.emulator.calls(sfgate_emulator::Endpoint::Token),
        0,
        "a denied login asks Salesforce for no token"
    );
    // No session came of it.
    browser.goto(&app.url("/api/me")).await.expect("/api/me");
    assert!(page_text(&browser).await.contains("401 Unauthorized"));

    browser.close().await.expect("close the browser");
    drop(driver);
}

/// A Canvas app: a Salesforce page on one site (`localhost`) frames sfgate on another
/// (`127.0.0.1`) and POSTs a signed request into the frame. The frame ends up on the app
/// behind sfgate, logged in, with the identity headers; its cookie is `SameSite=None; Secure;
/// Partitioned` (Chromium treats both loopback names as secure contexts, so `Secure` holds on
/// http), so the same browser visiting sfgate directly is not logged in.
#[tokio::test]
async fn a_canvas_app_in_a_salesforce_page_is_logged_in_and_reaches_the_app() {
    let Some((chromium, chromedriver)) = tools_or_skip("canvas") else {
        return;
    };
    let echo = StubServer::serve(axum::Router::new().fallback(
        |request: axum::extract::Request| async move {
            axum::Json(serde_json::json!({ "headers": headers_json(request.headers()) }))
        },
    ))
    .await;
    let echo_url = echo.url();
    let app = TestApp::builder()
        .configure(move |env| {
            let emulator = env["SF_LOGIN_URL"].clone();
            let port = emulator.rsplit(':').next().unwrap_or_default().to_string();
            // The Salesforce page's origin may frame the Canvas pages (frame-ancestors).
            env.insert(
                "SF_INSTANCE_ORIGINS".into(),
                format!("{emulator},http://localhost:{port}"),
            );
            env.insert("UPSTREAM_URL".into(), echo_url);
            env.insert("CANVAS_ENABLED".into(), "true".into());
            env.insert("CANVAS_LANDING".into(), "/app".into());
        })
        .spawn()
        .await;
    app.emulator.set_canvas_url(&app.url("/oauth2/canvas"));
    let host = format!(
        "http://localhost:{}/canvas/host?user={}",
        app.emulator.addr().port(),
        urlencode(ALICE.0)
    );
    let driver = Driver::start(&chromedriver, "canvas");
    let browser = driver.browser(&chromium).await;

    browser.goto(&host).await.expect("the Salesforce page");
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("canvas"))
        .await
        .expect("the canvas iframe");
    browser.enter_frame(0).await.expect("into the iframe");
    let deadline = Instant::now() + WAIT;
    let echoed = loop {
        let text = page_text(&browser).await;
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "the iframe never showed the app's answer: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let user = received(&echoed, "x-salesforce-username");
    assert_eq!(user, [ALICE.0], "{echoed}");
    assert_eq!(
        received(&echoed, "x-salesforce-org-id")[0][..15],
        *ACME,
        "{echoed}"
    );
    browser
        .enter_parent_frame()
        .await
        .expect("out of the iframe");
    save_screenshot(&browser, "sfgate-canvas.png").await;

    // The embedded session's cookie is partitioned to the Salesforce page's site: sfgate
    // visited on its own has no session and sends the browser to the login.
    browser
        .goto(&app.url("/app"))
        .await
        .expect("sfgate directly");
    let at = browser.current_url().await.expect("url");
    assert!(
        at.as_str().starts_with(&format!(
            "{}/services/oauth2/authorize",
            app.emulator.base_url()
        )),
        "a first-party visit is not logged in: {at}"
    );

    browser.close().await.expect("close the browser");
    drop(driver);
}
