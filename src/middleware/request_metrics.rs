//! Counts and times every request by matched route (`sfgate_http_requests_total`,
//! `sfgate_http_request_duration_seconds`).

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

/// Middleware: counts and times every request by matched route.
///
/// Runs after routing (added with `Router::layer`), so `MatchedPath` is there; requests the
/// gateway-mode proxy answered are labelled `proxy`, and requests nothing matched (404s)
/// share the label `unmatched`.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = if response.extensions().get::<super::Proxied>().is_some() {
        "proxy"
    } else {
        matched.as_ref().map_or("unmatched", MatchedPath::as_str)
    };
    record(
        method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The metric handles for one route label.
#[derive(Default)]
struct RouteHandles {
    requests: HashMap<(&'static str, u16), Counter>,
    duration: HashMap<&'static str, Histogram>,
}

thread_local! {
    /// Handles by route label, per thread. The `metrics` macros build a labelled key (label
    /// strings allocated) and look it up in the recorder's registry on every call; here each
    /// label set is resolved once per thread, and a request costs two small map lookups. The
    /// recorder is installed before any request is served (`AppState::new`), and label values
    /// are bounded (route templates, standard methods, statuses), so the maps stay small.
    static HANDLES: RefCell<HashMap<Box<str>, RouteHandles>> = RefCell::new(HashMap::new());
}

/// Counts one request and records its duration.
fn record(method: &'static str, route: &str, status: u16, seconds: f64) {
    HANDLES.with_borrow_mut(|by_route| {
        // One lookup for a label seen before; a new route label is added once per thread.
        if let Some(handles) = by_route.get_mut(route) {
            handles.record(method, route, status, seconds);
        } else {
            let mut handles = RouteHandles::default();
            handles.record(method, route, status, seconds);
            by_route.insert(route.into(), handles);
        }
    });
}

impl RouteHandles {
    fn record(&mut self, method: &'static str, route: &str, status: u16, seconds: f64) {
        self.requests
            .entry((method, status))
            .or_insert_with(|| {
                metrics::counter!(
                    "sfgate_http_requests_total",
                    "method" => method,
                    "route" => route.to_owned(),
                    "status" => status.to_string()
                )
            })
            .increment(1);
        self.duration
            .entry(method)
            .or_insert_with(|| {
                metrics::histogram!(
                    "sfgate_http_request_duration_seconds",
                    "method" => method,
                    "route" => route.to_owned()
                )
            })
            .record(seconds);
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series with exactly these labels in the rendered text.
    fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
        let prefix = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|value| value.trim().parse().ok())
    }

    #[test]
    fn each_label_set_counts_into_its_own_series() {
        let handle = crate::telemetry::metrics::install();
        let route = "/unit-test/request-metrics";
        let requests = "sfgate_http_requests_total";
        let labels = |method: &str, status: u16| {
            format!(r#"method="{method}",route="{route}",status="{status}""#)
        };
        record("GET", route, 200, 0.001);
        record("GET", route, 200, 0.002);
        record("GET", route, 404, 0.001);
        record("POST", route, 200, 0.001);
        // The same label sets again from another thread, whose handles are its own.
        std::thread::spawn(move || {
            record("GET", route, 200, 0.001);
            record("POST", route, 200, 0.001);
        })
        .join()
        .expect("thread");
        let text = handle.render();
        assert_eq!(
            series(&text, requests, &labels("GET", 200)),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            series(&text, requests, &labels("GET", 404)),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            series(&text, requests, &labels("POST", 200)),
            Some(2.0),
            "{text}"
        );
        let count = |method: &str| {
            let labels = format!(r#"method="{method}",route="{route}""#);
            series(&text, "sfgate_http_request_duration_seconds_count", &labels)
        };
        assert_eq!(count("GET"), Some(4.0), "{text}");
        assert_eq!(count("POST"), Some(2.0), "{text}");
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"PURGE").expect("method");
        assert_eq!(method_label(&odd), "other");
    }
}
