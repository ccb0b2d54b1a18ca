//! Paths, request ids, sfgate's cookies in other spellings, and the per-client Salesforce
//! budget.

use super::*;

// ---------------------------------------------------------------------------------------------
// 2. Paths.

#[tokio::test]
async fn encoded_and_ambiguous_paths_are_refused_before_skip_auth_rules() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("SKIP_AUTH_ROUTES", r"GET=^/public/,GET=\.css$")])
        .spawn()
        .await;
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
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[
            ("SKIP_AUTH_ROUTES", "GET=^/public/"),
            ("ALLOW_ENCODED_SLASHES", "true"),
        ])
        .spawn()
        .await;
    let answer = send_raw(app.gateway.addr, "GET /public/a%2Fb HTTP/1.1", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.json()["path"], "/public/a%2Fb");
    for path in ["/public/..%2fadmin", "/public/..%5cadmin"] {
        let answer = send_raw(app.gateway.addr, &format!("GET {path} HTTP/1.1"), &[]).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.head);
    }
    let strict = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("SKIP_AUTH_ROUTES", "GET=^/public/")])
        .spawn()
        .await;
    let answer = send_raw(strict.gateway.addr, "GET /public/a%2Fb HTTP/1.1", &[]).await;
    assert_eq!(answer.status, 400, "{}", answer.head);
}

// ---------------------------------------------------------------------------------------------
// 4. Request ids.

#[tokio::test]
async fn unsafe_request_ids_are_replaced_before_they_are_logged_or_forwarded() {
    watch();
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("SKIP_AUTH_ROUTES", "GET=^/public/")])
        .spawn()
        .await;
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

/// sfgate reads its cookies under the names it serves them, as sent: an encoded spelling is
/// another cookie (one any host of the site could set), never read as the session, and never
/// forwarded either, alone or beside the real one.
#[tokio::test]
async fn the_session_cookie_in_an_encoded_spelling_is_not_read_and_never_forwarded() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
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
        let hits = echo.hits();
        let alone = send_raw(
            app.gateway.addr,
            "GET /private/x HTTP/1.1",
            &[("Cookie", &format!("theme=dark; {name}={value}"))],
        )
        .await;
        assert_eq!(alone.status, 401, "{name} is not read as the session");
        assert_eq!(echo.hits(), hits, "{name}: refused before the app");

        let beside = send_raw(
            app.gateway.addr,
            "GET /private/x HTTP/1.1",
            &[("Cookie", &format!("theme=dark; {name}={value}; {pair}"))],
        )
        .await;
        assert_eq!(beside.status, 200, "{name} beside the real session");
        let echoed = beside.json();
        assert_eq!(
            received_value(&echoed, "cookie").as_deref(),
            Some("theme=dark"),
            "{name}: {echoed}"
        );
        assert!(
            !beside.text().contains(&value),
            "the sealed session reached the app"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Per-client Salesforce budget.

#[tokio::test]
async fn one_client_cannot_spend_more_than_its_salesforce_validation_budget() {
    use sfgate_emulator::Endpoint;
    let app = TestApp::builder()
        .env("VALIDATION_MISSES_PER_MINUTE", "3")
        .spawn()
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
    expect_status_for(r, 401, "a known bad token is answered from the cache").await;
    let good = app.tokens(ALICE.0);
    let r = get(&attacker, good.access_token.clone())
        .await
        .expect("request");
    expect_status_for(r, 429, "a new token, even a good one, waits for the budget").await;

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
