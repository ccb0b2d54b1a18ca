//! Which client-sent `X-Request-Id` values sfgate keeps.
//!
//! The request id is written into every log line of a request and forwarded to the upstream
//! app, so a client-chosen value could forge log fields (`abc status=200 user_id=...`), break
//! a log parser with quotes or control characters, or bloat every line. **Rule:** a client's id
//! is kept only when it is one header of at most [`MAX_LEN`] characters from
//! `[A-Za-z0-9._:-]` (UUIDs, ULIDs, the ids of Heroku's router and of most tracing systems);
//! anything else is dropped and a fresh UUID is generated in its place, which is then the
//! only value logged and forwarded.

use axum::http::header::Entry;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::BytesMut;
use std::cell::RefCell;

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

/// The length of a hyphenated UUID.
const ID_LEN: usize = 36;
/// Ids written into one buffer before the next is allocated.
const IDS_PER_BUFFER: usize = 64;

thread_local! {
    /// Where the thread writes its ids: each id is cut from it, and the id and its copies (the
    /// request's header, the answer's) share it. An id made as a header value of its own was
    /// one allocation for its bytes and a second at its first copy (when the bytes become
    /// shared), per request; this is one per 64 ids. A buffer lives while any of its ids does:
    /// 2.3 KiB at most for a request that lasts.
    static IDS: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A fresh id: a random (version 4) UUID drawn from the thread's generator, seeded once from
/// the operating system. `uuid::Uuid::new_v4` asks the kernel for every id (a `getrandom`
/// system call per request); an id must be unique, not secret, so the thread's generator is
/// enough.
pub fn fresh() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = uuid::Uuid::encode_buffer();
    let text = id.hyphenated().encode_lower(&mut text);
    let bytes = IDS.with_borrow_mut(|ids| {
        if ids.capacity() - ids.len() < ID_LEN {
            *ids = BytesMut::with_capacity(ID_LEN * IDS_PER_BUFFER);
        }
        ids.extend_from_slice(text.as_bytes());
        ids.split().freeze()
    });
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The request's id: the client's when it sent exactly one acceptable id, otherwise a fresh
/// one, which then replaces whatever the client sent (so only that one is logged and
/// forwarded).
///
/// One lookup of the name (an entry), not a lookup and then an insert: this runs on every
/// request, most of which carry no id.
pub fn ensure(headers: &mut HeaderMap) -> HeaderValue {
    match headers.entry(REQUEST_ID) {
        Entry::Vacant(vacant) => vacant.insert(fresh()).clone(),
        Entry::Occupied(mut sent) => {
            let mut values = sent.iter();
            if let (Some(id), None) = (values.next(), values.next()) {
                if is_acceptable(id.as_bytes()) {
                    return id.clone();
                }
            }
            // Replaces every value the client sent.
            let id = fresh();
            sent.insert(id.clone());
            id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Also once many more have been made: ids share buffers, and none may change another.
    #[test]
    fn generated_ids_are_distinct_version_4_uuids() {
        let made: Vec<HeaderValue> = (0..1000).map(|_| fresh()).collect();
        let ids: std::collections::HashSet<String> = made
            .iter()
            .map(|id| {
                let text = id.to_str().expect("ascii").to_string();
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

    #[test]
    fn one_acceptable_id_is_kept_anything_else_is_replaced_by_one_fresh_id() {
        let kept = HeaderValue::from_static("01HZX3J9K7");
        let mut one = HeaderMap::new();
        one.insert(REQUEST_ID, kept.clone());
        assert_eq!(ensure(&mut one), kept);
        assert_eq!(one.get_all(&REQUEST_ID).iter().count(), 1);
        let mut bad = HeaderMap::new();
        bad.insert(REQUEST_ID, HeaderValue::from_static("abc status=200"));
        let mut two = HeaderMap::new();
        two.append(REQUEST_ID, kept.clone());
        two.append(REQUEST_ID, HeaderValue::from_static("other"));
        for mut headers in [HeaderMap::new(), bad, two] {
            let id = ensure(&mut headers);
            assert_ne!(id, kept);
            assert!(is_acceptable(id.as_bytes()));
            let sent: Vec<_> = headers.get_all(&REQUEST_ID).iter().collect();
            assert_eq!(sent, [&id]);
        }
    }
}
