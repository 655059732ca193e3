//! The Tether client engine: sans-IO, shared by the browser extension (in
//! WebAssembly) and the `tether` CLI.
//!
//! The engine performs no I/O and reads no clock or randomness of its own.
//! Callers feed it inputs through `handle_*` methods and drain outputs through
//! `poll_*` methods; see `docs/architecture.md`.
#![forbid(unsafe_code)]

/// Version of the engine (the workspace version), shown by every client.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether this device belongs to an account yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// A fresh device: no account, nothing to sync. A companion in this state
    /// shows the link QR.
    Unlinked,
    /// The device is a member of an account's signed device list.
    Linked {
        /// The account's handle (phone number or user name).
        handle: String,
        /// This device's id within the account (0 is the primary).
        device_id: u32,
    },
}

/// A snapshot of the engine that a UI can render without asking anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Engine version.
    pub version: &'static str,
    /// Wire protocol version this engine speaks.
    pub protocol_version: u16,
    /// Whether (and as what) the device is linked.
    pub link: LinkState,
}

/// The client engine.
#[derive(Debug)]
pub struct Engine {
    /// Current link state; restored from the store on start.
    link: LinkState,
}

impl Engine {
    /// A fresh, unlinked engine.
    pub fn new() -> Self {
        Self {
            link: LinkState::Unlinked,
        }
    }

    /// What the UI shows right now.
    pub fn status(&self) -> Status {
        Status {
            version: VERSION,
            protocol_version: tether_proto::PROTOCOL_VERSION,
            link: self.link.clone(),
        }
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_engine_is_unlinked_and_reports_its_versions() {
        let status = Engine::new().status();
        assert_eq!(status.link, LinkState::Unlinked);
        assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(status.protocol_version, tether_proto::PROTOCOL_VERSION);
    }
}
