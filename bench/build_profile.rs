//! Which build of sfgate a driver runs, shared by `bench/driver/` and `bench/soak-driver/`.
//!
//! `bench/run` and `bench/soak` build the gateway and their driver with one cargo command, in
//! the release profile for a full run and in the debug profile for `--smoke` (CI has just built
//! that profile for `cargo test`, so the smoke compiles nothing again). The gateway therefore
//! defaults to the `sfgate` binary next to the driver's own `examples/` directory, and a report
//! names the profile of the binary it actually ran: a debug build's figures say nothing about
//! speed.

use std::path::{Path, PathBuf};

/// The profile this driver was built with.
pub(crate) const DRIVER_PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// `target/<profile>/sfgate` beside this driver (`target/<profile>/examples/<driver>`), so the
/// default follows `CARGO_TARGET_DIR` and the profile the scripts built.
pub(crate) fn default_gateway() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("sfgate")))
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(DRIVER_PROFILE)
                .join("sfgate")
        })
}

/// "release build", "debug build", or what is known when the binary is not in a cargo target
/// directory (an installed `sfgate` is a release build only if it was installed that way).
pub(crate) fn describe(binary: &Path) -> String {
    match profile_of(binary) {
        Some(profile) => format!("{profile} build"),
        None => "build profile not known from its path".to_string(),
    }
}

/// The cargo profile of a binary at `target/<profile>/sfgate`.
pub(crate) fn profile_of(binary: &Path) -> Option<&'static str> {
    match binary.parent()?.file_name()?.to_str()? {
        "debug" => Some("debug"),
        "release" => Some("release"),
        _ => None,
    }
}

/// The command that builds the gateway for this driver's profile, for "not found" messages.
pub(crate) fn build_command() -> &'static str {
    if cfg!(debug_assertions) {
        "cargo build --locked --bin sfgate"
    } else {
        "cargo build --release --locked --bin sfgate"
    }
}
