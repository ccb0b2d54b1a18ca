//! Many replicas behave as one: three gateways in this process, each with its own state, share
//! `SESSION_SECRET`, one emulator and a real `redis-server` started by the test. Also the
//! renewal single-flight primitives (src/store/renewal_lock.rs), driven directly against Redis.
//!
//! Without `redis-server` installed the tests print why they were skipped; with `CI=true` they
//! fail instead (see tests/common/redis_server.rs).

mod authenticity;
mod eviction_policy;
mod logins_and_verdicts;
mod logout_renewal;
mod outage_revocation;
mod outages_and_renewal;
mod renewal_primitives;
mod revocation_heard;
mod revoke_user;

use crate::common::redis_server::RedisServer;
use crate::common::*;
use crate::helpers::replicas::*;
use reqwest::header::COOKIE;
use sfgate::config::Config;
use sfgate::store::SharedStore;
use sfgate::store::{RenewalRun, RenewalTurn};
use sfgate_emulator::{Endpoint, Fault};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
