use super::*;
use std::time::Duration;
use url::Url;

pub(super) fn base() -> HashMap<String, String> {
    [
        ("SF_CLIENT_ID", "client"),
        ("SF_CLIENT_SECRET", "secret-value-123"),
        ("SF_REDIRECT_URI", "https://gw.example.com/oauth2/callback"),
        ("SF_ALLOWED_ORGS", "00D5j00000AcMe1"),
        ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn minimal_configuration_gets_documented_defaults() {
    let c = Config::from_map(&base()).expect("valid");
    assert_eq!(
        c.salesforce.login_url.as_str(),
        "https://login.salesforce.com/"
    );
    assert_eq!(c.salesforce.scopes, ["api", "refresh_token"]);
    assert_eq!(c.server.port, 3000);
    assert_eq!(c.server.host.to_string(), "0.0.0.0");
    assert_eq!(c.cache.ttl, Duration::from_secs(60));
    assert_eq!(c.cache.max, 100_000);
    assert_eq!(c.salesforce.timeout, Duration::from_secs(5));
    assert_eq!(c.callback_path(), "/oauth2/callback");
    assert!(c.is_https());
    assert!(c.legacy_names_used.is_empty());
}

#[test]
fn session_lifetimes_default_and_are_validated_together() {
    let c = Config::from_map(&base()).expect("valid");
    assert_eq!(c.session.max_age, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(c.session.renewal_grace, Duration::from_secs(30));
    let mut env = base();
    env.insert("SESSION_MAX_AGE".into(), "0".into());
    env.insert("SESSION_RENEWAL_GRACE".into(), "301".into());
    env.insert(
        "SF_REDIRECT_URI".into(),
        "https://gw.example.com/oauth2/welcome".into(),
    );
    let err = Config::from_map(&env).expect_err("invalid");
    let vars: Vec<_> = err.0.iter().map(|p| p.variable.as_str()).collect();
    for v in [
        "SESSION_MAX_AGE",
        "SESSION_RENEWAL_GRACE",
        "SF_REDIRECT_URI",
    ] {
        assert!(vars.contains(&v), "{v} missing from {vars:?}");
    }
}

#[test]
fn a_previous_session_secret_is_optional_and_checked_like_the_current_one() {
    let c = Config::from_map(&base()).expect("valid");
    assert!(c.session.previous_secret.is_none());
    let mut env = base();
    env.insert(
        "SESSION_SECRET_PREVIOUS".into(),
        "the-old-secret-that-is-long-enough-0123456789".into(),
    );
    let c = Config::from_map(&env).expect("valid");
    assert!(c.session.previous_secret.is_some());
    env.insert("SESSION_SECRET_PREVIOUS".into(), "short-s3cret".into());
    let err = Config::from_map(&env).expect_err("invalid").to_string();
    assert!(err.contains("SESSION_SECRET_PREVIOUS"), "{err}");
    assert!(!err.contains("short-s3cret"), "{err}");
}

#[test]
fn empty_environment_names_every_missing_variable() {
    let err = Config::from_map(&HashMap::new()).expect_err("invalid");
    let vars: Vec<_> = err.0.iter().map(|p| p.variable.as_str()).collect();
    for v in [
        "SF_CLIENT_ID",
        "SF_CLIENT_SECRET",
        "SF_REDIRECT_URI",
        "SF_ALLOWED_ORGS",
        "SESSION_SECRET",
    ] {
        assert!(vars.contains(&v), "{v} missing from {vars:?}");
    }
}

#[test]
fn legacy_node_names_are_accepted_and_remembered() {
    let mut env = base();
    env.remove("SF_CLIENT_ID");
    env.remove("SF_CLIENT_SECRET");
    env.remove("SF_REDIRECT_URI");
    env.insert("CLIENT_ID".into(), "old".into());
    env.insert("CLIENT_SECRET_ID".into(), "old-secret".into());
    env.insert(
        "REDIRECT_URI".into(),
        "https://gw.example.com/oauth2/success".into(),
    );
    let c = Config::from_map(&env).expect("valid");
    assert_eq!(c.salesforce.client_id, "old");
    assert_eq!(c.callback_path(), "/oauth2/success");
    assert_eq!(
        c.legacy_names_used,
        ["CLIENT_ID", "CLIENT_SECRET_ID", "REDIRECT_URI"]
    );
}

#[test]
fn bad_values_are_all_reported_and_secrets_are_not_echoed() {
    let mut env = base();
    env.insert("SESSION_SECRET".into(), "short-secret-value".into());
    env.insert("PORT".into(), "eighty".into());
    env.insert("SF_LOGIN_URL".into(), "http://login.salesforce.com".into());
    env.insert("SF_ALLOWED_ORGS".into(), "00D5j00000AcMe1,nope".into());
    env.insert("IDENTITY_CACHE_TTL".into(), "-1".into());
    env.insert("LOG_FORMAT".into(), "xml".into());
    env.insert("SKIP_AUTH_ROUTES".into(), "GET=^/health$,([".into());
    env.insert("SF_REDIRECT_URI".into(), "http://gw.example.com/cb".into());
    let err = Config::from_map(&env).expect_err("invalid");
    let text = err.to_string();
    for v in [
        "SESSION_SECRET",
        "PORT",
        "SF_LOGIN_URL",
        "SF_ALLOWED_ORGS",
        "IDENTITY_CACHE_TTL",
        "LOG_FORMAT",
        "SKIP_AUTH_ROUTES",
        "SF_REDIRECT_URI",
    ] {
        assert!(text.contains(v), "{v} not reported in:\n{text}");
    }
    assert!(!text.contains("short-secret-value"), "{text}");
}

#[test]
fn one_problem_is_counted_in_the_singular() {
    let mut env = base();
    env.remove("SESSION_SECRET");
    let err = Config::from_map(&env).expect_err("invalid").to_string();
    assert!(
        err.starts_with("invalid configuration (1 problem):"),
        "{err}"
    );
    env.remove("SF_CLIENT_ID");
    let err = Config::from_map(&env).expect_err("invalid").to_string();
    assert!(
        err.starts_with("invalid configuration (2 problems):"),
        "{err}"
    );
}

#[test]
fn variable_names_lists_what_the_configuration_reads() {
    let names = Config::variable_names(&|_| None);
    for v in [
        "SF_CLIENT_ID",
        "CLIENT_ID",
        "SF_ALLOWED_ORGS",
        "SESSION_SECRET",
        "SESSION_TTL",
        "IDENTITY_CACHE_TTL",
        "UPSTREAM_URL",
        "LOG_FORMAT",
        "PORT",
    ] {
        assert!(names.contains(v), "{v} missing from {names:?}");
    }
    // Not written as a call argument: tests/cli.rs scans this file for such calls.
    let misspelt = "SF_ALLOWED_ORG";
    assert!(!names.contains(misspelt));
}

#[test]
fn loopback_may_use_http() {
    let mut env = base();
    env.insert(
        "SF_REDIRECT_URI".into(),
        "http://127.0.0.1:3000/oauth2/callback".into(),
    );
    env.insert("SF_LOGIN_URL".into(), "http://127.0.0.1:9999".into());
    env.insert("SF_INSTANCE_ORIGINS".into(), "http://127.0.0.1:9999".into());
    let c = Config::from_map(&env).expect("valid");
    assert!(!c.is_https());
    assert_eq!(
        c.salesforce.login_endpoint("/services/oauth2/token"),
        "http://127.0.0.1:9999/services/oauth2/token"
    );
    assert_eq!(
        c.salesforce.instance_policy.extra_origins(),
        ["http://127.0.0.1:9999"]
    );
}

#[test]
fn trust_boundary_settings_have_safe_defaults_and_bad_values_are_all_reported() {
    use crate::headers::UnderscoreHeaders;
    let c = Config::from_map(&base()).expect("valid");
    assert_eq!(c.gateway.underscore_headers, UnderscoreHeaders::Drop);
    assert!(!c.gateway.allow_encoded_slashes);
    assert_eq!(c.server.max_connections, 10_000);
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.cache.misses_per_minute, 60);
    let mut env = base();
    env.insert("PROXY_UNDERSCORE_HEADERS".into(), "KEEP".into());
    let c = Config::from_map(&env).expect("valid");
    assert_eq!(c.gateway.underscore_headers, UnderscoreHeaders::Keep);
    for (k, v) in [
        ("PROXY_UNDERSCORE_HEADERS", "sometimes"),
        ("ALLOW_ENCODED_SLASHES", "maybe"),
        ("MAX_CONNECTIONS", "0"),
        ("HEADER_READ_TIMEOUT", "0"),
        ("VALIDATION_MISSES_PER_MINUTE", "0"),
    ] {
        env.insert(k.into(), v.into());
    }
    let err = Config::from_map(&env).expect_err("invalid");
    let vars: Vec<_> = err.0.iter().map(|p| p.variable.as_str()).collect();
    assert_eq!(
        vars,
        [
            "PROXY_UNDERSCORE_HEADERS",
            "ALLOW_ENCODED_SLASHES",
            "MAX_CONNECTIONS",
            "HEADER_READ_TIMEOUT",
            "VALIDATION_MISSES_PER_MINUTE"
        ]
    );
}

#[test]
fn rate_limits_default_to_20_at_once_and_60_a_minute_and_refuse_zero() {
    let c = Config::from_map(&base()).expect("valid");
    assert_eq!(
        c.server.rate_limit,
        RateLimit {
            burst: 20,
            per_minute: 60
        }
    );
    assert!(!c.server.trust_proxy);
    assert!(c.server.metrics_token.is_none());
    let mut env = base();
    env.insert("RATE_LIMIT_BURST".into(), "0".into());
    env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
    let err = Config::from_map(&env).expect_err("invalid");
    let vars: Vec<_> = err.0.iter().map(|p| p.variable.as_str()).collect();
    assert!(vars.contains(&"RATE_LIMIT_BURST") && vars.contains(&"RATE_LIMIT_PER_MINUTE"));
}

#[test]
fn skip_auth_rules_take_an_optional_method() {
    let mut env = base();
    env.insert("SKIP_AUTH_ROUTES".into(), "GET=^/public/,^/health$".into());
    let c = Config::from_map(&env).expect("valid");
    assert_eq!(c.gateway.skip_auth_routes.len(), 2);
    assert_eq!(
        c.gateway.skip_auth_routes[0].method,
        Some(axum::http::Method::GET)
    );
    assert!(c.gateway.skip_auth_routes[1].method.is_none());
}

#[test]
fn seam_settings_are_read_and_checked() {
    let c = Config::from_map(&base()).expect("valid");
    assert_eq!(
        c.gateway.forward_auth_style,
        crate::config::ForwardAuthStyle::Auto
    );
    assert!(c.gateway.websocket_allowed_origins.is_empty());
    let mut env = base();
    env.insert("FORWARD_AUTH_STYLE".into(), "Caddy".into());
    env.insert(
        "WEBSOCKET_ALLOWED_ORIGINS".into(),
        "https://App.example.com, http://localhost:3000".into(),
    );
    env.insert("UPGRADE_PROTOCOLS".into(), "TLS/1.0".into());
    let c = Config::from_map(&env).expect("valid");
    assert_eq!(
        c.gateway.forward_auth_style,
        crate::config::ForwardAuthStyle::Caddy
    );
    assert_eq!(
        c.gateway.websocket_allowed_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );

    let mut env = base();
    env.insert("FORWARD_AUTH_STYLE".into(), "haproxy".into());
    env.insert(
        "WEBSOCKET_ALLOWED_ORIGINS".into(),
        "https://a.example/path".into(),
    );
    env.insert("UPGRADE_PROTOCOLS".into(), "websocket,h2c".into());
    // A skip rule matches one spelling: a case-insensitive flag would widen it.
    env.insert("SKIP_AUTH_ROUTES".into(), "GET=(?i)^/public/".into());
    let err = Config::from_map(&env).expect_err("invalid");
    let vars: Vec<_> = err.0.iter().map(|p| p.variable.as_str()).collect();
    for var in [
        "FORWARD_AUTH_STYLE",
        "WEBSOCKET_ALLOWED_ORIGINS",
        "UPGRADE_PROTOCOLS",
        "SKIP_AUTH_ROUTES",
    ] {
        assert!(vars.contains(&var), "{var}: {vars:?}");
    }
}

#[test]
fn gateway_settings_are_read_and_checked() {
    let c = Config::from_map(&base()).expect("valid");
    assert!(c.gateway.upstream_url.is_none());
    assert_eq!(c.gateway.upstream_timeout, Duration::from_secs(30));
    assert!(!c.gateway.pass_access_token);

    let mut env = base();
    env.insert("UPSTREAM_URL".into(), "http://127.0.0.1:8080/app".into());
    env.insert("UPSTREAM_TIMEOUT".into(), "5".into());
    env.insert("PASS_ACCESS_TOKEN".into(), "true".into());
    let c = Config::from_map(&env).expect("valid");
    assert_eq!(
        c.gateway.upstream_url.as_ref().map(Url::as_str),
        Some("http://127.0.0.1:8080/app")
    );
    assert_eq!(c.gateway.upstream_timeout, Duration::from_secs(5));
    assert!(c.gateway.pass_access_token);

    let mut env = base();
    env.insert("UPSTREAM_URL".into(), "http://user:pw@app:8080".into());
    env.insert("UPSTREAM_TIMEOUT".into(), "0".into());
    let err = Config::from_map(&env).expect_err("invalid").to_string();
    assert!(err.contains("UPSTREAM_URL"), "{err}");
    assert!(err.contains("UPSTREAM_TIMEOUT"), "{err}");
    assert!(!err.contains("pw"), "{err}");
}

#[test]
fn authorization_settings_are_read_and_every_problem_reported() {
    let c = Config::from_map(&base()).expect("valid");
    assert_eq!(
        c.policy.global.user_types,
        crate::access::UserTypes::Only(vec!["STANDARD".into()])
    );
    assert!(c.policy.routes.is_empty() && c.assertion.key.is_none());

    let mut env = base();
    env.insert("SF_SCOPES".into(), "api custom_permissions".into());
    env.insert(
        "SF_ALLOWED_USERS".into(),
        "0055j00000AlIcE, Bob@Acme.example".into(),
    );
    env.insert("SF_ALLOWED_EMAIL_DOMAINS".into(), "ACME.example".into());
    env.insert("SF_ALLOWED_USER_TYPES".into(), "*".into());
    env.insert("SF_REQUIRED_PERMISSIONS".into(), "Sfgate_User".into());
    env.insert("ROUTE_RULES".into(), "/admin/=perm:Sfgate_Admin".into());
    let c = Config::from_map(&env).expect("valid");
    assert_eq!(c.policy.global.users.len(), 2);
    assert_eq!(c.policy.global.email_domains, ["acme.example"]);
    assert_eq!(c.policy.global.user_types, crate::access::UserTypes::Any);
    assert!(c.policy.needs_permissions() && c.policy.needs_profile());

    let mut env = base();
    env.insert("SF_ALLOWED_USERS".into(), "00D5j00000AcMe1".into());
    env.insert("SF_ALLOWED_EMAIL_DOMAINS".into(), "*.acme.example".into());
    env.insert("SF_ALLOWED_USER_TYPES".into(), "STANDARD,bad type".into());
    env.insert("SF_REQUIRED_PERMISSIONS".into(), "Sfgate_Admin".into());
    env.insert("ROUTE_RULES".into(), "/a=perm:A;/b=prem:B".into());
    env.insert("ASSERTION_KEY".into(), "not a key".into());
    let err = Config::from_map(&env).expect_err("invalid").to_string();
    for v in [
        "SF_ALLOWED_USERS",
        "SF_ALLOWED_EMAIL_DOMAINS",
        "SF_ALLOWED_USER_TYPES",
        "SF_SCOPES",
        "ROUTE_RULES: rule 2 (`/b=prem:B`), at character 4",
        "ASSERTION_KEY",
        "ASSERTION_AUDIENCE",
    ] {
        assert!(err.contains(v), "{v} not reported in:\n{err}");
    }
}

#[test]
fn upstream_http2_and_websocket_idle_timeout_are_read_and_checked() {
    let c = Config::from_map(&base()).expect("valid");
    assert!(!c.gateway.upstream_http2);
    assert_eq!(c.gateway.websocket_idle_timeout, Duration::from_secs(600));
    assert_eq!(c.gateway.upstream_idle_timeout, Duration::from_secs(60));

    let mut env = base();
    env.insert("UPSTREAM_HTTP2".into(), "true".into());
    env.insert("WEBSOCKET_IDLE_TIMEOUT".into(), "45".into());
    env.insert("UPSTREAM_IDLE_TIMEOUT".into(), "7".into());
    let c = Config::from_map(&env).expect("valid");
    assert!(c.gateway.upstream_http2);
    assert_eq!(c.gateway.websocket_idle_timeout, Duration::from_secs(45));
    assert_eq!(c.gateway.upstream_idle_timeout, Duration::from_secs(7));

    let mut env = base();
    env.insert("UPSTREAM_IDLE_TIMEOUT".into(), "0".into());
    let err = Config::from_map(&env)
        .expect_err("zero refused")
        .to_string();
    assert!(err.contains("UPSTREAM_IDLE_TIMEOUT"), "{err}");

    let mut env = base();
    env.insert("UPSTREAM_HTTP2".into(), "sometimes".into());
    env.insert("WEBSOCKET_IDLE_TIMEOUT".into(), "0".into());
    let err = Config::from_map(&env).expect_err("invalid").to_string();
    assert!(err.contains("UPSTREAM_HTTP2"), "{err}");
    assert!(err.contains("WEBSOCKET_IDLE_TIMEOUT"), "{err}");
}

#[test]
fn token_validation_and_accepted_client_ids() {
    let c = Config::from_map(&base()).expect("valid");
    assert_eq!(c.salesforce.token_validation, TokenValidation::Auto);
    assert!(c.salesforce.accepted_client_ids.is_empty());
    let mut env = base();
    env.insert("SF_TOKEN_VALIDATION".into(), " Introspect ".into());
    env.insert("SF_ACCEPTED_CLIENT_IDS".into(), "a, b,,c ".into());
    let c = Config::from_map(&env).expect("valid");
    assert_eq!(c.salesforce.token_validation, TokenValidation::Introspect);
    assert_eq!(c.salesforce.accepted_client_ids, ["a", "b", "c"]);
    env.insert("SF_TOKEN_VALIDATION".into(), "local".into());
    env.insert("SF_ACCEPTED_CLIENT_IDS".into(), "ok, has space".into());
    let err = Config::from_map(&env).expect_err("invalid");
    let named: Vec<_> = err.0.iter().map(|p| p.variable.as_str()).collect();
    assert!(named.contains(&"SF_TOKEN_VALIDATION"), "{err}");
    assert!(named.contains(&"SF_ACCEPTED_CLIENT_IDS"), "{err}");
}

#[test]
fn an_experience_cloud_site_url_with_a_path_is_a_login_url() {
    let mut env = base();
    env.insert(
        "SF_LOGIN_URL".into(),
        "https://acme.my.site.com/partners/".into(),
    );
    let config = Config::from_map(&env).expect("valid");
    assert_eq!(
        config.salesforce.login_endpoint("/services/oauth2/token"),
        "https://acme.my.site.com/partners/services/oauth2/token"
    );
    for bad in [
        "https://acme.my.site.com/partners?x=1",
        "https://acme.my.site.com/partners#x",
    ] {
        env.insert("SF_LOGIN_URL".into(), bad.into());
        let err = Config::from_map(&env).expect_err(bad);
        assert!(err.0.iter().any(|p| p.variable == "SF_LOGIN_URL"), "{bad}");
    }
}

#[test]
fn in_gateway_mode_the_callback_must_be_under_the_prefix() {
    for (path, ok) in [
        ("/oauth2/callback", true),
        ("/oauth2/done/here", true),
        ("/auth/done", false),
        ("/callback", false),
        ("/oauth2x/callback", false),
        ("/OAUTH2/callback", false),
    ] {
        let mut env = base();
        env.insert("UPSTREAM_URL".into(), "http://127.0.0.1:8080".into());
        env.insert(
            "SF_REDIRECT_URI".into(),
            format!("https://gw.example.com{path}"),
        );
        match Config::from_map(&env) {
            Ok(_) => assert!(ok, "{path} accepted"),
            Err(e) => {
                assert!(!ok, "{path} refused: {e}");
                assert!(e.to_string().contains("under /oauth2/"), "{e}");
            }
        }
        // Standalone, sfgate is the whole site: any path not its own will do.
        env.remove("UPSTREAM_URL");
        assert!(Config::from_map(&env).is_ok(), "{path} standalone");
    }
}

#[test]
fn proxy_prefix_moves_sfgates_paths_and_metrics_addr_is_an_address() {
    for (value, prefix) in [
        ("/oauth2", "/oauth2"),
        ("/oauth2/", "/oauth2"),
        ("/sso", "/sso"),
        ("/_auth/", "/_auth"),
        ("/a/b-c.d~e", "/a/b-c.d~e"),
    ] {
        let mut env = base();
        env.insert("PROXY_PREFIX".into(), value.into());
        let c = Config::from_map(&env).unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(c.paths().prefix, prefix, "{value}");
        assert_eq!(c.paths().start, format!("{prefix}/start"), "{value}");
    }
    let mut env = base();
    env.remove("PROXY_PREFIX");
    assert_eq!(
        Config::from_map(&env).expect("valid").paths().prefix,
        "/oauth2"
    );
    let mut env = base();
    env.insert("METRICS_ADDR".into(), "127.0.0.1:9100".into());
    let c = Config::from_map(&env).expect("valid");
    assert_eq!(
        c.server.metrics_addr,
        Some("127.0.0.1:9100".parse().expect("addr"))
    );
    env.insert("METRICS_ADDR".into(), "9100".into());
    let e = Config::from_map(&env).expect_err("a port alone is not an address");
    assert!(e.to_string().contains("METRICS_ADDR"), "{e}");
}

#[test]
fn a_bad_proxy_prefix_is_refused_with_its_reason() {
    for (value, reason) in [
        ("/", "must not be `/`"),
        ("//", "empty"),
        ("sso", "must start with `/`"),
        ("/a//b", "empty"),
        ("/a/../b", "`..`"),
        ("/..", "`..`"),
        ("/./sso", "`.`"),
        ("/sso%2f", "`%`"),
        ("/sso?x", "`?`"),
        ("/sso#x", "`#`"),
        ("/sso;x", "`;`"),
        ("/s so", "` `"),
        ("/s\tso", "`\\t`"),
        ("/s\u{7f}so", "`\\u{7f}`"),
        ("/s\\so", "`\\\\`"),
        ("/s\u{e9}", "`\u{e9}`"),
        ("/{x}", "`{`"),
        ("/*", "`*`"),
    ] {
        let mut env = base();
        env.insert("PROXY_PREFIX".into(), value.into());
        let e = Config::from_map(&env).expect_err(value);
        let problem =
            e.0.iter()
                .find(|p| p.variable == "PROXY_PREFIX")
                .unwrap_or_else(|| panic!("{value:?}: {e}"));
        assert!(
            problem.message.contains(reason),
            "{value:?}: {}",
            problem.message
        );
    }
}

#[test]
fn the_callback_follows_the_prefix() {
    let mut env = base();
    env.insert("PROXY_PREFIX".into(), "/sso".into());
    env.insert("UPSTREAM_URL".into(), "http://127.0.0.1:8080".into());
    for (path, ok) in [
        ("/sso/callback", true),
        ("/sso/done/here", true),
        ("/oauth2/callback", false),
        ("/sso", false),
        ("/ssox/callback", false),
        ("/sso/start", false),
        ("/sso/auth", false),
    ] {
        env.insert(
            "SF_REDIRECT_URI".into(),
            format!("https://gw.example.com{path}"),
        );
        match Config::from_map(&env) {
            Ok(c) => {
                assert!(ok, "{path} accepted");
                assert_eq!(c.callback_path(), path);
            }
            Err(e) => assert!(!ok, "{path} refused: {e}"),
        }
    }
    // Standalone, `/oauth2/start` is no longer one of sfgate's routes; `/sso/start` is.
    env.remove("UPSTREAM_URL");
    env.insert(
        "SF_REDIRECT_URI".into(),
        "https://gw.example.com/oauth2/start".into(),
    );
    assert!(Config::from_map(&env).is_ok());
    env.insert(
        "SF_REDIRECT_URI".into(),
        "https://gw.example.com/sso/start".into(),
    );
    let e = Config::from_map(&env).expect_err("a fixed path");
    assert!(
        e.to_string()
            .contains("one of sfgate's own routes; use e.g. /sso/callback"),
        "{e}"
    );
}

#[test]
fn the_http1_fast_path_is_on_unless_turned_off() {
    assert!(
        Config::from_map(&base())
            .expect("valid")
            .server
            .http1_fast_path
    );
    for off in ["false", "off", "0", "No"] {
        let mut env = base();
        env.insert("HTTP1_FAST_PATH".into(), off.into());
        let c = Config::from_map(&env).expect("valid");
        assert!(!c.server.http1_fast_path, "{off}");
    }
    let mut env = base();
    env.insert("HTTP1_FAST_PATH".into(), "sometimes".into());
    let err = Config::from_map(&env).expect_err("invalid");
    let vars: Vec<_> = err.0.iter().map(|p| p.variable.as_str()).collect();
    assert_eq!(vars, ["HTTP1_FAST_PATH"]);
}
