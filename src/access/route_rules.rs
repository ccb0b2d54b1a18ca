//! `ROUTE_RULES`: extra requirements for some paths.
//!
//! Grammar (documented in docs/authorization.md):
//!
//! ```text
//! ROUTE_RULES  = rule *( ";" rule )          ; newlines separate rules too
//! rule         = pattern "=" requirement *( "," requirement )
//! pattern      = prefix / regex
//! prefix       = "/" ...                      ; matches at a segment boundary
//! regex        = "^" ...                      ; anchored, Rust regex syntax
//! requirement  = kind ":" value
//! kind         = "perm" / "user" / "email_domain" / "user_type"
//! ```
//!
//! A pattern is cut at the first `=`; a regex that needs `=` or `;` spells them `\x3D`, `\x3B`.
//! Rules are tried in order and the first whose pattern matches the path applies (one rule per
//! request, so a broad rule listed first shadows narrower ones after it).
//!
//! **Case.** A rule adds requirements, so matching more spellings only ever refuses more: every
//! pattern matches its path in any ASCII case (`/admin/` also covers `/ADMIN/x` and, through
//! the decoded reading, `/%41dmin/x`), because many apps (IIS, ASP.NET, Spring and Express
//! with case-insensitive routing) serve `/ADMIN/x` as `/admin/x`. Regexes are compiled
//! case-insensitively for the same reason (Unicode case folding, a superset of ASCII's).
//! `SKIP_AUTH_ROUTES`, which removes requirements, does the opposite: exact spelling only.

use super::requirements::{
    parse_email_domain, parse_permission, parse_user_type, Requirements, UserRef, UserTypes,
};

/// Where a rule applies.
#[derive(Debug, Clone)]
pub enum RoutePattern {
    /// `/admin` and `/admin/` both match `/admin`, `/admin/` and `/admin/x`, not `/administrator`,
    /// in any ASCII case (`/Admin/X`).
    Prefix(String),
    /// An anchored regex, matched against the path alone (never the query), compiled
    /// case-insensitively.
    Regex(regex::Regex),
}

impl RoutePattern {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Prefix(prefix) => {
                let bare = prefix.trim_end_matches('/');
                match strip_prefix_ignoring_ascii_case(path, bare) {
                    Some(rest) => rest.is_empty() || rest.starts_with('/') || bare.is_empty(),
                    None => false,
                }
            }
            Self::Regex(re) => re.is_match(path),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Prefix(p) => p,
            Self::Regex(re) => re.as_str(),
        }
    }
}

/// `path` without `prefix`, compared in any ASCII case. Bytes that differ other than by ASCII
/// case (all non-ASCII ones) must be equal, so the cut falls on a character boundary.
fn strip_prefix_ignoring_ascii_case<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let head = path.as_bytes().get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        path.get(prefix.len()..)
    } else {
        None
    }
}

/// One rule of `ROUTE_RULES`.
#[derive(Debug, Clone)]
pub struct RouteRule {
    /// 1-based, as the operator counts them (error messages and refusals name it).
    pub number: usize,
    pub pattern: RoutePattern,
    pub requirements: Requirements,
}

impl RouteRule {
    pub fn pattern(&self) -> &str {
        self.pattern.as_str()
    }
}

/// Parses the whole variable, reporting every problem with the rule's number, its text and
/// the character position (1-based, within the rule) where the problem starts.
pub fn parse_route_rules(raw: &str) -> Result<Vec<RouteRule>, Vec<String>> {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    let entries = raw
        .split([';', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for (i, entry) in entries.enumerate() {
        match parse_rule(i + 1, entry) {
            Ok(rule) => rules.push(rule),
            Err((position, message)) => problems.push(format!(
                "rule {} (`{entry}`), at character {position}: {message}",
                i + 1
            )),
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// A problem: the 1-based character position in the rule, and what is wrong.
type Problem = (usize, String);

fn parse_rule(number: usize, entry: &str) -> Result<RouteRule, Problem> {
    let Some((pattern_text, requirements_text)) = entry.split_once('=') else {
        return Err((
            entry.chars().count() + 1,
            "expected `=` and requirements after the path, e.g. /admin/=perm:Sfgate_Admin".into(),
        ));
    };
    let pattern = parse_pattern(pattern_text.trim())?;
    let offset = pattern_text.chars().count() + 2;
    let requirements = parse_requirements(requirements_text, offset)?;
    Ok(RouteRule {
        number,
        pattern,
        requirements,
    })
}

fn parse_pattern(text: &str) -> Result<RoutePattern, Problem> {
    if text.starts_with('^') {
        return regex::RegexBuilder::new(text)
            .case_insensitive(true)
            .build()
            .map(RoutePattern::Regex)
            .map_err(|e| (1, format!("`{text}` is not a valid regex: {e}")));
    }
    if !text.starts_with('/') {
        return Err((
            1,
            format!("`{text}` must be a path prefix starting with / or an anchored regex starting with ^"),
        ));
    }
    if let Some(bad) = text.find(|c: char| c == '?' || c == '#' || c.is_whitespace() || c == '%') {
        return Err((
            bad + 1,
            "a path prefix is a plain decoded path: no query, fragment, space or %-escape".into(),
        ));
    }
    Ok(RoutePattern::Prefix(text.to_string()))
}

fn parse_requirements(text: &str, offset: usize) -> Result<Requirements, Problem> {
    let mut requirements = Requirements::default();
    let mut types = Vec::new();
    let mut position = offset;
    for item in text.split(',') {
        let here = position + (item.chars().count() - item.trim_start().chars().count());
        position += item.chars().count() + 1;
        let item = item.trim();
        if item.is_empty() {
            return Err((here, "empty requirement".into()));
        }
        let Some((kind, value)) = item.split_once(':') else {
            return Err((
                here,
                format!("`{item}` must be kind:value (perm, user, email_domain or user_type)"),
            ));
        };
        let value_at = here + kind.chars().count() + 1;
        let at_value = |m: String| (value_at, m);
        match kind.trim() {
            "perm" => requirements
                .permissions
                .push(parse_permission(value).map_err(at_value)?),
            "user" => requirements
                .users
                .push(UserRef::parse(value).map_err(at_value)?),
            "email_domain" => requirements
                .email_domains
                .push(parse_email_domain(value).map_err(at_value)?),
            "user_type" => types.push(parse_user_type(value).map_err(at_value)?),
            other => {
                return Err((
                    here,
                    format!(
                        "unknown requirement `{other}` (expected perm, user, email_domain or user_type)"
                    ),
                ))
            }
        }
    }
    requirements.user_types = UserTypes::Only(types);
    Ok(requirements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_prefixes_regexes_and_every_kind() {
        let rules = parse_route_rules(
            "/admin/=perm:Sfgate_Admin; ^/finance(/|$)=user_type:standard,email_domain:ACME.example\n/bob=user:bob@acme.example,user:0055j00000BoB01",
        )
        .expect("valid");
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].requirements.permissions, ["Sfgate_Admin"]);
        assert_eq!(
            rules[1].requirements.user_types,
            UserTypes::Only(vec!["STANDARD".into()])
        );
        assert_eq!(rules[1].requirements.email_domains, ["acme.example"]);
        assert_eq!(rules[2].requirements.users.len(), 2);
        assert_eq!(rules[2].number, 3);
    }

    #[test]
    fn prefixes_match_at_segment_boundaries_only() {
        for prefix in ["/admin", "/admin/"] {
            let p = RoutePattern::Prefix(prefix.into());
            for yes in ["/admin", "/admin/", "/admin/users"] {
                assert!(p.matches(yes), "{prefix} {yes}");
            }
            for no in ["/administrator", "/adminx/y", "/", "/x/admin"] {
                assert!(!p.matches(no), "{prefix} {no}");
            }
        }
        assert!(RoutePattern::Prefix("/".into()).matches("/anything"));
    }

    #[test]
    fn patterns_match_every_ascii_case_spelling() {
        let prefix = RoutePattern::Prefix("/admin/".into());
        for yes in ["/ADMIN/x", "/aDmIn/", "/Admin", "/admin/Users"] {
            assert!(prefix.matches(yes), "{yes}");
        }
        assert!(!prefix.matches("/ADMINISTRATOR"));
        let rules = parse_route_rules("^/finance(/|$)=perm:A").expect("valid");
        assert!(rules[0].pattern.matches("/FINANCE/q"));
        assert!(rules[0].pattern.matches("/fInAnCe"));
        // Non-ASCII bytes must be equal, and the cut stays on a character boundary.
        let accented = RoutePattern::Prefix("/é/".into());
        assert!(accented.matches("/é/x"));
        assert!(!accented.matches("/e/x"));
        assert!(!RoutePattern::Prefix("/ab".into()).matches("/é"));
    }

    #[test]
    fn errors_name_the_rule_and_the_position() {
        let err = parse_route_rules("/ok=perm:A;/admin/=prem:Sfgate_Admin").expect_err("bad");
        assert_eq!(err.len(), 1);
        assert!(
            err[0].starts_with("rule 2 (`/admin/=prem:Sfgate_Admin`), at character 9:"),
            "{}",
            err[0]
        );
        let err = parse_route_rules("/a=perm:A,user_type:x-y").expect_err("bad");
        assert!(
            err[0].contains("rule 1") && err[0].contains("at character 21"),
            "{}",
            err[0]
        );
        let err = parse_route_rules("admin=perm:A;/b;^([=perm:A").expect_err("bad");
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(err[1].contains("rule 2") && err[1].contains("expected `=`"));
        assert!(err[2].contains("not a valid regex"));
        let err = parse_route_rules("/a?x=perm:A").expect_err("bad");
        assert!(err[0].contains("at character 3"), "{}", err[0]);
    }
}
