//! Header values read as text under `HeaderValue::to_str`'s rule (visible ASCII, spaces and
//! tabs), on the bytes themselves: the credential headers of every request and the framing
//! lines of every upstream answer are read this way, and the fast path's lines are bytes, not
//! `HeaderValue`s.

/// Whether `bytes` are text under `HeaderValue::to_str`'s rule. Checked without stopping
/// early, so the compiler takes many bytes per instruction.
pub fn is_text(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (b == b'\t' || (b' '..0x7f).contains(&b))
    })
}

/// `bytes` as text under `HeaderValue::to_str`'s rule, or `None`.
pub fn as_text(bytes: &[u8]) -> Option<&str> {
    if is_text(bytes) {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn text_follows_header_values_own_rule() {
        // Every byte value, alone and amid text, judged as `HeaderValue::to_str` judges it.
        for b in 0u8..=255 {
            for bytes in [vec![b], [b"abc".as_slice(), &[b], b"def"].concat()] {
                let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                    continue;
                };
                assert_eq!(
                    as_text(value.as_bytes()),
                    value.to_str().ok(),
                    "byte {b:#04x}"
                );
                assert_eq!(is_text(value.as_bytes()), value.to_str().is_ok());
            }
        }
    }
}
