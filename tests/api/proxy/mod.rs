//! Gateway mode over HTTP: the real gateway and emulator, plus an echo app as the upstream,
//! all on loopback; and forward auth for nginx and Traefik.

mod fast_path;
mod forward_auth;
mod forward_auth_conventions;
mod forwarding;
mod streams_and_errors;
mod upgrades;
mod upstream_idle;

use crate::common::*;
use crate::helpers::upstream::*;
use axum::body::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use sfgate_emulator::{Endpoint, Fault};
use std::time::Duration;
mod app_cookies;
mod trailers;
