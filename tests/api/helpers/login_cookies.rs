//! A login stopped on its way back from Salesforce, and sfgate's cookies taken apart: the
//! material bad-input tests replay, tamper with and forge.

use crate::common::*;
use sfgate::auth::session::{LoginState, LOGIN_COOKIE, SESSION_COOKIE};
use sfgate::auth::{CookieSealer, Session, SessionUser};
use std::time::Duration;

/// A login that went through Salesforce's form and is about to come back to the callback.
pub struct PendingLogin {
    /// The callback path and query (`/oauth2/callback?code=...&state=...`).
    pub callback: String,
    /// `sfgate_login=...`, as the browser would send it.
    pub login_cookie: String,
    pub code: String,
    pub state: String,
}

pub async fn pending_login(app: &TestApp) -> PendingLogin {
    let start = app
        .http
        .get(app.url("/oauth2/authorize"))
        .send()
        .await
        .expect("authorize");
    let start = expect_status(start, 302).await;
    let login_cookie = served_pair(&set_cookies(start.headers()), LOGIN_COOKIE);
    let to_salesforce = reqwest::Url::parse(&location(start.headers())).expect("url");
    let mut form: Vec<(String, String)> = to_salesforce
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.extend([
        ("username".into(), ALICE.0.into()),
        ("password".into(), ALICE.1.into()),
        ("action".into(), "allow".into()),
    ]);
    let answer = app
        .http
        .post(format!(
            "{}/services/oauth2/authorize",
            app.emulator.base_url()
        ))
        .form(&form)
        .send()
        .await
        .expect("submit");
    let back = reqwest::Url::parse(&location(answer.headers())).expect("callback url");
    let q = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect("callback parameter")
    };
    PendingLogin {
        callback: format!("{}?{}", back.path(), back.query().unwrap_or_default()),
        login_cookie,
        code: q("code"),
        state: q("state"),
    }
}

/// `name=value` of the cookie `name` set by a response (not its removal).
pub fn cookie_pair(set_cookies: &[String], name: &str) -> String {
    set_cookies
        .iter()
        .filter(|c| c.starts_with(&format!("{name}=")) && !c.starts_with(&format!("{name}=;")))
        .map(|c| c.split(';').next().expect("pair").to_string())
        .next()
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"))
}

/// `name=value` of the cookie `base` set by a response under the name it is served under:
/// `__Host-` + `base` over HTTPS, `base` itself otherwise.
pub fn served_pair(set_cookies: &[String], base: &str) -> String {
    let prefixed = format!("__Host-{base}");
    if set_cookies
        .iter()
        .any(|c| c.starts_with(&format!("{prefixed}=")))
    {
        cookie_pair(set_cookies, &prefixed)
    } else {
        cookie_pair(set_cookies, base)
    }
}

/// `sfgate_session=...` (or `__Host-sfgate_session=...` over HTTPS) from a completed login.
pub async fn session_cookie(app: &TestApp) -> String {
    let login = pending_login(app).await;
    let r = app
        .http
        .get(app.url(&login.callback))
        .header("cookie", &login.login_cookie)
        .send()
        .await
        .expect("callback");
    let r = expect_status_for(r, 303, "login completes").await;
    served_pair(&set_cookies(r.headers()), SESSION_COOKIE)
}

pub fn value_of(pair: &str) -> String {
    pair.split_once('=').expect("name=value").1.to_string()
}

/// Flips one character in the middle of the sealed value.
pub fn tampered(pair: &str) -> String {
    let (name, value) = pair.split_once('=').expect("pair");
    let mut chars: Vec<char> = value.chars().collect();
    // A character near the middle that is not part of a `%XX` escape: changing an escape's
    // digits could make the value undecodable (a different refusal) instead of forged.
    let in_escape = |i: usize| (i.saturating_sub(2)..=i).any(|j| chars.get(j) == Some(&'%'));
    let i = (chars.len() / 2..chars.len())
        .find(|&i| !in_escape(i))
        .expect("a character outside percent escapes");
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    format!("{name}={}", chars.into_iter().collect::<String>())
}

pub fn truncated(pair: &str) -> String {
    let (name, value) = pair.split_once('=').expect("pair");
    format!("{name}={}", &value[..value.len() / 2])
}

pub fn expired_session(token: &str, instance: &str) -> (String, String) {
    let sealer = CookieSealer::new(SESSION_SECRET.as_bytes(), false, Duration::from_secs(60));
    let session = Session {
        access_token: token.to_string().into(),
        refresh_token: None,
        instance_url: instance.to_string(),
        user: SessionUser {
            user_id: "0055j00000AlIcE".into(),
            org_id: ACME.into(),
            username: ALICE.0.into(),
            display_name: "Alice Admin".into(),
            email: None,
        },
        login_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
        login_ms: None,
        embedded: false,
        site_url: None,
    };
    let seal = |ttl| {
        let header = sealer.seal(SESSION_COOKIE, &session, ttl).expect("sealed");
        header
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_string()
    };
    (seal(Duration::ZERO), seal(Duration::from_secs(60)))
}

pub fn expired_login_cookie(state: &str) -> String {
    let sealer = CookieSealer::new(SESSION_SECRET.as_bytes(), false, Duration::from_secs(60));
    let login = LoginState {
        state: state.to_string(),
        pkce_verifier: "v".repeat(43),
        return_to: None,
    };
    let header = sealer
        .seal(LOGIN_COOKIE, &login, Duration::ZERO)
        .expect("sealed");
    header
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_string()
}
