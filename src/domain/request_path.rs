//! One canonical view of a request path, so a rule matched here means the same thing to the
//! app behind the gateway.
//!
//! **Rule.** A path that could mean something else to a decoding, normalising or
//! matrix-parameter-stripping upstream is refused (400) before any rule is matched:
//!
//! - a `.` or `..` segment at any percent-decoding depth (`/a/../b`, `/a/%2e%2e/b`,
//!   `/a/%252e%252e/b`), also with `;` parameters (`/a/..;/b`, Tomcat and Spring drop them),
//!   with `\` read as `/` (IIS, Tomcat with `ALLOW_BACKSLASH`, Windows file servers);
//! - an encoded slash `%2F` (unless `ALLOW_ENCODED_SLASHES=true`) or encoded backslash `%5C`
//!   at any depth, and a raw `\`: an upstream that decodes before routing splits segments
//!   where the gateway saw none;
//! - a control character or NUL once decoded (`%00` ends a path in C, `%0d%0a` splits lines);
//! - a path that is not UTF-8 once decoded: overlong forms such as `%c0%ae` (a `.` to a lax
//!   decoder) are invalid UTF-8;
//! - Unicode look-alikes of `.`, `/` and `\` (fullwidth `．` `／` `＼`, one-dot leader, small
//!   full stop, division and fraction slash) that NFKC-normalising servers fold to ASCII;
//! - more than [`MAX_DECODING_DEPTH`] layers of percent-encoding.
//!
//! What passes is matched by its every reading ([`CanonicalPath::views`]): each decoding layer
//! as it is, with `;` parameters stripped (Tomcat strips before decoding, Spring after), with
//! empty segments (`//`) merged as nginx's `merge_slashes` does, and both. A skip-auth rule applies only if it matches all of them, so
//! `/admin;.css` is not "a stylesheet" to a rule for `\.css$`. Plain percent-encoded text
//! (`/files/a%20b`) and `;` in ordinary segments are allowed: apps use them.

use std::borrow::Cow;

/// Percent-decoding stops (and the path is refused) after this many layers.
pub const MAX_DECODING_DEPTH: usize = 3;

/// Options that loosen the rule for apps that need it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathPolicy {
    /// `ALLOW_ENCODED_SLASHES`: `%2F` is allowed; rules still see every reading, and dot
    /// segments between decoded slashes are still refused.
    pub allow_encoded_slashes: bool,
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path must start with `/`")]
    NotAbsolute,
    #[error("the request path contains a `.` or `..` segment (possibly percent-encoded or with `;` parameters)")]
    DotSegment,
    #[error("the request path contains an encoded slash or backslash (%2F, %5C)")]
    EncodedSlash,
    #[error("the request path contains a backslash")]
    Backslash,
    #[error("the request path contains a control character once percent-decoded")]
    ControlCharacter,
    #[error("the request path is not valid UTF-8 once percent-decoded")]
    InvalidUtf8,
    #[error("the request path contains a Unicode look-alike of `.`, `/` or `\\`")]
    LookAlike,
    #[error("the request path is percent-encoded more than {MAX_DECODING_DEPTH} times")]
    TooDeeplyEncoded,
}

/// A request path (no query) that reads the same to every upstream, with its readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    raw: String,
    /// Fully decoded, when that differs from `raw`.
    decoded: Option<String>,
    /// Every reading other than `raw`, deduplicated: each decoding layer as is, with `;`
    /// parameters stripped, with `//` merged, and both (Tomcat strips parameters before
    /// decoding, others after). Empty for a plain path, whose only reading is itself.
    other_views: Vec<String>,
}

/// Characters NFKC folds into `.`, `/` or `\` (and the division/fraction slashes some
/// normalisers map to `/`).
const LOOK_ALIKES: [char; 8] = [
    '\u{FF0E}', // fullwidth full stop
    '\u{2024}', // one dot leader
    '\u{FE52}', // small full stop
    '\u{FF0F}', // fullwidth solidus
    '\u{FF3C}', // fullwidth reverse solidus
    '\u{FE68}', // small reverse solidus
    '\u{2215}', // division slash
    '\u{2044}', // fraction slash
];

impl CanonicalPath {
    /// Checks `raw` (the path as sent, without its query) against the rule.
    pub fn parse(raw: &str, policy: PathPolicy) -> Result<Self, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        if raw.contains('\\') {
            return Err(PathError::Backslash);
        }
        if is_plain(raw) {
            // Nothing to decode, strip or merge: every reading is the path itself, and of the
            // checks only the dot segments can refuse it.
            if has_dot_segment(raw) {
                return Err(PathError::DotSegment);
            }
            return Ok(Self {
                raw: raw.to_owned(),
                decoded: None,
                other_views: Vec::new(),
            });
        }
        Self::parse_layers(raw, policy)
    }

    /// Every decoding layer checked and read in every way (see the module documentation).
    fn parse_layers(raw: &str, policy: PathPolicy) -> Result<Self, PathError> {
        let mut level: Cow<'_, str> = Cow::Borrowed(raw);
        let mut views: Vec<String> = vec![raw.to_owned()];
        let mut depth = 0;
        loop {
            check_level(&level, policy)?;
            for view in readings(&level) {
                if !views.contains(&view) {
                    views.push(view);
                }
            }
            let next = decode(&level)?;
            if next == level {
                break;
            }
            depth += 1;
            if depth > MAX_DECODING_DEPTH {
                return Err(PathError::TooDeeplyEncoded);
            }
            level = Cow::Owned(next);
        }
        views.remove(0);
        Ok(Self {
            decoded: (level != raw).then(|| level.into_owned()),
            raw: raw.to_owned(),
            other_views: views,
        })
    }

    /// The path as the client sent it (and as the upstream receives it).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Fully percent-decoded.
    pub fn decoded(&self) -> &str {
        self.decoded.as_deref().unwrap_or(&self.raw)
    }

    /// Every reading of the path (the raw path first); a rule applies only if it matches all
    /// of them.
    pub fn views(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.raw.as_str()).chain(self.other_views.iter().map(String::as_str))
    }
}

/// One decoding layer's checks.
fn check_level(level: &str, policy: PathPolicy) -> Result<(), PathError> {
    if level.contains('\\') {
        // Only reachable past the first layer: it came from `%5C`.
        return Err(PathError::EncodedSlash);
    }
    if contains_ignore_case(level, "%5c")
        || (!policy.allow_encoded_slashes && contains_ignore_case(level, "%2f"))
    {
        return Err(PathError::EncodedSlash);
    }
    if level.chars().any(|c| c.is_control()) {
        return Err(PathError::ControlCharacter);
    }
    if level.chars().any(|c| LOOK_ALIKES.contains(&c)) {
        return Err(PathError::LookAlike);
    }
    if has_dot_segment(level) {
        return Err(PathError::DotSegment);
    }
    Ok(())
}

/// A `.` or `..` segment, also with `;` parameters.
fn has_dot_segment(level: &str) -> bool {
    // Most paths have no `.` at all: one pass over the bytes settles them.
    level.as_bytes().contains(&b'.')
        && level.split('/').any(|segment| {
            let name = segment.split(';').next().unwrap_or_default();
            name == "." || name == ".."
        })
}

/// Whether no reading of `raw` differs from it: printable ASCII only, with nothing to decode
/// (`%`), no `;` parameters to strip and no empty segment to merge (`//`). Most paths are;
/// they skip building the readings.
fn is_plain(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes
        .iter()
        .all(|&b| b.is_ascii_graphic() && !matches!(b, b'%' | b';' | b'\\'))
        && !bytes.windows(2).any(|pair| pair == b"//")
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// One layer of percent-decoding; `%` not followed by two hex digits stays as it is (as
/// Python's `unquote` and most servers leave it).
fn decode(level: &str) -> Result<String, PathError> {
    let bytes = level.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or_default() * 16 + hex(l).unwrap_or_default();
                out.push(value as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| PathError::InvalidUtf8)
}

/// One decoding layer as an upstream may route on it: as is, `;` parameters stripped from
/// each segment, empty segments merged, and both.
fn readings(level: &str) -> [String; 4] {
    [
        level.to_owned(),
        rebuild(level, true, false),
        rebuild(level, false, true),
        rebuild(level, true, true),
    ]
}

fn rebuild(path: &str, strip_parameters: bool, merge_slashes: bool) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut out = String::with_capacity(path.len());
    for (i, segment) in segments.iter().enumerate() {
        let segment = if strip_parameters {
            segment.split(';').next().unwrap_or_default()
        } else {
            segment
        };
        if segment.is_empty() && merge_slashes && i != last {
            continue;
        }
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The shortcut for plain paths answers exactly as reading every layer would.
        #[test]
        fn plain_paths_read_as_every_layer_would(raw in "/[a-zA-Z0-9./;%_~!$&'()*+,=:@\\-]{0,24}") {
            let policy = PathPolicy::default();
            let long_way = CanonicalPath::parse_layers(&raw, policy);
            prop_assert_eq!(CanonicalPath::parse(&raw, policy), long_way);
        }
    }

    fn parse(raw: &str) -> Result<CanonicalPath, PathError> {
        CanonicalPath::parse(raw, PathPolicy::default())
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        use PathError::*;
        for (raw, error) in [
            ("public", NotAbsolute),
            ("*", NotAbsolute),
            ("/public/../admin", DotSegment),
            ("/public/./x", DotSegment),
            ("/public/..", DotSegment),
            ("/public/%2e%2e/admin", DotSegment),
            ("/public/%2E./admin", DotSegment),
            ("/public/%252e%252e/admin", DotSegment),
            ("/public/%25252e%25252e/admin", DotSegment),
            ("/public/..;/admin", DotSegment),
            ("/public/..;jsessionid=x/admin", DotSegment),
            ("/public/%2e%2e%3b/admin", DotSegment),
            ("/public/..%2fadmin", EncodedSlash),
            ("/public/..%2Fadmin", EncodedSlash),
            ("/public/..%252fadmin", EncodedSlash),
            ("/public/..%5cadmin", EncodedSlash),
            ("/public/..\\admin", Backslash),
            ("/public/x%00.css", ControlCharacter),
            ("/public/x%0d%0aSet-Cookie:a", ControlCharacter),
            ("/public/%c0%ae%c0%ae/admin", InvalidUtf8),
            ("/public/%ff", InvalidUtf8),
            ("/public/%ef%bc%8e%ef%bc%8e/admin", LookAlike),
            ("/public/\u{FF0E}\u{FF0E}/admin", LookAlike),
            ("/public/%ef%bc%8fadmin", LookAlike),
            ("/public/%2525252e", TooDeeplyEncoded),
        ] {
            assert_eq!(parse(raw), Err(error), "{raw}");
        }
    }

    #[test]
    fn ordinary_paths_pass_with_their_readings() {
        for raw in [
            "/",
            "/public/logo.png",
            "/files/a%20b",
            "/a.b/c..d/...",
            "/x;v=1/y",
            "/100%",
            "/%zz",
            "/caf%C3%A9",
        ] {
            assert!(parse(raw).is_ok(), "{raw}");
        }
        let p = parse("/public//a%20b;v=1/").expect("ok");
        assert_eq!(p.as_str(), "/public//a%20b;v=1/");
        assert_eq!(p.decoded(), "/public//a b;v=1/");
        let views: Vec<&str> = p.views().collect();
        assert_eq!(views[0], "/public//a%20b;v=1/");
        for reading in [
            "/public/a b/",
            "/public//a b/",
            "/public/a%20b/",
            "/public/a b;v=1/",
        ] {
            assert!(views.contains(&reading), "{reading} in {views:?}");
        }
        let p = parse("/admin;.css").expect("ok");
        assert!(p.views().any(|v| v == "/admin"));
        let p = parse("/plain/path").expect("ok");
        assert_eq!(p.views().collect::<Vec<_>>(), ["/plain/path"]);
    }

    /// What the proxy once checked again before forwarding (a second, weaker rule, now
    /// gone): every such path is refused by this one, whatever the policy.
    #[test]
    fn paths_an_upstream_could_read_differently_never_pass() {
        let lenient = PathPolicy {
            allow_encoded_slashes: true,
        };
        for bad in [
            "/a/../b",
            "/a/./b",
            "/..",
            "/a/%2e%2E/b",
            "/a/.%2e/b",
            "/a/%2e",
            "/a\\b",
        ] {
            assert!(CanonicalPath::parse(bad, lenient).is_err(), "{bad}");
        }
        for good in [
            "/",
            "/a/b",
            "/a/..b/c",
            "/a/.well-known/x",
            "/a//b",
            "/%2e%2e%2e",
        ] {
            assert!(CanonicalPath::parse(good, lenient).is_ok(), "{good}");
        }
    }

    #[test]
    fn encoded_slashes_only_when_allowed_and_never_around_dots() {
        let allow = PathPolicy {
            allow_encoded_slashes: true,
        };
        let p = CanonicalPath::parse("/repos/a%2Fb", allow).expect("allowed");
        assert_eq!(p.decoded(), "/repos/a/b");
        assert_eq!(
            CanonicalPath::parse("/public/..%2fadmin", allow),
            Err(PathError::DotSegment)
        );
        assert_eq!(
            CanonicalPath::parse("/public/..%5cadmin", allow),
            Err(PathError::EncodedSlash)
        );
    }
}
