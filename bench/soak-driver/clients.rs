//! The simulated clients: browser users, API clients (opaque and JWT tokens), WebSocket
//! clients and bad actors. Each request states what it expects before it is sent
//! ([`Expect`]) and is recorded with what it got ([`Outcome`]).

use crate::app::FORGED_VALUE;
use crate::oracle::{after_logout, Expect, Oracle, Outcome, PROPAGATION};
use crate::settings::*;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER, SET_COOKIE};
use sfgate_emulator::EmulatorHandle;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// What all clients share.
pub(crate) struct Ctx {
    pub(crate) oracle: Arc<Oracle>,
    pub(crate) emulator: EmulatorHandle,
    /// nginx, the only address clients use.
    pub(crate) base: String,
    /// No cookies, no redirects.
    pub(crate) http: reqwest::Client,
    pub(crate) cache_ttl: f64,
    /// How long an access token lives at the emulator (seconds).
    pub(crate) lifetime: f64,
    /// Opaque tokens retired by their clients: `(token, expires at)`.
    pub(crate) expired: Mutex<Vec<(String, f64)>>,
    /// Recent real session cookies (`name=value`), for tampering.
    pub(crate) cookies: Mutex<Vec<String>>,
    /// Credentials that were logged out or revoked, for the bad actors to try again.
    pub(crate) replays: Mutex<Vec<Replay>>,
}

/// A credential that stopped being valid: replayed by a bad actor once it must be refused
/// (and, while the propagation window is open, as "either").
#[derive(Clone)]
pub(crate) struct Replay {
    pub(crate) credential: Credential,
    pub(crate) user: &'static str,
    pub(crate) at: f64,
    /// Logged out through sfgate (else revoked at Salesforce directly).
    pub(crate) logout: bool,
    /// Salesforce confirmed the revocation.
    pub(crate) confirmed: bool,
    pub(crate) jwt: bool,
    pub(crate) tries_left: u8,
    /// The session's stand-in credential (cookies), to follow a session in a trace.
    pub(crate) session_cred: u64,
}

#[derive(Clone)]
pub(crate) enum Credential {
    Token(String),
    /// A browser's `Cookie` header.
    Cookie(String),
}

impl Ctx {
    fn remember(&self, replay: Replay) {
        if let Ok(mut r) = self.replays.lock() {
            if r.len() > 64 {
                r.remove(0);
            }
            r.push(replay);
        }
    }

    /// A replay that is due: past the propagation window (so its expectation is "refused"
    /// unless Redis was down), before sfgate's own memory of the logout may end.
    fn due_replay(&self) -> Option<Replay> {
        let now = self.oracle.now();
        let mut all = self.replays.lock().ok()?;
        all.retain(|r| now < r.at + 2.0 * self.cache_ttl - 3.0 && r.tries_left > 0);
        let due = all.iter_mut().find(|r| {
            let wait = if r.logout {
                PROPAGATION
            } else {
                self.cache_ttl + PROPAGATION
            };
            now > r.at + wait + 0.5
        })?;
        due.tries_left -= 1;
        Some(due.clone())
    }
}

/// The client name of cookie replays after a logout whose revocation Salesforce did not
/// confirm: the cookie still holds a refresh token Salesforce accepts, so only sfgate's own
/// memory of the logout (the refresh token it marked, docs/sessions.md) keeps it refused.
/// Named apart so that the report shows these replays on a line of their own.
pub(crate) const UNCONFIRMED_LOGOUT_REPLAY: &str = "bad:cookie-after-unconfirmed-logout";

/// Sends a due replay; returns false when none is due.
async fn replay(ctx: &Ctx) -> bool {
    let Some(r) = ctx.due_replay() else {
        return false;
    };
    let now = ctx.oracle.now();
    let expect = if r.logout {
        after_logout(
            &ctx.oracle,
            r.user,
            r.at,
            now,
            r.confirmed && !r.jwt,
            ctx.cache_ttl,
        )
    } else if now > r.at + ctx.cache_ttl + PROPAGATION {
        Expect::Refuse
    } else {
        Expect::Either(r.user)
    };
    let (request, client, what, cred) = match &r.credential {
        Credential::Cookie(cookie) => (
            ctx.http
                .get(format!("{}{APP_PAGE}?replay", ctx.base))
                .header("cookie", cookie.clone()),
            if r.confirmed {
                "bad:cookie-after-logout"
            } else {
                UNCONFIRMED_LOGOUT_REPLAY
            },
            format!("GET {APP_PAGE}?replay"),
            "",
        ),
        Credential::Token(token) => (
            ctx.bearer(ctx.http.get(format!("{}{APP_API}?replay", ctx.base)), token),
            if r.logout {
                "bad:token-after-logout"
            } else {
                "bad:token-after-revocation"
            },
            format!(
                "GET {APP_API}?replay ({})",
                if r.jwt { "jwt" } else { "opaque" }
            ),
            if r.jwt { "" } else { token.as_str() },
        ),
    };
    let mut meta = Meta::new(client, what, expect).cred(cred);
    if let Credential::Cookie(_) = r.credential {
        meta.cred = r.session_cred;
    }
    meta.ended_at = Some(r.at);
    ctx.send_recorded(request, meta).await;
    true
}

/// A request about to be sent: who sends it and what it should get.
pub(crate) struct Meta {
    pub(crate) client: &'static str,
    pub(crate) what: String,
    pub(crate) expect: Expect,
    pub(crate) session: bool,
    pub(crate) cred: u64,
    pub(crate) ended_at: Option<f64>,
}

/// An in-memory digest of a credential (never written anywhere).
pub(crate) fn cred_of(token: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    h.finish() | 1
}

impl Meta {
    pub(crate) fn new(client: &'static str, what: impl Into<String>, expect: Expect) -> Self {
        Self {
            client,
            what: what.into(),
            expect,
            session: false,
            cred: 0,
            ended_at: None,
        }
    }

    fn cred(mut self, token: &str) -> Self {
        self.cred = if token.is_empty() { 0 } else { cred_of(token) };
        self
    }
}

/// An answer as the oracle needs it, plus what a client reads from it.
pub(crate) struct Answer {
    pub(crate) outcome: Outcome,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

fn session_removed(headers: &HeaderMap) -> bool {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| {
            c.starts_with(&format!("{SESSION_COOKIE}=;"))
                || (c.starts_with(SESSION_COOKIE) && c.contains("Max-Age=0"))
        })
}

fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

impl Ctx {
    /// Sends `request` with a fresh soak id, records the outcome and returns the answer.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder, meta: Meta) -> Answer {
        let id = self.oracle.next_id();
        let sent = self.oracle.now();
        let result = request.header("x-soak-id", id.to_string()).send().await;
        let (status, headers, body, note) = match result {
            Ok(r) => {
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let body = match tokio::time::timeout(Duration::from_secs(20), r.text()).await {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => format!("(body failed: {e})"),
                    Err(_) => "(body timed out)".into(),
                };
                let note = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or_default();
                (status, headers, body, note)
            }
            Err(e) => (0, HeaderMap::new(), String::new(), error_chain(&e)),
        };
        let to_login = matches!(status, 302 | 303) && location(&headers).contains(AUTHORIZE_PATH);
        let outcome = Outcome {
            id,
            client: meta.client,
            what: meta.what,
            expect: meta.expect,
            sent,
            done: self.oracle.now(),
            status,
            retry_after: headers.contains_key(RETRY_AFTER),
            from_app: headers.contains_key("x-soak-app"),
            login_again: status == 401 || to_login || session_removed(&headers),
            session: meta.session,
            note,
            own_ok: None,
            cred: meta.cred,
            ended_at: meta.ended_at,
        };
        Answer {
            outcome,
            headers,
            body,
        }
    }

    /// Records an answer (after the client may have set `own_ok`).
    pub(crate) fn record(&self, answer: &Answer) {
        self.oracle.record(answer.outcome.clone());
    }

    async fn send_recorded(&self, request: reqwest::RequestBuilder, meta: Meta) -> Answer {
        let a = self.send(request, meta).await;
        self.record(&a);
        a
    }

    /// A fresh opaque token (scopes as a browser login gets them when `admin_scope`).
    fn opaque(&self, user: &str, admin_scope: bool) -> Option<String> {
        let scope = if admin_scope {
            "api refresh_token custom_permissions"
        } else {
            "api refresh_token"
        };
        self.emulator
            .issue_tokens_with_scope(user, scope)
            .map(|g| g.access_token)
    }

    fn jwt(&self, user: &str) -> Option<String> {
        self.emulator.issue_jwt(user).map(|g| g.access_token)
    }

    fn bearer(&self, request: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
        request
            .bearer_auth(token)
            .header("x-instance-url", self.emulator.base_url())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn user_name(user: (&'static str, &'static str)) -> &'static str {
    user.0
}

/// A browser user: logs in through the real flow, browses with the cookie, is renewed across
/// access-token expiry, logs out, and (as a bad actor would) replays the old cookie.
pub(crate) struct Browser {
    user: (&'static str, &'static str),
    jar: Arc<reqwest::cookie::Jar>,
    http: reqwest::Client,
    logged_in: bool,
    pages: u64,
    /// Stands for the session's credentials in the count of Salesforce calls.
    session_cred: u64,
}

impl Browser {
    pub(crate) fn new(user: (&'static str, &'static str)) -> Result<Self, reqwest::Error> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self {
            user,
            jar,
            http,
            logged_in: false,
            pages: 0,
            session_cred: 0,
        })
    }

    fn cookie_header(&self, ctx: &Ctx) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = reqwest::Url::parse(&ctx.base).ok()?;
        self.jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_string))
    }

    fn get(&self, ctx: &Ctx, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", ctx.base))
            .header("accept", "text/html,application/xhtml+xml")
    }

    pub(crate) async fn step(&mut self, ctx: &Ctx) {
        let name = user_name(self.user);
        if !self.logged_in {
            // Carol (whose org is not allowed) tries now and then, not at every step.
            if self.user != CAROL || rand::rng().random_bool(0.2) {
                self.login(ctx).await;
            }
            return;
        }
        let roll: f64 = rand::rng().random();
        if roll < 0.04 {
            self.logout(ctx).await;
        } else if roll < 0.10 {
            let (path, expect) = if self.user == ALICE {
                ("/admin/reports", Expect::Admit(name))
            } else {
                ("/admin/reports", Expect::Refuse)
            };
            self.browse(ctx, path, expect).await;
        } else if roll < 0.16 {
            // A page loading two assets at once with the same cookie (renewals must be shared).
            let a = self.browse_request(ctx, "/app/asset.js");
            let b = self.browse_request(ctx, "/app/asset.css");
            let (a, b) = tokio::join!(a, b);
            self.after_browse(ctx, a);
            self.after_browse(ctx, b);
        } else {
            self.pages += 1;
            let path = format!("{APP_PAGE}?n={}", self.pages);
            self.browse(ctx, &path, Expect::Admit(name)).await;
        }
    }

    async fn browse_request(&self, ctx: &Ctx, path: &str) -> Answer {
        let mut meta = Meta::new(
            "browser",
            format!("GET {path}"),
            Expect::Admit(user_name(self.user)),
        );
        meta.session = true;
        meta.cred = self.session_cred;
        ctx.send(self.get(ctx, path), meta).await
    }

    fn after_browse(&mut self, ctx: &Ctx, answer: Answer) {
        if answer.outcome.login_again && matches!(answer.outcome.expect, Expect::Admit(_)) {
            self.logged_in = false;
        }
        ctx.record(&answer);
    }

    async fn browse(&mut self, ctx: &Ctx, path: &str, expect: Expect) {
        let mut meta = Meta::new("browser", format!("GET {path}"), expect);
        meta.session = true;
        meta.cred = self.session_cred;
        let answer = ctx.send(self.get(ctx, path), meta).await;
        self.after_browse(ctx, answer);
    }

    /// The whole login: sfgate → the emulator's form → the callback → the session cookie.
    async fn login(&mut self, ctx: &Ctx) {
        let name = user_name(self.user);
        let start = ctx
            .send(
                self.get(ctx, AUTHORIZE_PATH),
                Meta::new(
                    "browser-login",
                    format!("GET {AUTHORIZE_PATH}"),
                    Expect::Admit(name),
                ),
            )
            .await;
        let to_salesforce = location(&start.headers);
        let mut ok = start.outcome.status == 302 && !to_salesforce.is_empty();
        let mut last = start;
        if ok {
            let form: Vec<(String, String)> = reqwest::Url::parse(&to_salesforce)
                .map(|u| {
                    u.query_pairs()
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .chain([
                            ("username".to_string(), self.user.0.to_string()),
                            ("password".to_string(), self.user.1.to_string()),
                            ("action".to_string(), "allow".to_string()),
                        ])
                        .collect()
                })
                .unwrap_or_default();
            let submit = self
                .http
                .post(format!(
                    "{}/services/oauth2/authorize",
                    ctx.emulator.base_url()
                ))
                .form(&form);
            let answer = match submit.send().await {
                Ok(r) => location(r.headers()),
                Err(_) => String::new(),
            };
            ok = answer.contains(CALLBACK_PATH);
            if ok {
                let callback = ctx
                    .send(
                        self.get_url(&answer),
                        Meta::new(
                            "browser-login",
                            format!("GET {CALLBACK_PATH}"),
                            Expect::Admit(name),
                        ),
                    )
                    .await;
                ok = callback.outcome.status == 303
                    && self
                        .cookie_header(ctx)
                        .is_some_and(|c| c.contains(&format!("{SESSION_COOKIE}=")));
                last = callback;
            }
        }
        last.outcome.own_ok = Some(ok);
        if self.user == CAROL {
            // Carol's org is not allowed: her login must never produce a session.
            last.outcome.expect = Expect::Refuse;
            last.outcome.own_ok = Some(!ok);
        }
        ctx.record(&last);
        self.logged_in = ok && self.user != CAROL;
        self.session_cred = rand::rng().random::<u64>() | 1;
        if ok {
            if let Some(cookie) = self.cookie_header(ctx) {
                if let Ok(mut c) = ctx.cookies.lock() {
                    if c.len() > 32 {
                        c.remove(0);
                    }
                    c.push(cookie);
                }
            }
        }
    }

    fn get_url(&self, url: &str) -> reqwest::RequestBuilder {
        self.http
            .get(url)
            .header("accept", "text/html,application/xhtml+xml")
    }

    async fn logout(&mut self, ctx: &Ctx) {
        let name = user_name(self.user);
        let before = self.cookie_header(ctx).unwrap_or_default();
        let refresh_token = session_refresh_token(&before);
        let request = self
            .http
            .post(format!("{}{LOGOUT_PATH}", ctx.base))
            .header("accept", "text/html");
        let mut meta = Meta::new(
            "browser-logout",
            format!("POST {LOGOUT_PATH}"),
            Expect::Admit(user_name(self.user)),
        );
        meta.cred = self.session_cred;
        let mut answer = ctx.send(request, meta).await;
        let ok = matches!(answer.outcome.status, 200 | 302 | 303);
        answer.outcome.own_ok = Some(ok);
        let at = answer.outcome.done;
        ctx.record(&answer);
        // Ground truth: whether Salesforce still accepts the session's refresh token.
        let confirmed = refresh_token
            .as_deref()
            .is_some_and(|rt| ctx.emulator.is_revoked(rt));
        if ok && !confirmed && !location(&answer.headers).contains("revocation_failed") {
            ctx.oracle.note(format!(
                "browser logout at {at:.1} s answered `{}` (no failure shown) while Salesforce still accepts the session's refresh token",
                location(&answer.headers)
            ));
        }
        self.logged_in = false;
        if ok {
            ctx.remember(Replay {
                session_cred: self.session_cred,
                credential: Credential::Cookie(before),
                user: name,
                at,
                logout: true,
                confirmed,
                jwt: false,
                tries_left: 2,
            });
        }
    }
}

/// An API client with an opaque or JWT access token; some log out or are revoked mid-run and
/// keep trying their old token for a while.
pub(crate) struct ApiClient {
    user: (&'static str, &'static str),
    jwt: bool,
    token: Option<(String, f64)>,
}

impl ApiClient {
    pub(crate) fn new(user: (&'static str, &'static str), jwt: bool) -> Self {
        Self {
            user,
            jwt,
            token: None,
        }
    }

    fn kind(&self) -> &'static str {
        if self.jwt {
            "api-jwt"
        } else {
            "api-opaque"
        }
    }

    pub(crate) async fn step(&mut self, ctx: &Ctx) {
        let name = user_name(self.user);
        let now = ctx.oracle.now();
        // Tokens are replaced before they expire; expired ones go to the bad actors.
        if self
            .token
            .as_ref()
            .is_none_or(|(_, issued)| now - issued > ctx.lifetime - 5.0)
        {
            if let (Some((old, issued)), false) = (self.token.take(), self.jwt) {
                if let Ok(mut e) = ctx.expired.lock() {
                    if e.len() > 256 {
                        e.remove(0);
                    }
                    e.push((old, issued + ctx.lifetime));
                }
            }
            let fresh = if self.jwt {
                ctx.jwt(name)
            } else {
                ctx.opaque(name, false)
            };
            self.token = fresh.map(|t| (t, now));
        }
        let Some((token, _)) = self.token.clone() else {
            return;
        };
        let roll: f64 = rand::rng().random();
        if roll < 0.03 {
            let request = ctx.bearer(ctx.http.post(format!("{}{LOGOUT_PATH}", ctx.base)), &token);
            let mut answer = ctx
                .send(
                    request,
                    Meta::new(
                        "api-logout",
                        format!("POST {LOGOUT_PATH} ({})", self.kind()),
                        Expect::Admit(name),
                    ),
                )
                .await;
            let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
            let ok = answer.outcome.status == 200 && body["logged_out"] == true;
            answer.outcome.own_ok = Some(ok);
            ctx.record(&answer);
            let confirmed = body["revoked"]
                .as_array()
                .is_some_and(|r| r.iter().any(|v| v == "access_token"));
            self.token = None;
            if ok {
                ctx.remember(Replay {
                    session_cred: 0,
                    credential: Credential::Token(token),
                    user: name,
                    at: answer.outcome.done,
                    logout: true,
                    confirmed,
                    jwt: self.jwt,
                    tries_left: 3,
                });
            }
        } else if roll < 0.05 && !self.jwt {
            // Revoked at Salesforce directly (an admin, another app): sfgate learns it when its
            // cached verdict runs out.
            let _ = ctx
                .http
                .post(format!(
                    "{}/services/oauth2/revoke",
                    ctx.emulator.base_url()
                ))
                .form(&[("token", token.as_str())])
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            self.token = None;
            if ctx.emulator.is_revoked(&token) {
                ctx.remember(Replay {
                    session_cred: 0,
                    credential: Credential::Token(token),
                    user: name,
                    at: ctx.oracle.now(),
                    logout: false,
                    confirmed: true,
                    jwt: false,
                    tries_left: 3,
                });
            }
        } else {
            let request = ctx.bearer(ctx.http.get(format!("{}{APP_API}", ctx.base)), &token);
            ctx.send_recorded(
                request,
                Meta::new(self.kind(), format!("GET {APP_API}"), Expect::Admit(name))
                    .cred(if self.jwt { "" } else { &token }),
            )
            .await;
        }
    }
}

/// Identity headers as a client would forge them, look-alike spellings included.
fn forge(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("X-Salesforce-User-Id", FORGED_VALUE)
        .header("X-Salesforce-Username", FORGED_VALUE)
        .header("X-Forwarded-User", FORGED_VALUE)
        .header("X-Forwarded-Email", FORGED_VALUE)
        .header("X_Forwarded_Email", FORGED_VALUE)
        .header("X-Salesforce_Org_Id", FORGED_VALUE)
}

/// Paths under the admin area as an app that ignores case and decodes would read them.
pub(crate) const ADMIN_SPELLINGS: [&str; 10] = [
    "/admin/x",
    "/ADMIN/x",
    "/Admin/x",
    "/%61dmin/x",
    "/%41DMIN/x",
    "/%2561dmin/x",
    "//admin/x",
    "/admin;v=1/x",
    "/admin%2Fx",
    "/admin",
];

/// Flips one character in the middle of `s` (a signature or a sealed cookie).
fn tamper(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let i = chars.len() * 2 / 3;
    if let Some(c) = chars.get_mut(i) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

/// One bad actor's request; all are refused except forged headers beside a valid token,
/// which pass as the token's real user.
pub(crate) async fn bad_actor(ctx: &Ctx) {
    let kind = rand::rng().random_range(0..13u8);
    if kind >= 10 && replay(ctx).await {
        return;
    }
    let url = format!("{}{APP_PAGE}?bad", ctx.base);
    let what = format!("GET {APP_PAGE}?bad");
    match kind {
        0 => {
            let request = forge(ctx.http.get(&url));
            ctx.send_recorded(
                request,
                Meta::new("bad:forged-headers", what, Expect::Refuse),
            )
            .await;
        }
        1 => {
            let Some(token) = ctx.opaque(BOB.0, false) else {
                return;
            };
            let request = forge(ctx.bearer(ctx.http.get(&url), &token));
            ctx.send_recorded(
                request,
                Meta::new("bad:forged-headers-with-token", what, Expect::Admit(BOB.0)).cred(&token),
            )
            .await;
        }
        2 => {
            let Some(mut claims) = ctx.emulator.jwt_claims(ALICE.0) else {
                return;
            };
            let past = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                .saturating_sub(7200);
            claims["iat"] = past.into();
            claims["nbf"] = past.into();
            claims["exp"] = (past + 600).into();
            let token = ctx.emulator.sign_jwt(ACME, &claims, &serde_json::json!({}));
            let request = ctx.bearer(ctx.http.get(&url), &token);
            ctx.send_recorded(request, Meta::new("bad:expired-jwt", what, Expect::Refuse))
                .await;
        }
        3 => {
            let Some(token) = ctx.jwt(ALICE.0) else {
                return;
            };
            let request = ctx.bearer(ctx.http.get(&url), &tamper(&token));
            ctx.send_recorded(request, Meta::new("bad:tampered-jwt", what, Expect::Refuse))
                .await;
        }
        4 | 10..=12 => {
            let now = ctx.oracle.now();
            let old = ctx.expired.lock().ok().and_then(|e| {
                e.iter()
                    .rev()
                    .find(|(_, exp)| now > exp + ctx.cache_ttl + PROPAGATION)
                    .map(|(t, _)| t.clone())
            });
            let (token, client) = match old {
                Some(t) => (t, "bad:expired-token"),
                None => (
                    format!("{ACME}!AQsoak{}", rand::rng().random::<u64>()),
                    "bad:made-up-token",
                ),
            };
            let request = ctx.bearer(ctx.http.get(&url), &token);
            ctx.send_recorded(
                request,
                Meta::new(client, what, Expect::Refuse).cred(&token),
            )
            .await;
        }
        5 => {
            let Some(cookie) = ctx.cookies.lock().ok().and_then(|c| c.last().cloned()) else {
                return;
            };
            let request = ctx.http.get(&url).header("cookie", tamper(&cookie));
            ctx.send_recorded(
                request,
                Meta::new("bad:tampered-cookie", what, Expect::Refuse),
            )
            .await;
        }
        6 => {
            let Some(token) = ctx.opaque(ALICE.0, true) else {
                return;
            };
            let request = ctx
                .http
                .get(&url)
                .header("cookie", expired_cookie(&token, &ctx.emulator.base_url()));
            ctx.send_recorded(
                request,
                Meta::new("bad:expired-cookie", what, Expect::Refuse),
            )
            .await;
        }
        7 | 8 => {
            let Some(token) = ctx.opaque(BOB.0, true) else {
                return;
            };
            let path = ADMIN_SPELLINGS[rand::rng().random_range(0..ADMIN_SPELLINGS.len())];
            let request = ctx.bearer(ctx.http.get(format!("{}{path}", ctx.base)), &token);
            ctx.send_recorded(
                request,
                Meta::new(
                    "bad:admin-path-without-permission",
                    format!("GET {path}"),
                    Expect::Refuse,
                )
                .cred(&token),
            )
            .await;
        }
        _ => {
            let Some(token) = ctx.opaque(CAROL.0, false) else {
                return;
            };
            let request = ctx.bearer(ctx.http.get(&url), &token);
            ctx.send_recorded(
                request,
                Meta::new("bad:org-not-allowed", what, Expect::Refuse).cred(&token),
            )
            .await;
        }
    }
}

/// The refresh token inside a browser's session cookie (the driver shares `SESSION_SECRET`),
/// so the oracle can ask the emulator whether a logout really revoked it.
fn session_refresh_token(cookie_header: &str) -> Option<String> {
    use secrecy::ExposeSecret;
    let sealer =
        sfgate::auth::CookieSealer::new(SESSION_SECRET.as_bytes(), false, Duration::from_secs(60));
    let mut headers = HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie_header.parse().ok()?);
    let session = sealer.open_session(&headers).ok()??;
    session
        .refresh_token
        .map(|rt| rt.expose_secret().to_string())
}

/// A session cookie sealed with sfgate's key around a valid token, but already expired: a
/// cookie kept past its `Max-Age`.
fn expired_cookie(token: &str, instance: &str) -> String {
    use sfgate::auth::{CookieSealer, Session, SessionUser};
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
        login_at: sfgate::auth::session::now_secs(),
        login_ms: None,
        embedded: false,
        site_url: None,
    };
    sealer
        .seal(
            sfgate::auth::session::SESSION_COOKIE,
            &session,
            Duration::ZERO,
        )
        .ok()
        .and_then(|h| {
            h.to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// A WebSocket client: holds a socket open through nginx and sfgate, echoes a message every
/// second, and reconnects (with a fresh token) when the socket drops.
pub(crate) async fn websocket(ctx: Arc<Ctx>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let ws_url = format!("{}{APP_WS}", ctx.base.replacen("http://", "ws://", 1));
    while !*stop.borrow() {
        let Some(token) = ctx.opaque(ALICE.0, false) else {
            return;
        };
        let id = ctx.oracle.next_id();
        let sent = ctx.oracle.now();
        let mut outcome = Outcome {
            id,
            client: "websocket",
            what: format!("GET {APP_WS} (upgrade)"),
            expect: Expect::Admit(ALICE.0),
            sent,
            done: sent,
            status: 0,
            retry_after: false,
            from_app: false,
            login_again: false,
            session: false,
            note: String::new(),
            own_ok: None,
            cred: cred_of(&token),
            ended_at: None,
        };
        let connected = match ws_request(&ws_url, &token, &ctx.emulator.base_url(), id) {
            Ok(request) => tokio::time::timeout(
                Duration::from_secs(15),
                tokio_tungstenite::connect_async(request),
            )
            .await
            .map_err(|_| "handshake timed out".to_string())
            .and_then(|r| r.map_err(|e| handshake_error(e, &mut outcome))),
            Err(e) => Err(e),
        };
        outcome.done = ctx.oracle.now();
        let mut ws = match connected {
            Ok((ws, response)) => {
                outcome.status = response.status().as_u16();
                outcome.from_app = true;
                ws
            }
            Err(note) => {
                outcome.note = note;
                ctx.oracle.record(outcome);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        ctx.oracle.record(outcome);
        let replica = ctx.oracle.replica_of(id);
        ctx.oracle.socket_opened(id, replica);
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {
                    ctx.oracle.socket_closed(id);
                    let _ = ws.close(None).await;
                    return;
                }
            }
            n += 1;
            let text = format!("echo {id} {n}");
            if let Err(e) = ws.send(Message::text(text.clone())).await {
                ctx.oracle.ws_dropped(replica, format!("send failed: {e}"));
                break;
            }
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == text => {}
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                    ctx.oracle
                        .ws_dropped(replica, format!("closed by the server ({code})"));
                    break;
                }
                Ok(Some(Ok(other))) => {
                    ctx.oracle
                        .ws_dropped(replica, format!("unexpected message {other:?}"));
                    break;
                }
                Ok(Some(Err(e))) => {
                    ctx.oracle.ws_dropped(replica, format!("error: {e}"));
                    break;
                }
                Ok(None) => {
                    ctx.oracle.ws_dropped(replica, "connection ended".into());
                    break;
                }
                Err(_) => {
                    ctx.oracle.ws_dropped(replica, "no echo within 5 s".into());
                    break;
                }
            }
        }
        ctx.oracle.socket_closed(id);
    }
}

fn ws_request(
    url: &str,
    token: &str,
    instance: &str,
    id: u64,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    for (name, value) in [
        ("authorization", format!("Bearer {token}")),
        ("x-instance-url", instance.to_string()),
        ("x-soak-id", id.to_string()),
    ] {
        headers.insert(name, value.parse().map_err(|_| "bad header".to_string())?);
    }
    Ok(request)
}

fn handshake_error(e: tokio_tungstenite::tungstenite::Error, outcome: &mut Outcome) -> String {
    if let tokio_tungstenite::tungstenite::Error::Http(response) = &e {
        outcome.status = response.status().as_u16();
        outcome.retry_after = response.headers().contains_key(RETRY_AFTER);
    }
    e.to_string()
}
