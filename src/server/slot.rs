//! A connection's place under `MAX_CONNECTIONS`: taken by the serving loop ([`super::accept`])
//! when it accepts, carried by the connection ([`super::connection`]) into every request, and
//! kept by a tunnel. A module of its own so that neither of those two needs the other's types.

use super::hand_over::HandOver;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// A connection's place under `MAX_CONNECTIONS`, in every request's extensions. A protocol
/// upgrade (a WebSocket) keeps a clone for as long as its tunnel is open: the upgraded
/// connection is still an open connection, and the slot is freed only when both the HTTP
/// connection and the tunnel have ended. It also carries where the connection's socket is
/// handed over to a tunnel ([`HandOver`]), so that requests need one extension, not two.
#[derive(Clone)]
pub struct ConnectionSlot(Arc<Slot>);

struct Slot {
    #[expect(
        dead_code,
        reason = "held, never read: dropping the last clone frees the slot"
    )]
    permit: OwnedSemaphorePermit,
    hand_over: Arc<HandOver>,
}

impl ConnectionSlot {
    /// The slot a permit of the `MAX_CONNECTIONS` semaphore stands for.
    pub(super) fn new(permit: OwnedSemaphorePermit) -> Self {
        Self(Arc::new(Slot {
            permit,
            hand_over: Arc::new(HandOver::default()),
        }))
    }

    /// Where this connection's socket is handed over to a tunnel.
    pub fn hand_over(&self) -> &Arc<HandOver> {
        &self.0.hand_over
    }
}
