//! Cost of one RS256 verification, per way of doing it, and of one ES256 assertion signature
//! (run under callgrind for instruction counts, or plainly for nanoseconds):
//! `cargo run --release --example rs256_cost -- MODE N`, MODE one of `percall` (the key's
//! components parsed on every call, as ring's API requires), `awslc` (the prepared key sfgate
//! uses), `es256` (`jsonwebtoken::encode` with an ES256 key, as the assertion signer does),
//! `none`, or `all`. ring itself is no longer built (sfgate uses AWS-LC only); its per-call
//! figure, measured before, is in bench/NOTES.md.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use std::hint::black_box;
use std::time::Instant;

/// The benchmark's throwaway P-256 key (the same as bench/assertion_case.rs).
const ES256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQDrb5KNH4cOe4kdJ
7mNe1zZPhKv1QnPy/Y/1hdaJFUChRANCAATcoBf4HH9ZW1mA0mWEd+a65GRG/ET4
mw6VuIEOUAr574sMBXp8m2QjJepuD9FAoONNq9KqJInntTsxRF3Z76ZW
-----END PRIVATE KEY-----";

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "all".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let pem = sfgate_emulator::FOREIGN_KEY.as_bytes();
    let key = EncodingKey::from_rsa_pem(pem).expect("pem");
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
    let jwk = serde_json::to_value(&jwk).expect("json");
    let nb = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("n"))
        .expect("n");
    let eb = URL_SAFE_NO_PAD
        .decode(jwk["e"].as_str().expect("e"))
        .expect("e");
    let message = vec![b'a'; 900];
    let sig = jsonwebtoken::crypto::sign(&message, &key, Algorithm::RS256).expect("sign");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("b64");
    let es256 = EncodingKey::from_ec_pem(ES256_KEY.as_bytes()).expect("ec pem");
    let claims = serde_json::json!({"sub": "005xx0000012345", "org": "00Dxx0000001gPL",
        "iss": "sfgate", "aud": "app", "iat": 1_780_000_000, "exp": 1_780_000_060});
    let modes: Vec<&str> = if mode == "all" {
        vec!["percall", "awslc", "es256", "none"]
    } else {
        vec![mode.as_str()]
    };
    for m in modes {
        let parsed = aws_lc_rs::signature::RsaPublicKeyComponents { n: &nb, e: &eb }
            .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
            .expect("parsed");
        let started = Instant::now();
        for _ in 0..n {
            let ok = match m {
                "percall" => aws_lc_rs::signature::RsaPublicKeyComponents { n: &nb, e: &eb }
                    .verify(
                        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                        black_box(&message),
                        black_box(&sig),
                    )
                    .is_ok(),
                "es256" => jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(Algorithm::ES256),
                    black_box(&claims),
                    &es256,
                )
                .is_ok(),
                "awslc" => parsed
                    .verify_sig(black_box(&message), black_box(&sig))
                    .is_ok(),
                _ => true,
            };
            assert!(ok);
        }
        let per = started.elapsed().as_nanos() as f64 / n as f64;
        println!("{m}: {per:.0} ns per operation");
    }
}
