//! Who is calling: credentials, the session cookie, validation with its cache, and the layer
//! and extractor that give protected handlers an [`Identity`](crate::salesforce::Identity).

mod confirmed;
mod credentials;
mod error;
mod layer;
pub mod miss_budget;
pub mod origin;
mod profiles;
pub mod renewal;
mod secret_serde;
pub mod session;
mod validator;

pub use confirmed::Confirmed;
pub use credentials::{
    extract_credentials, CredentialSource, Credentials, LEGACY_BEARER, LEGACY_INSTANCE_URL,
    X_INSTANCE_URL,
};
pub use error::AuthError;
pub use layer::{
    authenticate, record_identity, reject, reject_as, renew_session, require_identity,
    Authenticated, BrowserRejection, RefreshPolicy, SharedIdentity,
};
pub use renewal::{RenewalError, Renewals, RenewedTokens};
pub use session::{CookieError, CookieSealer, LoginState, SealedSession, Session, SessionUser};
pub use validator::{IdentityValidator, TokenChecks};
