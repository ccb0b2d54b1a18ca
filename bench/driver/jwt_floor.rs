//! The floor of a first request with a new JWT: a thread-per-core server (the same threads and
//! listeners as the other floors, [`super::floor::start_per_core`]) that does only what any
//! gateway checking JWTs locally must do with sfgate's own parts, and nothing else: read the
//! bearer token and the instance header, hash them into a key (sfgate's SHA-256), look the key
//! up in one map shared by the threads; on a miss, parse the token (`jwt::recognise`), verify
//! it with the issuer's prepared key (`Unverified::verify`: RS256 by AWS-LC, `exp`, `iss`,
//! `client_id`) and remember the verdict. It answers a short JSON naming the user and org.
//!
//! No router, middleware, metrics, logs, bounded cache with expiry and eviction, single-flight,
//! profile lookup, revocation or org rules. Measured in case (h) beside sfgate with the same
//! client and tokens, it says how much of a new JWT's added CPU any server doing this on this
//! machine pays (the verification run in a busy process sharing its cores with the load
//! generator) and how much is sfgate's own miss path.
//!
//! Started with [`Seeded`] answers, the same server is the floor of cases (a) and (b): it
//! answers `/oauth2/healthz` with sfgate's own health body, and knows the benchmark's (opaque)
//! token from the start with sfgate's own `/oauth2/userinfo` body as its verdict, so a cached
//! request costs it the headers, the hash and one map lookup, and both answers carry the same
//! bytes as sfgate's.

use super::floor::start_per_core;
use crate::Failure;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use sfgate::salesforce::jwt;
use sfgate::salesforce::rs256::Rs256Key;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Thread names of the JWT floor (for its CPU time; /proc keeps 15 characters).
pub(crate) const JWT_FLOOR_THREADS: &str = "bench-floor-jwt";
/// Thread names of the floor of cases (a) and (b).
pub(crate) const ANSWER_FLOOR_THREADS: &str = "bench-floor-ans";

/// Answers the floor knows before any request: sfgate's health body, and verdicts (the answer
/// body for an instance and token) it serves as cached.
#[derive(Default)]
pub(crate) struct Seeded {
    pub(crate) healthz: Option<String>,
    pub(crate) known: Vec<(String, String, String)>,
}

/// What the floor checks tokens against: one issuer, its key, the accepted client id.
struct Checker {
    issuer: String,
    key: Rs256Key,
    client_ids: Vec<String>,
    /// Verdicts by key: the user and org of a verified token.
    known: Mutex<HashMap<[u8; 32], Arc<str>>>,
    healthz: Option<String>,
}

fn key_of(instance: &str, token: &str) -> [u8; 32] {
    sfgate::crypto::sha256(&[instance.as_bytes(), &[0u8], token.as_bytes()])
}

impl Checker {
    /// The answer's body for a request with `token` at `instance`, or `None` when refused.
    fn check(&self, instance: &str, token: &str) -> Option<Arc<str>> {
        let key = key_of(instance, token);
        if let Some(known) = self.known.lock().ok()?.get(&key) {
            return Some(known.clone());
        }
        if instance != self.issuer {
            return None;
        }
        let verified = jwt::recognise(token)?
            .ok()?
            .verify(&self.key, &self.issuer, &self.client_ids)
            .ok()?;
        let body: Arc<str> = format!(
            r#"{{"user_id":"{}","organization_id":"{}"}}"#,
            verified.user_id, verified.organization_id
        )
        .into();
        self.known.lock().ok()?.insert(key, body.clone());
        Some(body)
    }
}

/// Starts the JWT floor with `threads` threads named `name`, checking tokens issued by
/// `issuer` (the emulator's URL, which the requests also name as their instance) to
/// `client_id`, signed with the first key of the issuer's published key set, and knowing
/// `seeded`; returns its base URL.
pub(crate) async fn start(
    http: &reqwest::Client,
    issuer: &str,
    client_id: &str,
    threads: usize,
    name: &'static str,
    seeded: Seeded,
) -> Result<String, Failure> {
    let keys: serde_json::Value = http
        .get(format!("{issuer}/id/keys"))
        .send()
        .await?
        .json()
        .await?;
    let jwk = &keys["keys"][0];
    let (Some(n), Some(e)) = (jwk["n"].as_str(), jwk["e"].as_str()) else {
        return Err("the emulator's key set has no RSA key".into());
    };
    let checker = Arc::new(Checker {
        issuer: issuer.to_string(),
        key: Rs256Key::from_jwk(n, e).map_err(|e| format!("the emulator's key: {e:?}"))?,
        client_ids: vec![client_id.to_string()],
        known: Mutex::new(
            seeded
                .known
                .into_iter()
                .map(|(instance, token, body)| (key_of(&instance, &token), body.into()))
                .collect(),
        ),
        healthz: seeded.healthz,
    });
    start_per_core(threads, name, move |stream| {
        let checker = checker.clone();
        async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let answer = answer(&checker, &request);
                async move { Ok::<_, std::convert::Infallible>(answer) }
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
}

fn answer(checker: &Checker, request: &Request<Incoming>) -> Response<String> {
    if let (Some(body), "/oauth2/healthz") = (&checker.healthz, request.uri().path()) {
        return Response::builder()
            .header("content-type", "application/json")
            .body(body.clone())
            .unwrap_or_default();
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let token = header("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or_default();
    match checker.check(header("x-instance-url"), token) {
        Some(body) => Response::builder()
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .body(String::new()),
    }
    .unwrap_or_default()
}
