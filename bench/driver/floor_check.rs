//! Before the gateway floors are measured: the identity floors must send the upstream what
//! sfgate's gateway mode sends for the same request, or their figures would not say what
//! sfgate's work costs. One request with the benchmark's credentials and a few headers the
//! rewrite must act on (a forged identity header, an `_` spelling, sfgate's session cookie
//! beside another, a header the `Connection` header names) goes through a gateway and each
//! identity floor to an upstream that answers with the head it received; what the upstream
//! received and what the client got back must be the same header lines (in any order), up to
//! the values that name the proxy itself or change per request.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends the check's request through sfgate and the identity floors; a difference in what
/// the upstream received or what the client got back is recorded as a problem of the run
/// (the benchmark then exits nonzero).
pub(crate) async fn floors_forward_as_sfgate(b: &mut Bench) -> Result<(), Failure> {
    let echo = start_head_echo().await?;
    let upstream_url = format!("http://{echo}");
    let (mut gateway, gw, _) = start_gateway(
        &b.args.binary,
        &b.emu,
        &[
            ("IDENTITY_CACHE_TTL", "600"),
            ("UPSTREAM_URL", &upstream_url),
        ],
    )
    .await?;
    let auth = floor::bench_authenticator(&b.emu, echo)?;
    let proxies = [
        ("sfgate gateway mode", gw),
        (
            "identity floor",
            floor::start_tpc_identity_proxy(echo, 1, auth.clone())?,
        ),
        (
            "raw identity floor",
            raw_floor::start_raw_proxy(echo, 1, raw_floor::RawWork::Identity(auth.clone()))?,
        ),
        (
            "raw identity floor with bookkeeping",
            raw_floor::start_raw_proxy(echo, 1, raw_floor::RawWork::Kept(auth))?,
        ),
    ];
    let mut heads = Vec::new();
    for (name, url) in &proxies {
        let head = received_head(url, &b.auth).await;
        heads.push((*name, head));
    }
    let _ = gateway.kill().await;
    let (_, expected) = &heads[0];
    let expected = match expected {
        Ok(head) => head.clone(),
        Err(e) => return Err(fail(format!("floor check: through sfgate: {e}"))),
    };
    for (name, head) in &heads[1..] {
        match head {
            Ok(head) if *head == expected => {}
            Ok(head) => b.problems.push(format!(
                "{name} differs from sfgate in what the upstream or the client gets: sfgate {expected:?}, {name} {head:?}"
            )),
            Err(e) => b.problems.push(format!("floor check: through the {name}: {e}")),
        }
    }
    Ok(())
}

/// What the check's request through the proxy at `url` gave: the answer's status and header
/// lines, then the request line and header lines the echo upstream received (see
/// [`normalised`]).
async fn received_head(url: &str, auth: &[String; 2]) -> Result<Vec<String>, Failure> {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET /hello?check=1 HTTP/1.1\r\nHost: {address}\r\n{}\r\n{}\r\n\
         X-Salesforce-User-Id: forged\r\nX_Forwarded_For: 10.0.0.1\r\n\
         Cookie: theme=dark; sfgate_session=forged\r\nConnection: keep-alive, X-Drop\r\n\
         X-Drop: 1\r\nX-Kept: yes\r\nConnection: close\r\n\r\n",
        auth[0], auth[1]
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .map_err(|_| fail("no answer within 10 s"))??;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("an answer without a head"))?;
    let mut head = head.split("\r\n");
    let status = head.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(fail(format!("answered {status}")));
    }
    // What the client got, then what the upstream got.
    let mut seen = vec![format!("answer {status}")];
    seen.extend(normalised(head).into_iter().map(|l| format!("answer {l}")));
    let mut lines = body.split("\r\n").filter(|l| !l.is_empty());
    seen.push(format!("upstream {}", lines.next().unwrap_or_default()));
    seen.extend(
        normalised(lines)
            .into_iter()
            .map(|l| format!("upstream {l}")),
    );
    Ok(seen)
}

/// Header lines lowercased and sorted, with the values that name the proxy
/// (`X-Forwarded-Host`: its own address) or change per request (`X-Request-Id`, `Date`), and
/// credentials, replaced by what they are.
fn normalised<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut lines: Vec<String> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let name = name.trim().to_ascii_lowercase();
            let value = match name.as_str() {
                "x-forwarded-host" => "<the proxy's address>",
                "x-request-id" => "<an id>",
                "date" => "<a date>",
                // A token passed on is a difference to report, not to print.
                "authorization" | "bearer" => "<a credential>",
                _ => value.trim(),
            };
            format!("{name}: {value}")
        })
        .collect();
    lines.sort();
    lines
}

/// An upstream that answers every request with its head as the body (keep-alive, one
/// request at a time per connection); returns its address.
async fn start_head_echo() -> Result<std::net::SocketAddr, Failure> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let end = loop {
                        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end;
                        }
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head: Vec<u8> = buffer.drain(..end + 4).take(end).collect();
                    // With `Date` and a hop-by-hop header, as an app's server answers.
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 00:00:00 GMT\r\n\
                         Connection: keep-alive\r\ncontent-type: text/plain\r\n\
                         content-length: {}\r\n\r\n",
                        head.len()
                    )
                    .into_bytes();
                    answer.extend_from_slice(&head);
                    if stream.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(address)
}
