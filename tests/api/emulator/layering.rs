//! The emulator is a crate apart (crates/sfgate-emulator): the gateway library names it only in
//! its own unit tests, and only the binary's command line (src/main.rs, src/cli/) starts it.

use std::path::Path;

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_gateway_library_uses_the_emulator_only_in_its_unit_tests() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let binary_only = [src.join("main.rs"), src.join("cli")];
    let mut checked = 0;
    for file in files {
        if binary_only.iter().any(|b| file.starts_with(b)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        // A unit-test file of its own (`mod tests;` under `#[cfg(test)]`), or the part of a
        // file after its `#[cfg(test)]`.
        let in_tests = file.file_name().is_some_and(|n| n == "tests.rs");
        let first_test = text.find("#[cfg(test)]").unwrap_or(text.len());
        for (at, _) in text.match_indices("sfgate_emulator") {
            assert!(
                in_tests || at > first_test,
                "{}: the gateway library names the emulator outside its unit tests",
                file.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} files read");
}
