use clap::Parser;
use std::process::ExitCode;

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
