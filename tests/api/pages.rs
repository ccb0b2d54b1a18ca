//! What a newcomer sees on sfgate's pages: commands that work against this very gateway, a
//! plain answer when they deny access or log out, and an icon.

use crate::common::*;
use sfgate::demo::sample_app::SampleApp;
use sfgate_emulator::Endpoint;

/// The script card's commands, unescaped, as a person would copy them.
fn script_card(page: &str) -> String {
    let start = page.find("<pre id=\"script\">").expect("script card") + 17;
    let end = start + page[start..].find("</pre>").expect("end of card");
    page[start..end]
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn home_page_script_card_names_this_host_and_the_emulator_instance() {
    let app = TestApp::builder().spawn().await;
    let page = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("page");
    let card = script_card(&page);
    assert!(
        card.contains(&format!("{}/api/me", app.base)),
        "this gateway's address: {card}"
    );
    assert!(
        card.contains(&format!("INSTANCE={}", app.emulator.base_url())),
        "the emulator is the instance: {card}"
    );
    for placeholder in ["this-host", "yourorg"] {
        assert!(!card.contains(placeholder), "{placeholder} in {card}");
    }
}

#[tokio::test]
async fn home_page_script_card_logs_in_by_itself_when_the_password_flow_is_on() {
    let app = TestApp::builder().password_flow().spawn().await;
    let page = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("page");
    let card = script_card(&page);
    let expected = sfgate::shell_examples::login_lines(&app.base, false);
    for line in &expected {
        assert!(card.contains(line.as_str()), "{line} missing from {card}");
    }
    // And the lines work: run them with bash, as printed.
    let out = tokio::process::Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(format!("{card}\necho \"$INSTANCE\""))
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"username\":\"alice@acme.example\""),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with(&app.emulator.base_url()),
        "{stdout}"
    );
}

#[tokio::test]
async fn success_page_curl_calls_api_me_with_the_token_and_instance() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let r = app.login(&browser, ALICE).await;
    let r = expect_status_for(r, 303, "the callback redirects to the welcome page").await;
    let page = get_accepting(&browser, app.url(&location(r.headers())), "text/html")
        .await
        .text()
        .await
        .expect("page");
    let start = page.find("<pre id=\"curl\">").expect("curl line") + 15;
    let end = start + page[start..].find("</pre>").expect("end");
    let curl = page[start..end].replace("&#39;", "'");
    assert!(
        curl.starts_with("curl -H 'Authorization: Bearer "),
        "{curl}"
    );
    assert!(
        curl.ends_with(&format!(
            "-H 'X-Instance-Url: {}' {}/api/me",
            app.emulator.base_url(),
            app.base
        )),
        "{curl}"
    );
}

#[tokio::test]
async fn denying_access_gets_a_page_about_the_persons_choice_not_a_403_heading() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "deny")
        .await;
    let r = get_accepting(&browser, &callback, "text/html").await;
    let r = expect_status(r, 403).await;
    let page = r.text().await.expect("page");
    assert!(
        page.contains("<h1>You chose not to allow access</h1>"),
        "{page}"
    );
    assert!(!page.contains("<h1>403"), "{page}");
    assert!(page.contains("not logged in"), "{page}");
    assert!(page.contains("Log in with Salesforce"), "{page}");
    assert!(page.contains("end-user denied authorization"), "{page}");

    // API clients keep the status and the OAuth error code.
    let callback = app
        .authorize_at_emulator(&browser, "/oauth2/authorize", ALICE, "deny")
        .await;
    let r = browser.get(&callback).send().await.expect("callback");
    let r = expect_status(r, 403).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "access_denied");
    assert_eq!(
        app.emulator.calls(Endpoint::Token),
        0,
        "a denial never asks for tokens"
    );
}

#[tokio::test]
async fn logging_out_in_a_browser_lands_on_a_page_that_says_so() {
    let app = TestApp::builder().spawn().await;
    let browser = browser_client();
    expect_status(app.login(&browser, ALICE).await, 303).await;
    let r = browser
        .post(app.url("/oauth2/logout"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 303).await;
    let home = location(r.headers());
    assert_eq!(home, "/?logout=done");
    let page = browser
        .get(app.url(&home))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("page");
    assert!(page.contains("id=\"logged-out\""), "{page}");
    assert!(page.contains("You are logged out."), "{page}");
    assert!(page.contains("id=\"login\""), "the login button is back");

    // Without the marker, no notice.
    let page = browser
        .get(app.url("/"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("page");
    assert!(!page.contains("You are logged out."), "{page}");
}

#[tokio::test]
async fn the_favicon_is_served_and_every_page_names_it() {
    let app = TestApp::builder().spawn().await;
    for path in ["/favicon.ico", "/assets/favicon.svg"] {
        let r = app.http.get(app.url(path)).send().await.expect("icon");
        let r = expect_status_for(r, 200, &path).await;
        assert_eq!(r.headers()["content-type"], "image/svg+xml", "{path}");
        assert!(r.text().await.expect("svg").starts_with("<svg"), "{path}");
    }
    // The emulator's login page (the demo's "Salesforce") has one too.
    let r = app
        .http
        .get(format!("{}/favicon.ico", app.emulator.base_url()))
        .send()
        .await
        .expect("emulator icon");
    let r = expect_status(r, 200).await;
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let home = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("page");
    assert!(
        home.contains(
            r#"<link rel="icon" href="/oauth2/assets/favicon.svg" type="image/svg+xml">"#
        ),
        "{home}"
    );
}

#[tokio::test]
async fn in_gateway_mode_favicon_ico_belongs_to_the_upstream_app() {
    let upstream = SampleApp::start().await.expect("sample app");
    let app = TestApp::builder()
        .env("UPSTREAM_URL", upstream.base_url())
        .env("SKIP_AUTH_ROUTES", r"GET=^/favicon\.ico$")
        .spawn()
        .await;
    let r = app
        .http
        .get(app.url("/favicon.ico"))
        .send()
        .await
        .expect("icon");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("the sample app's JSON");
    assert_eq!(body["app"], "sfgate sample app");
    assert_eq!(body["path"], "/favicon.ico");
    // sfgate's own icon stays reachable for its pages.
    let r = app
        .http
        .get(app.url("/oauth2/assets/favicon.svg"))
        .send()
        .await
        .expect("icon");
    expect_status(r, 200).await;
}

#[tokio::test]
async fn the_sample_app_shows_the_identity_headers_it_received_and_no_token() {
    let upstream = SampleApp::start().await.expect("sample app");
    let app = TestApp::builder()
        .env("UPSTREAM_URL", upstream.base_url())
        .spawn()
        .await;
    let t = app.tokens("alice@acme.example");
    let r = app
        .get_with_token("/app/reports?x=1", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["path"], "/app/reports?x=1");
    assert_eq!(
        body["headers"]["x-salesforce-username"],
        "alice@acme.example"
    );
    assert_eq!(body["headers"]["x-salesforce-org-id"], "00D5j00000AcMe1EAF");
    assert_eq!(body["credentials_received"], serde_json::json!([]));

    // Browsers get a page; a username with markup would be escaped (askama).
    let r = app
        .http
        .get(app.url("/app"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    let r = expect_status(r, 200).await;
    let page = r.text().await.expect("page");
    assert!(page.contains("Hello from the sample app"), "{page}");
    assert!(
        page.contains("<dt>x-salesforce-username</dt><dd>alice@acme.example</dd>"),
        "{page}"
    );
    assert!(
        page.contains("None: sfgate keeps the token to itself"),
        "{page}"
    );

    // With PASS_ACCESS_TOKEN the app says which credential headers it got.
    let app = TestApp::builder()
        .env("UPSTREAM_URL", upstream.base_url())
        .env("PASS_ACCESS_TOKEN", "true")
        .spawn()
        .await;
    let t = app.tokens("alice@acme.example");
    let body: serde_json::Value = app
        .get_with_token("/app", &t.access_token, &t.instance_url)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["credentials_received"],
        serde_json::json!(["authorization", "x-instance-url"])
    );
}

#[tokio::test]
async fn browsers_refused_at_a_protected_route_get_plain_words_and_api_clients_get_the_api_wording()
{
    let app = TestApp::builder().spawn().await;
    let page = get_accepting(&app.http, app.url("/api/me"), "text/html").await;
    let html = expect_status(page, 401).await.text().await.expect("html");
    assert!(html.contains("Please log in"), "{html}");
    assert!(html.contains(r#"id="login""#), "a login button: {html}");
    assert!(
        !html.contains("Authorization: Bearer"),
        "no API jargon: {html}"
    );
    let json = app.http.get(app.url("/api/me")).send().await.expect("api");
    let json: serde_json::Value = expect_status(json, 401).await.json().await.expect("json");
    assert!(
        json["error_description"]
            .as_str()
            .expect("description")
            .contains("Authorization: Bearer"),
        "{json}"
    );

    // Carol's org is not allowed: a 403 page that says so in plain words.
    let browser = browser_client();
    let refused = app.login(&browser, CAROL).await;
    let html = expect_status(refused, 403)
        .await
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("Your organization is not allowed here"),
        "{html}"
    );
    assert!(html.contains(r#"id="login""#), "{html}");
    assert!(
        !html.contains("is not allowed to use this service"),
        "{html}"
    );
}
