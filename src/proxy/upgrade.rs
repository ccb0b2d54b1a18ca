//! Offering an upgrade to the app: the request's `Upgrade` matched against the tunnelled
//! protocols ([`UpgradeProtocols`], `UPGRADE_PROTOCOLS`; its rule, and why `h2c` is never
//! tunnelled, is in `config/upgrade_protocols.rs`).
//!
//! An upgrade that is not tunnelled is dropped, not refused: the request goes to the app as an
//! ordinary one without `Upgrade` (RFC 9110 7.8 lets a server ignore it; `curl --http2` on
//! `http://` offers `h2c` this way and gets its HTTP/1.1 answer). The client's connection stays
//! HTTP/1.1 under sfgate's own parser, so every later request on it is authenticated as usual;
//! an app that answers `101` anyway gets a 502 and no tunnel.
//!
//! When the client offers several protocols (`Upgrade: websocket, h2c`), only the first one
//! sfgate tunnels is offered to the app, and the app's `101` must name that one.

use crate::config::UpgradeProtocols;
use axum::http::{header, HeaderMap, HeaderValue};

impl UpgradeProtocols {
    /// The protocol to offer the app: the first one the request offers that is tunnelled,
    /// when the request asks for an upgrade at all (`Connection: upgrade` and `Upgrade`).
    pub fn choose(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        if !asks_for_upgrade(headers) {
            return None;
        }
        headers
            .get_all(header::UPGRADE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find(|token| !token.is_empty() && self.allows(token))
            .and_then(|token| HeaderValue::from_str(token).ok())
    }
}

/// Whether `Upgrade` in the app's `101` names the protocol sfgate offered.
pub(super) fn accepted_is_offered(accepted: Option<&HeaderValue>, offered: &HeaderValue) -> bool {
    accepted.is_some_and(|a| {
        a.as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(offered.as_bytes())
    })
}

/// `Connection` lists `upgrade` (any case, in any of its values).
fn asks_for_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn chosen(policy: &UpgradeProtocols, connection: &str, upgrade: &[&str]) -> Option<String> {
        let mut pairs = vec![("connection", connection)];
        pairs.extend(upgrade.iter().map(|u| ("upgrade", *u)));
        policy
            .choose(&headers(&pairs))
            .map(|v| v.to_str().expect("text").to_owned())
    }

    /// Every spelling of an upgrade request: what is offered to the app, if anything.
    #[test]
    fn only_websocket_and_listed_protocols_are_offered_and_never_h2c() {
        let default = UpgradeProtocols::default();
        let listed = UpgradeProtocols::parse(&["TLS/1.0", "chat"]).expect("valid");
        let cases: &[(&UpgradeProtocols, &str, &[&str], Option<&str>)] = &[
            (&default, "Upgrade", &["websocket"], Some("websocket")),
            (&default, "upgrade", &["WebSocket"], Some("WebSocket")),
            (
                &default,
                "keep-alive, Upgrade",
                &["websocket"],
                Some("websocket"),
            ),
            (&default, "UPGRADE", &["WEBSOCKET"], Some("WEBSOCKET")),
            (&default, "Upgrade", &["websocket, h2c"], Some("websocket")),
            (&default, "Upgrade", &["h2c, websocket"], Some("websocket")),
            (
                &default,
                "Upgrade",
                &["h2c", "websocket"],
                Some("websocket"),
            ),
            (&default, "Upgrade, HTTP2-Settings", &["h2c"], None),
            (&default, "Upgrade", &["H2C"], None),
            (&default, "Upgrade", &[" h2c "], None),
            (&default, "Upgrade", &["h2c/1"], None),
            (&default, "Upgrade", &["TLS/1.0"], None),
            (&default, "Upgrade", &["websocketx"], None),
            (&default, "Upgrade", &["websocket/13"], None),
            (&default, "Upgrade", &[""], None),
            // No `Connection: upgrade`: not an upgrade request.
            (&default, "keep-alive", &["websocket"], None),
            (&default, "upgrades", &["websocket"], None),
            (&default, "", &["websocket"], None),
            (&listed, "Upgrade", &["TLS/1.0"], Some("TLS/1.0")),
            (&listed, "Upgrade", &["tls/1.0"], Some("tls/1.0")),
            (&listed, "Upgrade", &["TLS/1.2"], None),
            (&listed, "Upgrade", &["Chat/2"], Some("Chat/2")),
            (&listed, "Upgrade", &["h2c, chat"], Some("chat")),
            (&listed, "Upgrade", &["h2c"], None),
        ];
        for (policy, connection, upgrade, expected) in cases {
            assert_eq!(
                chosen(policy, connection, upgrade).as_deref(),
                *expected,
                "Connection: {connection}, Upgrade: {upgrade:?}"
            );
        }
    }

    #[test]
    fn h2c_and_malformed_names_cannot_be_listed() {
        assert!(UpgradeProtocols::parse(&["h2c"]).is_err());
        assert!(UpgradeProtocols::parse(&["H2C/1"]).is_err());
        assert!(UpgradeProtocols::parse(&["a b"]).is_err());
        assert_eq!(
            UpgradeProtocols::parse(&["WebSocket"]).expect("valid"),
            UpgradeProtocols::default()
        );
    }

    #[test]
    fn the_apps_101_must_name_the_offered_protocol() {
        let offered = HeaderValue::from_static("websocket");
        assert!(accepted_is_offered(
            Some(&HeaderValue::from_static("WebSocket")),
            &offered
        ));
        assert!(!accepted_is_offered(
            Some(&HeaderValue::from_static("h2c")),
            &offered
        ));
        assert!(!accepted_is_offered(None, &offered));
    }
}
