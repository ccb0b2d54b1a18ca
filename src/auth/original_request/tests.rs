use super::*;
use axum::http::HeaderValue;
use proptest::prelude::*;

const AUTH: &str = "/oauth2/auth";

fn ask(
    style: ForwardAuthStyle,
    method: &Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> Result<Option<OriginalRequest>, OriginalRequestError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    let uri: Uri = uri.parse().expect("uri");
    original_request(
        style,
        &AuthRequest {
            method,
            uri: &uri,
            headers: &map,
            auth_path: AUTH,
        },
    )
}

fn path_of(r: Result<Option<OriginalRequest>, OriginalRequestError>) -> Option<String> {
    r.ok().flatten().map(|o| o.uri.as_str().to_owned())
}

#[test]
fn each_convention_names_the_original_request() {
    use ForwardAuthStyle::*;
    let get = Method::GET;
    let nginx = [
        ("x-original-uri", "/admin/x?y=1"),
        ("x-original-method", "POST"),
    ];
    let o = ask(Nginx, &get, AUTH, &nginx).expect("ok").expect("some");
    assert_eq!((o.path(), o.method.as_str()), ("/admin/x", "POST"));
    assert_eq!(o.convention, Convention::Nginx);
    let traefik = [
        ("x-forwarded-uri", "/admin/x?y=1"),
        ("x-forwarded-method", "DELETE"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    for style in [Traefik, Caddy, Auto] {
        let o = ask(style, &get, AUTH, &traefik).expect("ok").expect("some");
        assert_eq!((o.path(), o.method.as_str()), ("/admin/x", "DELETE"));
        assert_eq!(o.host.as_deref(), Some("app.example.com"));
    }
    // ingress-nginx sends the full URL.
    let ingress = [
        ("x-original-url", "https://app.example.com/admin/x?y=1"),
        ("x-original-method", "PATCH"),
    ];
    for style in [Nginx, Auto] {
        let o = ask(style, &get, AUTH, &ingress).expect("ok").expect("some");
        assert_eq!(
            (o.uri.as_str(), o.method.as_str()),
            ("/admin/x?y=1", "PATCH")
        );
    }
    let o = ask(Envoy, &Method::PUT, "/oauth2/auth/admin/x?y=1", &[])
        .expect("ok")
        .expect("some");
    assert_eq!((o.uri.as_str(), o.method.as_str()), ("/admin/x?y=1", "PUT"));
    assert_eq!(
        path_of(ask(Envoy, &get, "/oauth2/auth/", &[])).as_deref(),
        Some("/")
    );
    // No source: unknown.
    for style in [Auto, Nginx, Traefik, Caddy, Envoy] {
        assert_eq!(ask(style, &get, AUTH, &[]), Ok(None));
    }
}

#[test]
fn a_named_style_reads_its_own_source_only() {
    use ForwardAuthStyle::*;
    let get = Method::GET;
    let both = [
        ("x-forwarded-uri", "/admin/x"),
        ("x-original-uri", "/public/x"),
    ];
    assert_eq!(
        path_of(ask(Traefik, &get, AUTH, &both)).as_deref(),
        Some("/admin/x")
    );
    assert_eq!(
        path_of(ask(Nginx, &get, AUTH, &both)).as_deref(),
        Some("/public/x")
    );
    assert_eq!(
        path_of(ask(Envoy, &get, "/oauth2/auth/admin/x", &both)).as_deref(),
        Some("/admin/x")
    );
    // A malformed header of another convention is not read either.
    let junk = [
        ("x-original-uri", "https://evil.example/"),
        ("x-forwarded-uri", "/a"),
    ];
    assert_eq!(
        path_of(ask(Traefik, &get, AUTH, &junk)).as_deref(),
        Some("/a")
    );
}

#[test]
fn auto_refuses_disagreeing_sources_and_accepts_agreeing_ones() {
    use ForwardAuthStyle::Auto;
    let get = Method::GET;
    let ambiguous = |r: Result<Option<OriginalRequest>, OriginalRequestError>| {
        matches!(r, Err(OriginalRequestError::Ambiguous(_)))
    };
    // The exploit of the seams issue: Traefik's header beside a client's nginx one.
    assert!(ambiguous(ask(
        Auto,
        &get,
        AUTH,
        &[
            ("x-forwarded-uri", "/admin/x"),
            ("x-original-uri", "/app/x"),
        ]
    )));
    // An Envoy suffix and a header.
    assert!(ambiguous(ask(
        Auto,
        &get,
        "/oauth2/auth/admin/x",
        &[("x-original-uri", "/app/x")]
    )));
    // nginx's two spellings must agree too.
    assert!(ambiguous(ask(
        ForwardAuthStyle::Nginx,
        &get,
        AUTH,
        &[
            ("x-original-url", "https://app.example.com/admin/x"),
            ("x-original-uri", "/app/x"),
        ]
    )));
    // Same path, another query or method: still another request.
    assert!(ambiguous(ask(
        Auto,
        &get,
        AUTH,
        &[("x-forwarded-uri", "/a?x=1"), ("x-original-uri", "/a?x=2"),]
    )));
    assert!(ambiguous(ask(
        Auto,
        &get,
        AUTH,
        &[
            ("x-forwarded-uri", "/a"),
            ("x-forwarded-method", "DELETE"),
            ("x-original-uri", "/a"),
            ("x-original-method", "GET"),
        ]
    )));
    assert_eq!(
        path_of(ask(
            Auto,
            &get,
            AUTH,
            &[("x-forwarded-uri", "/a"), ("x-original-uri", "/a")]
        ))
        .as_deref(),
        Some("/a")
    );
}

#[test]
fn malformed_sources_are_refused() {
    use ForwardAuthStyle::*;
    let get = Method::GET;
    for (style, headers) in [
        (
            Nginx,
            vec![("x-original-uri", "https://evil.example/admin")],
        ),
        (Nginx, vec![("x-original-uri", "//evil/admin")]),
        (Nginx, vec![("x-original-uri", "admin")]),
        (Nginx, vec![("x-original-uri", "")]),
        (Nginx, vec![("x-original-uri", "/public#/../admin")]),
        (
            Nginx,
            vec![("x-original-uri", "/a"), ("x-original-uri", "/b")],
        ),
        (Nginx, vec![("x-original-method", "GET")]),
        (Nginx, vec![("x-original-url", "/admin/x")]),
        (
            Nginx,
            vec![("x-original-url", "ftp://app.example.com/admin/x")],
        ),
        (
            Nginx,
            vec![("x-original-url", "https://app.example.com//evil/x")],
        ),
        (
            Nginx,
            vec![("x-original-url", "https://app.example.com/a#/../admin")],
        ),
        (
            Nginx,
            vec![("x-original-uri", "/a"), ("x-original-method", "G E T")],
        ),
        (
            Traefik,
            vec![("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/a")],
        ),
        (
            Traefik,
            vec![
                ("x-forwarded-uri", "/a"),
                ("x-forwarded-host", "a"),
                ("x-forwarded-host", "b"),
            ],
        ),
        // In auto, a malformed source is refused even beside a good one.
        (
            Auto,
            vec![("x-forwarded-uri", "/a"), ("x-original-uri", "//evil")],
        ),
        (
            Auto,
            vec![("x-forwarded-uri", "/a"), ("x-original-method", "GET")],
        ),
    ] {
        assert!(
            matches!(
                ask(style, &get, AUTH, &headers),
                Err(OriginalRequestError::Malformed(_))
            ),
            "{style:?} {headers:?}"
        );
    }
}

#[test]
fn only_traefik_and_caddy_conventions_get_the_browser_redirect() {
    use ForwardAuthStyle::*;
    let get = Method::GET;
    let forwarded = ask(Auto, &get, AUTH, &[("x-forwarded-uri", "/a")]).expect("ok");
    let nginx = ask(Auto, &get, AUTH, &[("x-original-uri", "/a")]).expect("ok");
    assert!(redirects_browsers(Auto, forwarded.as_ref()));
    assert!(!redirects_browsers(Auto, nginx.as_ref()));
    assert!(!redirects_browsers(Auto, None));
    assert!(redirects_browsers(Traefik, None) && redirects_browsers(Caddy, None));
    assert!(!redirects_browsers(Nginx, forwarded.as_ref()));
    assert!(!redirects_browsers(Envoy, forwarded.as_ref()));
}

// --- The property: any mix of sources, as each real front proxy builds the request. ---

/// How each front proxy asks: which headers it sets (overwriting the client's copies of the
/// same names, as `proxy_set_header`, Traefik and Caddy's `header_up` do), the auth request's
/// method and URI, and the client's own headers passed along.
#[derive(Debug, Clone, Copy)]
enum Front {
    Nginx {
        sends_method: bool,
    },
    /// ingress-nginx: `X-Original-URL` (the full URL) and `X-Original-Method`.
    IngressNginx,
    Traefik,
    Caddy,
    Envoy,
}

impl Front {
    fn style(self) -> ForwardAuthStyle {
        match self {
            Self::Nginx { .. } | Self::IngressNginx => ForwardAuthStyle::Nginx,
            Self::Traefik => ForwardAuthStyle::Traefik,
            Self::Caddy => ForwardAuthStyle::Caddy,
            Self::Envoy => ForwardAuthStyle::Envoy,
        }
    }

    /// The auth request the proxy sends for `method target`, carrying `client`'s headers.
    fn ask(
        self,
        method: &Method,
        target: &str,
        client: &[(String, String)],
    ) -> (Method, String, HeaderMap) {
        let mut headers = HeaderMap::new();
        for (k, v) in client {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.append(k, v);
            }
        }
        let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("value"),
            );
        };
        match self {
            Self::Nginx { sends_method } => {
                set(&mut headers, "x-original-uri", target);
                // `proxy_set_header X-Original-URL "";` removes the client's copy.
                headers.remove("x-original-url");
                if sends_method {
                    set(&mut headers, "x-original-method", method.as_str());
                }
                // The subrequest's own method is the one nginx gives it, whatever the client's.
                let own = if sends_method {
                    Method::GET
                } else {
                    method.clone()
                };
                (own, AUTH.to_owned(), headers)
            }
            Self::IngressNginx => {
                set(
                    &mut headers,
                    "x-original-url",
                    &format!("https://app.example.com{target}"),
                );
                set(&mut headers, "x-original-method", method.as_str());
                (Method::GET, AUTH.to_owned(), headers)
            }
            Self::Traefik | Self::Caddy => {
                set(&mut headers, "x-forwarded-uri", target);
                set(&mut headers, "x-forwarded-method", method.as_str());
                set(&mut headers, "x-forwarded-host", "app.example.com");
                set(&mut headers, "x-forwarded-proto", "https");
                // Caddy's rewrite keeps the original query on the auth request.
                let uri = match (self, target.split_once('?')) {
                    (Self::Caddy, Some((_, query))) => format!("{AUTH}?{query}"),
                    _ => AUTH.to_owned(),
                };
                (Method::GET, uri, headers)
            }
            Self::Envoy => (method.clone(), format!("{AUTH}{target}"), headers),
        }
    }
}

fn front() -> impl Strategy<Value = Front> {
    prop_oneof![
        any::<bool>().prop_map(|sends_method| Front::Nginx { sends_method }),
        Just(Front::IngressNginx),
        Just(Front::Traefik),
        Just(Front::Caddy),
        Just(Front::Envoy),
    ]
}

/// Original request targets: plain, encoded, odd-cased, with queries that look like paths.
fn target() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/", "admin", "ADMIN", "%41dmin", "public", "x", "%2F", "%2e", ";v=1", "app", "%20",
    ]);
    let query = prop::sample::select(vec!["", "?y=1", "?rd=/public/", "?x=%2Fadmin"]);
    (prop::collection::vec(piece, 0..5), query)
        .prop_map(|(pieces, query)| format!("/{}{query}", pieces.concat()))
}

/// Any spelling of a header name (case) a client may add.
fn client_header() -> impl Strategy<Value = (String, String)> {
    let name = prop::sample::select(vec![
        "x-original-uri",
        "x-original-url",
        "x-forwarded-uri",
        "x-original-method",
        "x-forwarded-method",
        "x-forwarded-host",
    ]);
    let value = prop::sample::select(vec![
        "/public/x",
        "/admin/x",
        "/",
        "/app?x=1",
        "GET",
        "POST",
        "https://evil.example/",
        "//evil",
        "evil.example",
        "https://app.example.com/public/x",
    ]);
    (name, prop::collection::vec(any::<bool>(), 20), value).prop_map(|(name, upper, value)| {
        let spelled: String = name
            .chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect();
        (spelled, value.to_owned())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the client adds, sfgate either refuses or judges exactly the request the
    /// front proxy routes: with the proxy's style named, always that request; with `auto`,
    /// that request or a refusal.
    #[test]
    fn sfgate_refuses_or_judges_exactly_what_the_front_proxy_routes(
        front in front(),
        method in prop::sample::select(vec![Method::GET, Method::POST, Method::DELETE]),
        target in target(),
        client in prop::collection::vec(client_header(), 0..4),
    ) {
        let (own_method, uri, headers) = front.ask(&method, &target, &client);
        let uri: Uri = uri.parse().expect("uri");
        let request = AuthRequest { method: &own_method, uri: &uri, headers: &headers, auth_path: AUTH };
        let expected_path = target.split('?').next().unwrap_or_default().to_owned();

        // The named style reads what the proxy set, whatever the client added: the target
        // itself, or a refusal for a target no path rule accepts (`//x`). nginx without
        // `X-Original-Method` in its configuration leaves that header to the client, and
        // ingress-nginx leaves `X-Original-URI` to the client: the client can then only get
        // itself refused (two nginx spellings that disagree; the method never admits).
        let named = original_request(front.style(), &request);
        if let Ok(named) = &named {
            let named = named.as_ref().expect("the proxy always names the request");
            prop_assert_eq!(named.uri.as_str(), target.as_str());
            prop_assert_eq!(named.path(), expected_path.as_str());
            if !matches!(front, Front::Nginx { sends_method: false }) {
                prop_assert_eq!(&named.method, &method);
            }
        } else {
            prop_assert!(
                target.starts_with("//") || matches!(front, Front::Nginx { sends_method: false } | Front::IngressNginx),
                "{}", target
            );
        }

        if let Ok(found) = original_request(ForwardAuthStyle::Auto, &request) {
            let found = found.expect("the proxy always names the request");
            prop_assert_eq!(found.path(), expected_path.as_str());
        }
    }
}
