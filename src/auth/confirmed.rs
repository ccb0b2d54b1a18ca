//! An identity Salesforce confirmed, as the identity cache holds it.

use crate::domain::{Identity, UserInfo};
use axum::body::Bytes;
use axum::http::HeaderMap;
use once_cell::race::OnceBox;
use std::cell::RefCell;
use std::ops::Deref;
use std::sync::{Arc, Weak};

/// One confirmed identity, shared by every request that presents the same token while its
/// verdict is cached. Derefs to [`Identity`].
///
/// Its JSON form (the `/api/me` answer) is not kept in the entry: kept, it was the largest
/// part of a cache entry (a 320-byte allocation for ~260 bytes of JSON, and 40 bytes of the
/// entry itself, which then fell into the next allocation class too), about a third of the
/// memory 100 000 cached identities take. Each serving thread keeps the JSON of the few
/// identities it answered for last instead ([`Confirmed::json`]).
#[derive(Debug)]
pub struct Confirmed {
    identity: Identity,
    /// The signed `X-Sfgate-Assertion` for this identity, reused while fresh.
    assertion: crate::headers::AssertionSlot,
    /// Gateway mode's identity headers, built on first use.
    /// Boxed: most cached identities are never proxied for, and an empty `HeaderMap` inline
    /// would cost every cache entry ~90 bytes. A `OnceBox` is one pointer (see
    /// [`crate::headers::AssertionSlot`]); two threads building the headers at once build the
    /// same map, and one is dropped.
    headers: OnceBox<HeaderMap>,
    /// When this replica built the verdict (ms since the epoch): a user revoked after it must
    /// not be admitted by it (see `IdentityValidator::validate`).
    checked_at_ms: u64,
}

/// Bytes reserved for an identity's JSON: ~260 for a user with a short instance URL and no
/// custom permissions; longer ones grow the buffer once.
const JSON_CAPACITY: usize = 384;

impl Confirmed {
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            assertion: Default::default(),
            headers: OnceBox::new(),
            checked_at_ms: crate::auth::session::now_ms(),
        }
    }

    /// When this verdict was made here (ms since the epoch).
    pub fn checked_at_ms(&self) -> u64 {
        self.checked_at_ms
    }

    pub fn assertion_slot(&self) -> &crate::headers::AssertionSlot {
        &self.assertion
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The identity as JSON (`/api/me`'s answer), rendered once per identity and serving
    /// thread while the thread keeps it among its last [`RENDERED_SLOTS`] rendered identities.
    pub fn json(this: &Arc<Self>) -> Result<Bytes, serde_json::Error> {
        Self::json_as(this, JsonShape::Identity)
    }

    /// The identity as JSON in `shape`, kept per thread as [`Confirmed::json`] is.
    pub fn json_as(this: &Arc<Self>, shape: JsonShape) -> Result<Bytes, serde_json::Error> {
        let table = match shape {
            JsonShape::Identity => &RENDERED,
            JsonShape::UserInfo => &RENDERED_USERINFO,
        };
        table.with_borrow_mut(|rendered| {
            let slot = &mut rendered[slot_of(this)];
            if let Some((held, json)) = slot {
                // The slot's `Weak` keeps the allocation, so its address is this identity's
                // only while it is this identity.
                if std::ptr::eq(held.as_ptr(), Arc::as_ptr(this)) {
                    return Ok(json.clone());
                }
            }
            let json = this.render(shape)?;
            *slot = Some((Arc::downgrade(this), json.clone()));
            Ok(json)
        })
    }

    fn render(&self, shape: JsonShape) -> Result<Bytes, serde_json::Error> {
        // Room for a typical identity at once: the serialiser's buffer otherwise starts small
        // and grows by doubling.
        let mut json = Vec::with_capacity(JSON_CAPACITY);
        match shape {
            JsonShape::Identity => serde_json::to_writer(&mut json, &self.identity)?,
            JsonShape::UserInfo => {
                serde_json::to_writer(&mut json, &UserInfo::new(&self.identity))?
            }
        }
        Ok(Bytes::from(json))
    }
}

/// The two JSON forms of an identity the protected routes answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonShape {
    /// sfgate's own (`/api/me`).
    Identity,
    /// oauth2-proxy's `userinfo` shape (`/oauth2/userinfo`), which API clients of gateway
    /// mode poll as `/api/me`'s are polled in standalone mode.
    UserInfo,
}

/// How many identities' JSON each serving thread keeps per shape (a few tens of KiB per
/// thread).
const RENDERED_SLOTS: usize = 64;

/// The JSON of the identities a thread answered for last, by the address of their cache entry.
type RenderedTable = RefCell<[Option<Rendered>; RENDERED_SLOTS]>;

thread_local! {
    /// The JSON of the identities this thread answered `/api/me` for last, by the address of
    /// their cache entry: the cached caller polling `/api/me` gets the bytes it got before
    /// instead of a new rendering (~4 000 instructions). A `Weak` holds the entry's memory,
    /// not the identity: an identity dropped from the cache is not kept alive here.
    static RENDERED: RenderedTable = const { RefCell::new([const { None }; RENDERED_SLOTS]) };
    /// The same for `/oauth2/userinfo`'s shape.
    static RENDERED_USERINFO: RenderedTable =
        const { RefCell::new([const { None }; RENDERED_SLOTS]) };
}

/// One identity's JSON, and the entry it is for.
type Rendered = (Weak<Confirmed>, Bytes);

/// An identity's slot: its entry's address, less the bits every allocation shares.
fn slot_of(confirmed: &Arc<Confirmed>) -> usize {
    (Arc::as_ptr(confirmed) as usize >> 6) % RENDERED_SLOTS
}

impl Confirmed {
    /// The identity headers the upstream gets, built once per cached identity.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
            .get_or_init(|| Box::new(crate::headers::identity_headers(&self.identity)))
    }
}

impl Deref for Confirmed {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InstancePolicy, OrgId, SalesforceId};

    #[test]
    fn a_cached_identity_fits_a_192_byte_allocation() {
        // `Arc`'s two counts plus the entry: jemalloc's classes around here are 160, 192, 224
        // and 256 bytes, and 100 000 cached identities make every class step ~6 MiB.
        let allocated = std::mem::size_of::<Confirmed>() + 2 * std::mem::size_of::<usize>();
        assert!(allocated <= 192, "{allocated} bytes");
    }

    #[test]
    fn json_is_the_identitys_own_and_stable() {
        let identity = Identity {
            user_id: SalesforceId::parse("0055j00000AlIcE").expect("id"),
            organization_id: OrgId::parse("00D5j00000AcMe1").expect("org"),
            username: Some("alice@acme.example".into()),
            display_name: Some("Alice \"Admin\"".into()),
            email: None,
            email_verified: None,
            user_type: None,
            active: None,
            custom_permissions: None,
            instance_url: InstancePolicy::default()
                .check("https://acme.my.salesforce.com")
                .expect("instance"),
        };
        let confirmed = Arc::new(Confirmed::new(identity.clone()));
        let first = Confirmed::json(&confirmed).expect("json");
        let value: serde_json::Value = serde_json::from_slice(&first).expect("parses");
        assert_eq!(value, serde_json::to_value(&identity).expect("value"));
        assert_eq!(value["display_name"], "Alice \"Admin\"");
        assert_eq!(Confirmed::json(&confirmed).expect("json"), first);
        // Another identity gets its own JSON, and the first one still its own.
        let other = Arc::new(Confirmed::new(Identity {
            username: Some("bob@acme.example".into()),
            ..identity.clone()
        }));
        let bob: serde_json::Value =
            serde_json::from_slice(&Confirmed::json(&other).expect("json")).expect("parses");
        assert_eq!(bob["username"], "bob@acme.example");
        assert_eq!(Confirmed::json(&confirmed).expect("json"), first);
        assert_eq!(confirmed.username.as_deref(), Some("alice@acme.example"));

        // The userinfo shape is kept apart: asked in either order, each shape is its own.
        let info = Confirmed::json_as(&confirmed, JsonShape::UserInfo).expect("json");
        let info: serde_json::Value = serde_json::from_slice(&info).expect("parses");
        assert_eq!(info["preferredUsername"], "alice@acme.example");
        assert_eq!(info["user"], value["user_id"]);
        assert_eq!(info["display_name"], "Alice \"Admin\"");
        assert_eq!(Confirmed::json(&confirmed).expect("json"), first);
        assert_eq!(
            Confirmed::json_as(&confirmed, JsonShape::UserInfo).expect("json"),
            Confirmed::json_as(&confirmed, JsonShape::UserInfo).expect("json")
        );
        assert!(value.get("preferredUsername").is_none());
    }
}
