//! Large and slow bodies, HTTP versions, unreachable and slow upstreams, own routes beside the
//! proxy, and how proxied requests are counted.

use super::*;

/// The measure is the process's resident memory, so the test runs in a process of its own.
#[test]
fn hundred_megabyte_upload_and_download_stream_without_buffering() {
    crate::helpers::alone::run_alone(
        "proxy::streams_and_errors::hundred_megabyte_bodies_stream_in_a_process_of_their_own",
    );
}

#[tokio::test]
#[ignore = "run alone in a child process by hundred_megabyte_upload_and_download_stream_without_buffering"]
async fn hundred_megabyte_bodies_stream_in_a_process_of_their_own() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let t = app.tokens(ALICE.0);
    let before = rss();

    let peak = PeakRss::start();
    let chunks = HUNDRED_MB / CHUNK_LEN as u64;
    let body = futures_util::stream::iter(0..chunks)
        .map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK)));
    let r = app
        .http
        .post(app.url("/upload"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    let r = expect_status(r, 200).await;
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["received"], HUNDRED_MB);
    let upload_growth = peak.finish().saturating_sub(before);

    let peak = PeakRss::start();
    let r = app
        .get_with_token(
            &format!("/download/{HUNDRED_MB}"),
            &t.access_token,
            &t.instance_url,
        )
        .await;
    let r = expect_status(r, 200).await;
    let mut stream = r.bytes_stream();
    let mut downloaded = 0u64;
    while let Some(chunk) = stream.next().await {
        downloaded += chunk.expect("chunk").len() as u64;
    }
    assert_eq!(downloaded, HUNDRED_MB);
    let download_growth = peak.finish().saturating_sub(before);

    // Buffering either body would add 100 MB at its peak; streaming costs a few chunks (the
    // bound leaves room for allocator noise).
    let limit = 25 * 1024 * 1024;
    assert!(
        upload_growth < limit,
        "upload grew RSS by {upload_growth} bytes at its peak"
    );
    assert!(
        download_growth < limit,
        "download grew RSS by {download_growth} bytes at its peak"
    );
}

#[tokio::test]
async fn the_upstream_gets_http_1_1_by_default_and_http_2_with_upstream_http2() {
    let echo = start_echo().await;
    for (setting, version) in [("false", "HTTP/1.1"), ("true", "HTTP/2.0")] {
        let app = TestApp::builder()
            .gateway_for(&echo.url())
            .envs(&[("UPSTREAM_HTTP2", setting)])
            .spawn()
            .await;
        let t = app.tokens(ALICE.0);
        let r = spoofed(
            app.http
                .post(app.url("/app/h2?x=1"))
                .bearer_auth(&t.access_token)
                .header("x-instance-url", &t.instance_url),
        )
        .body("over two")
        .send()
        .await
        .expect("request");
        let r = expect_status_for(r, 200, &setting).await;
        let echoed: Value = r.json().await.expect("json");
        assert_eq!(echoed["version"], version);
        assert_eq!(echoed["path"], "/app/h2");
        assert_eq!(echoed["query"], "x=1");
        assert_eq!(echoed["body"], "over two");
        assert_eq!(one(&echoed, "x-salesforce-username"), ALICE.0);
        assert!(received(&echoed, "authorization").is_empty());
    }
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    let closed = refusing_address();
    let upstream = format!("http://{}", closed.addr);
    let app = TestApp::builder()
        .env("UPSTREAM_URL", upstream)
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/app", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 502).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "bad_gateway");
    assert!(body["error_description"].as_str().is_some());
}

#[tokio::test]
async fn slow_upstream_is_504_but_a_slow_body_is_not_cut_off() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("UPSTREAM_TIMEOUT", "1")])
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    let started = std::time::Instant::now();
    let r = app
        .get_with_token("/slow", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 504).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "gateway_timeout");

    // The timeout covers waiting for the response headers, not transferring the body.
    let r = app
        .get_with_token("/slow-body", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 200).await;
    assert_eq!(r.text().await.expect("body"), "tick\n".repeat(4));
}

/// `REQUEST_TIMEOUT` bounds sfgate's own routes; a proxied request is governed by
/// `UPSTREAM_TIMEOUT` alone, however the proxy is mounted.
#[tokio::test]
async fn the_own_routes_timeout_does_not_cut_proxied_requests() {
    let echo = start_echo().await;
    let app = TestApp::builder()
        .gateway_for(&echo.url())
        .envs(&[("REQUEST_TIMEOUT", "1"), ("UPSTREAM_TIMEOUT", "10")])
        .spawn()
        .await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/slow", &t.access_token, &t.instance_url)
        .await;
    let r = expect_status(r, 200).await;
    assert_eq!(r.text().await.expect("body"), "late");
}

#[tokio::test]
async fn own_routes_are_served_by_sfgate_and_never_proxied() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let r = app
        .http
        .get(app.url("/oauth2/healthz"))
        .send()
        .await
        .expect("r");
    expect_status(r, 200).await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/oauth2/userinfo", &t.access_token, &t.instance_url)
        .await;
    let me: serde_json::Value = expect_status(r, 200).await.json().await.expect("json");
    assert_eq!(me["preferredUsername"], ALICE.0);
    for path in ["/oauth2/nothing-here", "/oauth2/assets/missing.css"] {
        let r = app
            .get_with_token(path, &t.access_token, &t.instance_url)
            .await;
        let r = expect_status_for(r, 404, &path).await;
        // sfgate's own answer, so sfgate's page policies apply.
        assert!(
            r.headers().contains_key("content-security-policy"),
            "{path}"
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
    }
    let scraped = scrape(&app).await;
    assert!(scraped.contains("sfgate_http_requests_total"), "{scraped}");
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn proxied_requests_are_counted_as_proxy_and_keep_the_upstreams_headers() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let t = app.tokens(ALICE.0);
    // Exact counts: the metrics recorder is process-wide and tests run in parallel, so this
    // test uses the one method no other test of this binary sends (DELETE is sent to /webhook).
    // A new test must not send PATCH.
    let series = |route: &'static str, status: &'static str| {
        [("method", "PATCH"), ("route", route), ("status", status)]
    };
    let before = scrape(&app).await;
    let refused = app.http.patch(app.url("/app/x")).send().await.expect("r");
    expect_status(refused, 401).await;
    let browser_refused = app
        .http
        .patch(app.url("/app/x"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("r");
    expect_status(browser_refused, 303).await;
    let proxied = app
        .http
        .patch(app.url("/app/x"))
        .bearer_auth(&t.access_token)
        .header("x-instance-url", &t.instance_url)
        .send()
        .await
        .expect("r");
    let proxied = expect_status(proxied, 200).await;
    // sfgate's page policies are for its own pages; the upstream sets its own.
    for own in [
        "content-security-policy",
        "x-frame-options",
        "cache-control",
    ] {
        assert!(
            proxied.headers().get(own).is_none(),
            "{own} on a proxied answer"
        );
    }
    let after = scrape(&app).await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    let requests = "sfgate_http_requests_total";
    assert_eq!(grew(requests, &series("proxy", "401")), 1.0, "{after}");
    assert_eq!(grew(requests, &series("proxy", "303")), 1.0, "{after}");
    assert_eq!(grew(requests, &series("proxy", "200")), 1.0, "{after}");
    assert_eq!(grew(requests, &series("unmatched", "401")), 0.0);
    assert!(grew("sfgate_proxy_requests_total", &[("status", "200")]) >= 1.0);
}

#[tokio::test]
async fn own_routes_keep_their_body_limit_in_gateway_mode() {
    let echo = start_echo().await;
    let app = TestApp::builder().gateway_for(&echo.url()).spawn().await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("code={}", "a".repeat(100 * 1024)))
        .send()
        .await
        .expect("request");
    expect_status(r, 413).await;
}

#[tokio::test]
async fn without_an_upstream_unknown_paths_are_404() {
    let app = TestApp::builder().spawn().await;
    let t = app.tokens(ALICE.0);
    let r = app
        .get_with_token("/app", &t.access_token, &t.instance_url)
        .await;
    expect_status(r, 404).await;
}
