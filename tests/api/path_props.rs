//! Property: for every path a skip-auth rule lets through, every way an upstream could read
//! that path (percent-decoded zero to four times, `\` taken for `/`, `;` parameters stripped
//! before or after decoding, dot segments resolved, `//` merged or not) still matches the same
//! rule. So no upstream can serve a skipped path as a page the rule did not mean.

use axum::http::Method;
use proptest::prelude::*;
use sfgate::access::skips_auth;
use sfgate::access::SkipAuthRule;
use sfgate::domain::{CanonicalPath, PathPolicy};

const RULES: [&str; 5] = [
    "^/public/",
    r"\.css$",
    r"^/static/[a-z]+\.js$",
    "^/open$",
    "^/files/[^/]+$",
];

/// Pieces that paths are built from: ordinary names and every encoding trick in the family.
const PIECES: [&str; 34] = [
    "public",
    "admin",
    "a.css",
    "static",
    "app.js",
    "open",
    "files",
    "x",
    ".",
    "..",
    "/",
    "/",
    "%2e",
    "%2E%2e",
    "%252e%252e",
    ";",
    "..;",
    ";x=1",
    "%3b",
    "%3B",
    "%2f",
    "%2F",
    "%252f",
    "%5c",
    "\\",
    "%20",
    "%c0%ae",
    "%ef%bc%8e",
    "%00",
    "%25",
    ".css",
    "%2ecss",
    "%0a",
    "%ef%bc%8f",
];

fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How one kind of upstream reads a path (Python's http.server, Tomcat, Spring, nginx with
/// `merge_slashes`, IIS with backslashes...).
#[derive(Debug, Clone, Copy)]
struct Reader {
    /// Tomcat strips `;` parameters from the raw path, then decodes.
    strip_before_decoding: bool,
    decode_rounds: usize,
    backslash_is_slash: bool,
    strip_parameters: bool,
    merge_slashes: bool,
}

fn read_as(raw: &str, reader: Reader) -> String {
    let mut s = raw.to_string();
    if reader.strip_before_decoding {
        s = s
            .split('/')
            .map(|segment| segment.split(';').next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("/");
    }
    for _ in 0..reader.decode_rounds {
        s = percent_decode_lossy(&s);
    }
    if reader.backslash_is_slash {
        s = s.replace('\\', "/");
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = s.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        let segment = if reader.strip_parameters {
            segment.split(';').next().unwrap_or_default()
        } else {
            segment
        };
        match segment {
            "." => {}
            ".." => {
                out.pop();
            }
            "" if reader.merge_slashes && i != last => {}
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

fn readers() -> impl Iterator<Item = Reader> {
    (0..=4).flat_map(|decode_rounds| {
        (0..16).map(move |bits| Reader {
            strip_before_decoding: bits & 8 != 0,
            decode_rounds,
            backslash_is_slash: bits & 1 != 0,
            strip_parameters: bits & 2 != 0,
            merge_slashes: bits & 4 != 0,
        })
    })
}

fn paths() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(PIECES.to_vec()), 1..8)
        .prop_map(|pieces| format!("/{}", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_reading_of_a_skipped_path_matches_the_rule(
        raw in paths(),
        rule in proptest::sample::select(RULES.to_vec()),
        allow_encoded_slashes in any::<bool>(),
    ) {
        let policy = PathPolicy { allow_encoded_slashes };
        let Ok(path) = CanonicalPath::parse(&raw, policy) else {
            return Ok(());
        };
        let rules = [SkipAuthRule { method: None, path: regex::Regex::new(rule).expect("regex") }];
        if !skips_auth(&rules, &Method::GET, &path) {
            return Ok(());
        }
        for reader in readers() {
            let read = read_as(&raw, reader);
            prop_assert!(
                rules[0].path.is_match(&read),
                "`{raw}` skipped by `{rule}`, but {reader:?} reads it as `{read}`"
            );
        }
    }
}

#[test]
fn the_property_is_not_vacuous() {
    // Plenty of generated-style paths are skipped, including encoded ones.
    let rules = [SkipAuthRule {
        method: None,
        path: regex::Regex::new("^/public/").expect("regex"),
    }];
    for raw in [
        "/public/a%20b",
        "/public/x;x=1",
        "/public//x",
        "/public/%25",
    ] {
        let path = CanonicalPath::parse(raw, PathPolicy::default()).expect(raw);
        assert!(skips_auth(&rules, &Method::GET, &path), "{raw}");
    }
}
