use super::*;

fn part(v: serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn opaque_tokens_are_not_jwts() {
    assert_eq!(recognise("00D5j00000AcMe1!AQ0AQ.abc.def"), None);
    assert_eq!(recognise("plain"), None);
    assert_eq!(recognise("a.b"), None);
    assert_eq!(recognise("a.b.c.d"), None);
    // A JWT-shaped token without a key id or Salesforce's token type is left to userinfo.
    let h = part(serde_json::json!({"alg": "RS256", "typ": "JWT"}));
    let p = part(serde_json::json!({"iss": "https://x.my.salesforce.com"}));
    assert_eq!(recognise(&format!("{h}.{p}.sig")), None);
}

#[test]
fn salesforce_jwts_are_recognised_with_kid_and_issuer() {
    let h = part(
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "CORE_ATJWT.00DSG000009FYVd.1725579420125", "tty": "sfdc-core-token", "tnk": "core/falcontest1-core4sdb6/00DSG000009FYVd2AO", "ver": "1.0"}),
    );
    let p = part(
        serde_json::json!({"iss": "https://x.my.salesforce.com", "sub": "uid:005SG00000AAAAAAAA"}),
    );
    let found = recognise(&format!("{h}.{p}.sig"))
        .expect("a jwt")
        .expect("checkable");
    assert_eq!(found.kid, "CORE_ATJWT.00DSG000009FYVd.1725579420125");
    assert_eq!(found.issuer, "https://x.my.salesforce.com");
    // A signature that is not base64url cannot be checked.
    assert_eq!(
        recognise(&format!("{h}.{p}.not*base64")),
        Some(Err(JwtRejection::Malformed))
    );
    // `alg: none` is still recognised as a JWT, so it is refused rather than sent anywhere.
    let none = part(serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k"}));
    assert!(matches!(recognise(&format!("{none}.{p}.")), Some(Ok(_))));
    let no_iss = part(serde_json::json!({"sub": "uid:x"}));
    assert_eq!(
        recognise(&format!("{h}.{no_iss}.sig")),
        Some(Err(JwtRejection::Malformed))
    );
}

#[test]
fn the_org_comes_from_the_tenant_key_and_agrees_with_the_kid() {
    let org = org_of(
        Some("core/falcontest1-core4sdb6/00DSG000009FYVd2AO"),
        Some("CORE_ATJWT.00DSG000009FYVd.1725579420125"),
    )
    .expect("org");
    assert_eq!(org.short(), "00DSG000009FYVd");
    assert!(org_of(None, Some("CORE_ATJWT.00DSG000009FYVd.1")).is_ok());
    assert_eq!(
        org_of(
            Some("core/x/00D5j00000AcMe1"),
            Some("CORE_ATJWT.00DSG000009FYVd.1")
        ),
        Err(JwtRejection::MissingIdentity)
    );
    assert_eq!(org_of(None, Some("k1")), Err(JwtRejection::MissingIdentity));
}

mod properties {
    use super::super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const ISSUER: &str = "https://acme.my.salesforce.com";

    /// A token signed by the emulator's unpublished test key with `claims` and `header`
    /// fields added to (or replacing) Salesforce's.
    fn sign(claims: serde_json::Value, extra_header: serde_json::Value) -> String {
        let pem = sfgate_emulator::FOREIGN_KEY.as_bytes();
        let key = EncodingKey::from_rsa_pem(pem).expect("pem");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k".into());
        header.typ = Some("JWT".into());
        header.extras.insert("tty", SFDC_TOKEN_TYPE);
        header.extras.insert("tnk", "core/x/00D5j00000AcMe1EAF");
        for (k, v) in extra_header.as_object().into_iter().flatten() {
            match k.as_str() {
                "kid" => header.kid = v.as_str().map(str::to_string),
                _ => {
                    header.extras.insert(k.clone(), v.clone());
                }
            }
        }
        let now = now_secs();
        let mut all = serde_json::json!({
            "iss": ISSUER, "sub": "uid:0055j00000AlIcEAAV", "client_id": "me",
            "nbf": now, "iat": now, "exp": now + 3600,
        });
        for (k, v) in claims.as_object().into_iter().flatten() {
            all[k] = v.clone();
        }
        jsonwebtoken::encode(&header, &all, &key).expect("sign")
    }

    /// A valid token and the key that verifies it.
    fn signed() -> &'static (String, Rs256Key) {
        static SIGNED: OnceLock<(String, Rs256Key)> = OnceLock::new();
        SIGNED.get_or_init(|| {
            let pem = sfgate_emulator::FOREIGN_KEY;
            let (n, e, _) = crate::salesforce::rs256::tests::jwk_and_signature(pem, b"");
            let key = Rs256Key::from_jwk(&n, &e).expect("key");
            (sign(serde_json::json!({}), serde_json::json!({})), key)
        })
    }

    fn check(token: &str) -> Result<VerifiedJwt, JwtRejection> {
        let unverified = recognise(token).ok_or(JwtRejection::Malformed)??;
        unverified.verify(&signed().1, ISSUER, &["me".to_string()])
    }

    #[test]
    fn each_claim_is_checked_after_the_signature() {
        use serde_json::json;
        let now = now_secs();
        let leeway = LEEWAY.as_secs();
        let cases = [
            (
                json!({"exp": now - leeway - 5}),
                json!({}),
                Err(JwtRejection::Expired),
            ),
            (
                json!({"nbf": now + leeway + 60}),
                json!({}),
                Err(JwtRejection::NotYetValid),
            ),
            (
                json!({"iss": "https://other.my.salesforce.com"}),
                json!({}),
                Err(JwtRejection::Issuer),
            ),
            (
                json!({"client_id": "someone-else"}),
                json!({}),
                Err(JwtRejection::ClientId),
            ),
            (
                json!({"client_id": null}),
                json!({}),
                Err(JwtRejection::ClientId),
            ),
            (
                json!({"sub": "005-not-a-uid"}),
                json!({}),
                Err(JwtRejection::MissingIdentity),
            ),
            (
                json!({"sub": null}),
                json!({}),
                Err(JwtRejection::Malformed),
            ),
            (
                json!({"exp": null}),
                json!({}),
                Err(JwtRejection::Malformed),
            ),
            (
                json!({}),
                json!({"crit": ["exp"]}),
                Err(JwtRejection::Malformed),
            ),
            (
                json!({}),
                json!({"tnk": "core/x/00DSG000009FYVd2AO", "kid": "CORE_ATJWT.00D5j00000AcMe1.1"}),
                Err(JwtRejection::MissingIdentity),
            ),
        ];
        for (claims, header, expected) in cases {
            let token = sign(claims.clone(), header.clone());
            assert_eq!(
                check(&token).map(|v| v.user_id),
                expected,
                "{claims} {header}"
            );
        }
        // Within the leeway on both sides is still valid.
        let edge = sign(
            json!({"exp": now - leeway + 5, "nbf": now + leeway - 5}),
            json!({}),
        );
        assert!(check(&edge).is_ok());
        // An `exp` of the wrong type makes the token malformed, before any key is used.
        let text_exp = sign(json!({"exp": "tomorrow"}), json!({}));
        assert_eq!(recognise(&text_exp), Some(Err(JwtRejection::Malformed)));
    }

    #[test]
    fn the_unaltered_token_verifies() {
        let verified = check(&signed().0).expect("valid");
        assert_eq!(verified.organization_id.short(), "00D5j00000AcMe1");
        assert_eq!(verified.user_id.short(), "0055j00000AlIcE");
    }

    const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any one character changed anywhere (header, payload or signature) is refused.
        #[test]
        fn any_altered_character_is_refused(at in any::<prop::sample::Index>(), with in 0..B64URL.len()) {
            let token = &signed().0;
            let positions: Vec<usize> = token
                .char_indices()
                .filter(|(_, c)| *c != '.')
                .map(|(i, _)| i)
                .collect();
            let i = at.index(positions.len());
            let replacement = B64URL[with] as char;
            prop_assume!(token.as_bytes()[i] as char != replacement);
            let mut altered = token.clone();
            altered.replace_range(i..=i, &replacement.to_string());
            prop_assert!(check(&altered).is_err());
        }

        /// A header naming any algorithm but RS256 is refused, whatever the signature.
        #[test]
        fn only_rs256_is_accepted(alg in prop::sample::select(vec![
            "none", "None", "HS256", "HS384", "HS512", "RS384", "RS512", "PS256", "ES256", "EdDSA", "rs256", "",
        ])) {
            let token = &signed().0;
            let mut parts = token.splitn(2, '.');
            let (_, rest) = (parts.next(), parts.next().unwrap_or_default());
            let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": "k", "tty": SFDC_TOKEN_TYPE, "tnk": "core/x/00D5j00000AcMe1EAF"});
            let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
            prop_assert!(check(&forged).is_err());
        }
    }
}
