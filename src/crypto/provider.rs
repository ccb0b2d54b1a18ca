//! rustls' crypto provider, chosen explicitly.
//!
//! reqwest 0.12 uses the process's default provider and would panic without one (its only
//! built-in fallback is ring, which sfgate does not build); redis and hyper-rustls install
//! one from rustls' features when they first need it. Installing AWS-LC's before any client is
//! built makes every TLS connection use the same, known provider.

use std::sync::Once;

/// Installs AWS-LC as rustls' process-wide provider. Cheap and idempotent: every place that
/// builds a TLS client calls it first, and so can tests and embedders.
pub fn install_tls_provider() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // `Err` means a provider was already installed (by an embedding program): keep it.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::NamedGroup;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    #[test]
    fn the_installed_provider_is_aws_lc() {
        install_tls_provider();
        install_tls_provider();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        // The hybrid post-quantum group is offered by AWS-LC's provider only (not ring's).
        assert!(provider
            .kx_groups
            .iter()
            .any(|g| g.name() == NamedGroup::X25519MLKEM768));
    }

    /// sfgate's Salesforce client really speaks TLS through the provider (reqwest without its
    /// ring fallback would panic here if none were installed): the server sees a handshake.
    #[tokio::test]
    async fn the_salesforce_client_sends_a_tls_client_hello() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut first = [0u8; 6];
            socket.read_exact(&mut first).await.expect("read");
            first
        });
        let client = crate::salesforce::http_client(Duration::from_secs(2)).expect("client");
        let request = client.get(format!("https://127.0.0.1:{port}/")).send();
        let (answer, first) = tokio::join!(request, server);
        assert!(answer.is_err(), "the server never answers the handshake");
        let first = first.expect("server task");
        // A TLS record of type handshake (22), then a ClientHello (1).
        assert_eq!(first[0], 22, "{first:?}");
        assert_eq!(first[5], 1, "{first:?}");
    }
}
