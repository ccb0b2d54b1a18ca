//! Which protocol upgrades gateway mode tunnels.
//!
//! **Rule.** Once an upgrade is accepted, sfgate joins the two connections byte for byte and
//! sees no further request on them: whatever the client sends next reaches the app with no
//! authentication, no route rule and no header stripping. So only protocols the product
//! supports are tunnelled: `websocket` always, any other only when listed in
//! `UPGRADE_PROTOCOLS`. `h2c` never is, whatever the list says: an app that speaks HTTP/2 over
//! the tunnel would take requests no rule ever saw ("h2c smuggling").
//!
//! An upgrade that is not tunnelled is dropped, not refused: the request goes to the app as an
//! ordinary one without `Upgrade` (RFC 9110 7.8 lets a server ignore it; `curl --http2` on
//! `http://` offers `h2c` this way and gets its HTTP/1.1 answer). The client's connection stays
//! HTTP/1.1 under sfgate's own parser, so every later request on it is authenticated as usual;
//! an app that answers `101` anyway gets a 502 and no tunnel.
//!
//! When the client offers several protocols (`Upgrade: websocket, h2c`), only the first one
//! sfgate tunnels is offered to the app, and the app's `101` must name that one.

use axum::http::{header, HeaderMap, HeaderValue};

/// The protocol that is never tunnelled.
const H2C: &str = "h2c";

/// `UPGRADE_PROTOCOLS`, with `websocket` implied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradePolicy {
    /// Lowercase protocol names (`name` or `name/version`), besides `websocket`.
    extra: Vec<String>,
}

impl UpgradePolicy {
    /// From `UPGRADE_PROTOCOLS`' entries; `h2c` and malformed names are refused.
    pub fn parse(entries: &[&str]) -> Result<Self, String> {
        let mut extra = Vec::new();
        for entry in entries {
            let name = entry.trim().to_ascii_lowercase();
            if name_of(&name) == H2C {
                return Err("h2c is never tunnelled (h2c smuggling); remove it".into());
            }
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(format!("`{entry}` is not a protocol name such as TLS/1.0"));
            }
            if name != "websocket" {
                extra.push(name);
            }
        }
        Ok(Self { extra })
    }

    /// Whether `token` (one entry of `Upgrade`, as `name` or `name/version`) is tunnelled. A
    /// listed name without a version admits every version of it.
    fn allows(&self, token: &str) -> bool {
        let token = token.to_ascii_lowercase();
        let name = name_of(&token);
        if name == H2C {
            return false;
        }
        token == "websocket"
            || self
                .extra
                .iter()
                .any(|listed| *listed == token || *listed == name)
    }

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

/// `h2c/1` is `h2c`.
fn name_of(token: &str) -> &str {
    token.split('/').next().unwrap_or_default().trim()
}

/// RFC 9110 token characters, and `/` between a name and its version.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b)
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

    fn chosen(policy: &UpgradePolicy, connection: &str, upgrade: &[&str]) -> Option<String> {
        let mut pairs = vec![("connection", connection)];
        pairs.extend(upgrade.iter().map(|u| ("upgrade", *u)));
        policy
            .choose(&headers(&pairs))
            .map(|v| v.to_str().expect("text").to_owned())
    }

    /// Every spelling of an upgrade request: what is offered to the app, if anything.
    #[test]
    fn only_websocket_and_listed_protocols_are_offered_and_never_h2c() {
        let default = UpgradePolicy::default();
        let listed = UpgradePolicy::parse(&["TLS/1.0", "chat"]).expect("valid");
        let cases: &[(&UpgradePolicy, &str, &[&str], Option<&str>)] = &[
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
        assert!(UpgradePolicy::parse(&["h2c"]).is_err());
        assert!(UpgradePolicy::parse(&["H2C/1"]).is_err());
        assert!(UpgradePolicy::parse(&["a b"]).is_err());
        assert_eq!(
            UpgradePolicy::parse(&["WebSocket"]).expect("valid"),
            UpgradePolicy::default()
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
