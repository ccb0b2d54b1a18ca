//! Types that can only hold valid values. Code past their constructors trusts them, so every
//! check on client or Salesforce input happens exactly once, here.

mod allowed_orgs;
mod identity;
mod instance_url;
mod org_id;
mod request_path;
mod return_to;
mod session_secret;
mod site_url;

pub use allowed_orgs::AllowedOrgs;
pub use identity::{Identity, Profile, UserInfo};
pub use instance_url::{
    InstancePolicy, InstanceUrl, InstanceUrlError, DEFAULT_SALESFORCE_SUFFIXES,
};
pub use org_id::{OrgId, OrgIdError, SalesforceId};
pub use request_path::{CanonicalPath, PathError, PathPolicy, MAX_DECODING_DEPTH};
pub use return_to::ReturnTo;
pub use session_secret::SessionSecret;
pub use site_url::SiteUrl;
