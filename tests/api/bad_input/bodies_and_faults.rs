//! Malformed bodies and requests, Salesforce misbehaving, and query text posing as log lines.

use super::*;

#[tokio::test]
async fn malformed_bodies_and_requests_are_refused() {
    watch();
    let app = TestApp::builder().password_flow().spawn().await;
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
    let app = TestApp::builder()
        .configure(|env| {
            // Beyond this, Salesforce is "slow".
            env.insert("SALESFORCE_TIMEOUT".into(), "1".into());
            env.insert("IDENTITY_CACHE_TTL".into(), "0".into());
            let listed = format!("{},{}", env["SF_INSTANCE_ORIGINS"], stubs.join(","));
            env.insert("SF_INSTANCE_ORIGINS".into(), listed);
        })
        .spawn()
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

    // Salesforce back: the logged-out token stays refused (sfgate ended it at the logout,
    // whatever Salesforce answered), a fresh one works, and so does a new login.
    app.emulator.set_fault(Fault::None);
    let fresh = app.tokens(ALICE.0);
    run_rows(
        &app,
        vec![
            me("logged out while revoke hung", &emulator).expect(401, Some("invalid_token")),
            get("recovered".to_string(), "/api/me")
                .bearer(&fresh.access_token, &emulator)
                .expect(200, None),
        ],
    )
    .await;
    secrets.push(fresh.access_token.clone());
    let session = session_cookie(&app).await;
    secrets.push(value_of(&session));
    assert_secrets_not_logged(&secrets);
}

#[tokio::test]
async fn text_from_the_query_cannot_forge_log_lines() {
    watch();
    let app = TestApp::builder().spawn().await;
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
