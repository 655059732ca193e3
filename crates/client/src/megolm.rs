//! This device's Megolm sessions (vodozemac): one outbound session per
//! group it is in, and the inbound sessions other devices shared with it,
//! each bound to the group and the device that shared it
//! (docs/protocol.md §15.4).

use crate::effects::Effects;
use crate::error::Error;
use crate::olm::Peer;
use crate::store::{KvStore, decode};
use serde::{Deserialize, Serialize};
use crate::sorted::{Map, Set};
use vodozemac::megolm::{GroupSession, GroupSessionPickle, InboundGroupSession, InboundGroupSessionPickle, MegolmMessage, SessionConfig, SessionKey};

const NS_OUTBOUND: &str = "megolm_out";
const NS_INBOUND: &str = "megolm_in";

/// An outbound session is replaced after this many messages…
pub const ROTATE_MESSAGES: u32 = 100;
/// …or this long.
pub const ROTATE_MS: u64 = 7 * 24 * 3600 * 1000;

/// One group's outbound session and who has its key.
struct Outbound {
    session: GroupSession,
    /// Peer devices ([`Peer::key`]) the key was shared with (acknowledged
    /// by the server).
    shared_with: Set<String>,
    created_ms: u64,
    messages: u32,
}

#[derive(Serialize, Deserialize)]
struct OutboundRecord {
    pickle: GroupSessionPickle,
    shared_with: Set<String>,
    created_ms: u64,
    messages: u32,
}

/// A session another device shared with this one.
struct Inbound {
    session: InboundGroupSession,
    record: InboundMeta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InboundMeta {
    /// The group (hex id).
    group: String,
    /// The sharing device, as its verified list named it.
    handle: String,
    device_id: u32,
    identity: Vec<u8>,
    /// The highest message index decrypted: an index not above it is a
    /// replay (a sender's messages reach a device in the order sent).
    last_index: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct InboundRecord {
    pickle: InboundGroupSessionPickle,
    meta: InboundMeta,
}

/// Why a group message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupDecryptError {
    /// No key for this session (yet).
    UnknownSession,
    /// The session belongs to another group or another device.
    WrongSender,
    /// An index already used: the same message again.
    Replay,
    /// It does not decrypt or verify.
    Invalid,
}

impl GroupDecryptError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownSession => "the sender's key for this group has not arrived",
            Self::WrongSender => "the message's key belongs to another sender or group",
            Self::Replay => "the same group message arrived again",
            Self::Invalid => "the group message does not decrypt or is not signed by its sender",
        }
    }
}

#[derive(Default)]
pub struct Megolm {
    /// By group (hex id).
    outbound: Map<String, Outbound>,
    /// By session id.
    inbound: Map<String, Inbound>,
}

fn config() -> SessionConfig {
    SessionConfig::version_1()
}

impl Megolm {
    pub(crate) fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let mut m = Self::default();
        for (group, bytes) in store.scan(NS_OUTBOUND).map_err(Error::Store)? {
            let r: OutboundRecord = decode("megolm outbound session", &bytes)?;
            let session = GroupSession::from_pickle(r.pickle);
            m.outbound.insert(group, Outbound { session, shared_with: r.shared_with, created_ms: r.created_ms, messages: r.messages });
        }
        for (id, bytes) in store.scan(NS_INBOUND).map_err(Error::Store)? {
            let r: InboundRecord = decode("megolm inbound session", &bytes)?;
            m.inbound.insert(id, Inbound { session: InboundGroupSession::from_pickle(r.pickle), record: r.meta });
        }
        Ok(m)
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    fn save_outbound(&self, group: &str, fx: &mut Effects) {
        if let Some(o) = self.outbound.get(group) {
            let r = OutboundRecord { pickle: o.session.pickle(), shared_with: o.shared_with.clone(), created_ms: o.created_ms, messages: o.messages };
            fx.put(NS_OUTBOUND, group, &r);
        }
    }

    fn save_inbound(&self, id: &str, fx: &mut Effects) {
        if let Some(i) = self.inbound.get(id) {
            fx.put(NS_INBOUND, id, &InboundRecord { pickle: i.session.pickle(), meta: i.record.clone() });
        }
    }

    /// The group's outbound session, made now if there is none or if it
    /// must be replaced: a device it was shared with is no longer among
    /// `current` (the devices of the group's members now), or it is old.
    /// Returns the session id.
    pub(crate) fn outbound(&mut self, group: &str, current: &Set<String>, now: u64, fx: &mut Effects) -> String {
        let stale = self.outbound.get(group).is_some_and(|o| {
            o.messages >= ROTATE_MESSAGES || now.saturating_sub(o.created_ms) >= ROTATE_MS || !o.shared_with.is_subset(current)
        });
        if stale || !self.outbound.contains_key(group) {
            let o = Outbound { session: GroupSession::new(config()), shared_with: Set::new(), created_ms: now, messages: 0 };
            self.outbound.insert(group.to_string(), o);
            self.save_outbound(group, fx);
        }
        self.outbound.get(group).map(|o| o.session.session_id()).unwrap_or_default()
    }

    /// Devices among `targets` without the current session's key.
    pub(crate) fn missing<'a>(&self, group: &str, targets: impl Iterator<Item = &'a String>) -> Vec<String> {
        let shared = self.outbound.get(group).map(|o| &o.shared_with);
        targets.filter(|t| !shared.is_some_and(|s| s.contains(*t))).cloned().collect()
    }

    /// The current outbound session's key (at its current index).
    pub(crate) fn session_key(&self, group: &str) -> Option<Vec<u8>> {
        self.outbound.get(group).map(|o| o.session.session_key().to_bytes())
    }

    /// The server stored the key shares for these devices.
    pub(crate) fn mark_shared(&mut self, group: &str, session_id: &str, peers: Vec<String>, fx: &mut Effects) {
        let Some(o) = self.outbound.get_mut(group).filter(|o| o.session.session_id() == session_id) else { return };
        o.shared_with.extend(peers);
        self.save_outbound(group, fx);
    }

    /// Encrypts with the group's outbound session: (session id, Megolm message).
    pub(crate) fn encrypt(&mut self, group: &str, plaintext: &[u8], fx: &mut Effects) -> Option<(String, Vec<u8>)> {
        let o = self.outbound.get_mut(group)?;
        let msg = o.session.encrypt(plaintext);
        o.messages += 1;
        let id = o.session.session_id();
        self.save_outbound(group, fx);
        Some((id, msg.to_bytes()))
    }

    /// Forgets the group's outbound session (this device left the group).
    pub(crate) fn drop_outbound(&mut self, group: &str, fx: &mut Effects) {
        if self.outbound.remove(group).is_some() {
            fx.delete(NS_OUTBOUND, group);
        }
    }

    /// Stores a session key another device shared for `group`. A session
    /// id already known from another device or group is refused.
    pub(crate) fn import(&mut self, group: &str, from: &Peer, session_key: &[u8], fx: &mut Effects) -> Result<(), &'static str> {
        let key = SessionKey::from_bytes(session_key).map_err(|_| "the group key is malformed")?;
        let session = InboundGroupSession::new(&key, config());
        let id = session.session_id();
        let meta = InboundMeta { group: group.to_string(), handle: from.handle.clone(), device_id: from.device_id, identity: from.identity.clone(), last_index: None };
        if let Some(known) = self.inbound.get(&id) {
            let same = known.record.group == meta.group && known.record.handle == meta.handle && known.record.device_id == meta.device_id && known.record.identity == meta.identity;
            return if same { Ok(()) } else { Err("a group key that another sender already shared") };
        }
        self.inbound.insert(id.clone(), Inbound { session, record: meta });
        self.save_inbound(&id, fx);
        Ok(())
    }

    /// Decrypts a group message of `group` from the device `from`.
    pub(crate) fn decrypt(&mut self, group: &str, session_id: &str, from: &Peer, ciphertext: &[u8], fx: &mut Effects) -> Result<Vec<u8>, GroupDecryptError> {
        let i = self.inbound.get_mut(session_id).ok_or(GroupDecryptError::UnknownSession)?;
        let r = &i.record;
        if r.group != group || r.handle != from.handle || r.device_id != from.device_id || r.identity != from.identity {
            return Err(GroupDecryptError::WrongSender);
        }
        let msg = MegolmMessage::from_bytes(ciphertext).map_err(|_| GroupDecryptError::Invalid)?;
        let out = i.session.decrypt(&msg).map_err(|_| GroupDecryptError::Invalid)?;
        if i.record.last_index.is_some_and(|last| out.message_index <= last) {
            return Err(GroupDecryptError::Replay);
        }
        i.record.last_index = Some(out.message_index);
        self.save_inbound(session_id, fx);
        Ok(out.plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_reads_only_for_its_group_and_sender_and_never_twice() {
        let mut fx = Effects::default();
        let (mut alice, mut bob) = (Megolm::default(), Megolm::default());
        let a0 = Peer::new("alice", 0, &[1; 32]);
        let current: Set<String> = ["bob/0/aa".to_string()].into();
        let id = alice.outbound("g1", &current, 0, &mut fx);
        let key = alice.session_key("g1").unwrap();
        bob.import("g1", &a0, &key, &mut fx).unwrap();
        let (sid, ct) = alice.encrypt("g1", b"hello", &mut fx).unwrap();
        assert_eq!(sid, id);
        let mallory = Peer::new("mallory", 0, &[2; 32]);
        assert_eq!(bob.decrypt("g1", &sid, &mallory, &ct, &mut fx), Err(GroupDecryptError::WrongSender));
        assert_eq!(bob.decrypt("g2", &sid, &a0, &ct, &mut fx), Err(GroupDecryptError::WrongSender));
        assert_eq!(bob.decrypt("g1", &sid, &a0, &ct, &mut fx).unwrap(), b"hello");
        assert_eq!(bob.decrypt("g1", &sid, &a0, &ct, &mut fx), Err(GroupDecryptError::Replay));
        // The same key offered by someone else is refused.
        assert!(bob.import("g1", &mallory, &key, &mut fx).is_err());
    }

    #[test]
    fn a_device_gone_from_the_group_makes_a_new_session() {
        let mut fx = Effects::default();
        let mut m = Megolm::default();
        let both: Set<String> = ["bob/0/aa".to_string(), "carol/0/bb".to_string()].into();
        let first = m.outbound("g", &both, 0, &mut fx);
        m.mark_shared("g", &first, both.iter().cloned().collect(), &mut fx);
        assert_eq!(m.outbound("g", &both, 1, &mut fx), first, "nothing changed: same session");
        assert!(m.missing("g", both.iter()).is_empty());
        let bob_only: Set<String> = ["bob/0/aa".to_string()].into();
        let second = m.outbound("g", &bob_only, 2, &mut fx);
        assert_ne!(second, first, "carol left: rotated");
        assert_eq!(m.missing("g", bob_only.iter()), vec!["bob/0/aa".to_string()], "the new key goes to bob again");
        // Age rotates too.
        m.mark_shared("g", &second, vec!["bob/0/aa".into()], &mut fx);
        assert_ne!(m.outbound("g", &bob_only, 2 + ROTATE_MS, &mut fx), second);
    }
}
