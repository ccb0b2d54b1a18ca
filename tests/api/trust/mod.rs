//! The trust boundary (issue 11): the app behind sfgate sees exactly what sfgate verified.
//!
//! Requests are written as raw bytes on a `TcpStream` wherever a client library would
//! normalise them (header name spelling, encoded paths), against the real gateway in gateway
//! mode, with a real upstream that echoes what it received.

mod connections;
mod headers;
mod paths_ids_and_cookies;

use crate::common::*;
use crate::helpers::log_watch::{log_text, watch};
use crate::helpers::name_echo::{received, received_value, send_raw, start_echo};
use futures_util::StreamExt;
use proptest::prelude::*;
use serde_json::Value;
use std::time::Duration;
