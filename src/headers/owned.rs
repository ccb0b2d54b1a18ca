//! The one table of header names sfgate owns or treats specially, each with its [`Class`].
//! Every other part of sfgate names these headers through the constants defined here, and
//! decides what to do with a header by its class, never by repeating its spelling.

use axum::http::{header, HeaderName};

/// What a header is to sfgate, which decides what happens to a client's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Says who the caller is: set by sfgate for the upstream; a client's copy is never
    /// passed on (the upstream trusts these because only sfgate sets them).
    Identity,
    /// The signed `X-Sfgate-Assertion`: like an identity header, only sfgate sets it.
    Assertion,
    /// Carries a Salesforce credential to sfgate; passed on only as sfgate sets it
    /// (`PASS_ACCESS_TOKEN`).
    Credential,
    /// `Cookie`: passed on without sfgate's own cookies.
    Cookie,
    /// `X-Forwarded-For`: a forwarding header whose chain sfgate extends with the client.
    ForwardedFor,
    /// Who the client is and how it came (`Forwarded`, `X-Forwarded-*`, path overrides):
    /// passed on only from a trusted proxy (`TRUST_PROXY`).
    Forwarding,
    /// The request id sfgate logs and forwards (already sanitised, see `request_id`).
    RequestId,
    /// Hop-by-hop (RFC 9110 7.6.1): describes one connection and never travels further.
    HopByHop,
    /// How the request reached sfgate (`Host`, `Expect`, `HTTP2-Settings`): sfgate's own
    /// request to the upstream says these itself, and an h2c upgrade is never forwarded.
    Framing,
    /// Asks an app to act as if the request had another method (Rails, Laravel, Symfony,
    /// Express's `method-override`, ...): removed from requests a skip-auth rule let through
    /// for their own method.
    MethodOverride,
}

impl Class {
    /// Whether the header-name rule ([`super::rule`]) owns names of this class, so that every
    /// spelling of them with `_` for `-` is removed. Hop-by-hop and framing names are HTTP's,
    /// not sfgate's, and `Cookie` has no `-` to spell otherwise: their `_` spellings are
    /// ordinary names that follow `PROXY_UNDERSCORE_HEADERS`.
    pub fn is_owned(self) -> bool {
        matches!(
            self,
            Self::Identity
                | Self::Assertion
                | Self::Credential
                | Self::ForwardedFor
                | Self::Forwarding
                | Self::RequestId
        )
    }
}

/// Defines the table once: a constant per named header, the list of exact names with their
/// class, and a lookup that the compiler turns into a length switch (it runs for every header
/// of every proxied request and response).
macro_rules! table {
    ($( $name:literal => $class:ident $(as $konst:ident)?; )*) => {
        $( $( pub const $konst: HeaderName = HeaderName::from_static($name); )? )*

        /// Every exact name (lowercase, `-` spelling) with its class.
        pub const NAMES: &[(&str, Class)] = &[ $( ($name, Class::$class), )* ];

        /// The class of an exact name, as `HeaderName` spells it (lowercase).
        fn exact(name: &str) -> Option<Class> {
            match name {
                $( $name => Some(Class::$class), )*
                _ => None,
            }
        }
    };
}

table! {
    "x-salesforce-user-id" => Identity as X_SALESFORCE_USER_ID;
    "x-salesforce-org-id" => Identity as X_SALESFORCE_ORG_ID;
    "x-salesforce-username" => Identity as X_SALESFORCE_USERNAME;
    "x-salesforce-instance-url" => Identity as X_SALESFORCE_INSTANCE_URL;
    // oauth2-proxy's names, so upstreams written for it work unchanged.
    "x-forwarded-user" => Identity as X_FORWARDED_USER;
    "x-forwarded-email" => Identity as X_FORWARDED_EMAIL;
    "x-forwarded-preferred-username" => Identity as X_FORWARDED_PREFERRED_USERNAME;
    "x-sfgate-assertion" => Assertion as X_SFGATE_ASSERTION;
    "authorization" => Credential;
    // The Node.js app's credential headers, read as a drop-in for its clients.
    "bearer" => Credential as LEGACY_BEARER;
    "instanceurl" => Credential as LEGACY_INSTANCE_URL;
    // The header a caller names its instance in (with `Authorization: Bearer`); sfgate reads
    // it, and passes it on with the token under `PASS_ACCESS_TOKEN`.
    "x-instance-url" => Credential as X_INSTANCE_URL;
    // Hop-by-hop too; its look-alike is a credential.
    "proxy-authorization" => Credential;
    "cookie" => Cookie;
    "x-forwarded-for" => ForwardedFor as X_FORWARDED_FOR;
    "x-forwarded-proto" => Forwarding as X_FORWARDED_PROTO;
    "x-forwarded-host" => Forwarding as X_FORWARDED_HOST;
    // Traefik's and Caddy's names for the original request in forward auth.
    "x-forwarded-uri" => Forwarding as X_FORWARDED_URI;
    "x-forwarded-method" => Forwarding as X_FORWARDED_METHOD;
    "forwarded" => Forwarding;
    "x-real-ip" => Forwarding;
    // Path overrides some frameworks route on (Symfony's `X-Original-URL`, CVE-2018-14773):
    // the path sfgate checked must be the path the app serves. `X-Original-URI` is also
    // nginx's name for the original request in forward auth.
    "x-original-url" => Forwarding as X_ORIGINAL_URL;
    "x-original-uri" => Forwarding as X_ORIGINAL_URI;
    // nginx's name for the original method in forward auth (`auth_request`).
    "x-original-method" => Forwarding as X_ORIGINAL_METHOD;
    "x-rewrite-url" => Forwarding;
    "x-request-id" => RequestId as X_REQUEST_ID;
    "connection" => HopByHop;
    "keep-alive" => HopByHop as KEEP_ALIVE;
    "te" => HopByHop;
    "trailer" => HopByHop;
    "transfer-encoding" => HopByHop;
    "upgrade" => HopByHop;
    "host" => Framing;
    "expect" => Framing;
    // Only meaningful to an h2c upgrade, which is never forwarded (`proxy::upgrade`).
    "http2-settings" => Framing;
    "x-http-method-override" => MethodOverride;
    "x-http-method" => MethodOverride;
    "x-method-override" => MethodOverride;
}

/// Name prefixes (lowercase, `-` spelling) with their class, checked after [`NAMES`].
pub const PREFIXES: [(&str, Class); 4] = [
    ("x-salesforce-", Class::Identity),
    // `X-Sfgate-*` is sfgate's own namespace.
    ("x-sfgate-", Class::Identity),
    ("x-forwarded-", Class::Forwarding),
    ("proxy-", Class::HopByHop),
];

/// The class of a header name as `HeaderName` spells it (lowercase). Names with `_` are
/// not read as their `-` spelling here (that is [`class_of_spelling`]'s job).
pub fn class_of(name: &HeaderName) -> Option<Class> {
    class_of_lowercase(name.as_str())
}

/// [`class_of`] for a name already spelled as `HeaderName` spells it (lowercase), without
/// making a `HeaderName` of it.
fn class_of_lowercase(name: &str) -> Option<Class> {
    exact(name).or_else(|| {
        PREFIXES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map(|(_, class)| *class)
    })
}

/// Whether a header never travels past one connection: the hop-by-hop class, and
/// `Proxy-Authorization`, which is hop-by-hop too but classed as the credential it carries
/// (so that its look-alikes are owned).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    is_hop_by_hop_lowercase(name.as_str())
}

/// [`is_hop_by_hop`] for a lowercase name read from a head, not made into a `HeaderName`
/// (`crate::headers::passed`).
pub fn is_hop_by_hop_lowercase(name: &str) -> bool {
    match class_of_lowercase(name) {
        Some(Class::HopByHop) => true,
        Some(Class::Credential) => name == header::PROXY_AUTHORIZATION.as_str(),
        _ => false,
    }
}

/// The class of a name in any spelling, compared case-insensitively with `_` read as `-`
/// (how WSGI, CGI, PHP and Rack hand headers to an app).
pub fn class_of_spelling(name: &str) -> Option<Class> {
    let name = name.as_bytes();
    NAMES
        .iter()
        .find(|(owned, _)| canonical_eq(name, owned.as_bytes()))
        .or_else(|| {
            PREFIXES.iter().find(|(prefix, _)| {
                name.get(..prefix.len())
                    .is_some_and(|start| canonical_eq(start, prefix.as_bytes()))
            })
        })
        .map(|(_, class)| *class)
}

/// Whether `name` read case-insensitively with `_` as `-` equals `canonical` (lowercase, `-`
/// spelling). Compared byte by byte, without building the canonical spelling: this runs for
/// every header of every proxied request. Bytes outside ASCII never equal an owned name's.
fn canonical_eq(name: &[u8], canonical: &[u8]) -> bool {
    name.len() == canonical.len()
        && name.iter().zip(canonical).all(|(&b, &c)| {
            let b = if b == b'_' {
                b'-'
            } else {
                b.to_ascii_lowercase()
            };
            b == c
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lookups_agree_on_every_name_of_the_table() {
        for (name, class) in NAMES {
            let header = HeaderName::from_static(name);
            assert_eq!(class_of(&header), Some(*class), "{name}");
            assert_eq!(class_of_spelling(name), Some(*class), "{name}");
            assert_eq!(
                class_of_spelling(&name.to_ascii_uppercase().replace('-', "_")),
                Some(*class),
                "{name}"
            );
        }
        for (prefix, class) in PREFIXES {
            let name = format!("{prefix}anything");
            let header = HeaderName::from_bytes(name.as_bytes()).expect("name");
            assert_eq!(class_of(&header), Some(class), "{name}");
            assert_eq!(class_of_spelling(&name), Some(class), "{name}");
        }
        assert_eq!(class_of(&HeaderName::from_static("accept")), None);
        assert_eq!(class_of_spelling("x-forwardedfor"), None);
    }
}
