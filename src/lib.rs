//! sfgate: a Salesforce identity gateway.
//!
//! Public routes run the OAuth 2.0 web-server flow against Salesforce; an identity layer lets
//! only callers with a valid Salesforce identity reach protected routes.

pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod health;
pub mod proxy;
pub mod routes;
pub mod salesforce;
pub mod startup;
pub mod state;
pub mod telemetry;
