//! Who is calling: credentials, the session cookie, validation with its cache, the
//! [`Authenticator`] that runs them for every entry point, and the layer and extractor that
//! give protected handlers an [`Identity`](crate::domain::Identity); and the [`login`]
//! that gives a caller its credentials.

mod authenticator;
mod confirmed;
mod credentials;
mod enforce;
mod error;
mod layer;
pub mod login;
pub mod miss_budget;
pub mod origin;
pub mod original_request;
mod profiles;
pub mod renewal;
mod secret_serde;
pub mod session;
mod validator;

pub use authenticator::{
    record_caller, record_identity, with_renewal, AuthParts, Authenticated, Authenticator,
    BrowserRejection, RefreshPolicy, Vouched,
};
pub use confirmed::{Confirmed, JsonShape};
pub use credentials::{extract_credentials, CredentialSource, Credentials};
pub use error::AuthError;
pub use layer::{require_identity, SharedIdentity};
pub use renewal::{RenewalError, Renewals, RenewedTokens};
pub use session::{CookieError, CookieSealer, LoginState, SealedSession, Session, SessionUser};
pub use validator::{revoked_user_refusal, IdentityValidator, TokenChecks, MAX_LOGOUT_MEMORY};
