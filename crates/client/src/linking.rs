//! Linking and registration state, as typed states.
//!
//! Companion ([`LinkFlow`]): `AwaitRefs` (asked the server for refs) →
//! `Showing` (a QR per ref as they rotate, optionally a pairing code, see
//! [`CodeOffer`]) → linked on a valid `LinkApproved`, or `Exhausted` once
//! every ref expired. Primary: a pairing code being exchanged
//! ([`CodeEntry`]), then a scanned or received [`LinkPayload`] waits for the
//! user's confirmation. A registration waits for the connection.

use tether_proto::frames::LinkRef;
use tether_proto::link::LinkPayload;
use tether_proto::pairing::{Pake, PairingKeys};

/// Waiting for the server's refs.
#[derive(Debug)]
pub struct AwaitRefs {
    pub link_secret: [u8; 32],
    pub with_code: bool,
}

/// Showing codes as they rotate.
pub struct Showing {
    pub refs: Vec<LinkRef>,
    /// The ref on show.
    pub index: usize,
    pub link_secret: [u8; 32],
    /// The pairing code on show, when linking by code.
    pub code: Option<CodeOffer>,
}

/// Companion: the pairing code on show and where its exchange stands.
pub struct CodeOffer {
    /// The server slot the code names.
    pub slot: [u8; 2],
    pub stage: CodeStage,
    /// Codes made in a row without a match (slot taken, wrong guesses).
    pub made: u32,
}

/// Companion: the SPAKE2 exchange of the code on show.
#[derive(Default)]
pub enum CodeStage {
    /// Our message is in the slot; waiting for a primary's answer.
    Waiting(Pake),
    /// The primary proved it knows the code; our link code went to it, sealed.
    Matched,
    /// Between codes.
    #[default]
    Spent,
}

/// Primary: a typed pairing code being exchanged.
pub(crate) enum CodeEntry {
    /// Fetching the companion's message from the slot.
    Fetching { slot: [u8; 2], pake: Pake, message: Vec<u8> },
    /// Answered with our message and confirmation; waiting for the
    /// companion's sealed link code.
    AwaitOffer { slot: [u8; 2], keys: PairingKeys },
}

/// The companion's linking flow.
#[derive(Default)]
pub enum LinkFlow {
    #[default]
    Idle,
    AwaitRefs(AwaitRefs),
    Showing(Showing),
    /// Every ref expired: the UI offers "show a new code".
    Exhausted,
}

/// What time did to the codes on show.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// The code on show is still valid (or none is on show).
    Unchanged,
    /// A later code is on show now.
    Moved,
    /// Every code expired.
    Exhausted,
}

impl LinkFlow {
    pub fn wants_refs(&self) -> bool {
        matches!(self, LinkFlow::AwaitRefs(_))
    }

    /// When the code on show expires.
    pub fn next_deadline(&self) -> Option<u64> {
        match self {
            LinkFlow::Showing(s) => s.refs.get(s.index).map(|r| r.expires_ms),
            _ => None,
        }
    }

    /// Moves past expired codes.
    pub(crate) fn rotate(&mut self, now: u64) -> Rotation {
        let LinkFlow::Showing(s) = self else { return Rotation::Unchanged };
        let before = s.index;
        while s.refs.get(s.index).is_some_and(|r| now >= r.expires_ms) {
            s.index += 1;
        }
        if s.index >= s.refs.len() {
            *self = LinkFlow::Exhausted;
            Rotation::Exhausted
        } else if s.index != before {
            Rotation::Moved
        } else {
            Rotation::Unchanged
        }
    }
}

/// A registration waiting for the connection (or the server's answer).
#[derive(Clone)]
pub(crate) struct Registration {
    pub handle: String,
    pub seed: [u8; 32],
    /// For servers with `--registration token`.
    pub token: Option<String>,
}

/// A restore from the recovery phrase waiting for the connection (or the
/// server's answers). The seed lives only here, in memory, until the server
/// accepted the restore.
#[derive(Clone)]
pub(crate) struct Restoration {
    pub handle: String,
    pub seed: [u8; 32],
}

/// Everything about joining an account.
#[derive(Default)]
pub struct Linking {
    /// Companion: the flow of codes.
    pub(crate) flow: LinkFlow,
    /// Primary: a companion asking to link, awaiting the user's confirmation.
    pub(crate) request: Option<LinkPayload>,
    /// Primary: a pairing code being exchanged.
    pub(crate) code: Option<CodeEntry>,
    /// A registration to send once connected.
    pub(crate) registering: Option<Registration>,
    /// A restore to start once connected.
    pub(crate) restoring: Option<Restoration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn showing(expiries: &[u64]) -> LinkFlow {
        let refs = expiries.iter().map(|&e| LinkRef { link_ref: vec![0; 16], not_before_ms: 0, expires_ms: e }).collect();
        LinkFlow::Showing(Showing { refs, index: 0, link_secret: [0; 32], code: None })
    }

    #[test]
    fn codes_rotate_then_run_out() {
        let mut flow = showing(&[60, 80, 100]);
        assert_eq!(flow.next_deadline(), Some(60));
        assert_eq!(flow.rotate(59), Rotation::Unchanged);
        assert_eq!(flow.rotate(60), Rotation::Moved);
        assert_eq!(flow.next_deadline(), Some(80));
        // A long sleep skips every expired code at once.
        assert_eq!(flow.rotate(100), Rotation::Exhausted);
        assert!(matches!(flow, LinkFlow::Exhausted));
        assert_eq!(flow.next_deadline(), None);
    }
}
