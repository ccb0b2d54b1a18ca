//! Log set-up. `text` for people reading a terminal, `json` (one object per line) for log
//! pipelines such as Heroku drains. `RUST_LOG` filters; the default is `info`.
//!
//! No level may print a secret. sfgate's own events carry no tokens, codes, state, cookies or
//! secrets (those live in `SecretString`s and request spans record the path only, never the
//! query); `Authorization`, `Cookie` and the legacy `bearer` header are marked sensitive before
//! the trace layer. Dependencies were checked at `trace` (tests/logs.rs runs the binary with
//! `RUST_LOG=trace` through every flow and searches the output): hyper logs nothing without
//! its unstable `tracing` cfg, hyper-util and reqwest log connection and pool events only.
//! One dependency target can print raw bytes, headers and bodies included, and is therefore
//! switched off whatever `RUST_LOG` says: see [`NEVER_LOGGED`].

pub mod metrics;

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::filter::Directive;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Targets that are never logged, at any level.
///
/// `reqwest::connect::verbose` writes every byte read from and written to a connection at
/// `trace` (request lines, `Authorization: Bearer ...`, form bodies with `client_secret`,
/// token responses). It is only active when a client is built with `connection_verbose(true)`,
/// which sfgate does not do; this keeps a future change from turning it into a token leak.
pub const NEVER_LOGGED: &[&str] = &["reqwest::connect::verbose=off"];

/// The filter from `RUST_LOG` (default `info`), with [`NEVER_LOGGED`] enforced on top.
pub fn filter() -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in NEVER_LOGGED {
        if let Ok(d) = directive.parse::<Directive>() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Installs the global subscriber and the metrics recorder; a second call (tests, demo) is a
/// no-op.
pub fn init(format: LogFormat) {
    metrics::install();
    let registry = tracing_subscriber::registry().with(filter());
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stdout),
            )
            .try_init(),
        // Colours only for a terminal: escape codes in a log drain are noise.
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_target(true)
                    // Colour codes only for a terminal; in a file or a log drain they are noise.
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_writer(std::io::stdout),
            )
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_logged_directives_parse() {
        for d in NEVER_LOGGED {
            assert!(d.parse::<Directive>().is_ok(), "{d}");
        }
    }
}
