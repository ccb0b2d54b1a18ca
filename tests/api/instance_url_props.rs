//! Property tests for the instance URL allowlist (`InstancePolicy::check`).
//!
//! The rule under test: sfgate only ever calls a host that really ends in an allowed Salesforce
//! suffix (at a dot boundary), over https on the default port, or an origin the operator listed
//! exactly. "Really" means as the `url` crate parses it, because that is the URL reqwest then
//! connects to: percent-encoding, uppercase and IDN mappings are undone before the check, so a
//! look-alike either normalises to a genuine Salesforce host or is refused.

use proptest::prelude::*;
use sfgate::domain::{InstancePolicy, InstanceUrl, DEFAULT_SALESFORCE_SUFFIXES};
use url::{Host, Url};

const EXTRA_ORIGIN: &str = "http://127.0.0.1:8123";

fn policy() -> InstancePolicy {
    InstancePolicy::default().with_extra_origins(&[Url::parse(EXTRA_ORIGIN).expect("origin")])
}

/// The independent oracle: may a request to this host be made?
fn host_is_allowed(host: &str) -> bool {
    DEFAULT_SALESFORCE_SUFFIXES
        .iter()
        .any(|s| host.ends_with(s) && host.len() > s.len())
}

/// What every accepted URL must satisfy: the URL sfgate will call goes to an allowed host over
/// https with no port, or to the listed origin; and it is the host the caller's URL names.
fn assert_safe(raw: &str, accepted: &InstanceUrl) {
    let called = Url::parse(&accepted.userinfo_url()).expect("the called URL parses");
    if accepted.as_str() == EXTRA_ORIGIN {
        return;
    }
    assert_eq!(called.scheme(), "https", "{raw} -> {accepted}");
    assert_eq!(called.port(), None, "{raw} -> {accepted}");
    assert!(
        called.username().is_empty() && called.password().is_none(),
        "{raw} -> {accepted}"
    );
    let Some(Host::Domain(host)) = called.host() else {
        panic!("{raw} -> {accepted}: not a domain");
    };
    assert!(host_is_allowed(host), "{raw} was accepted as {accepted}");
    let named = Url::parse(raw.trim()).expect("an accepted URL parses");
    assert_eq!(
        named.host_str(),
        Some(host),
        "{raw}: the host called is the host named"
    );
    assert!(named.username().is_empty() && named.password().is_none());
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?"
}

fn suffix() -> impl Strategy<Value = &'static str> {
    prop::sample::select(DEFAULT_SALESFORCE_SUFFIXES)
}

/// Domains that are not Salesforce's, some of them containing a Salesforce name somewhere.
fn outside_domain() -> impl Strategy<Value = String> {
    let tail = prop::sample::select(vec![
        "evil.example",
        "example.com",
        "attacker.net",
        "salesforce.com.evil.example",
        "force.com.attacker.net",
        "salesforce.co",
        "salesforce.com-evil.example",
        "mysalesforce.com",
        "evilsalesforce.com",
        "salesforcexcom",
        "localhost",
    ]);
    (prop::collection::vec(label(), 0..3), tail).prop_map(|(labels, tail)| {
        let mut host = labels.join(".");
        if !host.is_empty() {
            host.push('.');
        }
        host.push_str(tail);
        host
    })
}

fn randomly_uppercased(s: String, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn percent_encoded(s: &str, mask: u64) -> String {
    s.bytes()
        .enumerate()
        .map(|(i, b)| {
            if mask >> (i % 64) & 1 == 1 {
                format!("%{b:02X}")
            } else {
                (b as char).to_string()
            }
        })
        .collect()
}

/// Replaces characters with look-alikes: some that IDNA maps back to ASCII (`ſ`→s, `。`→.,
/// fullwidth letters), some that it turns into punycode (Cyrillic, Greek).
fn confusable(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 0 {
                return c;
            }
            match c {
                'a' => 'а',  // Cyrillic a
                'e' => 'е',  // Cyrillic ie
                'o' => 'ο',  // Greek omicron
                'c' => 'с',  // Cyrillic es
                's' => 'ſ',  // long s, mapped to s
                '.' => '。', // ideographic full stop, mapped to .
                'l' => 'ｌ', // fullwidth l, mapped to l
                other => other,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any string at all: whatever is accepted is safe to call.
    #[test]
    fn whatever_is_accepted_is_safe_to_call(raw in ".{0,80}") {
        if let Ok(accepted) = policy().check(&raw) {
            assert_safe(&raw, &accepted);
        }
    }

    /// `check` recognises canonical origins without parsing; it must decide exactly as the
    /// `url`-crate path does, for near-canonical strings (the shortcut's edge) and any string.
    #[test]
    fn the_canonical_shortcut_agrees_with_the_parser(
        // Weighted towards the shortcut's own shape, so its edges are hit often.
        scheme in prop_oneof![
            8 => Just("https://"),
            1 => prop::sample::select(vec!["http://", "HTTPS://", "https:/", "https:///"]),
        ],
        host in prop_oneof![
            "[a-z0-9.-]{0,20}(\\.salesforce\\.com|\\.force\\.com|\\.site\\.com)",
            "(xn--[a-z0-9-]{0,10}|[a-z]{1,4}--[a-z0-9]{1,4}|[0-9]{1,3})(\\.[a-z0-9-]{1,8}){0,2}\\.my\\.salesforce\\.com",
            "[a-zA-Z0-9.%_-]{0,20}\\.salesforce\\.com\\.?",
            "[a-z0-9]{60,70}\\.my\\.salesforce\\.com",
            Just("127.0.0.1:8123".to_string()),
        ],
        tail in prop_oneof![
            8 => prop::sample::select(vec!["", "/"]),
            1 => prop::sample::select(vec!["//", " ", ":443", ":443/", "/x", "?", "#"]),
        ],
        lead in prop_oneof![8 => Just(""), 1 => prop::sample::select(vec![" ", "\t"])],
        any_raw in ".{0,60}",
    ) {
        let raw = format!("{lead}{scheme}{host}{tail}");
        for raw in [raw.as_str(), any_raw.as_str()] {
            prop_assert_eq!(policy().check(raw), policy().check_with_parser(raw), "{:?}", raw);
        }
    }

    /// URL-shaped strings built from pieces that matter: schemes, userinfo, hosts, ports, paths.
    #[test]
    fn url_shaped_inputs_are_accepted_only_when_safe(
        scheme in prop::sample::select(vec!["https", "http", "HTTPS", "ftp", "wss", "javascript"]),
        user in prop::option::of("[a-z.@:]{1,20}"),
        host in prop_oneof![outside_domain(), (label(), suffix()).prop_map(|(l, s)| format!("{l}{s}"))],
        port in prop::option::of(prop::sample::select(vec!["443", "8443", "80", "", "0"])),
        rest in prop::sample::select(vec!["", "/", "//", "/x", "?q", "#f", "/.", "\\x", "%2f"]),
    ) {
        let mut raw = format!("{scheme}://");
        if let Some(user) = &user {
            raw.push_str(user);
            raw.push('@');
        }
        raw.push_str(&host);
        if let Some(port) = port {
            raw.push(':');
            raw.push_str(port);
        }
        raw.push_str(rest);
        if let Ok(accepted) = policy().check(&raw) {
            assert_safe(&raw, &accepted);
        }
    }

    #[test]
    fn hosts_outside_the_allowlist_are_never_accepted(host in outside_domain(), mask in any::<u64>()) {
        for raw in [
            format!("https://{host}"),
            format!("https://{host}/"),
            format!("https://{}", randomly_uppercased(host.clone(), mask)),
            format!("https://{host}."),
        ] {
            prop_assert!(policy().check(&raw).is_err(), "{} was accepted", raw);
        }
    }

    /// `x.my.salesforce.com.evil.example`: an allowed suffix followed by more labels.
    #[test]
    fn an_allowed_suffix_followed_by_more_labels_is_refused(
        l in label(), s in suffix(), extra in prop::collection::vec(label(), 1..3),
        tail in prop::sample::select(vec!["evil.example", "com", "attacker.net", "example"]),
    ) {
        let host = format!("{l}{s}.{}.{tail}", extra.join("."));
        prop_assert!(!host_is_allowed(&host));
        let raw = format!("https://{host}");
        prop_assert!(policy().check(&raw).is_err(), "{} was accepted", raw);
    }

    /// `https://x.my.salesforce.com@evil.example` and friends: the real host is after the `@`.
    #[test]
    fn userinfo_tricks_are_refused(l in label(), s in suffix(), evil in outside_domain(), password in prop::option::of("[a-z]{1,8}")) {
        let userinfo = match password {
            Some(p) => format!("{l}{s}:{p}"),
            None => format!("{l}{s}"),
        };
        for raw in [
            format!("https://{userinfo}@{evil}"),
            format!("https://{evil}@{l}{s}"),
            format!("https://{userinfo}@{l}{s}"),
            format!("https://{l}{s}%40{evil}"),
        ] {
            prop_assert!(policy().check(&raw).is_err(), "{} was accepted", raw);
        }
    }

    /// The Salesforce name hidden in a path, query or fragment does not make the host allowed.
    #[test]
    fn a_salesforce_name_outside_the_host_does_not_count(l in label(), s in suffix(), evil in outside_domain()) {
        for raw in [
            format!("https://{evil}/{l}{s}"),
            format!("https://{evil}?{l}{s}"),
            format!("https://{evil}#{l}{s}"),
            format!("https://{evil}\\{l}{s}"),
            format!("https://{evil}%2f{l}{s}"),
            format!("https://{evil}%23.{l}{s}"),
        ] {
            if let Ok(accepted) = policy().check(&raw) {
                assert_safe(&raw, &accepted);
                prop_assert!(false, "{} was accepted as {}", raw, accepted);
            }
        }
    }

    /// Uppercase is only a spelling: genuine hosts stay accepted, with a lowercase origin.
    #[test]
    fn genuine_hosts_are_accepted_in_any_case(l in label(), s in suffix(), mask in any::<u64>()) {
        let raw = format!("https://{}", randomly_uppercased(format!("{l}{s}"), mask));
        let accepted = policy().check(&raw);
        prop_assert!(accepted.is_ok(), "{} was refused: {:?}", raw, accepted);
        let accepted = accepted.expect("checked");
        prop_assert_eq!(accepted.as_str(), format!("https://{l}{s}"));
        assert_safe(&raw, &accepted);
        // A trailing dot is refused rather than guessed at.
        let dotted = format!("https://{l}{s}.");
        prop_assert!(policy().check(&dotted).is_err(), "{} was accepted", dotted);
    }

    /// Percent-encoded hosts are decoded before the check: accepted only if the decoded host is
    /// genuinely allowed.
    #[test]
    fn percent_encoded_hosts_are_judged_by_what_they_decode_to(
        host in prop_oneof![outside_domain(), (label(), suffix()).prop_map(|(l, s)| format!("{l}{s}"))],
        mask in any::<u64>(),
    ) {
        let raw = format!("https://{}", percent_encoded(&host, mask));
        match policy().check(&raw) {
            Ok(accepted) => {
                assert_safe(&raw, &accepted);
                prop_assert!(host_is_allowed(&host), "{} decoded to a host outside the list", raw);
            }
            Err(e) => prop_assert!(!host_is_allowed(&host), "{} was refused: {}", raw, e),
        }
    }

    /// IDN look-alikes: accepted only when IDNA maps them onto a genuine Salesforce host.
    #[test]
    fn idn_look_alikes_are_accepted_only_when_they_map_to_an_allowed_host(
        l in label(), s in suffix(), mask in any::<u64>(),
    ) {
        let raw = format!("https://{}", confusable(&format!("{l}{s}"), mask));
        if let Ok(accepted) = policy().check(&raw) {
            assert_safe(&raw, &accepted);
        }
        let evil = format!("https://{}", confusable(&format!("{l}{s}.evil.example"), mask));
        prop_assert!(policy().check(&evil).is_err(), "{} was accepted", evil);
    }

    /// IP literals in every spelling are refused, whatever they point at.
    #[test]
    fn ip_literals_are_refused(a in any::<u8>(), b in any::<u8>(), c in any::<u8>(), d in any::<u8>()) {
        let n = u32::from_be_bytes([a, b, c, d]);
        for raw in [
            format!("https://{a}.{b}.{c}.{d}"),
            format!("https://{n}"),
            format!("https://0x{n:x}"),
            format!("https://[::ffff:{a}.{b}.{c}.{d}]"),
        ] {
            prop_assert!(policy().check(&raw).is_err(), "{} was accepted", raw);
        }
    }
}

#[test]
fn known_look_alikes_are_refused_and_known_mappings_are_understood() {
    let p = policy();
    for refused in [
        "https://login.salesforce.com.evil.example",
        "https://acme.my.salesforce.com@evil.example",
        "https://acme.my.salesforce.com:@evil.example",
        "https://evil.example\\@acme.my.salesforce.com",
        "https://acme.my.salesforce.cοm", // Greek omicron
        "https://acme.my.sаlesforce.com", // Cyrillic a
        "https://acme.my.salesforce.com%2eevil.example",
        "https://acme.my.salesforce.com.",
        "https://ACME.MY.SALESFORCE.COM.EVIL.EXAMPLE",
        "https://xn--salesforce-8ib.com",
        "https://127.0.0.1:8123", // the listed origin is http, not https
        "http://127.0.0.1:8124",
    ] {
        assert!(p.check(refused).is_err(), "{refused} was accepted");
    }
    // IDNA maps these onto the genuine host, which is then what is called.
    for (raw, origin) in [
        (
            "https://acme.my.ſalesforce.com",
            "https://acme.my.salesforce.com",
        ),
        (
            "https://acme。my。salesforce。com",
            "https://acme.my.salesforce.com",
        ),
        (
            "https://ACME%2Emy.salesforce.com",
            "https://acme.my.salesforce.com",
        ),
    ] {
        let accepted = p.check(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(accepted.as_str(), origin, "{raw}");
        assert_safe(raw, &accepted);
    }
}
