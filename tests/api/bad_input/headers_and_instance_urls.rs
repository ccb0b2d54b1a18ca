//! Credential headers and instance URLs: malformed, repeated, oversized or refused, and
//! never a reason to call out.

use super::*;

#[tokio::test]
async fn malformed_repeated_and_oversized_credential_headers_are_refused() {
    watch();
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let (tok, inst) = (t.access_token.as_str(), t.instance_url.as_str());
    // Just under the 32 KB header cap (with the other headers), and just over it.
    let big = "a".repeat(30 * 1024);
    let over = "a".repeat(sfgate::middleware::header_limit::MAX_HEADER_BYTES);
    let rows = vec![
        get("control: a valid bearer token", "/api/me")
            .bearer(tok, inst)
            .expect(200, None),
        get("control: the scheme is case-insensitive", "/api/me")
            .header("authorization", format!("bEaReR {tok}"))
            .header("x-instance-url", inst)
            .expect(200, None),
        get("Basic instead of Bearer", "/api/me")
            .header("authorization", "Basic dXNlcjpwdw==")
            .expect(401, Some("invalid_request")),
        get("Bearer with no token", "/api/me")
            .header("authorization", "Bearer")
            .header("x-instance-url", inst)
            .expect(401, Some("invalid_request")),
        get("Bearer followed by spaces only", "/api/me")
            .header("authorization", "Bearer    ")
            .header("x-instance-url", inst)
            .expect(401, Some("invalid_request")),
        get("a token with a space in it", "/api/me")
            .header("authorization", format!("Bearer {tok} extra"))
            .header("x-instance-url", inst)
            .expect(401, Some("invalid_request")),
        get("a tab instead of a space after the scheme", "/api/me")
            .header("authorization", format!("Bearer\t{tok}"))
            .header("x-instance-url", inst)
            .expect(401, Some("invalid_request")),
        get("an empty Authorization header", "/api/me")
            .header("authorization", "")
            .expect(401, Some("invalid_request")),
        get("a token without X-Instance-Url", "/api/me")
            .header("authorization", format!("Bearer {tok}"))
            .expect(401, Some("invalid_request")),
        get("a legacy bearer header without instanceurl", "/api/me")
            .header("bearer", tok)
            .expect(401, Some("invalid_request")),
        get(
            "a bad Authorization is not rescued by good legacy headers",
            "/api/me",
        )
        .header("authorization", "Bearer forged-token-value")
        .header("x-instance-url", inst)
        .header("bearer", tok)
        .header("instanceurl", inst)
        .expect(401, Some("invalid_token")),
        get("Authorization twice", "/api/me")
            .bearer(tok, inst)
            .header("authorization", "Bearer other-token-value")
            .expect(400, Some("invalid_request")),
        get("legacy bearer twice", "/api/me")
            .header("bearer", tok)
            .header("bearer", tok)
            .header("instanceurl", inst)
            .expect(400, Some("invalid_request")),
        get("X-Instance-Url twice", "/api/me")
            .bearer(tok, inst)
            .header("x-instance-url", inst)
            .expect(400, Some("invalid_request")),
        get("instanceurl twice", "/api/me")
            .header("bearer", tok)
            .header("instanceurl", inst)
            .header("instanceurl", inst)
            .expect(400, Some("invalid_request")),
        get("a token one byte over the length limit", "/api/me")
            .bearer(&"t".repeat(4097), inst)
            .expect(401, Some("invalid_request")),
        get("a 30 KB Authorization header", "/api/me")
            .bearer(&big, inst)
            .expect(401, Some("invalid_request")),
        get("a 30 KB X-Instance-Url", "/api/me")
            .bearer(tok, &format!("https://{big}.my.salesforce.com"))
            .expect(401, Some("invalid_request")),
        get("a 30 KB session cookie", "/api/me")
            .header("cookie", format!("{SESSION_COOKIE}={big}"))
            .expect(401, Some("invalid_token")),
        get("a 30 KB unrelated header is tolerated", "/healthz")
            .header("x-junk", &big)
            .expect(200, None),
        get(
            "an Authorization header over the 32 KB header cap",
            "/api/me",
        )
        .bearer(&over, inst)
        .expect(431, Some("request_header_fields_too_large")),
        get("a session cookie over the 32 KB header cap", "/api/me")
            .header("cookie", format!("{SESSION_COOKIE}={over}"))
            .expect(431, Some("request_header_fields_too_large")),
        get("headers over the 32 KB cap, even on /healthz", "/healthz")
            .header("x-junk", &over)
            .expect(431, Some("request_header_fields_too_large")),
        get("headers beyond the server's 400 KB limit", "/api/me")
            .header("x-junk", "a".repeat(500 * 1024))
            .expect(431, None),
        get("non-UTF-8 bytes in Authorization", "/api/me")
            .header("authorization", b"Bearer \xff\xfe\xfd")
            .header("x-instance-url", inst)
            .expect(400, Some("invalid_request")),
        get("non-UTF-8 bytes in X-Instance-Url", "/api/me")
            .header("authorization", format!("Bearer {tok}"))
            .header("x-instance-url", b"https://acme.my.salesforce.com\xc3\x28")
            .expect(400, Some("invalid_request")),
        get("non-UTF-8 bytes in the legacy bearer header", "/api/me")
            .header("bearer", b"\x80\x81\x82")
            .header("instanceurl", inst)
            .expect(400, Some("invalid_request")),
        get("a non-UTF-8 Cookie header counts as no cookie", "/api/me")
            .header("cookie", b"sfgate_session=\xff\xfe")
            .expect(401, Some("unauthorized")),
        get("a control character in a header value", "/api/me")
            .header("authorization", b"Bearer abc\x01def")
            .header("x-instance-url", inst)
            .expect(400, None),
        get("a NUL byte in a header value", "/api/me")
            .header(
                "x-instance-url",
                b"https://a.my.salesforce.com\x00.evil.example",
            )
            .expect(400, None),
        get("a header name with a space", "/api/me")
            .header("bad header", "x")
            .expect(400, None),
        get("a non-ASCII header name", "/api/me")
            .header("b\u{e9}arer", tok)
            .expect(400, None),
        get("obsolete line folding", "/api/me")
            .header("authorization", format!("Bearer\r\n {tok}"))
            .expect(400, None),
        get("a thousand headers", "/api/me")
            .header(
                "x-a",
                (0..1000)
                    .map(|i| format!("v\r\nx-h{i}: v"))
                    .collect::<String>(),
            )
            .expect(431, None),
    ];
    run_rows(&app, rows).await;
    assert_no_panics();
    assert_secrets_not_logged(&[
        t.access_token.clone(),
        t.refresh_token.clone().expect("refresh"),
        CLIENT_SECRET.to_string(),
        SESSION_SECRET.to_string(),
    ]);
}

#[tokio::test]
async fn every_refused_instance_url_form_makes_no_outgoing_request() {
    watch();
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    // A server that would answer "valid" for anything, named as the instance in many ways.
    let liar = StubServer::start(
        200,
        "application/json",
        format!(r#"{{"user_id":"0055j00000AlIcE","organization_id":"{ACME}","preferred_username":"evil"}}"#),
    )
    .await;
    let liar_port = liar.addr.port();
    let emulator = app.emulator.base_url();
    let emulator_port = app.emulator.addr().port();
    let refused: Vec<(&str, String)> = vec![
        ("http", "http://acme.my.salesforce.com".into()),
        ("http to the liar", liar.url()),
        (
            "https to the liar",
            format!("https://127.0.0.1:{liar_port}"),
        ),
        (
            "localhost instead of the listed 127.0.0.1",
            format!("http://localhost:{emulator_port}"),
        ),
        ("userinfo", "https://user:pw@acme.my.salesforce.com".into()),
        (
            "userinfo hiding the liar",
            format!("http://acme.my.salesforce.com@127.0.0.1:{liar_port}"),
        ),
        (
            "userinfo on the listed origin",
            format!("http://user@127.0.0.1:{emulator_port}"),
        ),
        ("query", "https://acme.my.salesforce.com?x=1".into()),
        ("query on the listed origin", format!("{emulator}?x=1")),
        ("fragment", "https://acme.my.salesforce.com#frag".into()),
        ("fragment on the listed origin", format!("{emulator}#frag")),
        (
            "path",
            "https://acme.my.salesforce.com/services/data".into(),
        ),
        (
            "path on the listed origin",
            format!("{emulator}/services/oauth2/userinfo"),
        ),
        (
            "non-default port",
            "https://acme.my.salesforce.com:8443".into(),
        ),
        (
            "explicit port 443 on http",
            "http://acme.my.salesforce.com:443".into(),
        ),
        (
            "the listed origin on another port",
            format!("http://127.0.0.1:{liar_port}"),
        ),
        ("IPv4 literal", "https://13.110.0.1".into()),
        ("IPv6 literal", "https://[::1]".into()),
        ("decimal IPv4", "https://2130706433".into()),
        ("hex IPv4", "https://0x7f.0.0.1".into()),
        (
            "look-alike suffix",
            "https://login.salesforce.com.evil.example".into(),
        ),
        (
            "look-alike without the dot",
            "https://evilsalesforce.com".into(),
        ),
        ("the bare suffix", "https://salesforce.com".into()),
        ("trailing dot", "https://acme.my.salesforce.com.".into()),
        (
            "percent-encoded look-alike",
            "https://acme.my.salesforce.com%2eevil.example".into(),
        ),
        (
            "IDN look-alike, as punycode",
            "https://acme.my.salesforce.xn--cm-jbc".into(),
        ),
        (
            "IDN look-alike in the suffix",
            "https://acme.my.xn--slesforce-0yh.com".into(),
        ),
        (
            "a label longer than DNS allows",
            format!("https://{}.my.salesforce.com", "a".repeat(64)),
        ),
        ("unknown host", "https://unknown.example".into()),
        ("javascript scheme", "javascript:alert(1)".into()),
        ("file scheme", "file:///etc/passwd".into()),
        ("no scheme", "acme.my.salesforce.com".into()),
        ("empty", "".into()),
    ];
    let mut rows = Vec::new();
    for (name, instance) in &refused {
        rows.push(
            get(format!("Bearer, {name}: {instance}"), "/api/me")
                .bearer(&t.access_token, instance)
                .expect(401, Some("invalid_request")),
        );
        rows.push(
            get(format!("legacy headers, {name}: {instance}"), "/secured")
                .header("bearer", &t.access_token)
                .header("instanceurl", instance)
                .expect(401, Some("invalid_request")),
        );
    }
    // A header value must be ASCII: a raw Unicode look-alike is not even read as text.
    rows.push(
        get("IDN look-alike as raw UTF-8", "/api/me")
            .bearer(&t.access_token, "https://acme.my.salesforce.c\u{3bf}m")
            .expect(400, Some("invalid_request")),
    );
    let answers = run_rows(&app, rows).await;
    for answer in &answers[..answers.len() - 1] {
        assert!(
            answer.text().contains("instance URL"),
            "the refusal names the instance URL rule: {}",
            answer.text()
        );
    }
    assert_eq!(liar.hits(), 0, "a refused instance is never called");
    assert_eq!(app.emulator.calls(Endpoint::UserInfo), 0);
    assert_eq!(app.emulator.calls(Endpoint::Identity), 0);
    assert_secrets_not_logged(std::slice::from_ref(&t.access_token));
}
