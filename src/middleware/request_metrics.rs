//! Counts and times every request by matched route (`sfgate_http_requests_total`,
//! `sfgate_http_request_duration_seconds`).

use axum::extract::MatchedPath;
use axum::http::{Method, Response};
use metrics::{Counter, Histogram};
use std::cell::RefCell;

/// Counts and times one answered request ([`super::observe`] calls this with the response).
///
/// Requests the gateway-mode proxy answered are labelled `proxy`, requests nothing matched
/// (404s) share the label `unmatched`, every other one is labelled with its matched route.
pub(super) fn record_response<B>(
    method: &'static str,
    matched: Option<&MatchedPath>,
    response: &Response<B>,
    seconds: f64,
) {
    let route = if response.extensions().get::<super::Proxied>().is_some() {
        "proxy"
    } else {
        matched.map_or("unmatched", MatchedPath::as_str)
    };
    record(method, route, response.status().as_u16(), seconds);
}

/// The metric handles for one route label. Lists searched in order rather than hash maps: a
/// route sees a handful of methods and statuses, and comparing a few short keys costs less
/// than hashing one (this runs once per request). The lists are bounded as the labels are
/// (eight method labels, the status codes sfgate and the app answer with).
#[derive(Default)]
struct RouteHandles {
    requests: Vec<((&'static str, u16), Counter)>,
    duration: Vec<(&'static str, Histogram)>,
}

thread_local! {
    /// Handles by route label, per thread. The `metrics` macros build a labelled key (label
    /// strings allocated) and look it up in the recorder's registry on every call; here each
    /// label set is resolved once per thread, and a request costs two short searches. The
    /// recorder is installed before any request is served (`AppState::new`), and label values
    /// are bounded (route templates, standard methods, statuses), so the lists stay short.
    static HANDLES: RefCell<Vec<(Box<str>, RouteHandles)>> = const { RefCell::new(Vec::new()) };
}

/// Counts one request and records its duration.
fn record(method: &'static str, route: &str, status: u16, seconds: f64) {
    HANDLES.with_borrow_mut(|by_route| {
        // One search for a label seen before; a new route label is added once per thread.
        if let Some((_, handles)) = by_route.iter_mut().find(|(r, _)| &**r == route) {
            handles.record(method, route, status, seconds);
        } else {
            let mut handles = RouteHandles::default();
            handles.record(method, route, status, seconds);
            by_route.push((route.into(), handles));
        }
    });
}

impl RouteHandles {
    fn record(&mut self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let key = (method, status);
        match self.requests.iter().find(|(k, _)| *k == key) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!(
                    "sfgate_http_requests_total",
                    "method" => method,
                    "route" => route.to_owned(),
                    "status" => status.to_string()
                );
                counter.increment(1);
                self.requests.push((key, counter));
            }
        }
        match self.duration.iter().find(|(m, _)| *m == method) {
            Some((_, histogram)) => histogram.record(seconds),
            None => {
                let histogram = metrics::histogram!(
                    "sfgate_http_request_duration_seconds",
                    "method" => method,
                    "route" => route.to_owned()
                );
                histogram.record(seconds);
                self.duration.push((method, histogram));
            }
        }
    }
}

/// The method as a metric label: the standard methods by name, any other as `other`, so that
/// a client cannot grow the label set (the benchmark's floors label their requests with it).
pub fn method_label(method: &Method) -> &'static str {
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
