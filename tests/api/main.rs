//! The integration tests, one module per concern, in one test binary: each binary links the
//! whole crate, so one binary instead of one per file is most of `cargo test`'s build time.
//! The CLI tests (`tests/cli.rs`) and the browser test (`tests/browser.rs`) are binaries of
//! their own: they drive the `sfgate` executable and Chromium from outside.
//!
//! All these modules share one process and run on parallel threads. What is process-wide is
//! shared on purpose and each test copes with it: the metrics recorder (metric assertions compare
//! a scrape before and after, and exact counts use a series no other test touches), the tracing
//! subscriber and panic hook (installed once by `helpers::watch`, reading only what a test
//! itself put there), jsonwebtoken's crypto provider (installed by the first gateway or
//! emulator). No test sets environment variables: configuration goes through
//! `Config::from_map`.

#[path = "../common/mod.rs"]
mod common;
mod helpers;

mod allocator;
mod authz;
mod bad_input;
mod canvas;
mod emulator;
mod front_door;
mod front_proxies;
mod https_cookies;
mod identity;
mod instance_url_props;
mod jwt;
mod login;
mod login_host;
mod logout_ends_renewal;
mod logs;
mod ops;
mod otel;
mod own_routes;
mod pages;
mod path_props;
mod prefix;
mod proxy;
mod readme;
mod redis;
mod sessions;
mod sites;
mod threads;
mod trust;
mod tunnel_ends;
mod websocket;
