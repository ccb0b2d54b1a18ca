//! The kill switch (`sfgate revoke-user`, through the same library function the command
//! calls): every replica refuses the user's sessions, opaque tokens and JWTs from before the
//! command within two seconds, closes the user's WebSockets, revokes the session's refresh
//! token at Salesforce, spares other users, and lets the user log in again; a replica started
//! afterwards refuses the old credentials too.

use crate::common::redis_server::RedisServer;
use crate::common::*;
use crate::helpers::replicas::Replicas;
use crate::helpers::websocket::*;
use futures_util::SinkExt;
use reqwest::header::COOKIE;
use sfgate::domain::SalesforceId;
use sfgate::store::revocation::revoke_user;
use sfgate_emulator::Endpoint;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const BOB: &str = "bob@acme.example";
/// Alice's user id in the emulator (15 characters; the command takes either form).
const ALICE_ID: &str = "0055j00000AlIcE";

/// A credential as a request presents it.
#[derive(Clone, Debug)]
enum Credential {
    Cookie(String),
    Bearer { token: String, instance: String },
}

/// `/api/me` on `replica` with `credential`: the status and the JSON body.
async fn me(
    replicas: &Replicas,
    replica: usize,
    credential: &Credential,
) -> (u16, serde_json::Value) {
    let request = replicas
        .http
        .get(replicas.url(replica, "/api/me"))
        .header("accept", "application/json");
    let request = match credential {
        Credential::Cookie(pair) => request.header(COOKIE, pair),
        Credential::Bearer { token, instance } => request
            .bearer_auth(token)
            .header("x-instance-url", instance),
    };
    let response = request.send().await.expect("me");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn bearer(grant: &sfgate_emulator::TokenGrant) -> Credential {
    Credential::Bearer {
        token: grant.access_token.clone(),
        instance: grant.instance_url.clone(),
    }
}

/// Logs Alice in through the browser flow on `replica`; the session cookie (`name=value`).
async fn session_of_alice(replicas: &Replicas, replica: usize) -> Credential {
    let browser = browser_client();
    let (callback, _) = replicas.start_login(0, &browser).await;
    let finished = get_accepting(
        &browser,
        replicas.on_replica(&callback, replica),
        "application/json",
    )
    .await;
    let finished = expect_status_for(finished, 200, "login").await;
    let pair = set_cookies(finished.headers())
        .into_iter()
        .find(|c| c.starts_with("sfgate_session=") && !c.starts_with("sfgate_session=;"))
        .and_then(|c| c.split(';').next().map(str::to_string))
        .expect("session cookie");
    Credential::Cookie(pair)
}

/// Waits (at most `within` from `since`) until `credential` is refused on `replica` as a
/// revoked user's.
async fn refused_within(
    replicas: &Replicas,
    replica: usize,
    credential: &Credential,
    since: Instant,
    within: Duration,
) {
    loop {
        let (status, body) = me(replicas, replica, credential).await;
        if status == 401 {
            let description = body["error_description"].as_str().unwrap_or_default();
            assert!(
                description.contains("revoked") || description.contains("logged out"),
                "replica {replica}, {credential:?}: {body}"
            );
            return;
        }
        assert_eq!(status, 200, "replica {replica}: {body}");
        assert!(
            since.elapsed() < within,
            "replica {replica} still admits {credential:?} after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn alice_id(replicas: &Replicas, credential: &Credential) -> SalesforceId {
    let (status, body) = me(replicas, 0, credential).await;
    assert_eq!(status, 200, "{body}");
    SalesforceId::parse(body["user_id"].as_str().expect("user_id")).expect("user id")
}

#[tokio::test]
async fn a_revoked_user_is_refused_everywhere_within_two_seconds_and_may_log_in_again() {
    let Some(redis) = RedisServer::start("revoke_user") else {
        return;
    };
    let mut replicas = Replicas::start(&redis, 2).await;
    let emulator = &replicas.emulator;
    let session = session_of_alice(&replicas, 0).await;
    let opaque = bearer(&emulator.issue_tokens(ALICE.0).expect("tokens"));
    // Checked on replica 0 only: replica 1 first sees these after the command.
    let opaque_seen_on_one = bearer(&emulator.issue_tokens(ALICE.0).expect("tokens"));
    let jwt = bearer(&emulator.issue_jwt(ALICE.0).expect("jwt"));
    let bob = bearer(&emulator.issue_tokens(BOB).expect("bob"));
    let bob_jwt = bearer(&emulator.issue_jwt(BOB).expect("bob jwt"));
    for replica in 0..2 {
        for credential in [&session, &opaque, &bob, &bob_jwt] {
            assert_eq!(me(&replicas, replica, credential).await.0, 200);
        }
    }
    assert_eq!(me(&replicas, 0, &opaque_seen_on_one).await.0, 200);
    assert_eq!(me(&replicas, 0, &jwt).await.0, 200);
    let user = alice_id(&replicas, &opaque).await;
    let revokes_before = replicas.emulator.calls(Endpoint::Revoke);

    let done = revoke_user(&replicas.config(), user.clone(), "test-operator")
        .await
        .expect("revoked");
    let revoked = Instant::now();
    assert_eq!(done.user_id, user);
    assert_eq!(done.replicas_heard, 2, "both replicas listen");
    for replica in 0..2 {
        for credential in [&session, &opaque, &opaque_seen_on_one, &jwt] {
            refused_within(
                &replicas,
                replica,
                credential,
                revoked,
                Duration::from_secs(2),
            )
            .await;
        }
    }
    // The session's answer says why (not "logged out"), and removes the cookie.
    let (status, body) = me(&replicas, 1, &session).await;
    assert_eq!(status, 401);
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("revoked by an administrator")),
        "{body}"
    );
    // Other users are untouched.
    for replica in 0..2 {
        for credential in [&bob, &bob_jwt] {
            assert_eq!(me(&replicas, replica, credential).await.0, 200);
        }
    }
    // The session's refresh token was revoked at Salesforce, as a logout does.
    eventually("the refresh token is revoked at Salesforce", || {
        replicas.emulator.calls(Endpoint::Revoke) > revokes_before
    })
    .await;

    // A new login after the command works, on both; so do new tokens (a JWT's `iat` is in
    // seconds: one issued in the command's second counts as before it).
    let new_session = session_of_alice(&replicas, 1).await;
    let new_opaque = bearer(&replicas.emulator.issue_tokens(ALICE.0).expect("tokens"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new_jwt = bearer(&replicas.emulator.issue_jwt(ALICE.0).expect("jwt"));
    for replica in 0..2 {
        for credential in [&new_session, &new_opaque, &new_jwt] {
            let (status, body) = me(&replicas, replica, credential).await;
            assert_eq!(status, 200, "replica {replica}, {credential:?}: {body}");
        }
    }

    // A replica started after the command knows it from the log.
    let late = replicas.add_replica().await;
    replicas.wait_for_redis("up").await;
    for credential in [&session, &opaque, &opaque_seen_on_one, &jwt] {
        let (status, body) = me(&replicas, late, credential).await;
        assert_eq!(status, 401, "late replica, {credential:?}: {body}");
    }
    for credential in [&new_session, &new_jwt, &bob] {
        assert_eq!(me(&replicas, late, credential).await.0, 200);
    }
}

#[tokio::test]
async fn a_revoked_users_websockets_close_on_every_replica_and_others_stay_open() {
    let Some(redis) = RedisServer::start("revoke_user_sockets") else {
        return;
    };
    let echo = EchoServer::start().await;
    let replicas = Replicas::start_with(&redis, 2, &[("UPSTREAM_URL", &echo.url())]).await;
    let alice = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    let bob = replicas.emulator.issue_tokens(BOB).expect("tokens");
    let open = |replica: usize, grant: &sfgate_emulator::TokenGrant| {
        let url = format!("ws://{}/socket", replicas.gateways[replica].addr);
        let headers = [
            ("authorization", format!("Bearer {}", grant.access_token)),
            ("x-instance-url", grant.instance_url.clone()),
        ];
        async move {
            let (ws, response) = tokio_tungstenite::connect_async(handshake(&url, &headers))
                .await
                .expect("handshake");
            assert_eq!(response.status(), 101);
            ws
        }
    };
    let mut alices = vec![open(0, &alice).await, open(1, &alice).await];
    let mut bobs = open(1, &bob).await;
    for ws in alices.iter_mut().chain([&mut bobs]) {
        ws.send(Message::text("hi")).await.expect("send");
        assert_eq!(next(ws).await, Some(Message::text("hi")));
    }
    let user = SalesforceId::parse(ALICE_ID).expect("id");

    revoke_user(&replicas.config(), user, "test-operator")
        .await
        .expect("revoked");
    let revoked = Instant::now();
    for ws in &mut alices {
        match next(ws).await {
            Some(Message::Close(Some(frame))) => {
                assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
                assert_eq!(frame.reason.as_str(), "user revoked");
            }
            other => panic!("expected a 1008 Close frame, got {other:?}"),
        }
        assert!(
            revoked.elapsed() <= Duration::from_secs(2),
            "{:?}",
            revoked.elapsed()
        );
    }
    bobs.send(Message::text("still here")).await.expect("send");
    assert_eq!(next(&mut bobs).await, Some(Message::text("still here")));
}
