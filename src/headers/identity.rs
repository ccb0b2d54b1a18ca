//! The headers that tell an upstream application who the caller is. Gateway mode's proxy puts
//! them on the forwarded request and forward auth on its answer to nginx or Traefik; the
//! upstream trusts them because only sfgate sets them (every client copy is removed first).
//! Their names and class are in the one table ([`super::owned`]).

use super::owned::{
    X_FORWARDED_EMAIL, X_FORWARDED_PREFERRED_USERNAME, X_FORWARDED_USER, X_INSTANCE_URL,
    X_SALESFORCE_INSTANCE_URL, X_SALESFORCE_ORG_ID, X_SALESFORCE_USERNAME, X_SALESFORCE_USER_ID,
};
use crate::domain::Identity;
use crate::domain::InstanceUrl;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

/// The identity headers for a confirmed caller. A value that cannot be a header (a username
/// with non-ASCII characters) is left out rather than mangled: the ids are always present.
pub fn identity_headers(identity: &Identity) -> HeaderMap {
    let mut headers = HeaderMap::new();
    put_identity(&mut headers, identity);
    headers
}

/// Inserts the identity headers into `headers`, replacing any present.
fn put_identity(headers: &mut HeaderMap, identity: &Identity) {
    let user_id = HeaderValue::from_str(&identity.user_id.to_string()).ok();
    let mut put = |name: HeaderName, value: &str| match HeaderValue::from_str(value) {
        Ok(v) => {
            headers.insert(name, v);
        }
        Err(_) => tracing::warn!(header = %name, "identity value is not a valid header value"),
    };
    put(X_SALESFORCE_ORG_ID, &identity.organization_id.to_string());
    // Without a profile (a JWT whose userinfo call failed) the username headers are left out.
    if let Some(username) = &identity.username {
        put(X_SALESFORCE_USERNAME, username);
        put(X_FORWARDED_PREFERRED_USERNAME, username);
    }
    put(X_SALESFORCE_INSTANCE_URL, identity.instance_url.as_str());
    if let Some(email) = &identity.email {
        put(X_FORWARDED_EMAIL, email);
    }
    if let Some(v) = user_id {
        headers.insert(X_SALESFORCE_USER_ID, v.clone());
        headers.insert(X_FORWARDED_USER, v);
    }
}

/// `PASS_ACCESS_TOKEN`: the caller's (possibly renewed) token, in the form sfgate itself reads.
pub fn insert_access_token(headers: &mut HeaderMap, token: &SecretString, instance: &InstanceUrl) {
    for (name, value) in access_token_headers(token, instance) {
        headers.insert(name, value);
    }
}

/// The two headers of [`insert_access_token`]; a value that cannot be a header is left out.
pub fn access_token_headers(
    token: &SecretString,
    instance: &InstanceUrl,
) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    let bearer = format!("Bearer {}", token.expose_secret());
    let authorization = HeaderValue::from_str(&bearer).ok().map(|mut v| {
        v.set_sensitive(true);
        (header::AUTHORIZATION, v)
    });
    let instance = HeaderValue::from_str(instance.as_str())
        .ok()
        .map(|v| (X_INSTANCE_URL, v));
    authorization.into_iter().chain(instance)
}
