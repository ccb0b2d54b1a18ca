use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

/// A map's lines in a fixed order, for comparing maps built in different orders.
pub(crate) fn sorted_pairs(h: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    let mut pairs: Vec<(String, Vec<u8>)> = h
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn addresses_are_written_as_display_writes_them() {
    for ip in [
        "0.0.0.0",
        "127.0.0.1",
        "10.0.0.7",
        "255.255.255.255",
        "192.168.100.9",
        "1.20.199.250",
        "::1",
        "2001:db8::7",
        "::ffff:10.0.0.1",
    ] {
        let ip: IpAddr = ip.parse().expect("ip");
        let mut out = String::new();
        push_ip(&mut out, ip);
        assert_eq!(out, ip.to_string());
    }
}

#[test]
fn hop_by_hop_headers_and_those_connection_names_are_removed() {
    let mut h = map(&[
        ("connection", "keep-alive, x-private"),
        ("x-private", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-authorization", "Basic x"),
        ("proxy-connection", "close"),
        ("te", "trailers"),
        ("trailer", "x-sum"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("x-kept", "yes"),
        ("content-type", "text/plain"),
    ]);
    remove_hop_by_hop(&mut h);
    let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["content-type", "x-kept"]);
}

#[test]
fn only_sfgate_cookies_are_removed() {
    let mut h = map(&[
        ("cookie", "theme=dark; sfgate_session=abc; lang=en"),
        ("cookie", "sfgate_login=x"),
        ("authorization", "Bearer t"),
        ("bearer", "t"),
        ("instanceurl", "https://a.my.salesforce.com"),
        ("x-instance-url", "https://a.my.salesforce.com"),
    ]);
    remove_credentials(&mut h);
    let cookies: Vec<&str> = h
        .get_all(header::COOKIE)
        .iter()
        .map(|v| v.to_str().expect("text"))
        .collect();
    assert_eq!(cookies, ["theme=dark; lang=en"]);
    assert_eq!(h.len(), 1);
}

/// The one-pass rewrite decides as the separate steps do, for every header kind.
#[test]
fn one_pass_rewrite_matches_the_separate_steps() {
    let sent = map(&[
        ("connection", "keep-alive, x-private"),
        ("x-private", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-authorization", "Basic x"),
        ("te", "trailers"),
        ("upgrade", "h2c"),
        ("host", "gw.example"),
        ("expect", "100-continue"),
        ("x-salesforce-user-id", "forged"),
        ("x-forwarded-email", "forged@evil.example"),
        ("authorization", "Bearer t"),
        ("bearer", "t"),
        ("instanceurl", "https://a.my.salesforce.com"),
        ("x-instance-url", "https://a.my.salesforce.com"),
        ("cookie", "theme=dark; sfgate_session=abc"),
        ("cookie", "sfgate_login=x"),
        ("cookie", "lang=en"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-for", "7.7.7.7"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=6.6.6.6"),
        ("accept", "a"),
        ("accept", "b"),
        ("x-kept", "yes"),
    ]);
    let client: SocketAddr = "10.0.0.7:5555".parse().expect("addr");
    for trust_proxy in [false, true] {
        let forwarded = || Forwarded {
            client: Some(client),
            host: Some("gw.example"),
            trust_proxy,
        };
        let mut steps = sent.clone();
        remove_hop_by_hop(&mut steps);
        remove_by_name_rule(&mut steps, UnderscoreHeaders::Drop);
        remove_credentials(&mut steps);
        steps.remove(header::HOST);
        steps.remove(header::EXPECT);
        set_forwarded(&mut steps, &forwarded());
        let mut ruled = sent.clone();
        remove_by_name_rule(&mut ruled, UnderscoreHeaders::Drop);
        let one_pass = upstream_request_headers(
            &ruled,
            &Outgoing {
                forwarded: forwarded(),
                underscores: UnderscoreHeaders::Drop,
                drop_method_overrides: false,
                identity: None,
                assertion: None,
                access_token: None,
            },
        );
        let sorted = |h: &HeaderMap| {
            let mut pairs: Vec<(String, String)> = h
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().expect("text").to_string()))
                .collect();
            pairs.sort();
            pairs
        };
        assert_eq!(
            sorted(&one_pass),
            sorted(&steps),
            "trust_proxy={trust_proxy}"
        );
    }
}

/// The same, for any mix of headers a client may send (names from every class the
/// rule knows, repeated, listed in `Connection` or not).
pub(crate) mod one_pass_property {
    use super::*;
    use proptest::prelude::*;

    pub(crate) const NAMES: [&str; 34] = [
        "x_salesforce_user_id",
        "x-sfgate-assertion",
        "x_sfgate_assertion",
        "x-salesforce-other",
        "x_custom",
        "x-http-method-override",
        "x_http_method",
        "x-request-id",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "proxy-x",
        "host",
        "expect",
        "x-salesforce-user-id",
        "x-forwarded-user",
        "x-forwarded-email",
        "authorization",
        "bearer",
        "instanceurl",
        "x-instance-url",
        "cookie",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "x-real-ip",
        "x-forwarded-prefix",
        "x-original-url",
        "x-app",
    ];
    pub(crate) const VALUES: [&str; 8] = [
        "1",
        "x-app",
        "keep-alive, x-app",
        "cookie, X-Forwarded-For",
        "x-forwarded-proto,x-forwarded-prefix",
        "sfgate_session=a; theme=dark",
        "sfgate_login=b",
        "6.6.6.6",
    ];

    proptest! {
        #[test]
        fn one_pass_equals_the_steps(
            pairs in proptest::collection::vec((0..NAMES.len(), 0..VALUES.len()), 0..16),
            trust_proxy: bool,
            keep_underscores: bool,
            skipped_auth: bool,
        ) {
            let underscores = if keep_underscores {
                UnderscoreHeaders::Keep
            } else {
                UnderscoreHeaders::Drop
            };
            let list: Vec<(&str, &str)> =
                pairs.iter().map(|(n, v)| (NAMES[*n], VALUES[*v])).collect();
            let sent = map(&list);
            let client: SocketAddr = "10.0.0.7:5555".parse().expect("addr");
            let forwarded = || Forwarded {
                client: Some(client),
                host: Some("authority.example"),
                trust_proxy,
            };
            let mut steps = sent.clone();
            remove_by_name_rule(&mut steps, underscores);
            if skipped_auth {
                let overrides: Vec<HeaderName> = steps
                    .keys()
                    .filter(|name| rule::is_method_override(name.as_str()))
                    .cloned()
                    .collect();
                for name in overrides {
                    steps.remove(name);
                }
            }
            let host = steps
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            remove_hop_by_hop(&mut steps);
            remove_credentials(&mut steps);
            steps.remove(header::HOST);
            steps.remove(header::EXPECT);
            set_forwarded(
                &mut steps,
                &Forwarded {
                    host: host.as_deref().or(Some("authority.example")),
                    ..forwarded()
                },
            );
            // The one pass applies the name rule itself, on the client's headers as sent.
            let one_pass = upstream_request_headers(
                &sent,
                &Outgoing {
                    forwarded: forwarded(),
                    underscores,
                    drop_method_overrides: skipped_auth,
                    identity: None,
                    assertion: None,
                    access_token: None,
                },
            );
            prop_assert_eq!(sorted_pairs(&one_pass), sorted_pairs(&steps));
        }
    }
}

#[test]
fn every_header_sfgate_sets_or_reads_is_owned_by_the_name_rule() {
    use crate::headers::owned::*;
    for name in [
        X_SFGATE_ASSERTION,
        header::AUTHORIZATION,
        LEGACY_BEARER,
        LEGACY_INSTANCE_URL,
        X_INSTANCE_URL,
        X_FORWARDED_FOR,
        X_FORWARDED_PROTO,
        X_FORWARDED_HOST,
        X_FORWARDED_URI,
        X_FORWARDED_METHOD,
        X_ORIGINAL_URI,
        X_ORIGINAL_METHOD,
        X_REQUEST_ID,
    ] {
        assert!(rule::owner(name.as_str()).is_some(), "{name}");
    }
    let identity =
        crate::headers::identity_headers(&crate::access::requirements::tests::identity());
    assert!(identity.len() >= 5, "{identity:?}");
    for name in identity.keys() {
        assert_eq!(rule::owner(name.as_str()), Some(Class::Identity), "{name}");
    }
}

#[test]
fn cookies_sfgate_reads_in_an_encoded_spelling_are_removed_too() {
    let mut h = map(&[(
        "cookie",
        "sfgate%5Fsession=abc; %73fgate_login=x; theme=dark; sfgate%5Fsession2=keep",
    )]);
    remove_credentials(&mut h);
    assert_eq!(h[header::COOKIE], "theme=dark; sfgate%5Fsession2=keep");
}

#[test]
fn the_name_rule_removes_look_alikes_and_underscore_names() {
    let sent = [
        ("x_salesforce_user_id", "forged"),
        ("x-salesforce-user-id", "forged"),
        ("x-forwarded_for", "6.6.6.6"),
        ("x_custom", "1"),
        ("x-custom", "2"),
        ("x-forwarded-for", "1.2.3.4"),
    ];
    let mut h = map(&sent);
    remove_by_name_rule(&mut h, UnderscoreHeaders::Drop);
    let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["x-custom", "x-forwarded-for"]);
    let mut h = map(&sent);
    remove_by_name_rule(&mut h, UnderscoreHeaders::Keep);
    let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["x-custom", "x-forwarded-for", "x_custom"]);
}

#[test]
fn forwarded_headers_from_clients_are_replaced_unless_trusted() {
    let client: SocketAddr = "10.0.0.7:5555".parse().expect("addr");
    let sent = [
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("x-forwarded-prefix", "/evil"),
    ];
    let mut h = map(&sent);
    set_forwarded(
        &mut h,
        &Forwarded {
            client: Some(client),
            host: Some("gw.example"),
            trust_proxy: false,
        },
    );
    assert_eq!(h[X_FORWARDED_FOR], "10.0.0.7");
    assert_eq!(h[X_FORWARDED_PROTO], "http");
    assert_eq!(h[X_FORWARDED_HOST], "gw.example");
    assert!(!h.contains_key(header::FORWARDED));
    assert!(!h.contains_key("x-real-ip"));
    assert!(!h.contains_key("x-forwarded-prefix"));

    let mut h = map(&sent);
    set_forwarded(
        &mut h,
        &Forwarded {
            client: Some(client),
            host: Some("gw.example"),
            trust_proxy: true,
        },
    );
    assert_eq!(h[X_FORWARDED_FOR], "6.6.6.6, 10.0.0.7");
    assert_eq!(h[X_FORWARDED_PROTO], "https");
    assert_eq!(h[X_FORWARDED_HOST], "evil.example");
    assert_eq!(h["x-real-ip"], "6.6.6.6");
}

/// What the proxy writes for a request from 10.0.0.7 with no caller (a skip-auth route):
/// forwarding headers only.
fn anonymous(trust_proxy: bool) -> Outgoing<'static> {
    Outgoing {
        forwarded: Forwarded {
            client: Some("10.0.0.7:5555".parse().expect("addr")),
            host: Some("gw.example"),
            trust_proxy,
        },
        underscores: UnderscoreHeaders::Drop,
        drop_method_overrides: false,
        identity: None,
        assertion: None,
        access_token: None,
    }
}

#[test]
fn names_the_connection_header_lists_do_not_cross_whatever_their_class() {
    let sent = map(&[
        (
            "connection",
            "Cookie, x-forwarded-for, X-Forwarded-Proto, x-app",
        ),
        ("cookie", "theme=dark"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-app", "1"),
        ("x-kept", "yes"),
    ]);
    for trust_proxy in [false, true] {
        let out = upstream_request_headers(&sent, &anonymous(trust_proxy));
        assert!(
            !out.contains_key(header::COOKIE),
            "trust_proxy={trust_proxy}"
        );
        assert!(!out.contains_key("x-app"));
        assert_eq!(out["x-kept"], "yes");
        // The chain starts again at the peer, and the scheme is sfgate's own.
        assert_eq!(out[X_FORWARDED_FOR], "10.0.0.7");
        assert_eq!(out[X_FORWARDED_PROTO], "http");
    }
}

/// A `Connection` value with a byte that is not visible text still lists its names, for the
/// one-pass rewrite as for the step-by-step removal (one reading of the value for both).
#[test]
fn a_connection_value_that_is_not_text_still_lists_its_names() {
    let mut sent = map(&[("x-app", "1"), ("x-kept", "yes")]);
    sent.insert(
        header::CONNECTION,
        HeaderValue::from_bytes(b"x-app, caf\xe9").expect("obs-text is a valid value"),
    );
    let mut stepped = sent.clone();
    remove_hop_by_hop(&mut stepped);
    assert!(!stepped.contains_key("x-app"));
    let out = upstream_request_headers(&sent, &anonymous(false));
    assert!(!out.contains_key("x-app"));
    assert_eq!(out["x-kept"], "yes");
}

/// Every name the table owns, exact, under a prefix, or in a look-alike spelling, is kept out
/// of a request's trailers whatever `PROXY_UNDERSCORE_HEADERS` says, and so are the fields RFC
/// 9110 keeps out of trailers; a name of the app's own passes.
#[test]
fn trailers_carry_no_name_sfgate_owns_in_any_spelling() {
    use crate::headers::owned::{NAMES, PREFIXES};
    let mut owned: Vec<String> = NAMES.iter().map(|(name, _)| name.to_string()).collect();
    owned.extend(
        PREFIXES
            .iter()
            .map(|(prefix, _)| format!("{prefix}anything")),
    );
    let look_alikes: Vec<String> = owned.iter().map(|name| name.replace('-', "_")).collect();
    let refused = [
        "content-length",
        "content-type",
        "content-encoding",
        "content-range",
        "cache-control",
        "max-forwards",
        "set-cookie",
    ];
    for underscores in [UnderscoreHeaders::Drop, UnderscoreHeaders::Keep] {
        let mut trailers = HeaderMap::new();
        for name in owned
            .iter()
            .chain(&look_alikes)
            .map(String::as_str)
            .chain(refused)
        {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
            trailers.append(name, HeaderValue::from_static("forged"));
        }
        trailers.append("x-app-sum", HeaderValue::from_static("42"));
        trailers.append("x_app_sum", HeaderValue::from_static("43"));
        remove_request_trailers(&mut trailers, underscores);
        let mut left: Vec<&str> = trailers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        match underscores {
            UnderscoreHeaders::Drop => assert_eq!(left, ["x-app-sum"]),
            UnderscoreHeaders::Keep => assert_eq!(left, ["x-app-sum", "x_app_sum"]),
        }
    }
}
