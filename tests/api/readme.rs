//! The README's examples, run as printed against the real `sfgate demo`.
//!
//! Examples are taken from README.md itself, so they cannot drift from what is tested: each
//! shell block under a `<!-- readme-test: NAME -->` marker runs in bash after the "token" block
//! (which sets `TOKEN`, `REFRESH` and `INSTANCE`), with only `http://127.0.0.1:3000` replaced by
//! the demo's real address (it listens on a free port). `curl` is reached through a wrapper
//! first on `PATH` that runs the real curl with `-D` (response headers to a side file), so
//! every answer's status is checked without touching what the example prints. The example
//! output the README shows in comments must contain the key fields checked here too.
//!
//! The demo banner's commands are run the same way, as printed (they carry the real address).
//!
//! Every shell block in README.md and docs/*.md carries a marker on the line above it: a
//! `readme-test` (README only), a `doc-test` (docs/, run here with the built `sfgate` first on
//! `PATH`), or `<!-- not-tested: why -->`. A new block without one fails
//! [`every_shell_example_is_run_or_says_why_not`], so no example is left untried by accident.

use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sfgate");
const README_ADDRESS: &str = "http://127.0.0.1:3000";
const TOKEN_BLOCK: &str = "token";

/// What one marked example must answer: the status of each curl call, in order, and text its
/// output must contain (also shown in the README's own comments, unless `shown` is false).
struct Expected {
    statuses: &'static [u16],
    contains: &'static [&'static str],
    shown: bool,
}

fn expectations() -> BTreeMap<&'static str, Expected> {
    BTreeMap::from([
        (
            TOKEN_BLOCK,
            Expected {
                statuses: &[200],
                // The instance URL it prints is the emulator's, checked separately.
                contains: &["http://127.0.0.1:"],
                shown: true,
            },
        ),
        (
            "api-me",
            Expected {
                statuses: &[200],
                contains: &[
                    r#""username":"alice@acme.example""#,
                    r#""organization_id":"00D5j00000AcMe1EAF""#,
                    r#""display_name":"Alice Admin""#,
                ],
                shown: true,
            },
        ),
        (
            "legacy-headers",
            Expected {
                statuses: &[200],
                contains: &[r#""username":"alice@acme.example""#],
                shown: true,
            },
        ),
        (
            "no-credentials",
            Expected {
                statuses: &[401, 401],
                contains: &[r#"{"error":"unauthorized""#, r#"{"error":"invalid_token""#],
                shown: true,
            },
        ),
        (
            "gateway",
            Expected {
                statuses: &[200],
                contains: &[
                    r#"{"app":"sfgate sample app","method":"GET","path":"/""#,
                    r#""x-salesforce-username":"alice@acme.example""#,
                    r#""credentials_received":[]"#,
                ],
                shown: true,
            },
        ),
        (
            "refresh-logout",
            Expected {
                statuses: &[200, 200, 401],
                contains: &[
                    r#"{"access_token":"00D5j00000AcMe1!"#,
                    r#"{"logged_out":true,"replicas":"not_shared","revoked":["access_token","refresh_token"]}"#,
                    r#"{"error":"invalid_token""#,
                ],
                shown: true,
            },
        ),
    ])
}

/// `(name, script)` for every marked ```sh block, in README order.
fn marked_examples(readme: &str) -> Vec<(String, String)> {
    let marker = Regex::new(r"^<!-- readme-test: ([a-z0-9-]+) -->$").expect("regex");
    let mut examples = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(name) = marker.captures(line).and_then(|c| c.get(1)) else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```sh"),
            "the marker for {} must sit right above a ```sh block",
            name.as_str()
        );
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        examples.push((name.as_str().to_string(), body.join("\n")));
    }
    examples
}

/// A running `sfgate demo`, its stdout drained so its logs never block it.
struct Demo {
    child: Child,
    gateway: String,
    emulator: String,
    banner: Arc<Mutex<String>>,
    /// The demo's working directory, kept for as long as it runs.
    _dir: tempfile::TempDir,
}

async fn start_demo(args: &[&str]) -> Demo {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sfgate demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = Arc::new(Mutex::new(String::new()));
    let open = Regex::new(r"Open (http://127\.0\.0\.1:\d+)/ ").expect("regex");
    let emulated = Regex::new(r"emulated at (http://127\.0\.0\.1:\d+)").expect("regex");
    let (mut gateway, mut emulator) = (None, None);
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(c) = open.captures(&line) {
                gateway = Some(c[1].to_string());
            }
            if let Some(c) = emulated.captures(&line) {
                emulator = Some(c[1].to_string());
            }
            let done = line.contains("Press Ctrl-C to stop");
            if let Ok(mut b) = banner.lock() {
                b.push_str(&line);
                b.push('\n');
            }
            if done {
                return true;
            }
        }
        false
    })
    .await;
    let seen = banner.lock().map(|b| b.clone()).unwrap_or_default();
    assert!(matches!(found, Ok(true)), "no complete banner:\n{seen}");
    // Keep reading: the demo logs every request to stdout.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Demo {
        child,
        gateway: gateway.unwrap_or_else(|| panic!("no gateway address in:\n{seen}")),
        emulator: emulator.unwrap_or_else(|| panic!("no emulator address in:\n{seen}")),
        banner,
        _dir: dir,
    }
}

/// The real curl, found on `PATH` as the shell would.
fn real_curl() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("curl"))
        .find(|p| p.is_file())
        .expect("curl is needed for the README's examples (apt-get install -y curl)")
}

/// A `curl` that runs the real one with `-D <file>`: each call's response headers (status
/// line first) land in the next numbered file of `$SFGATE_STATUS_DIR`.
fn curl_wrapper(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let wrapper = bin.join("curl");
    std::fs::write(
        &wrapper,
        "#!/usr/bin/env bash\n\
         n=$(ls -1 \"$SFGATE_STATUS_DIR\" | wc -l)\n\
         exec \"$SFGATE_REAL_CURL\" -D \"$SFGATE_STATUS_DIR/$(printf %04d \"$n\")\" \"$@\"\n",
    )
    .expect("wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

struct Run {
    stdout: String,
    statuses: Vec<u16>,
}

/// Runs `script` with bash (`-euo pipefail`), curl going through the wrapper.
async fn run_bash(script: &str) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = curl_wrapper(dir.path());
    let statuses_dir = dir.path().join("statuses");
    std::fs::create_dir_all(&statuses_dir).expect("status dir");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(&path));
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .env("PATH", std::env::join_paths(dirs).expect("PATH"))
            .env("SFGATE_STATUS_DIR", &statuses_dir)
            .env("SFGATE_REAL_CURL", real_curl())
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the example finishes")
    .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the example failed ({}):\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&statuses_dir)
        .expect("statuses")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let statuses = files
        .iter()
        .map(|f| {
            let headers = std::fs::read_to_string(f).expect("headers");
            headers
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status line in {headers:?}"))
        })
        .collect();
    Run { stdout, statuses }
}

#[tokio::test]
async fn every_marked_readme_example_works_against_the_demo_as_printed() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let examples = marked_examples(&readme);
    let expected = expectations();
    let names: Vec<&str> = examples.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        expected.keys().copied().collect::<Vec<_>>(),
        "marked README examples and this test's expectations must match one to one"
    );
    assert_eq!(
        names.first(),
        Some(&TOKEN_BLOCK),
        "the token block comes first"
    );
    let blocks: HashMap<&str, &str> = examples
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();

    let demo = start_demo(&["demo", "--with-sample-app", "--port", "0"]).await;
    let token_block = blocks[TOKEN_BLOCK].replace(README_ADDRESS, &demo.gateway);
    for (name, script) in &examples {
        assert!(
            script.contains(README_ADDRESS),
            "{name}: an example that does not call the demo?"
        );
        let want = &expected[name.as_str()];
        let body = script.replace(README_ADDRESS, &demo.gateway);
        let (full, skip) = if name == TOKEN_BLOCK {
            (body, 0)
        } else {
            (format!("{token_block}\n{body}"), 1)
        };
        let run = run_bash(&full).await;
        assert_eq!(
            &run.statuses[skip..],
            want.statuses,
            "{name}: statuses of its curl calls; output:\n{}",
            run.stdout
        );
        for needle in want.contains {
            assert!(
                run.stdout.contains(needle),
                "{name}: output lacks {needle}:\n{}",
                run.stdout
            );
            if want.shown {
                assert!(
                    script.contains(needle),
                    "{name}: the README's comment should show {needle}"
                );
            }
        }
        if name == TOKEN_BLOCK {
            assert_eq!(run.stdout.trim(), demo.emulator, "INSTANCE is the emulator");
        }
    }
    drop(demo.child);
}

#[tokio::test]
async fn the_demo_banner_commands_work_as_printed() {
    let demo = start_demo(&["demo", "--with-sample-app", "--port", "0"]).await;
    let banner = demo.banner.lock().map(|b| b.clone()).unwrap_or_default();
    let commands: Vec<&str> = banner
        .lines()
        .skip_while(|l| !l.contains("From a shell"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(commands.len(), 6, "{banner}");
    assert!(
        banner.contains(&format!("Open {}/ in a browser", demo.gateway)),
        "{banner}"
    );
    let run = run_bash(&commands.join("\n")).await;
    assert_eq!(run.statuses, [200, 200, 200], "{}", run.stdout);
    assert!(
        run.stdout.contains(r#""username":"alice@acme.example""#),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(r#""x-salesforce-username":"alice@acme.example""#),
        "{}",
        run.stdout
    );
    drop(demo.child);
}

#[tokio::test]
async fn the_readme_stays_short_names_the_demo_users_and_links_every_docs_page() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 340,
        "README.md has {lines} lines; detail belongs in docs/"
    );
    for entry in std::fs::read_dir(format!("{root}/docs")).expect("docs/") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".md") {
            assert!(
                readme.contains(&format!("](docs/{name})")),
                "README.md does not link docs/{name}"
            );
        }
    }
    // The demo users table is the emulator's.
    for user in sfgate_emulator::demo_users() {
        assert!(
            readme.contains(&format!("| `{}` | `{}` |", user.username, user.password)),
            "README.md's demo users table lacks {}",
            user.username
        );
    }
    for file in ["LICENSE", "examples/protected_route.rs"] {
        assert!(Path::new(&format!("{root}/{file}")).is_file(), "{file}");
        assert!(
            readme.contains(&format!("]({file})")),
            "README.md does not link {file}"
        );
    }
}

/// The README's Rust snippet is an excerpt of `examples/protected_route.rs`, which CI compiles:
/// every line of it stands in the example (white space aside), so the two cannot drift.
#[test]
fn the_readme_rust_snippet_is_an_excerpt_of_the_compiled_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let example =
        std::fs::read_to_string(format!("{root}/examples/protected_route.rs")).expect("example");
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let example = squash(&example);
    let start = readme.find("```rust\n").expect("a rust block in README.md") + 8;
    let end = start + readme[start..].find("```").expect("end of the rust block");
    let lines: Vec<&str> = readme[start..end]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(lines.len() >= 3, "{lines:?}");
    for line in lines {
        let line = squash(line.trim_end_matches(['{', '}']).trim_end_matches(';'));
        assert!(
            example.contains(&line),
            "README.md's snippet line `{line}` is not in examples/protected_route.rs"
        );
    }
}

/// The Markdown files whose shell examples a newcomer copies.
fn documents() -> Vec<(String, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut files = vec![format!("{root}/README.md")];
    let mut docs: Vec<String> = std::fs::read_dir(format!("{root}/docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("markdown");
            (f.trim_start_matches(root).to_string(), text)
        })
        .collect()
}

#[test]
fn every_shell_example_is_run_or_says_why_not() {
    let block = Regex::new(r"^```(sh|bash|shell|console|zsh)\s*$").expect("regex");
    let marker =
        Regex::new(r"^<!-- (readme-test: [a-z0-9-]+|doc-test: [a-z0-9-]+|not-tested: .{10,}) -->$")
            .expect("regex");
    let mut unmarked = Vec::new();
    let mut counted = 0;
    for (file, text) in documents() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !block.is_match(line) {
                continue;
            }
            counted += 1;
            let above = if i > 0 { lines[i - 1] } else { "" };
            let ok = marker.is_match(above)
                && (file == "/README.md" || !above.contains("readme-test"))
                && (file != "/README.md" || !above.contains("doc-test"));
            if !ok {
                unmarked.push(format!("{file}:{}", i + 1));
            }
        }
    }
    assert!(counted >= 40, "found only {counted} shell blocks");
    assert!(
        unmarked.is_empty(),
        "shell examples with neither a test marker nor `<!-- not-tested: why -->` on the line \
         above: {unmarked:?}"
    );
}

/// What each `doc-test` block must print.
fn doc_expectations() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        (
            "allowed-users",
            &[
                r#""username":"alice@acme.example""#,
                r#"{"error":"access_denied","error_description":"access denied: your Salesforce user is not on the list of allowed users (SF_ALLOWED_USERS)"}"#,
            ][..],
        ),
        (
            "jwt-demo",
            &[
                r#""username":"alice@acme.example""#,
                r#""display_name":"Alice Admin""#,
            ][..],
        ),
    ])
}

/// `(file, name, script)` of every `doc-test` block in docs/.
fn doc_examples() -> Vec<(String, String, String)> {
    let marker = Regex::new(r"^<!-- doc-test: ([a-z0-9-]+) -->$").expect("regex");
    let mut found = Vec::new();
    for (file, text) in documents() {
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(name) = marker.captures(line).and_then(|c| c.get(1)) else {
                continue;
            };
            assert_eq!(lines.next(), Some("```sh"), "{file}: {}", name.as_str());
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            found.push((file.clone(), name.as_str().to_string(), body.join("\n")));
        }
    }
    found
}

/// The fixed loopback ports the docs use, each replaced by a free one so examples can run
/// beside other tests.
fn free_ports(script: &str) -> String {
    let port = Regex::new(r"\b(3000|3001|8081|9999)\b").expect("regex");
    let mut chosen: HashMap<String, String> = HashMap::new();
    port.replace_all(script, |c: &regex::Captures<'_>| {
        chosen
            .entry(c[1].to_string())
            .or_insert_with(|| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").port().to_string()
            })
            .clone()
    })
    .into_owned()
}

#[tokio::test]
async fn the_docs_runnable_examples_work_as_printed_with_the_sfgate_command() {
    let examples = doc_examples();
    let expected = doc_expectations();
    let mut names: Vec<&str> = examples.iter().map(|(_, n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, expected.keys().copied().collect::<Vec<_>>());
    // `sfgate` is the binary this test was built with, as `cargo install` would put it on PATH.
    let bin_dir = Path::new(BIN).parent().expect("bin dir").to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir];
    dirs.extend(std::env::split_paths(&path));
    for (file, name, script) in examples {
        let dir = tempfile::tempdir().expect("tempdir");
        // Background servers the example starts end with it.
        let full = format!(
            "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}",
            free_ports(&script)
        );
        let out = tokio::time::timeout(
            Duration::from_secs(90),
            Command::new("bash")
                .args(["-euo", "pipefail", "-c", &full])
                .env_clear()
                .env("PATH", std::env::join_paths(&dirs).expect("PATH"))
                .env("HOME", dir.path())
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{file} {name}: the example did not finish"))
        .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{file} {name} failed ({}):\n{full}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
        for needle in expected[name.as_str()] {
            assert!(
                stdout.contains(needle),
                "{file} {name}: output lacks {needle}:\n{stdout}\n--- stderr\n{stderr}"
            );
        }
    }
}

/// "You need Rust (X or newer)" must be true of the locked dependencies: a newcomer with that
/// exact toolchain gets a build, not "package … requires rustc …". The README's version, both
/// crates' `rust-version` and the highest `rust-version` of any locked package built on this
/// platform must agree (cargo metadata, offline, filtered to the host).
#[test]
fn the_readme_rust_version_is_the_oldest_that_builds_the_locked_dependencies() {
    let root = env!("CARGO_MANIFEST_DIR");
    // "1.89" and "1.89.0" are the same version.
    let parse = |v: &str| -> Vec<u32> {
        let mut parts: Vec<u32> = v.split('.').filter_map(|n| n.parse().ok()).collect();
        parts.resize(3, 0);
        parts
    };
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let stated = Regex::new(r"You need Rust \((\d+\.\d+) or newer\)")
        .expect("regex")
        .captures(&readme)
        .map(|c| c[1].to_string())
        .expect("README.md says which Rust it needs");
    for manifest in ["Cargo.toml", "crates/sfgate-emulator/Cargo.toml"] {
        let text = std::fs::read_to_string(format!("{root}/{manifest}")).expect("manifest");
        assert!(
            text.contains(&format!("rust-version = \"{stated}\"")),
            "{manifest}'s rust-version is not the README's {stated}"
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("host triple");
    let metadata = std::process::Command::new(cargo)
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .args(["--filter-platform", &host])
        .current_dir(root)
        .output()
        .expect("cargo metadata");
    assert!(metadata.status.success(), "{metadata:?}");
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).expect("json");
    let resolved: std::collections::HashSet<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let needs: Vec<(Vec<u32>, String)> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| resolved.contains(id)))
        .filter_map(|p| {
            let version = p["rust_version"].as_str()?;
            let name = p["name"].as_str().unwrap_or("?");
            let at = p["version"].as_str().unwrap_or("?");
            Some((parse(version), format!("{name} {at} needs {version}")))
        })
        .collect();
    let newest = needs.iter().max().expect("packages with a rust-version");
    assert!(
        newest.0 <= parse(&stated),
        "README.md says Rust {stated} or newer, but {}",
        newest.1
    );
}
