//! Running one test in a process of its own, for the few that measure the whole process (its
//! resident memory): in this binary other tests run beside them on other threads and the
//! shared log capture grows, which would count against them.

use std::process::Command;

/// Runs the `#[ignore]`d test `name` (its full path, `module::test`) as the only test of a
/// child process of this test binary, and fails with its output unless it ran and passed.
pub fn run_alone(name: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args([name, "--exact", "--ignored", "--test-threads=1"])
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} alone: {}\n{stdout}\n{stderr}",
        out.status
    );
}
