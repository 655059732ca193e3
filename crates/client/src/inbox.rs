//! Envelopes already applied (so a redelivery is only acknowledged) and
//! envelopes parked until their sender's device list arrives.

use crate::effects::Effects;
use crate::error::Error;
use crate::store::KvStore;
use crate::sorted::Set;
use tether_proto::frames::Envelope;

const NS_SEEN: &str = "seen";

#[derive(Default)]
pub(crate) struct Inbox {
    /// "sender/message id" of every envelope applied.
    seen: Set<String>,
    /// Waiting for their sender's device list (this connection only).
    parked: Vec<Envelope>,
    /// Envelopes (by id) from a listed device whose pre-key message did
    /// not decrypt and that were parked for a fresh list once already
    /// (this connection only, like `parked`): the retry cannot loop.
    refreshed: Set<u64>,
    /// Held while a companion's account is unconfirmed (this connection
    /// only: unacknowledged, they come again on the next).
    held: Vec<Envelope>,
}

/// The dedup key of an envelope.
pub(crate) fn seen_key(e: &Envelope) -> String {
    format!("{}/{}", e.sender_handle, crate::olm::hex(&e.message_id))
}

impl Inbox {
    pub fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let seen = store.scan(NS_SEEN).map_err(Error::Store)?.into_iter().map(|(k, _)| k).collect();
        Ok(Self { seen, ..Self::default() })
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    pub fn was_applied(&self, e: &Envelope) -> bool {
        self.seen.contains(&seen_key(e))
    }

    pub fn applied(&mut self, e: &Envelope, now: u64, fx: &mut Effects) {
        let key = seen_key(e);
        fx.ops.push(crate::store::Op::Put { ns: NS_SEEN, key: key.clone(), value: now.to_le_bytes().to_vec() });
        self.seen.insert(key);
    }

    /// Parks an envelope for the first time; false if it was parked before
    /// (or another from the same sender is parked and no fetch is running).
    pub fn is_parked(&self, e: &Envelope) -> bool {
        self.parked.iter().any(|p| p.envelope_id == e.envelope_id)
    }

    pub fn sender_parked(&self, sender: &str) -> bool {
        self.parked.iter().any(|p| p.sender_handle == sender)
    }

    pub fn park(&mut self, e: Envelope) {
        self.parked.push(e);
    }

    /// Takes the parked envelopes `ready` says can go again.
    pub fn unpark(&mut self, ready: impl Fn(&Envelope) -> bool) -> Vec<Envelope> {
        let (go, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked).into_iter().partition(|e| ready(e));
        self.parked = stay;
        go
    }

    /// Records that an envelope waits for its sender's list after a failed
    /// pre-key message; false if it already did.
    pub fn first_refresh(&mut self, e: &Envelope) -> bool {
        self.refreshed.insert(e.envelope_id)
    }

    pub fn has_parked(&self) -> bool {
        !self.parked.is_empty()
    }

    /// Holds an envelope until the account is confirmed.
    pub fn hold(&mut self, e: Envelope) {
        if !self.held.iter().any(|h| h.envelope_id == e.envelope_id) {
            self.held.push(e);
        }
    }

    /// Everything held, in arrival order.
    pub fn take_held(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.held)
    }

    /// The connection closed: parked and held envelopes come again on the next one.
    pub fn disconnected(&mut self) {
        self.parked.clear();
        self.refreshed.clear();
        self.held.clear();
    }
}
