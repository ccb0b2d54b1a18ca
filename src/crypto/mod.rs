//! The one cryptography library sfgate uses, AWS-LC (`aws-lc-rs`), in the few shapes sfgate
//! needs it: TLS's provider, and sealing values to the `cookie` crate's private-cookie format.
//!
//! Why one library: rustls 0.23's default provider is AWS-LC, RS256 verification is fastest
//! with AWS-LC's prepared keys (`salesforce::rs256`), and `jsonwebtoken` can sign with it; a
//! second stack (ring, or RustCrypto's AEAD and elliptic curves) only added build time and
//! more code to trust. See docs/benchmark.md for the figures.

mod provider;
mod sealing;

pub use provider::install_tls_provider;
pub use sealing::SealingKey;
