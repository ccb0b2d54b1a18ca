//! The Salesforce emulator, spoken to over HTTP exactly as sfgate and a browser would: its
//! behaviour is what every other test relies on, so it is pinned down here against Salesforce's
//! documented behaviour (shared/salesforce.md).

mod authorize;
mod faults_and_rotation;
mod layering;
mod tokens;

use crate::common::{expect_status, expect_status_for};
use crate::helpers::emulator_client::*;
use reqwest::StatusCode;
use serde_json::Value;
use sfgate::salesforce::verify_signature;
use sfgate_emulator::{Endpoint, Fault};
use std::collections::HashMap;
use std::time::{Duration, Instant};
