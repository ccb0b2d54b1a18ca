//! Types that can only hold valid values. Code past their constructors trusts them, so every
//! check on client or Salesforce input happens exactly once, here.

mod org_id;

pub use org_id::{OrgId, OrgIdError, SalesforceId};
