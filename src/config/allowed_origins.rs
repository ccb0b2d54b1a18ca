//! `WEBSOCKET_ALLOWED_ORIGINS` entries: origins as browsers send them in `Origin`, so the
//! same-origin rule for WebSocket handshakes (`auth/origin.rs`) compares like with like.

/// An origin as `scheme://host[:port]` (lowercase, default port omitted), as browsers send it;
/// for `WEBSOCKET_ALLOWED_ORIGINS` entries.
pub(super) fn parse_origin(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not an origin: {e}"))?;
    let bare = url.path() == "/" && !raw.trim().ends_with('/');
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !bare
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(format!(
            "`{raw}` must be an origin such as https://app.example.com (scheme, host, port only)"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_origins_are_bare_origins() {
        assert_eq!(
            parse_origin("HTTPS://App.Example.com:443"),
            Ok("https://app.example.com".into())
        );
        assert_eq!(
            parse_origin("http://localhost:3000"),
            Ok("http://localhost:3000".into())
        );
        for bad in [
            "app.example.com",
            "https://a.example/x",
            "https://a.example/",
            "ftp://a.example",
            "null",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
