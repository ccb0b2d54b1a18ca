//! `UPGRADE_PROTOCOLS`: which protocol upgrades gateway mode tunnels.
//!
//! **Rule.** Once an upgrade is accepted, sfgate joins the two connections byte for byte and
//! sees no further request on them: whatever the client sends next reaches the app with no
//! authentication, no route rule and no header stripping. So only protocols the product
//! supports are tunnelled: `websocket` always, any other only when listed in
//! `UPGRADE_PROTOCOLS`. `h2c` never is, whatever the list says: an app that speaks HTTP/2 over
//! the tunnel would take requests no rule ever saw ("h2c smuggling"). How a request's
//! `Upgrade` header is matched against the policy is `proxy/upgrade.rs`.

/// The protocol that is never tunnelled.
const H2C: &str = "h2c";

/// `UPGRADE_PROTOCOLS`, with `websocket` implied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeProtocols {
    /// Lowercase protocol names (`name` or `name/version`), besides `websocket`.
    extra: Vec<String>,
}

impl UpgradeProtocols {
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
    pub(crate) fn allows(&self, token: &str) -> bool {
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
}

/// `h2c/1` is `h2c`.
fn name_of(token: &str) -> &str {
    token.split('/').next().unwrap_or_default().trim()
}

/// RFC 9110 token characters, and `/` between a name and its version.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b)
}
