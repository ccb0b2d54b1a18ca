//! Experience Cloud sites: `SF_LOGIN_URL` is a site URL with a path, and the whole login
//! (authorize, token, revoke at logout) goes through the site's endpoints. Its users have
//! portal types, admitted only when `SF_ALLOWED_USER_TYPES` lists them.

use crate::common::*;
use sfgate::domain::InstancePolicy;
use sfgate_emulator::{CommunityFields, Endpoint, SITE_PATH};

/// A gateway whose login URL is the emulator's site, with Alice as a customer-portal user.
async fn site_gateway(extra: &[(&str, &str)]) -> TestApp {
    let app = TestApp::builder()
        .configure(|env| {
            let site = format!("{}{SITE_PATH}", env["SF_LOGIN_URL"]);
            env.insert("SF_LOGIN_URL".into(), site);
        })
        .envs(extra)
        .spawn()
        .await;
    let mut alice = app.emulator.user_profile(ALICE.0).expect("alice");
    alice.user_type = "CSP_LITE_PORTAL".into();
    app.emulator.set_user_profile(ALICE.0, alice);
    app
}

/// The browser login through the site's login page; returns the callback's answer.
async fn log_in_at_site(app: &TestApp, browser: &reqwest::Client) -> reqwest::Response {
    let site = format!("{}{SITE_PATH}", app.emulator.base_url());
    let start = expect_status(
        browser
            .get(app.url("/oauth2/authorize"))
            .send()
            .await
            .expect("authorize"),
        302,
    )
    .await;
    let to_site = location(start.headers());
    assert!(
        to_site.starts_with(&format!("{site}/services/oauth2/authorize?")),
        "{to_site}"
    );
    let page = browser.get(&to_site).send().await.expect("site login page");
    let page = expect_status(page, 200).await.text().await.expect("html");
    let action = format!("action=\"{SITE_PATH}/services/oauth2/authorize\"");
    assert!(page.contains(&action), "the site's form posts to the site");
    let mut form: Vec<(String, String)> = reqwest::Url::parse(&to_site)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.extend([
        ("username".into(), ALICE.0.into()),
        ("password".into(), ALICE.1.into()),
        ("action".into(), "allow".into()),
    ]);
    let back = browser
        .post(format!("{site}/services/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .expect("submit");
    let callback = location(expect_status(back, 302).await.headers());
    get_accepting(browser, callback, "text/html").await
}

#[tokio::test]
async fn a_portal_user_logs_in_through_the_sites_endpoints_when_the_type_is_listed() {
    let app = site_gateway(&[("SF_ALLOWED_USER_TYPES", "STANDARD,CSP_LITE_PORTAL")]).await;
    let browser = browser_client();
    let done = expect_status(log_in_at_site(&app, &browser).await, 303).await;
    let cookie = session_pair(done.headers()).expect("a session");
    // Every authorize and token call went to the site, none to the login host.
    let at_site = app.emulator.site_calls_to(Endpoint::Authorize)
        + app.emulator.site_calls_to(Endpoint::Token);
    let oauth = app.emulator.calls(Endpoint::Authorize) + app.emulator.calls(Endpoint::Token);
    assert_eq!(at_site, oauth, "authorize and token calls all at the site");
    assert!(oauth >= 3, "login page, form, code exchange: {oauth}");

    let me = app
        .http
        .get(app.url("/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("/api/me");
    let me: serde_json::Value = expect_status(me, 200).await.json().await.expect("json");
    assert_eq!(me["username"], ALICE.0);

    let before = app.emulator.site_calls();
    let out = app
        .http
        .post(app.url("/oauth2/logout"))
        .header("cookie", &cookie)
        .header("origin", &app.base)
        .header("accept", "application/json")
        .send()
        .await
        .expect("logout");
    expect_status(out, 200).await;
    assert!(app.emulator.calls(Endpoint::Revoke) >= 1);
    assert!(
        app.emulator.site_calls() > before,
        "logout revoked the token at the site"
    );
}

#[tokio::test]
async fn a_portal_user_is_refused_at_the_site_unless_the_type_is_listed() {
    let app = site_gateway(&[]).await;
    let browser = browser_client();
    let refused = log_in_at_site(&app, &browser).await;
    assert_eq!(refused.status(), 403);
    assert!(session_pair(refused.headers()).is_none(), "no session");
}

#[test]
fn site_domains_are_instances_and_custom_domains_only_when_listed() {
    let policy = InstancePolicy::default();
    for site in [
        "https://acme.my.site.com",
        "https://acme.force.com",
        "https://acme--uat.sandbox.my.site.com",
    ] {
        assert!(policy.check(site).is_ok(), "{site}");
    }
    let custom = "https://partners.acme.example";
    assert!(policy.check(custom).is_err());
    let listed =
        InstancePolicy::default().with_extra_origins(&[reqwest::Url::parse(custom).expect("url")]);
    assert!(listed.check(custom).is_ok());
    assert!(listed.check("https://other.acme.example").is_err());
}

/// The userinfo calls so far: (all of them, those under the site's path).
fn userinfo_calls(app: &TestApp) -> (u64, u64) {
    (
        app.emulator.calls(Endpoint::UserInfo),
        app.emulator.site_calls_to(Endpoint::UserInfo),
    )
}

/// A site gateway with the identity cache off (every request checks its token), Alice
/// admitted as a portal user, and her session cookie from a login through the site.
async fn site_session(fields: impl FnOnce(&TestApp) -> CommunityFields) -> (TestApp, String) {
    let app = site_gateway(&[
        ("SF_ALLOWED_USER_TYPES", "STANDARD,CSP_LITE_PORTAL"),
        ("IDENTITY_CACHE_TTL", "0"),
    ])
    .await;
    app.emulator.set_community_fields(fields(&app));
    let browser = browser_client();
    let done = expect_status(log_in_at_site(&app, &browser).await, 303).await;
    let cookie = session_pair(done.headers()).expect("a session");
    (app, cookie)
}

async fn me(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.http
        .get(app.url("/api/me"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("/api/me")
}

/// Every check of a site user's token, at login, on requests and after a renewal, goes to
/// the site's userinfo and none to the instance's.
async fn assert_checks_at_the_site(app: &TestApp, cookie: &str) {
    let (all, at_site) = userinfo_calls(app);
    assert!(at_site >= 1, "the login's check went to the site");
    assert_eq!(all, at_site, "no check at the instance's userinfo");

    expect_status(me(app, cookie).await, 200).await;
    let (all, after) = userinfo_calls(app);
    assert!(after > at_site, "the request's check went to the site");
    assert_eq!(all, after, "no check at the instance's userinfo");

    app.emulator.expire_access_tokens();
    let refreshes = app.emulator.refresh_calls();
    let renewed = expect_status(me(app, cookie).await, 200).await;
    assert_eq!(app.emulator.refresh_calls(), refreshes + 1, "a renewal");
    let renewed = session_pair(renewed.headers()).expect("a renewed session");
    expect_status(me(app, &renewed).await, 200).await;
    let (all, at_site) = userinfo_calls(app);
    assert!(
        at_site >= after + 2,
        "the renewed token's checks went to the site"
    );
    assert_eq!(all, at_site, "no check at the instance's userinfo");
}

#[tokio::test]
async fn a_site_users_token_is_checked_at_the_sites_userinfo_renewals_too() {
    let (app, cookie) = site_session(|_| CommunityFields::Site).await;
    assert_checks_at_the_site(&app, &cookie).await;
}

#[tokio::test]
async fn without_the_community_fields_the_configured_site_is_asked() {
    let (app, cookie) = site_session(|_| CommunityFields::Omitted).await;
    assert_checks_at_the_site(&app, &cookie).await;
}

#[tokio::test]
async fn a_community_url_outside_the_allowlist_is_never_called() {
    // A loopback server the instance policy does not list: a token sent there would leak.
    let elsewhere = StubServer::start(200, "application/json", "{}".into()).await;
    let url = format!("{}{SITE_PATH}", elsewhere.url());
    let (app, cookie) = site_session(|_| CommunityFields::Url(url)).await;
    assert_checks_at_the_site(&app, &cookie).await;
    assert_eq!(elsewhere.hits(), 0, "the unlisted site was never called");
}

#[tokio::test]
async fn an_allowed_community_url_that_salesforce_names_is_the_one_asked() {
    // The emulator's root is an allowed origin: a site served there has its userinfo there.
    let (app, cookie) = site_session(|app| CommunityFields::Url(app.emulator.base_url())).await;
    expect_status(me(&app, &cookie).await, 200).await;
    let (all, at_site) = userinfo_calls(&app);
    assert!(all >= 2, "login and request checked");
    assert_eq!(
        at_site, 0,
        "checked where Salesforce said, not at the configured site"
    );
}
