//! A malicious operator's levers, for attack tests only (cargo feature
//! `adversary`, never in a release build).
//!
//! Tether treats its own server as an adversary: the operator can read and
//! rewrite every frame after the Noise layer, drop or reorder them, inject
//! events, and change what the store holds. Attack tests install an
//! [`Adversary`] on a real, otherwise honest server and check that the
//! clients notice (refuse, warn) instead of being fooled.

use tether_proto::frames::{ClientFrame, EventBody, ServerFrame};

/// Who a frame comes from or goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A guest connection (not yet a device), by its Noise static key.
    Guest { noise_key: [u8; 32] },
    /// A device of an account.
    Device { handle: String, device_id: u32 },
}

impl Peer {
    /// The device's (handle, id), if it is one.
    pub fn device(&self) -> Option<(&str, u32)> {
        match self {
            Peer::Device { handle, device_id } => Some((handle, *device_id)),
            Peer::Guest { .. } => None,
        }
    }
}

/// Hooks on every decrypted frame. The defaults are honest.
pub trait Adversary: Send + Sync + 'static {
    /// A request as the server decrypted it, before it is handled. `None`
    /// drops it silently (no answer).
    fn request(&self, from: &Peer, frame: ClientFrame) -> Option<ClientFrame> {
        let _ = from;
        Some(frame)
    }

    /// A frame about to be encrypted and sent. `None` drops it.
    fn send(&self, to: &Peer, frame: ServerFrame) -> Option<ServerFrame> {
        let _ = to;
        Some(frame)
    }

    /// Before each group commit (after its copies may have been pushed):
    /// `Some` holds the commit until it is notified, as a slow disk would;
    /// a test that never notifies it and restarts the server has the
    /// server die between push and commit.
    fn hold_commit(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
}

impl crate::Server {
    /// Installs (or with `None` removes) the adversary's hooks.
    pub fn set_adversary(&self, adversary: Option<std::sync::Arc<dyn Adversary>>) {
        *self.shared.adversary.write().expect("adversary lock") = adversary;
    }

    /// Pushes an event to a connected device as if the server had produced
    /// it. False if the device is not connected.
    pub fn inject(&self, handle: &str, device_id: u32, body: EventBody) -> bool {
        let Some(conn) = self.shared.router.device(handle, device_id) else { return false };
        let event = tether_proto::frames::Event { body: Some(body) };
        conn.push(crate::router::Outbound::Event(Box::new(event)));
        true
    }

    /// The server's metrics, in the Prometheus text format of `/metrics`.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.encode()
    }

    /// Pushes an event to a connected guest (by its Noise key).
    pub fn inject_guest(&self, noise_key: &[u8; 32], body: EventBody) -> bool {
        let Some(conn) = self.shared.router.guest(noise_key) else { return false };
        let event = tether_proto::frames::Event { body: Some(body) };
        conn.push(crate::router::Outbound::Event(Box::new(event)));
        true
    }
}

impl crate::Shared {
    pub(crate) fn adversary(&self) -> Option<std::sync::Arc<dyn Adversary>> {
        self.adversary.read().expect("adversary lock").clone()
    }
}
