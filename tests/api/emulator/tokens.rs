//! The token, userinfo and identity endpoints: code exchange, PKCE, client authentication,
//! grants, and the tokens they accept or refuse.

use super::*;

#[tokio::test]
async fn a_code_exchange_returns_a_signed_documented_token_response() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(Some(CHALLENGE)).await;
    let (status, body) = emu.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for field in [
        "access_token",
        "refresh_token",
        "instance_url",
        "id",
        "issued_at",
        "signature",
        "scope",
        "token_type",
    ] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], emu.handle.base_url());
    let id = body["id"].as_str().expect("id");
    assert!(
        id.starts_with(&format!("{}/id/00D", emu.handle.base_url())),
        "{id}"
    );
    let access = body["access_token"].as_str().expect("token");
    assert!(
        access.starts_with("00D5j00000AcMe1!"),
        "tokens carry the org prefix: {access}"
    );
    assert!(verify_signature(
        CLIENT_SECRET.as_bytes(),
        id,
        body["issued_at"].as_str().expect("issued_at"),
        body["signature"].as_str().expect("signature"),
    ));
    assert!(!verify_signature(
        b"another-secret",
        id,
        body["issued_at"].as_str().expect("issued_at"),
        body["signature"].as_str().expect("signature"),
    ));
}

#[tokio::test]
async fn pkce_is_verified() {
    let emu = start(|_| {}).await;
    for verifier in [
        Some("wrong-verifier-wrong-verifier-wrong-verifier-00"),
        None,
    ] {
        let code = emu.code_for(Some(CHALLENGE)).await;
        let (status, body) = emu.exchange(&code, verifier).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{verifier:?}");
        assert_eq!(error_of(&body), "invalid_grant");
    }
    // A verifier for a code that was issued without a challenge is refused too.
    let code = emu.code_for(None).await;
    let (status, body) = emu.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "invalid_grant");
}

#[tokio::test]
async fn codes_are_single_use_and_expire_after_fifteen_minutes() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(Some(CHALLENGE)).await;
    assert_eq!(emu.exchange(&code, Some(VERIFIER)).await.0, StatusCode::OK);
    let (status, body) = emu.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "invalid_grant");

    let code = emu.code_for(Some(CHALLENGE)).await;
    emu.handle.advance_time(Duration::from_secs(15 * 60 + 1));
    let (status, body) = emu.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_description"], "expired authorization code");

    // A failed attempt with the wrong verifier still uses the code up.
    let code = emu.code_for(Some(CHALLENGE)).await;
    assert_eq!(
        emu.exchange(&code, Some("x".repeat(43).as_str())).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        emu.exchange(&code, Some(VERIFIER)).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_redirect_uri_must_match_the_one_the_code_was_issued_for() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(None).await;
    let (status, body) = emu
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "redirect_uri_mismatch");
}

#[tokio::test]
async fn clients_must_authenticate_in_the_body_or_with_basic() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(None).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    let with = |id: &'static str, secret: &'static str| {
        let mut f = base.to_vec();
        f.push(("client_id", id));
        f.push(("client_secret", secret));
        f
    };
    let (status, body) = emu.token(&with("nobody", CLIENT_SECRET)).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_client_id")
    );
    let (status, body) = emu.token(&with(CLIENT_ID, "wrong")).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_client")
    );
    // Failed client authentication does not consume the code.
    let r = emu
        .http
        .post(emu.url("/services/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&base)
        .send()
        .await
        .expect("token");
    expect_status(r, 200).await;
}

#[tokio::test]
async fn unknown_or_missing_grant_types_are_refused() {
    let emu = start(|_| {}).await;
    let auth = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    let (status, body) = emu
        .token(&[auth[0], auth[1], ("grant_type", "client_magic")])
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    let (status, body) = emu.token(&auth).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn refresh_and_password_grants() {
    let emu = start(|_| {}).await;
    let code = emu.code_for(None).await;
    let (_, first) = emu.exchange(&code, None).await;
    let refresh = first["refresh_token"].as_str().expect("refresh token");
    let (status, renewed) = emu
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_ne!(renewed["access_token"], first["access_token"]);
    assert!(
        renewed.get("refresh_token").is_none(),
        "Salesforce does not rotate refresh tokens"
    );
    assert!(verify_signature(
        CLIENT_SECRET.as_bytes(),
        renewed["id"].as_str().expect("id"),
        renewed["issued_at"].as_str().expect("issued_at"),
        renewed["signature"].as_str().expect("signature"),
    ));
    let (status, body) = emu
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "not-a-refresh-token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let password = |p: &'static str| {
        [
            ("grant_type", "password"),
            ("username", "bob@acme.example"),
            ("password", p),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]
    };
    let (status, body) = emu.token(&password("bob-demo-2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none());
    let r = emu
        .userinfo(body["access_token"].as_str().expect("token"))
        .await;
    assert_eq!(
        r.json::<Value>().await.expect("json")["preferred_username"],
        "bob@acme.example"
    );
    let (status, body) = emu.token(&password("wrong")).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn userinfo_and_the_identity_url_describe_the_tokens_user() {
    let emu = start(|_| {}).await;
    let carol = emu
        .handle
        .issue_tokens("carol@globex.example")
        .expect("carol");
    let r = emu.userinfo(&carol.access_token).await;
    let r = expect_status(r, 200).await;
    let info: Value = r.json().await.expect("json");
    assert_eq!(info["preferred_username"], "carol@globex.example");
    assert_eq!(info["organization_id"].as_str().map(str::len), Some(18));
    assert!(info["organization_id"]
        .as_str()
        .is_some_and(|o| o.starts_with("00D5j00000GlBx2")));
    assert_eq!(info["sub"], carol.id);

    let r = emu
        .http
        .get(&carol.id)
        .bearer_auth(&carol.access_token)
        .send()
        .await
        .expect("identity");
    let r = expect_status(r, 200).await;
    let identity: Value = r.json().await.expect("json");
    assert_eq!(identity["username"], "carol@globex.example");

    // Another user's identity URL with carol's token is refused.
    let alice = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    let r = emu
        .http
        .get(&alice.id)
        .bearer_auth(&carol.access_token)
        .send()
        .await
        .expect("identity");
    expect_status(r, 403).await;
}

#[tokio::test]
async fn bad_expired_and_revoked_tokens_get_bad_oauth_token() {
    let emu = start(|_| {}).await;
    let r = emu.userinfo("00D5j00000AcMe1!made-up").await;
    let r = expect_status(r, 403).await;
    assert_eq!(r.text().await.expect("body"), "Bad_OAuth_Token");
    let r = emu
        .http
        .get(emu.url("/services/oauth2/userinfo"))
        .send()
        .await
        .expect("userinfo");
    expect_status(r, 403).await;

    let grant = emu
        .handle
        .issue_tokens("alice@acme.example")
        .expect("alice");
    expect_status(emu.userinfo(&grant.access_token).await, 200).await;
    emu.handle.advance_time(Duration::from_secs(3 * 3600));
    expect_status(emu.userinfo(&grant.access_token).await, 403).await;
}
