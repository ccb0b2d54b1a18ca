//! Cost of one RS256 verification, per way of doing it (run under callgrind for instruction
//! counts, or plainly for nanoseconds): `cargo run --release --example rs256_cost -- MODE N`.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use std::hint::black_box;
use std::time::Instant;

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
    let modes: Vec<&str> = if mode == "all" {
        vec!["ring", "awslc", "none"]
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
                "ring" => ring::signature::RsaPublicKeyComponents { n: &nb, e: &eb }
                    .verify(
                        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                        black_box(&message),
                        black_box(&sig),
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
        println!("{m}: {per:.0} ns per verification");
    }
}
