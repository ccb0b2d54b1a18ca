//! Redis is storage, not authority: what is planted, moved or altered there is not believed,
//! what is stored there gives nothing to test token guesses against, and a rotation of
//! `SESSION_SECRET` keeps the replicas sharing.

use super::*;
use aws_lc_rs::{digest, hmac};

/// What an attacker with write access to Redis would plant: any user, any permission.
const FORGED: &str = r#"{"v":"valid","user_id":"005000000000001","org_id":"00D5j00000AcMe1","username":"mallory@acme.example","email":null,"email_verified":true,"active":true,"custom_permissions":["Admin"]}"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The unkeyed digest sfgate once named verdicts by: SHA-256 of instance, NUL, token.
fn plain_digest(instance: &str, token: &str) -> Vec<u8> {
    let mut hasher = digest::Context::new(&digest::SHA256);
    hasher.update(instance.as_bytes());
    hasher.update(&[0u8]);
    hasher.update(token.as_bytes());
    hasher.finish().as_ref().to_vec()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

/// Names an attacker might try for a made-up token: the old unkeyed one, and keyed guesses.
fn guessed_names(instance: &str, token: &str) -> Vec<String> {
    let digest = plain_digest(instance, token);
    let mut guesses = vec![
        hex(&digest),
        hex(&sha256(token.as_bytes())),
        hex(&sha256(&digest)),
    ];
    for key in [SESSION_SECRET.as_bytes(), b"sfgate", b""] {
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), &digest);
        guesses.push(hex(mac.as_ref()));
    }
    guesses
        .into_iter()
        .map(|g| format!("sfgate:identity:{g}"))
        .collect()
}

fn made_up_token() -> String {
    format!("{ACME}!{}", uuid::Uuid::new_v4().simple())
}

async fn rejected_values(replicas: &Replicas, replica: usize) -> f64 {
    let scrape = replicas
        .http
        .get(replicas.url(replica, "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    metric(&scrape, "sfgate_store_rejected_values_total", &[])
}

#[tokio::test]
async fn a_verdict_planted_under_a_made_up_tokens_key_admits_nobody() {
    let Some(redis) = RedisServer::start("planted_verdict") else {
        return;
    };
    let replicas = Replicas::start(&redis, 2).await;
    let instance = replicas.emulator.base_url();
    let token = made_up_token();
    let mut conn = redis.connection();
    for name in guessed_names(&instance, &token) {
        let _: () = redis::cmd("SET")
            .arg(&name)
            .arg(FORGED)
            .arg("PX")
            .arg(60_000)
            .query(&mut conn)
            .expect("plant");
    }
    assert_eq!(replicas.me(0, &token, &instance).await, 401);

    // Even under the very name sfgate uses (found here by watching which key the made-up
    // token's refusal was stored under), a value it did not seal is a miss, and counted.
    let before = keys_like(&redis, "sfgate:identity:");
    let other = made_up_token();
    assert_eq!(replicas.me(0, &other, &instance).await, 401);
    let after = keys_like(&redis, "sfgate:identity:");
    let name = after.difference(&before).next().expect("a new verdict key");
    let _: () = redis::cmd("SET")
        .arg(name)
        .arg(FORGED)
        .arg("PX")
        .arg(60_000)
        .query(&mut conn)
        .expect("plant");
    let rejected = rejected_values(&replicas, 1).await;
    assert_eq!(replicas.me(1, &other, &instance).await, 401);
    assert!(rejected_values(&replicas, 1).await > rejected);
}

#[tokio::test]
async fn a_verdict_moved_to_another_key_or_altered_is_rejected_and_counted() {
    let Some(redis) = RedisServer::start("moved_verdict") else {
        return;
    };
    let replicas = Replicas::start(&redis, 2).await;
    let t = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    let instance = t.instance_url.clone();
    let made_up = made_up_token();

    let known = keys_like(&redis, "sfgate:identity:");
    assert_eq!(replicas.me(0, &made_up, &instance).await, 401);
    let refused_at = keys_like(&redis, "sfgate:identity:");
    let refused_key = refused_at.difference(&known).next().expect("key").clone();
    assert_eq!(replicas.me(0, &t.access_token, &instance).await, 200);
    let valid_key = keys_like(&redis, "sfgate:identity:")
        .difference(&refused_at)
        .next()
        .expect("key")
        .clone();

    // Alice's genuine, sealed verdict copied under the made-up token's key.
    let mut conn = redis.connection();
    let genuine: String = redis::cmd("GET")
        .arg(&valid_key)
        .query(&mut conn)
        .expect("get");
    assert!(!genuine.contains("alice"), "sealed, not plain: {genuine}");
    let _: () = redis::cmd("SET")
        .arg(&refused_key)
        .arg(&genuine)
        .arg("PX")
        .arg(60_000)
        .query(&mut conn)
        .expect("move");
    let rejected = rejected_values(&replicas, 1).await;
    assert_eq!(replicas.me(1, &made_up, &instance).await, 401);
    let after_move = rejected_values(&replicas, 1).await;
    assert!(after_move > rejected, "the moved value is counted");

    // Altered in place: ignored (Salesforce is asked again), counted.
    let mut altered = genuine.into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let _: () = redis::cmd("SET")
        .arg(&valid_key)
        .arg(altered)
        .arg("PX")
        .arg(60_000)
        .query(&mut conn)
        .expect("alter");
    replicas.emulator.reset_stats();
    assert_eq!(replicas.me(1, &t.access_token, &instance).await, 200);
    assert_eq!(replicas.emulator.calls(Endpoint::UserInfo), 1);
    assert!(rejected_values(&replicas, 1).await > after_move);
}

const ROTATED: &str = "the-next-session-secret-0123456789-klmnopqrst";

#[tokio::test]
async fn replicas_on_a_rotated_secret_share_verdicts_and_revocations_with_those_not_yet_rotated() {
    let Some(redis) = RedisServer::start("secret_rotation") else {
        return;
    };
    // Replica 0 still runs on the old secret; replica 1 was rotated, keeping it as previous.
    let rotated: &[(&str, &str)] = &[
        ("SESSION_SECRET", ROTATED),
        ("SESSION_SECRET_PREVIOUS", SESSION_SECRET),
    ];
    let replicas = Replicas::start_each(&redis, &[&[], rotated]).await;
    let t = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    let u = replicas.emulator.issue_tokens(ALICE.0).expect("tokens");
    replicas.emulator.reset_stats();
    for token in [&t, &u] {
        assert_eq!(
            replicas
                .me(0, &token.access_token, &token.instance_url)
                .await,
            200
        );
        // The rotated replica reads what the old one stored (under the previous secret).
        assert_eq!(
            replicas
                .me(1, &token.access_token, &token.instance_url)
                .await,
            200
        );
    }
    assert_eq!(replicas.emulator.calls(Endpoint::UserInfo), 2, "one each");

    // A logout on either reaches the other, whose cached verdict goes at once.
    for (from, to, token) in [(1, 0, &t), (0, 1, &u)] {
        let answer = replicas
            .logout_answer(from, &token.access_token, &token.instance_url)
            .await;
        assert_eq!(answer["replicas"], "published", "{answer}");
        let logged_out = Instant::now();
        while replicas
            .me(to, &token.access_token, &token.instance_url)
            .await
            != 401
        {
            assert!(
                logged_out.elapsed() < Duration::from_secs(1),
                "replica {to} still admits a token logged out on {from}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
