//! The one cryptography library sfgate uses, AWS-LC (`aws-lc-rs`), in the few shapes sfgate
//! needs it: TLS's provider, sealing values to the `cookie` crate's private-cookie format, and
//! SHA-256 / HMAC-SHA256 (token digests, Salesforce's signatures, Redis key names).
//!
//! Why one library: rustls 0.23's default provider is AWS-LC, RS256 verification is fastest
//! with AWS-LC's prepared keys (`salesforce::rs256`), and `jsonwebtoken` can sign with it; a
//! second stack (ring, or RustCrypto's AEAD and elliptic curves) only added build time and
//! more code to trust. See docs/benchmark.md for the figures. (RustCrypto's `sha2` is still
//! built, for `oauth2`'s PKCE challenge; sfgate's own code does not use it.)

mod hash;
mod provider;
mod sealing;

pub use hash::{hmac_key, hmac_sha256, sha256, verify_hmac_sha256, HmacKey};
pub use provider::install_tls_provider;
pub use sealing::SealingKey;
