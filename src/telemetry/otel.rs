//! Trace export over OTLP/HTTP (protobuf), installed only when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set.
//!
//! Off, nothing of it exists: no layer in the subscriber, no exporter thread, and the request
//! path pays one relaxed atomic load ([`enabled`]) where a span would be made. On, the spans
//! sfgate makes on purpose (the request span and its children, see [`super::spans`]) are the
//! only ones exported: a per-layer filter keeps every other span and every log event out, so
//! the exported attributes are exactly the ones written in `spans.rs`.

use super::export_client::BlockingExportClient;
use crate::config::{OtelConfig, TraceSampler};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Subscriber;
use tracing_subscriber::filter::{filter_fn, Filtered};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The target of the request span sfgate exports (one per request).
pub const REQUEST_TARGET: &str = "sfgate::otel::request";
/// The target of the spans for calls sfgate makes (Salesforce, Redis, the upstream).
pub const CALL_TARGET: &str = "sfgate::otel::call";
/// Both targets' common prefix: the log output is told to ignore these spans, so a log line
/// keeps the request's log span (request id, user) as its context.
pub const TARGET_PREFIX: &str = "sfgate::otel";

static ENABLED: AtomicBool = AtomicBool::new(false);
static RECORD_USER: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported: the one check on the request path when they are not.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether the caller's user id goes on the request span (`OTEL_RECORD_USER`).
pub(crate) fn record_user() -> bool {
    RECORD_USER.load(Ordering::Relaxed)
}

/// Flushes the spans still queued when sfgate stops (dropped at the end of `serve`).
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl Drop for TraceExport {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("sfgate: flushing traces at shutdown failed: {e}");
        }
    }
}

/// The exporter and its batch processor. The batch settings (`OTEL_BSP_SCHEDULE_DELAY`,
/// `OTEL_BSP_MAX_QUEUE_SIZE`, ...) are the SDK's own and read by it.
pub(super) fn pipeline(
    config: &OtelConfig,
) -> Result<TraceExport, opentelemetry_otlp::ExporterBuildError> {
    let headers: HashMap<String, String> = config
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_string()))
        .collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(BlockingExportClient::new(config.export_timeout))
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.traces_endpoint.as_str())
        .with_timeout(config.export_timeout)
        .with_headers(headers)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(config))
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    Ok(TraceExport { provider })
}

fn sampler(config: &OtelConfig) -> Sampler {
    let root = match config.sampler {
        TraceSampler::AlwaysOn => Sampler::AlwaysOn,
        TraceSampler::AlwaysOff => Sampler::AlwaysOff,
        TraceSampler::Ratio(r) => Sampler::TraceIdRatioBased(r),
    };
    if config.parent_based {
        Sampler::ParentBased(Box::new(root))
    } else {
        root
    }
}

/// The layer that turns sfgate's own spans into OpenTelemetry spans, and marks tracing as on.
/// Locations, thread names, levels and busy/idle times are left out: they describe sfgate's
/// code, not the request.
pub(super) fn layer<S>(
    export: &TraceExport,
    config: &OtelConfig,
) -> Filtered<
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    impl tracing_subscriber::layer::Filter<S>,
    S,
>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let tracer = export.provider.tracer("sfgate");
    ENABLED.store(true, Ordering::Relaxed);
    RECORD_USER.store(config.record_user, Ordering::Relaxed);
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with(TARGET_PREFIX)
        }))
}
