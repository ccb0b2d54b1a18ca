use clap::Parser;
use std::process::ExitCode;

/// jemalloc rather than glibc's malloc: see its entry in Cargo.toml (lock contention between
/// the runtime's worker threads, measured in bench/REPORT.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // `.env` is for local runs; variables already in the environment win.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => {
            eprintln!("sfgate: cannot read .env: {e}");
            return ExitCode::from(sfgate::cli::EXIT_CONFIG);
        }
    }
    sfgate::cli::run(sfgate::cli::Cli::parse()).await
}
