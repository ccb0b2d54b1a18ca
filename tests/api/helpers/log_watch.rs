//! What sfgate logged and whether anything panicked, for the whole test binary.
//!
//! A tracing subscriber and a panic hook are process-wide and can be installed once, so every
//! module of this binary shares these: the log is everything logged at trace level by every
//! test so far (tests assert on values only they used, never on what is absent from others'
//! lines), and the panics are those outside the test code (in the gateway, the emulator or a
//! library), which no test provokes on purpose.

use crate::common::log_capture::Captured;
use std::sync::{Arc, Mutex, OnceLock};

pub struct Watch {
    pub log: Captured,
    /// Panics outside `tests/` (in the gateway, the emulator or a library).
    pub panics: Arc<Mutex<Vec<String>>>,
}

/// Installs the capture on first call; every test that reads the log or the panics calls it
/// first, so that what it does is captured.
pub fn watch() -> &'static Watch {
    static WATCH: OnceLock<Watch> = OnceLock::new();
    WATCH.get_or_init(|| {
        let log = Captured::default();
        // `try_init` also forwards the `log` crate (reqwest, hyper-util) into this subscriber.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(log.clone())
            .try_init()
            .expect("the only subscriber of this test binary");
        let panics = Arc::new(Mutex::new(Vec::new()));
        let seen = panics.clone();
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Test code (an assertion, the harness's own `expect_status` check) panics on
            // purpose; its paths are relative to the package, as `file!()` gives them.
            let in_tests = info
                .location()
                .is_some_and(|l| l.file().starts_with("tests/"));
            if !in_tests {
                if let Ok(mut p) = seen.lock() {
                    p.push(info.to_string());
                }
            }
            default_hook(info);
        }));
        Watch { log, panics }
    })
}

/// Everything logged since [`watch`] was first called.
pub fn log_text() -> String {
    watch().log.text()
}

pub fn assert_no_panics() {
    let panics = watch().panics.lock().map(|p| p.clone()).unwrap_or_default();
    assert!(panics.is_empty(), "panics outside the test: {panics:#?}");
}

/// Every secret this test used must be absent from everything logged so far.
pub fn assert_secrets_not_logged(secrets: &[String]) {
    let log = log_text();
    assert!(
        log.contains("request finished"),
        "the capture must see the gateway's request logs"
    );
    for secret in secrets {
        assert!(secret.len() >= 12, "too short to search for: {secret:?}");
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the log: {}...",
            &secret[..8]
        );
    }
}
