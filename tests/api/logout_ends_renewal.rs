//! A logged-out session never comes back, whatever Salesforce answered: a logout marks the
//! session's refresh token (and an API client's) in sfgate itself, so replaying the old cookie
//! once its access token has expired is refused without renewing, even when Salesforce failed
//! the revocation and would still honour the refresh token.

use crate::common::*;
use sfgate_emulator::{Endpoint, Fault};

/// No identity cache: the access token the emulator expires is seen as expired at once, so
/// the replayed cookie goes down the renewal path.
async fn app() -> TestApp {
    TestApp::builder()
        .env("IDENTITY_CACHE_TTL", "0")
        .spawn()
        .await
}

async fn log_in(app: &TestApp) -> String {
    let r = app.login(&browser_client(), ALICE).await;
    let r = expect_status_for(r, 303, "the callback redirects").await;
    session_pair(r.headers()).expect("the callback sets the session cookie")
}

/// Logs out with `cookie` at `path` while Salesforce's revoke endpoint fails with `fault`.
async fn log_out_while_revocation_fails(app: &TestApp, path: &str, cookie: &str, fault: Fault) {
    app.emulator.set_fault_for(Endpoint::Revoke, fault);
    let r = plain_client()
        .post(app.url(path))
        .header("cookie", cookie)
        .header("origin", app.url("").trim_end_matches('/'))
        .header("sec-fetch-site", "same-origin")
        .header("accept", "text/html")
        .send()
        .await
        .expect("logout");
    let status = r.status().as_u16();
    assert!(status == 303 || status == 302, "{path} answered {status}");
    assert!(
        set_cookies(r.headers())
            .iter()
            .any(|c| c.starts_with("sfgate_session=;")),
        "{path} clears the cookie"
    );
    app.emulator.set_fault_for(Endpoint::Revoke, Fault::None);
}

#[tokio::test]
async fn an_old_cookie_replayed_after_a_failed_revocation_is_never_renewed() {
    let app = app().await;
    for path in ["/oauth2/logout", "/oauth2/sign_out"] {
        for fault in [Fault::ServerError, Fault::CloseConnection] {
            let what = format!("{path} while revoke answers {fault:?}");
            let cookie = log_in(&app).await;
            log_out_while_revocation_fails(&app, path, &cookie, fault).await;
            // Salesforce never revoked anything: only sfgate's own mark stands in the way.
            app.emulator.expire_access_tokens();
            let before = app.emulator.refresh_calls();
            let r = plain_client()
                .get(app.url("/api/me"))
                .header("cookie", &cookie)
                .header("accept", "application/json")
                .send()
                .await
                .expect("replay");
            let r = expect_status_for(r, 401, format!("API replay after {what}")).await;
            let body: serde_json::Value = r.json().await.expect("json");
            assert!(body["error"].is_string(), "{what}: {body}");
            let r = plain_client()
                .get(app.url("/api/me"))
                .header("cookie", &cookie)
                .header("accept", "text/html")
                .send()
                .await
                .expect("replay");
            let r = expect_status_for(r, 303, format!("browser replay after {what}")).await;
            assert!(
                location(r.headers()).starts_with("/oauth2/authorize"),
                "{what}: the login page, not {}",
                location(r.headers())
            );
            // The cookie-driven renewal route refuses it the same way.
            let r = plain_client()
                .post(app.url("/oauth2/refresh"))
                .header("cookie", &cookie)
                .header("origin", app.url("").trim_end_matches('/'))
                .header("accept", "application/json")
                .send()
                .await
                .expect("refresh");
            expect_status_for(r, 401, format!("cookie refresh after {what}")).await;
            assert_eq!(
                app.emulator.refresh_calls(),
                before,
                "{what}: no renewal reached Salesforce"
            );
        }
    }
}

#[tokio::test]
async fn an_api_clients_refresh_token_given_at_logout_is_never_used_again() {
    let app = app().await;
    let t = app.tokens(ALICE.0);
    let refresh = t.refresh_token.clone().expect("refresh token");
    app.emulator
        .set_fault_for(Endpoint::Revoke, Fault::ServerError);
    let r = app
        .http
        .post(app.url("/oauth2/logout"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .form(&[("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "revocation_failed", "{body}");
    app.emulator.set_fault_for(Endpoint::Revoke, Fault::None);
    assert!(
        !app.emulator.is_revoked(&refresh),
        "Salesforce still honours it"
    );
    let before = app.emulator.refresh_calls();
    let r = app
        .http
        .post(app.url("/oauth2/refresh"))
        .form(&[("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("refresh");
    let status = r.status().as_u16();
    assert!((400..500).contains(&status), "refused, not {status}");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_eq!(
        app.emulator.refresh_calls(),
        before,
        "nothing reached Salesforce"
    );
}

/// The access token a logout covers is sfgate's to refuse too: Salesforce that failed the
/// revocation still accepts it, and an old cookie or a kept token must not get through with it
/// (before its renewal is ever needed), on this replica alone as on many.
#[tokio::test]
async fn an_access_token_logged_out_while_revocation_fails_stays_refused() {
    let app = app().await;
    for fault in [Fault::ServerError, Fault::CloseConnection] {
        let what = format!("{fault:?}");
        let cookie = log_in(&app).await;
        log_out_while_revocation_fails(&app, "/oauth2/logout", &cookie, fault.clone()).await;
        let r = plain_client()
            .get(app.url("/api/me"))
            .header("cookie", &cookie)
            .header("accept", "application/json")
            .send()
            .await
            .expect("replay");
        expect_status_for(r, 401, format!("cookie replay after {what}")).await;

        let t = app.tokens(ALICE.0);
        app.emulator.set_fault_for(Endpoint::Revoke, fault);
        let r = app
            .http
            .post(app.url("/oauth2/logout"))
            .bearer_auth(&t.access_token)
            .header("x-instance-url", &t.instance_url)
            .send()
            .await
            .expect("logout");
        let r = expect_status(r, 200).await;
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "revocation_failed", "{body}");
        app.emulator.set_fault_for(Endpoint::Revoke, Fault::None);
        assert!(
            !app.emulator.is_revoked(&t.access_token),
            "Salesforce still honours it"
        );
        let r = app
            .http
            .get(app.url("/api/me"))
            .bearer_auth(&t.access_token)
            .header("x-instance-url", &t.instance_url)
            .send()
            .await
            .expect("replay");
        expect_status_for(r, 401, format!("token replay after {what}")).await;
    }
}
