//! sfgate: a Salesforce identity gateway.
//!
//! Public routes run the OAuth 2.0 web-server flow against Salesforce; an identity layer lets
//! only callers with a valid Salesforce identity reach protected routes.

pub mod domain;
pub mod salesforce;
