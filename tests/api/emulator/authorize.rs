//! The authorize endpoint: its login form, its errors and where it sends the browser back.

use super::*;

#[tokio::test]
async fn it_binds_loopback_only() {
    let emu = start(|_| {}).await;
    assert!(emu.handle.addr().ip().is_loopback());
}

#[tokio::test]
async fn the_login_page_is_a_form_that_keeps_state_and_challenge() {
    let emu = start(|_| {}).await;
    let r = emu
        .http
        .get(emu.url("/services/oauth2/authorize"))
        .query(&emu.authorize_params(Some(CHALLENGE)))
        .send()
        .await
        .expect("page");
    let r = expect_status(r, 200).await;
    let page = r.text().await.expect("html");
    for needle in [
        "id=\"username\"",
        "id=\"password\"",
        "id=\"allow\"",
        "id=\"deny\"",
        "value=\"st4te\"",
        CHALLENGE,
    ] {
        assert!(page.contains(needle), "missing {needle}");
    }
}

#[tokio::test]
async fn unknown_clients_and_redirect_uris_get_an_error_page_never_a_redirect() {
    let emu = start(|_| {}).await;
    for (key, value, error) in [
        ("client_id", "someone-else", "invalid_client_id"),
        (
            "redirect_uri",
            "https://evil.example/cb",
            "redirect_uri_mismatch",
        ),
        // Exact match only: a longer path or a query is a different URI.
        (
            "redirect_uri",
            "http://127.0.0.1:9/oauth2/callback/x",
            "redirect_uri_mismatch",
        ),
        (
            "redirect_uri",
            "http://127.0.0.1:9/oauth2/callback?x=1",
            "redirect_uri_mismatch",
        ),
    ] {
        let mut params = emu.authorize_params(None);
        for p in params.iter_mut().filter(|p| p.0 == key) {
            p.1 = value.to_string();
        }
        let r = emu
            .http
            .get(emu.url("/services/oauth2/authorize"))
            .query(&params)
            .send()
            .await
            .expect("page");
        let r = expect_status_for(r, 400, format!("{key}={value}")).await;
        assert!(r.headers().get("location").is_none(), "{key}={value}");
        assert!(r.text().await.expect("html").contains(error));
    }
}

#[tokio::test]
async fn request_errors_go_back_to_the_registered_redirect_uri_with_state() {
    let emu = start(|c| c.require_pkce = true).await;
    for (params, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (vec![], "invalid_request"), // the app requires PKCE and no challenge was sent
    ] {
        let mut query = emu.authorize_params(None);
        for (k, v) in params {
            query.retain(|p| p.0 != k);
            query.push((k, v.to_string()));
        }
        let r = emu
            .http
            .get(emu.url("/services/oauth2/authorize"))
            .query(&query)
            .send()
            .await
            .expect("page");
        let r = expect_status(r, 302).await;
        let location = r.headers()["location"].to_str().expect("ascii").to_string();
        assert!(location.starts_with(CALLBACK), "{location}");
        let q: HashMap<String, String> = url::Url::parse(&location)
            .expect("url")
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(q.get("error").map(String::as_str), Some(error));
        assert_eq!(q.get("state").map(String::as_str), Some("st4te"));
    }
}

#[tokio::test]
async fn allow_redirects_with_code_and_state_deny_with_access_denied() {
    let emu = start(|_| {}).await;
    let (status, q) = emu
        .login(None, "alice@acme.example", "alice-demo-1", "allow")
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(q.get("code").is_some_and(|c| c.len() >= 20));
    assert_eq!(q.get("state").map(String::as_str), Some("st4te"));

    let (status, q) = emu
        .login(None, "alice@acme.example", "alice-demo-1", "deny")
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(q.get("state").map(String::as_str), Some("st4te"));
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_without_a_code() {
    let emu = start(|_| {}).await;
    let (status, q) = emu
        .login(None, "alice@acme.example", "not-her-password", "allow")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(q.is_empty());
    let (status, _) = emu.login(None, "nobody@acme.example", "x", "allow").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
