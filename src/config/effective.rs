//! `sfgate config`: the effective configuration, one variable a line, from the same table as
//! help ([`super::VARIABLES`]). Secret values are never printed, only whether they are set.

use super::variables::{Group, VARIABLES};
use std::fmt::Write as _;

/// What secrets show instead of their value.
pub const REDACTED: &str = "<redacted>";

/// Every variable as `NAME=value` (as set, or its default marked `# default`), grouped as in
/// help. `lookup` reads the environment; a legacy name counts when the current one is unset,
/// as the configuration reads it.
pub fn render(lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let mut out = String::new();
    for group in Group::ALL {
        let _ = writeln!(out, "# {}", group.title());
        for v in VARIABLES.iter().filter(|v| v.group == group) {
            let value = set(v.name).map(|value| (value, None)).or_else(|| {
                v.legacy
                    .and_then(|old| set(old).map(|value| (value, Some(old))))
            });
            match value {
                Some((value, from)) => {
                    let shown = if v.secret { REDACTED } else { value.trim() };
                    let note = from
                        .map(|old| format!("  # from {old}"))
                        .unwrap_or_default();
                    let _ = writeln!(out, "{}={}{note}", v.name, one_line(shown));
                }
                None => {
                    let _ = writeln!(out, "{}=  # default: {}", v.name, v.default);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// A value on one line: PEM keys and pasted lists keep the output one variable a line.
fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_secret_value_is_printed_and_the_others_are() {
        let env = |name: &str| -> Option<String> {
            match name {
                "SF_CLIENT_ID" => Some("client-id-visible".into()),
                "CLIENT_SECRET_ID" => Some("legacy-secret-XYZ".into()),
                "SESSION_SECRET" => Some("session-secret-ABC-0123456789abcdef".into()),
                "METRICS_TOKEN" => Some("metrics-token-DEF".into()),
                "REDIS_URL" => Some("redis://:redis-pass-GHI@127.0.0.1:6379".into()),
                "ASSERTION_KEY" => {
                    Some("-----BEGIN PRIVATE KEY-----\nkey-JKL\n-----END PRIVATE KEY-----".into())
                }
                "UPSTREAM_URL" => Some("http://127.0.0.1:8080".into()),
                _ => None,
            }
        };
        let out = render(&env);
        for secret in [
            "legacy-secret",
            "session-secret",
            "metrics-token",
            "redis-pass",
            "key-JKL",
        ] {
            assert!(!out.contains(secret), "{secret} printed:\n{out}");
        }
        assert!(out.contains("SF_CLIENT_ID=client-id-visible"), "{out}");
        assert!(
            out.contains("SF_CLIENT_SECRET=<redacted>  # from CLIENT_SECRET_ID"),
            "{out}"
        );
        assert!(out.contains("SESSION_SECRET=<redacted>"), "{out}");
        assert!(out.contains("UPSTREAM_URL=http://127.0.0.1:8080"), "{out}");
        assert!(out.contains("PORT=  # default: 3000"), "{out}");
        for v in VARIABLES {
            assert!(
                out.contains(&format!("\n{}=", v.name)),
                "{} missing",
                v.name
            );
        }
    }
}
