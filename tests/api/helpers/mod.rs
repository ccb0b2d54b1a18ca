//! Harness for the modules of this binary only; what the CLI and browser binaries share too is
//! in `tests/common`.
#![allow(dead_code, unreachable_pub)]

pub mod alone;
pub mod emulator_client;
pub mod h2;
pub mod head_echo;
pub mod log_watch;
pub mod login_cookies;
pub mod name_echo;
pub mod otlp_receiver;
pub mod replicas;
pub mod rows;
pub mod servers;
pub mod sfgate_process;
pub mod upstream;
pub mod websocket;
