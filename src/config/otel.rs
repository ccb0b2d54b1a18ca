//! OpenTelemetry trace export, with the standard `OTEL_*` variable names, so a deployment
//! that already sets them for its other services needs nothing sfgate-specific. Off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.

use super::reader::Reader;
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

/// Where spans go and which are kept (docs/observability.md).
#[derive(Debug, Clone)]
pub struct OtelConfig {
    /// The full URL spans are posted to (`…/v1/traces`).
    pub traces_endpoint: Url,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: usually a collector's API key, so secret.
    pub headers: Vec<(String, SecretString)>,
    pub service_name: String,
    pub sampler: TraceSampler,
    /// Whether the parent's sampling decision is followed (`parentbased_*` samplers).
    pub parent_based: bool,
    /// `OTEL_RECORD_USER`: the caller's Salesforce user id as `enduser.id`. Off by default: a
    /// tracing backend is often more widely readable than the logs.
    pub record_user: bool,
    /// Each export gives up after this long (`OTEL_EXPORTER_OTLP_TIMEOUT`, milliseconds).
    pub export_timeout: Duration,
}

/// The root decision of `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG` for the ratio).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TraceSampler {
    AlwaysOn,
    AlwaysOff,
    /// Keep this fraction of traces (0.0 to 1.0), chosen by trace id.
    Ratio(f64),
}

/// The only protocol sfgate speaks to a collector: OTLP over HTTP with protobuf bodies
/// (every collector accepts it on port 4318; gRPC would add a second HTTP stack).
const PROTOCOL: &str = "http/protobuf";

pub(super) fn parse(r: &mut Reader<'_>) -> Option<OtelConfig> {
    let record_user = r.flag("OTEL_RECORD_USER");
    let (sampler, parent_based) = sampler(r);
    let service_name = r
        .get("OTEL_SERVICE_NAME")
        .map_or_else(|| "sfgate".to_string(), |s| s.trim().to_string());
    let timeout_ms = r.parse_or(
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        10_000u64,
        "a whole number of milliseconds",
    );
    if let Some(p) = r.get("OTEL_EXPORTER_OTLP_PROTOCOL") {
        if p.trim() != PROTOCOL {
            r.problem(
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                format!("only `{PROTOCOL}` is supported, got `{}`", p.trim()),
            );
        }
    }
    let headers = headers(r);
    let traces_endpoint = endpoint(r)?;
    Some(OtelConfig {
        traces_endpoint,
        headers,
        service_name,
        sampler,
        parent_based,
        record_user,
        export_timeout: Duration::from_millis(timeout_ms),
    })
}

/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is the full URL; `OTEL_EXPORTER_OTLP_ENDPOINT` the
/// collector's base, to which `v1/traces` is appended (the OTLP specification's rule).
fn endpoint(r: &mut Reader<'_>) -> Option<Url> {
    if let Some(raw) = r.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return r.url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &raw);
    }
    let raw = r.get("OTEL_EXPORTER_OTLP_ENDPOINT")?;
    let base = r.url("OTEL_EXPORTER_OTLP_ENDPOINT", &raw)?;
    let joined = format!("{}/v1/traces", base.as_str().trim_end_matches('/'));
    r.url("OTEL_EXPORTER_OTLP_ENDPOINT", &joined)
}

fn sampler(r: &mut Reader<'_>) -> (TraceSampler, bool) {
    let name = r
        .get("OTEL_TRACES_SAMPLER")
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "parentbased_always_on".to_string());
    let ratio = r.parse_or("OTEL_TRACES_SAMPLER_ARG", 1.0f64, "a number from 0 to 1");
    let ratio = if (0.0..=1.0).contains(&ratio) {
        ratio
    } else {
        r.problem("OTEL_TRACES_SAMPLER_ARG", "must be a number from 0 to 1");
        1.0
    };
    match name.as_str() {
        "always_on" => (TraceSampler::AlwaysOn, false),
        "always_off" => (TraceSampler::AlwaysOff, false),
        "traceidratio" => (TraceSampler::Ratio(ratio), false),
        "parentbased_always_on" => (TraceSampler::AlwaysOn, true),
        "parentbased_always_off" => (TraceSampler::AlwaysOff, true),
        "parentbased_traceidratio" => (TraceSampler::Ratio(ratio), true),
        other => {
            r.problem(
                "OTEL_TRACES_SAMPLER",
                format!(
                    "must be always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio, got `{other}`"
                ),
            );
            (TraceSampler::AlwaysOn, true)
        }
    }
}

/// `key=value` pairs separated by commas, values percent-encoded (the OTLP exporter format).
/// Values are never echoed: they are usually API keys.
fn headers(r: &mut Reader<'_>) -> Vec<(String, SecretString)> {
    let Some(raw) = r.get("OTEL_EXPORTER_OTLP_HEADERS") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, pair) in raw.split(',').enumerate() {
        if pair.trim().is_empty() {
            continue;
        }
        let parsed = pair.split_once('=').and_then(|(k, v)| {
            let key = k.trim();
            let value = percent_encoding::percent_decode_str(v.trim())
                .decode_utf8()
                .ok()?;
            let valid = axum::http::HeaderName::from_bytes(key.as_bytes()).is_ok()
                && axum::http::HeaderValue::from_str(&value).is_ok();
            valid.then(|| (key.to_string(), SecretString::from(value.into_owned())))
        });
        match parsed {
            Some(h) => out.push(h),
            None => r.problem(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!(
                    "entry {} is not a `name=value` header (values are not shown)",
                    i + 1
                ),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::base;
    use super::super::Config;
    use super::TraceSampler;
    use secrecy::ExposeSecret;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, super::super::ConfigError> {
        let mut map = base();
        for (k, v) in pairs {
            map.insert(k.to_string(), v.to_string());
        }
        Config::from_map(&map)
    }

    #[test]
    fn tracing_is_off_without_an_endpoint_whatever_else_is_set() {
        let c = with(&[("OTEL_SERVICE_NAME", "x"), ("OTEL_RECORD_USER", "true")]).expect("valid");
        assert!(c.otel.is_none());
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_defaults_apply() {
        let c = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).expect("valid");
        let o = c.otel.expect("on");
        assert_eq!(
            o.traces_endpoint.as_str(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(o.service_name, "sfgate");
        assert_eq!(o.sampler, TraceSampler::AlwaysOn);
        assert!(o.parent_based);
        assert!(!o.record_user);
        let c = with(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://otlp.example.com/custom",
        )])
        .expect("valid");
        assert_eq!(
            c.otel.expect("on").traces_endpoint.as_str(),
            "https://otlp.example.com/custom"
        );
    }

    #[test]
    fn samplers_headers_and_protocol_are_checked() {
        let c = with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=abc%20def, x-team=core",
            ),
            ("OTEL_RECORD_USER", "true"),
        ])
        .expect("valid");
        let o = c.otel.expect("on");
        assert_eq!(o.sampler, TraceSampler::Ratio(0.25));
        assert!(!o.parent_based);
        assert!(o.record_user);
        assert_eq!(o.headers.len(), 2);
        assert_eq!(o.headers[0].0, "x-api-key");
        assert_eq!(o.headers[0].1.expose_secret(), "abc def");

        for (var, value) in [
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign-secret"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ] {
            let mut pairs = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")];
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            let e = with(&pairs).expect_err(var);
            assert!(e.0.iter().any(|p| p.variable == var), "{var}={value}: {e}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
