//! The `sfgate` binary: the command line (src/cli/) over the gateway library. The command
//! line lives here rather than in the library because `sfgate demo` and `sfgate emulator`
//! start the Salesforce emulator (crates/sfgate-emulator), which the library must not use.

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// jemalloc rather than glibc's malloc: see its entry in Cargo.toml (lock contention between
/// threads, measured in bench/REPORT.md; with thread-per-core serving a buffer is still often
/// freed on another thread than the one that allocated it: Redis, background work).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The variable jemalloc (as built by tikv-jemallocator, with its `_rjem_` prefix) reads its
/// options from. Unset, sfgate turns on background purging
/// ([`sfgate::telemetry::allocator`]): freed memory goes back to the system within seconds
/// even on a serving thread that has gone quiet.
const MALLOC_CONF_VARIABLE: &str = "_RJEM_MALLOC_CONF";

/// The main thread's runtime runs start-up, signals and the background tasks (the Redis
/// subscriber, key refreshes); requests are served by `SERVER_THREADS` threads with a
/// current-thread runtime each (`sfgate::server::threads`), so this one needs one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // jemalloc's own variable, read by jemalloc itself: an operator who sets it chooses the
    // allocator's options, background threads included.
    if std::env::var_os(MALLOC_CONF_VARIABLE).is_none() {
        sfgate::telemetry::allocator::purge_in_background();
    }
    sfgate::crypto::install_tls_provider();
    // `.env` is for local runs; variables already in the environment win.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => {
            eprintln!("sfgate: cannot read .env: {e}");
            return ExitCode::from(cli::EXIT_CONFIG);
        }
    }
    cli::run(cli::Cli::parse()).await
}
