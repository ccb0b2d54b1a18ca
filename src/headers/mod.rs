//! Every header sfgate owns, in one place: the table of names and their classes
//! ([`owned`]), the header-name rule that removes client copies and look-alikes ([`rule`]),
//! the identity headers and the signed assertion sfgate sets for a confirmed caller
//! ([`identity`], [`assertion`]), and the proxy's rewrite of a request's headers for the
//! upstream ([`rewrite`]), which decides each header by its class; sfgate's own cookies in a
//! `Cookie` header ([`cookies`]); an upstream answer's header lines as the fast path passes
//! them on ([`passed`]); values read as text on their bytes ([`text`]).

pub mod assertion;
pub mod cookies;
pub mod identity;
pub mod owned;
pub(crate) mod passed;
pub mod rewrite;
pub mod rule;
pub mod text;

pub use assertion::{AssertionKey, AssertionSigner, AssertionSlot};
pub use identity::{identity_headers, insert_access_token};
pub use owned::*;
pub use rule::UnderscoreHeaders;
