//! `FORWARD_AUTH_STYLE`: the setting that names the front proxy in forward-auth mode. How each
//! style's original request is read is `auth/original_request.rs`; this is only the value.

/// `FORWARD_AUTH_STYLE`: which front proxy asks, so which source names the original request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardAuthStyle {
    /// Every source is read; disagreeing sources are refused.
    #[default]
    Auto,
    Nginx,
    Traefik,
    /// Caddy's `forward_auth` sends Traefik's headers.
    Caddy,
    Envoy,
}

impl std::str::FromStr for ForwardAuthStyle {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "nginx" => Ok(Self::Nginx),
            "traefik" => Ok(Self::Traefik),
            "caddy" => Ok(Self::Caddy),
            "envoy" => Ok(Self::Envoy),
            _ => Err(()),
        }
    }
}
