//! A logout on one replica ends the session's refresh token on every replica, even when
//! Salesforce failed the revocation.

use super::*;

#[tokio::test]
async fn a_session_logged_out_on_one_replica_is_not_renewed_on_another() {
    let Some(redis) = RedisServer::start("logout_renewal") else {
        return;
    };
    // No identity cache, so the token the emulator expires is seen as expired at once.
    let replicas = Replicas::start_with(&redis, 2, &[("IDENTITY_CACHE_TTL", "0")]).await;
    let cookie = replicas.log_in(0).await;

    replicas
        .emulator
        .set_fault_for(Endpoint::Revoke, Fault::ServerError);
    let r = replicas
        .http
        .post(replicas.url(0, "/oauth2/logout"))
        .header(COOKIE, &cookie)
        .header("origin", replicas.url(0, "").trim_end_matches('/'))
        .header("accept", "application/json")
        .send()
        .await
        .expect("logout");
    let r = expect_status(r, 200).await;
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "revocation_failed", "{body}");
    assert_eq!(body["replicas"], "published", "{body}");
    replicas
        .emulator
        .set_fault_for(Endpoint::Revoke, Fault::None);

    // Published: the other replica hears it within a second. Until then its Salesforce check
    // still passes (nothing was revoked there); once it has heard, the cookie is refused.
    let before = replicas.emulator.refresh_calls();
    let logged_out = Instant::now();
    while replay(&replicas, &cookie).await != 401 {
        assert!(logged_out.elapsed() < PATIENCE, "replica 1 never heard");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And once the access token has expired, the old cookie is not renewed there either.
    replicas.emulator.expire_access_tokens();
    assert_eq!(replay(&replicas, &cookie).await, 401);
    assert_eq!(
        replicas.emulator.refresh_calls(),
        before,
        "no renewal reached Salesforce"
    );
}

async fn replay(replicas: &Replicas, cookie: &str) -> reqwest::StatusCode {
    replicas
        .http
        .get(replicas.url(1, "/api/me"))
        .header(COOKIE, cookie)
        .header("accept", "application/json")
        .send()
        .await
        .expect("replay")
        .status()
}
