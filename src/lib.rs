//! sfgate: a Salesforce identity gateway.
//!
//! Public routes run the OAuth 2.0 web-server flow against Salesforce; an identity layer lets
//! only callers with a valid Salesforce identity reach protected routes.

pub mod access;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod error;
pub mod headers;
pub mod middleware;
pub mod prefix_paths;
pub mod proxy;
pub mod readiness;
pub mod routes;
pub mod salesforce;
pub mod server;
pub mod shell_examples;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
mod unknown_variables;
