//! Loopback servers that misbehave, for the gateway's clients to meet.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback "server" that accepts connections and does `behaviour` with each.
pub async fn misbehaving_server(
    behaviour: &'static str,
) -> (String, Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                match behaviour {
                    "close" => drop(socket),
                    "not_http" => {
                        let _ = socket.write_all(b"hello, this is not HTTP\r\n\r\n").await;
                    }
                    _ => {}
                }
            });
        }
    });
    (format!("http://{addr}"), hits)
}
