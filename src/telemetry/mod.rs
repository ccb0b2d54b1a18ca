//! Log set-up. `text` for people reading a terminal, `json` (one object per line) for log
//! pipelines such as Heroku drains. `RUST_LOG` filters; the default is `info`.
//!
//! No level may print a secret. sfgate's own events carry no tokens, codes, state, cookies or
//! secrets (those live in `SecretString`s and request spans record the path only, never the
//! query); `Authorization`, `Cookie` and the legacy `bearer` header are marked sensitive before
//! the trace layer. Dependencies were checked at `trace` (tests/api/logs.rs runs the binary with
//! `RUST_LOG=trace` through every flow and searches the output): hyper logs nothing without
//! its unstable `tracing` cfg, hyper-util and reqwest log connection and pool events only.
//! One dependency target can print raw bytes, headers and bodies included, and is therefore
//! switched off whatever `RUST_LOG` says: see [`NEVER_LOGGED`].
//!
//! Traces (OpenTelemetry, [`otel`] and [`spans`]) are exported only when the configuration
//! names a collector ([`init_for`]); otherwise the subscriber is exactly the log set-up.

pub mod allocator;
mod export_client;
pub mod metrics;
pub mod otel;
pub mod spans;

use crate::config::{Config, LogFormat};
use axum::extract::Request;
use std::io::IsTerminal;
use tracing::Span;
use tracing_subscriber::filter::Directive;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

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

/// [`init`] for `sfgate serve`: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, also the trace
/// exporter. Keep the returned value until the server stops: dropping it flushes the spans
/// still queued. An exporter that cannot be built (a bad header, say) leaves tracing off and
/// says so; the gateway itself still starts.
pub fn init_for(config: &Config) -> Option<otel::TraceExport> {
    let format = config.server.log_format;
    let Some(otel_config) = &config.otel else {
        init(format);
        return None;
    };
    let export = match otel::pipeline(otel_config) {
        Ok(export) => export,
        Err(e) => {
            init(format);
            tracing::error!(error = %e, "trace export is off: the OTLP exporter cannot be built");
            return None;
        }
    };
    metrics::install();
    // Each layer has its own filter: the exported spans are not subject to `RUST_LOG`, and the
    // log output does not see them (a line logged inside a Salesforce call keeps the
    // request's log span, with its request id and user, as its context).
    let mut log_filter = filter();
    if let Ok(d) = format!("{}=off", otel::TARGET_PREFIX).parse::<Directive>() {
        log_filter = log_filter.add_directive(d);
    }
    let log_layer = match format {
        LogFormat::Json => json_layer().with_filter(log_filter).boxed(),
        LogFormat::Text => text_layer().with_filter(log_filter).boxed(),
    };
    let traces = otel::layer(&export, otel_config).boxed();
    if tracing_subscriber::registry()
        .with(vec![traces, log_layer])
        .try_init()
        .is_err()
    {
        return None;
    }
    tracing::info!(
        endpoint = %otel_config.traces_endpoint.origin().ascii_serialization(),
        service = %otel_config.service_name,
        "exporting traces over OTLP"
    );
    Some(export)
}

/// The request's log span ([`crate::middleware::observe`]): request id, method and path — the
/// path only, as query strings carry OAuth codes and state — and, while traces are exported,
/// the trace id, so a log line can be found from a trace and back. A disabled span (nothing
/// built) when `info` is filtered out everywhere.
pub fn log_span(request: &Request, request_id: &axum::http::HeaderValue) -> Span {
    if !tracing::level_enabled!(tracing::Level::INFO) {
        return Span::none();
    }
    let request_id = request_id.to_str().unwrap_or("-");
    match spans::current_trace_id() {
        None => tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            path = %request.uri().path(),
            user_id = tracing::field::Empty,
            org_id = tracing::field::Empty,
        ),
        Some(trace_id) => tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            path = %request.uri().path(),
            user_id = tracing::field::Empty,
            org_id = tracing::field::Empty,
            trace_id = %trace_id,
        ),
    }
}

fn json_layer<S>() -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stdout)
}

fn text_layer<S>() -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .with_target(true)
        // Colour codes only for a terminal; in a file or a log drain they are noise.
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(std::io::stdout)
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
