//! Bad input and Salesforce faults, table-driven: every row is one raw HTTP request (method,
//! path, headers as raw bytes, body) written on a `TcpStream`, so nothing a client library
//! refuses to send is out of reach. For every row the status (and the JSON `error` code) is
//! exactly what is expected, no handler panics, nothing answers 500, and `/healthz` still
//! answers afterwards.
//!
//! The whole binary logs at trace level into memory; each test ends by checking that none of
//! the tokens, codes, cookies, states or secrets it used reached the log.

mod bodies_and_faults;
mod headers_and_instance_urls;
mod login_flow;

use crate::common::raw_http::send_raw;
use crate::common::*;
use crate::helpers::log_watch::{assert_no_panics, assert_secrets_not_logged, log_text, watch};
use crate::helpers::login_cookies::*;
use crate::helpers::rows::*;
use crate::helpers::servers::misbehaving_server;
use sfgate::auth::session::{LOGIN_COOKIE, SESSION_COOKIE};
use sfgate_emulator::{Endpoint, Fault};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OTHER_SECRET: &str = "another-session-secret-for-a-second-gateway";
