//! The shell commands sfgate shows people (the demo banner, the home page, the success page),
//! written in one place so the three agree with each other and with the README, whose copies
//! are run against `sfgate demo` by `tests/api/readme.rs`.
//!
//! They use only `curl`, `grep` and `cut`, which every Unix shell has, so they work as printed.

use crate::prefix_paths::PrefixPaths;

/// The demo user every example logs in as.
pub const DEMO_USERNAME: &str = "alice@acme.example";
pub const DEMO_PASSWORD: &str = "alice-demo-1";

/// Log in through the password flow (`SF_ENABLE_PASSWORD_FLOW`, on in demo mode) and keep the
/// access token and instance URL in `TOKEN` and `INSTANCE`, and with `with_refresh` the refresh
/// token in `REFRESH`. Only the demo's emulator grants one for this flow (Salesforce never does),
/// so only the demo asks for it.
pub fn login_lines(origin: &str, with_refresh: bool) -> Vec<String> {
    login_lines_under(PrefixPaths::default_paths(), origin, with_refresh)
}

/// [`login_lines`] for an sfgate whose own paths are `paths` (`PROXY_PREFIX`).
pub fn login_lines_under(paths: &PrefixPaths, origin: &str, with_refresh: bool) -> Vec<String> {
    let password = paths.password;
    let mut lines = vec![
        format!(
            "LOGIN=$(curl -s -d username={DEMO_USERNAME} -d password={DEMO_PASSWORD} {origin}{password})"
        ),
        field_line("TOKEN", "access_token"),
    ];
    if with_refresh {
        lines.push(field_line("REFRESH", "refresh_token"));
    }
    lines.push(field_line("INSTANCE", "instance_url"));
    lines
}

fn field_line(variable: &str, field: &str) -> String {
    format!("{variable}=$(echo \"$LOGIN\" | grep -o '\"{field}\":\"[^\"]*\"' | cut -d'\"' -f4)")
}

/// Who am I, with the variables [`login_lines`] sets: `path` is `/api/me` when sfgate is the
/// whole site, `{prefix}/userinfo` in gateway mode (`Config::identity_path`).
pub fn identity_line(origin: &str, path: &str) -> String {
    format!(
        "curl -H \"Authorization: Bearer $TOKEN\" -H \"X-Instance-Url: $INSTANCE\" {origin}{path}"
    )
}

/// The same call with literal values, as the success page shows it after a browser login.
pub fn api_me_literal(origin: &str, token: &str, instance: &str) -> String {
    format!(
        "curl -H 'Authorization: Bearer {token}' -H 'X-Instance-Url: {instance}' {origin}/api/me"
    )
}

/// A request through gateway mode to the upstream app, with the variables [`login_lines`] sets.
pub fn upstream_line(origin: &str, path: &str) -> String {
    format!(
        "curl -H \"Authorization: Bearer $TOKEN\" -H \"X-Instance-Url: $INSTANCE\" {origin}{path}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_lines_set_the_three_variables_from_the_json() {
        let lines = login_lines("http://127.0.0.1:3000", true);
        assert_eq!(
            lines[0],
            "LOGIN=$(curl -s -d username=alice@acme.example -d password=alice-demo-1 http://127.0.0.1:3000/oauth2/password)"
        );
        assert_eq!(
            lines[1],
            r#"TOKEN=$(echo "$LOGIN" | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)"#
        );
        assert!(lines[2].starts_with("REFRESH=") && lines[3].starts_with("INSTANCE="));
        let lines = login_lines("http://127.0.0.1:3000", false);
        assert!(
            lines.iter().all(|l| !l.starts_with("REFRESH=")),
            "{lines:?}"
        );
        let sso = PrefixPaths::parse("/sso").expect("valid");
        let lines = login_lines_under(sso, "http://127.0.0.1:3000", false);
        assert!(
            lines[0].ends_with(" http://127.0.0.1:3000/sso/password)"),
            "{lines:?}"
        );
    }
}
