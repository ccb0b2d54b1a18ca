//! Which client-sent `X-Request-Id` values sfgate keeps.
//!
//! The request id is written into every log line of a request and forwarded to the upstream
//! app, so a client-chosen value could forge log fields (`abc status=200 user_id=...`), break
//! a log parser with quotes or control characters, or bloat every line. **Rule:** a client's id
//! is kept only when it is one header of at most [`MAX_LEN`] characters from
//! `[A-Za-z0-9._:-]` (UUIDs, ULIDs, the ids of Heroku's router and of most tracing systems);
//! anything else is dropped and a fresh UUID is generated in its place, which is then the
//! only value logged and forwarded.

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client id kept.
pub const MAX_LEN: usize = 64;

/// Whether a client-sent id may be kept as it is.
pub fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Fresh ids: random (version 4) UUIDs drawn from the thread's generator, seeded once from the
/// operating system. `uuid::Uuid::new_v4` asks the kernel for every id (a `getrandom` system
/// call per request); an id must be unique, not secret, so the thread's generator is enough.
#[derive(Clone, Copy, Default)]
pub struct MakeRandomId;

impl MakeRequestId for MakeRandomId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        let value = axum::http::HeaderValue::from_str(id.hyphenated().encode_lower(&mut text));
        value.ok().map(RequestId::new)
    }
}

/// Middleware, outside the layer that generates ids: removes an unacceptable client id (or
/// several), so that one is generated instead.
pub async fn sanitise(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let mut sent = headers.get_all(&REQUEST_ID).iter();
    let keep = match (sent.next(), sent.next()) {
        (None, _) => true,
        (Some(id), None) => is_acceptable(id.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove(&REQUEST_ID);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_version_4_uuids() {
        let request = axum::http::Request::new(());
        let mut make = MakeRandomId;
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| {
                let id = make.make_request_id(&request).expect("an id");
                let text = id.header_value().to_str().expect("ascii").to_string();
                let parsed = uuid::Uuid::parse_str(&text).expect("a UUID");
                assert_eq!(parsed.get_version_num(), 4, "{text}");
                assert!(is_acceptable(text.as_bytes()), "{text}");
                text
            })
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn only_short_ids_of_a_safe_charset_are_kept() {
        for ok in [
            "3f2b8c1e-0d4a-4c8e-9a3b-2f5d6e7f8a9b",
            "01HZX3J9K7",
            "req.1:a_b-c",
            &"a".repeat(MAX_LEN),
        ] {
            assert!(is_acceptable(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "abc status=200",
            "x\"y",
            "a\tb",
            "é",
            "a/b",
            &"a".repeat(MAX_LEN + 1),
        ] {
            assert!(!is_acceptable(bad.as_bytes()), "{bad}");
        }
    }
}
