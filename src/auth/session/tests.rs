use super::*;
use axum::http::header;
use secrecy::ExposeSecret;

fn sealer(secret: &str) -> CookieSealer {
    CookieSealer::new(secret.as_bytes(), true, Duration::from_secs(3600))
}

/// A sealer for sfgate reached over plain HTTP: cookie names without the `__Host-` prefix.
fn plain_sealer(secret: &str) -> CookieSealer {
    CookieSealer::new(secret.as_bytes(), false, Duration::from_secs(3600))
}

fn request_with(set_cookie: &HeaderValue) -> HeaderMap {
    let pair = set_cookie
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        HeaderValue::from_str(&pair).expect("header"),
    );
    h
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn sealed_cookie_round_trips_with_safe_attributes() {
    let s = sealer(SECRET);
    let c = s
        .seal(LOGIN_COOKIE, &"hello".to_string(), LOGIN_TTL)
        .expect("cookie");
    let text = c.to_str().expect("ascii");
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(text.contains(attr), "{attr} missing in {text}");
    }
    assert!(!text.contains("hello"), "value must be encrypted: {text}");
    let opened: Option<String> = s.open(&request_with(&c), LOGIN_COOKIE).expect("opens");
    assert_eq!(opened.as_deref(), Some("hello"));
}

fn session(login_at: u64) -> Session {
    Session {
        access_token: SecretString::from("t"),
        refresh_token: None,
        instance_url: "https://x.my.salesforce.com".into(),
        user: SessionUser {
            user_id: "u".into(),
            org_id: "o".into(),
            username: "n".into(),
            display_name: "d".into(),
            email: None,
        },
        login_at,
        login_ms: None,
        embedded: false,
        site_url: None,
    }
}

#[test]
fn a_session_cookie_never_outlives_the_sessions_maximum_age() {
    let s = sealer(SECRET).with_session_max_age(Duration::from_secs(100));
    // Logged in 40 s ago: the cookie gets the 60 s left, not the 3600 s TTL.
    let sealed = s.seal_session(&session(now_secs() - 40)).expect("sealed");
    let text = sealed.cookie.to_str().expect("ascii").to_string();
    let max_age: u64 = text
        .split("Max-Age=")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|v| v.parse().ok())
        .expect("Max-Age");
    assert!((59..=60).contains(&max_age), "{text}");
    assert!(sealed.expires_at <= now_secs() + 60);
    assert!(s.open_session(&request_with(&sealed.cookie)).is_ok());
    // Past the maximum age: nothing to seal, and an old cookie does not open.
    assert!(matches!(
        s.seal_session(&session(now_secs() - 100)),
        Err(CookieError::Expired)
    ));
    let long_lived = sealer(SECRET)
        .seal(
            SESSION_COOKIE,
            &session(now_secs() - 200),
            Duration::from_secs(3600),
        )
        .expect("cookie");
    assert_eq!(
        s.open_session(&request_with(&long_lived))
            .map(|o| o.is_some()),
        Err(CookieError::Expired)
    );
}

#[test]
fn absent_tampered_foreign_and_expired_cookies_are_told_apart() {
    let s = sealer(SECRET);
    assert_eq!(s.open::<String>(&HeaderMap::new(), LOGIN_COOKIE), Ok(None));

    let c = s
        .seal(LOGIN_COOKIE, &"v".to_string(), LOGIN_TTL)
        .expect("cookie");
    let mut tampered = c
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        HeaderValue::from_str(&tampered).expect("header"),
    );
    assert_eq!(
        s.open::<String>(&h, LOGIN_COOKIE),
        Err(CookieError::Tampered)
    );

    let other = sealer("another secret that is long enough!!");
    assert_eq!(
        other.open::<String>(&request_with(&c), LOGIN_COOKIE),
        Err(CookieError::Tampered)
    );

    // A cookie sealed under one name does not open under another.
    let renamed = c
        .to_str()
        .expect("ascii")
        .replacen(LOGIN_COOKIE, SESSION_COOKIE, 1);
    let renamed = HeaderValue::from_str(&renamed).expect("header");
    assert_eq!(
        s.open::<String>(&request_with(&renamed), SESSION_COOKIE),
        Err(CookieError::Tampered)
    );

    let expired = s
        .seal(LOGIN_COOKIE, &"v".to_string(), Duration::ZERO)
        .expect("cookie");
    assert_eq!(
        s.open::<String>(&request_with(&expired), LOGIN_COOKIE),
        Err(CookieError::Expired)
    );
}

#[test]
fn embedded_sessions_get_third_party_cookies_and_keep_them_when_renewed() {
    // A first-party sealer on http: its own cookies are not Secure.
    let s = CookieSealer::new(SECRET.as_bytes(), false, Duration::from_secs(3600));
    let mut embedded = session(now_secs());
    embedded.embedded = true;
    let sealed = s.seal_session(&embedded).expect("sealed");
    let text = sealed.cookie.to_str().expect("ascii").to_string();
    for attribute in ["SameSite=None", "Secure", "Partitioned", "HttpOnly"] {
        assert!(
            text.split("; ").any(|a| a == attribute),
            "{attribute}: {text}"
        );
    }
    let renewed = embedded.renewed(
        SecretString::from("t2"),
        SecretString::from("r2"),
        "https://x.my.salesforce.com",
        &Identity::without_profile(
            crate::domain::SalesforceId::parse("0055j00000AlIcE").expect("id"),
            crate::domain::OrgId::parse("00D5j00000AcMe1").expect("org"),
            crate::domain::InstancePolicy::default()
                .check("https://x.my.salesforce.com")
                .expect("instance"),
        ),
    );
    assert!(renewed.embedded, "renewal keeps the session embedded");
    let first_party = s.seal_session(&session(now_secs())).expect("sealed").cookie;
    let first_party = first_party.to_str().expect("ascii");
    assert!(first_party.contains("SameSite=Lax"), "{first_party}");
    assert!(!first_party.contains("Secure"), "{first_party}");
    assert!(!first_party.contains("Partitioned"), "{first_party}");
}

#[test]
fn cookies_sealed_under_the_previous_secret_still_open_and_new_ones_use_the_current() {
    const NEW: &str = "the new secret, also at least 32 bytes long";
    let old = sealer(SECRET);
    let rotated = sealer(NEW).with_previous_secret(Some(SECRET.as_bytes()));
    let c = old
        .seal(LOGIN_COOKIE, &"v".to_string(), LOGIN_TTL)
        .expect("cookie");
    assert_eq!(
        rotated.open::<String>(&request_with(&c), LOGIN_COOKIE),
        Ok(Some("v".to_string()))
    );
    // Without the previous secret, the old cookie is foreign.
    assert_eq!(
        sealer(NEW).open::<String>(&request_with(&c), LOGIN_COOKIE),
        Err(CookieError::Tampered)
    );
    // A cookie sealed after the rotation opens under the new secret alone.
    let fresh = rotated
        .seal(LOGIN_COOKIE, &"w".to_string(), LOGIN_TTL)
        .expect("cookie");
    assert_eq!(
        sealer(NEW).open::<String>(&request_with(&fresh), LOGIN_COOKIE),
        Ok(Some("w".to_string()))
    );
    assert_eq!(
        old.open::<String>(&request_with(&fresh), LOGIN_COOKIE),
        Err(CookieError::Tampered)
    );
}

#[test]
fn a_session_sealed_without_a_site_still_opens_and_a_site_survives_the_round_trip() {
    let s = sealer(SECRET);
    let now = now_secs();
    // The session as sealed before sessions named their site: no `site_url` in it at all.
    let mut old = serde_json::to_value(session(now)).expect("json");
    old.as_object_mut().expect("object").remove("site_url");
    assert!(old.get("site_url").is_none());
    let sealed = s
        .seal(SESSION_COOKIE, &old, Duration::from_secs(60))
        .expect("cookie");
    let opened = s
        .open_session(&request_with(&sealed))
        .expect("opens")
        .expect("a session");
    assert_eq!(opened.site_url, None);

    let site = "https://acme.my.site.com/partners".to_string();
    let with_site = Session {
        site_url: Some(site.clone()),
        ..session(now)
    };
    let sealed = s.seal_session(&with_site).expect("cookie").cookie;
    let opened = s
        .open_session(&request_with(&sealed))
        .expect("opens")
        .expect("a session");
    assert_eq!(opened.site_url, Some(site));
}

/// A session cookie sealed by an earlier release (the `cookie` crate's private jar), with an
/// expiry in 2100. Sealing must keep opening what browsers already hold: changing the AEAD,
/// the key derivation, the nonce layout or the encoding would log every user out.
const SESSION_FIXTURE: &str = "sfgate_session=6+DgXY1QNetNCc0+vMpYi0okbx%2Fs+CtbWwlLjC0HIbVEuqGy5xF69Wsfs8TcwD%2F8M0eGT2DVBJG2jy2IgwgiiOUkiUt+0REswpd3f4NTotL01DvHyDoMrI4VfP+8OSpuFe8JVkzuOXxTxqPBvgM1CKKdJVsVAp7pk9J9n+NbuJuDiUkNq4mkYQV4WwQ7SGd9CxsNOG2norqzUM4Br6UQMaLTGDirhpcro%2F+%2FDmjinFHEKu0Ts0PL5PyVG%2FgPmhclQMSeRWLujO2TJycG0iAu5cemyYxXr%2FmXoNU+gDg9p7LuD7Opsf3xIXy3geThAKer987xNTlOeUrqEOGSFZiRECbt9H78X8iwEnTOcY8KUKvwjMwrK0uvGMAmO4v%2F83g%3D";

/// A login cookie carrying `"hello"`, sealed by an earlier release under
/// [`PREVIOUS_FIXTURE_SECRET`] (a rotated `SESSION_SECRET_PREVIOUS`).
const LOGIN_FIXTURE: &str = "sfgate_login=HLj4TcjghRJQ%2Fp6pcvRW6FFALLbq5fisjYg8BiUWCg+twk%2FfFmj0i1pUw8qujgo2wSKqRZSK6uciXA%3D%3D";
const PREVIOUS_FIXTURE_SECRET: &str = "previous-secret-of-at-least-32-bytes";

fn cookie_header(pair: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, HeaderValue::from_str(pair).expect("header"));
    h
}

#[test]
fn cookies_sealed_by_earlier_releases_still_open() {
    let s = plain_sealer(SECRET).with_session_max_age(Duration::from_secs(200 * 365 * 24 * 3600));
    let session = s
        .open_session(&cookie_header(SESSION_FIXTURE))
        .expect("opens")
        .expect("present");
    assert_eq!(session.access_token.expose_secret(), "t");
    assert_eq!(
        session.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("5Aep861refresh+/=token")
    );
    assert_eq!(session.instance_url, "https://x.my.salesforce.com");
    assert_eq!(session.login_at, 1_780_000_000);
    assert_eq!(session.login_ms, Some(1_780_000_000_123));
    assert_eq!(
        session.site_url, None,
        "sealed before sessions named their site"
    );

    let rotated =
        plain_sealer(SECRET).with_previous_secret(Some(PREVIOUS_FIXTURE_SECRET.as_bytes()));
    let login: Option<String> = rotated
        .open(&cookie_header(LOGIN_FIXTURE), LOGIN_COOKIE)
        .expect("opens under the previous secret");
    assert_eq!(login.as_deref(), Some("hello"));

    // Bound to its name and its key: the same value under another name, or without the
    // previous secret, is refused.
    let renamed = LOGIN_FIXTURE.replacen(LOGIN_COOKIE, SESSION_COOKIE, 1);
    assert_eq!(
        rotated
            .open::<String>(&cookie_header(&renamed), SESSION_COOKIE)
            .err(),
        Some(CookieError::Tampered)
    );
    assert_eq!(
        plain_sealer(SECRET)
            .open::<String>(&cookie_header(LOGIN_FIXTURE), LOGIN_COOKIE)
            .err(),
        Some(CookieError::Tampered)
    );
}

/// Over HTTPS the cookies carry the `__Host-` prefix: that is the name sealed, served, removed
/// and read. A cookie of the plain name (an earlier release's, or one another host of the site
/// planted) is not read at all, and a plain cookie's value renamed with the prefix does not
/// open (the name is sealed with the value).
#[test]
fn over_https_only_the_prefixed_names_are_served_and_read() {
    let s = sealer(SECRET);
    let sealed = s.seal_session(&session(now_secs())).expect("cookie").cookie;
    let text = sealed.to_str().expect("ascii");
    assert!(text.starts_with("__Host-sfgate_session="), "{text}");
    for attribute in ["Secure", "Path=/"] {
        assert!(
            text.split("; ").any(|a| a == attribute),
            "{attribute} in {text}"
        );
    }
    assert!(!text.to_ascii_lowercase().contains("domain="), "{text}");
    assert!(s
        .open_session(&request_with(&sealed))
        .expect("opens")
        .is_some());
    let removal = s.removal(SESSION_COOKIE);
    let removal = removal.to_str().expect("ascii");
    assert!(removal.starts_with("__Host-sfgate_session=;"), "{removal}");
    assert!(removal.contains("; Secure"), "{removal}");
    assert!(s
        .seal_login(&LoginState {
            state: "s".into(),
            pkce_verifier: "v".repeat(43),
            return_to: None,
        })
        .expect("login cookie")
        .to_str()
        .expect("ascii")
        .starts_with("__Host-sfgate_login="));

    let earlier = s.with_session_max_age(Duration::from_secs(200 * 365 * 24 * 3600));
    assert!(
        matches!(
            earlier.open_session(&cookie_header(SESSION_FIXTURE)),
            Ok(None)
        ),
        "a plain name is not read over HTTPS"
    );
    let plain = plain_sealer(SECRET)
        .seal_session(&session(now_secs()))
        .expect("cookie")
        .cookie;
    let renamed = format!("__Host-{}", plain.to_str().expect("ascii"));
    assert_eq!(
        sealer(SECRET)
            .open_session(&request_with(
                &HeaderValue::from_str(&renamed).expect("header")
            ))
            .err(),
        Some(CookieError::Tampered)
    );
    // Names are read as sent: a percent-encoded spelling of the prefix is another cookie,
    // one any host of the site may set.
    let encoded = text.replacen("__Host-", "__Host%2D", 1);
    assert!(matches!(
        sealer(SECRET).open_session(&request_with(
            &HeaderValue::from_str(&encoded).expect("header")
        )),
        Ok(None)
    ));
}
