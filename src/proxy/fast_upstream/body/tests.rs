use super::*;
use crate::proxy::fast_upstream::connections::idle_count;
use proptest::prelude::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A connected pair on loopback: the gateway's end, and the upstream's.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (near, far) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (near.expect("connect"), far.expect("accept").0)
}

/// Reads a body whose first `already` bytes were read with the head and whose rest the
/// upstream writes in `pieces`; returns what it yielded (or its error) and whether the
/// connection went back to the pool.
async fn read_body(
    framing: Framing,
    keep_alive: bool,
    already: &[u8],
    pieces: Vec<Vec<u8>>,
    close: bool,
) -> (Result<Vec<u8>, String>, bool) {
    let (near, mut far) = pair().await;
    let pool = Pool::new(Duration::from_secs(60));
    let head = AnswerHead {
        status: axum::http::StatusCode::OK,
        version: Version::HTTP_11,
        headers: crate::headers::passed::PassedLines::new(bytes::Bytes::new(), 0),
        reason: None,
        framing,
        keep_alive,
    };
    let body = AnswerBody::new(near, BytesMut::from(already), &head, pool);
    let writer = tokio::spawn(async move {
        for piece in pieces {
            far.write_all(&piece).await.expect("write");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if close {
            drop(far);
            None
        } else {
            Some(far)
        }
    });
    let collected = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|e| e.to_string());
    let _far = writer.await.expect("writer");
    let pooled = idle_count(&pool) == 1;
    (collected, pooled)
}

#[tokio::test]
async fn a_length_body_is_read_to_its_length_and_its_connection_reused() {
    let (body, pooled) = read_body(
        Framing::Length(11),
        true,
        b"hello",
        vec![b" wor".to_vec(), b"ld".to_vec()],
        false,
    )
    .await;
    assert_eq!(body.as_deref(), Ok(&b"hello world"[..]));
    assert!(pooled);
    // Bytes past the length: the connection is not reused (they would be read as the next
    // answer).
    let (body, pooled) = read_body(Framing::Length(5), true, b"helloXYZ", vec![], false).await;
    assert_eq!(body.as_deref(), Ok(&b"hello"[..]));
    assert!(!pooled);
    // Not keep-alive: read, not reused.
    let (body, pooled) = read_body(Framing::Length(2), false, b"hi", vec![], false).await;
    assert_eq!(body.as_deref(), Ok(&b"hi"[..]));
    assert!(!pooled);
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_and_its_connection_closed() {
    let (body, pooled) = read_body(Framing::Length(10), true, b"abc", vec![], true).await;
    assert!(body.is_err(), "{body:?}");
    assert!(!pooled);
    let (body, pooled) = read_body(Framing::Chunked, true, b"5\r\nab", vec![], true).await;
    assert!(body.is_err(), "{body:?}");
    assert!(!pooled);
}

#[tokio::test]
async fn a_close_delimited_body_ends_at_the_close() {
    let (body, pooled) = read_body(
        Framing::UntilClose,
        true,
        b"one ",
        vec![b"two ".to_vec(), b"three".to_vec()],
        true,
    )
    .await;
    assert_eq!(body.as_deref(), Ok(&b"one two three"[..]));
    assert!(
        !pooled,
        "a connection the body ended by closing is never reused"
    );
}

#[tokio::test]
async fn a_chunked_body_is_decoded_with_extensions_and_trailers_dropped() {
    let (body, pooled) = read_body(
        Framing::Chunked,
        true,
        b"5;name=value\r\nhello\r\n",
        vec![
            b"1 \t;x\r\n \r\n".to_vec(),
            b"A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec(),
        ],
        false,
    )
    .await;
    assert_eq!(body.as_deref(), Ok(&b"hello 0123456789"[..]));
    assert!(pooled);
}

#[tokio::test]
async fn malformed_chunked_bodies_are_errors() {
    for bad in [
        &b"x\r\n"[..],
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5 5\r\nhello\r\n0\r\n\r\n",
        b"5\rX\r\nhello\r\n0\r\n\r\n",
        b"11111111111111111\r\n",
    ] {
        let (body, pooled) = read_body(Framing::Chunked, true, bad, vec![], false).await;
        assert!(
            body.is_err(),
            "{:?}: {body:?}",
            String::from_utf8_lossy(bad)
        );
        assert!(!pooled);
    }
}

#[test]
fn chunk_sizes_are_read_as_hyper_reads_them() {
    assert_eq!(chunk_size(b"0").ok(), Some(0));
    assert_eq!(chunk_size(b"fF").ok(), Some(255));
    assert_eq!(chunk_size(b"ffffffffffffffff").ok(), Some(u64::MAX));
    assert_eq!(chunk_size(b"a ;ext=\"q\"").ok(), Some(10));
    assert_eq!(chunk_size(b"a\t").ok(), Some(10));
    assert!(chunk_size(b"").is_err());
    assert!(chunk_size(b";x").is_err());
    assert!(chunk_size(b"10000000000000000").is_err());
    assert!(chunk_size(b"5 x").is_err());
    assert!(chunk_size(b"5;\r").is_err());
}

/// `data` in chunks of the given sizes (cycled), each with a random-looking extension.
fn chunked(data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = sizes[i % sizes.len()].max(1).min(data.len() - at);
        out.extend_from_slice(format!("{n:x}").as_bytes());
        if i % 3 == 1 {
            out.extend_from_slice(b";e=1");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&data[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
        i += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// However a chunked body is cut into chunks and however its bytes arrive, the data
    /// read is the data sent, and the connection is reused once the last chunk is read.
    #[test]
    fn a_chunked_body_arriving_in_any_pieces_is_read_whole(
        data in proptest::collection::vec(any::<u8>(), 0..400),
        sizes in proptest::collection::vec(1usize..64, 1..5),
        cuts in proptest::collection::vec(0usize..600, 0..5),
    ) {
        let wire = chunked(&data, &sizes);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(wire.len())).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let first = cuts.first().copied().unwrap_or(wire.len());
        let mut pieces = Vec::new();
        let mut from = first;
        for &cut in cuts.iter().skip(1).chain([wire.len()].iter()) {
            if cut > from {
                pieces.push(wire[from..cut].to_vec());
                from = cut;
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (body, pooled) = runtime.block_on(read_body(
            Framing::Chunked,
            true,
            &wire[..first],
            pieces,
            false,
        ));
        prop_assert_eq!(body, Ok(data));
        prop_assert!(pooled);
    }
}
