//! This device's Olm account and its pairwise sessions (vodozemac), with
//! pickling to the store. Sessions are kept per peer *device*: its account
//! handle, device id and identity key together, so a session made with one
//! device is never used for another that lists the same identity key.

use crate::store::Op;
use crate::sorted::Map;
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;

pub const NS_OLM: &str = "olm";
pub const NS_SESSIONS: &str = "sessions";

/// Sessions kept per peer device at most: a pre-key message that would
/// make one more is dropped (`DecryptFailure::is_over_cap`), so a peer
/// device cannot make this device create and store sessions without end.
/// An honest device makes one (two when both sides start at once).
pub const MAX_SESSIONS_PER_DEVICE: usize = 4;

const OVER_CAP: &str = "this device of theirs has made too many sessions with us; the message was dropped";

/// Why a message could not be decrypted.
#[derive(Debug)]
pub struct DecryptFailure(pub String);

impl DecryptFailure {
    /// The message was refused by the session cap (dropped, not shown).
    pub fn is_over_cap(&self) -> bool {
        self.0 == OVER_CAP
    }
}

pub struct Olm {
    pub account: Account,
    /// Peer device ([`Peer::key`]) → sessions, newest last.
    sessions: Map<String, Vec<Session>>,
    /// Sessions stored by an older version under the identity key alone
    /// (hex), until [`Olm::adopt_legacy`] gives each to its one device.
    legacy: Map<String, Vec<Session>>,
}

/// A peer device as its account's verified list names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub handle: String,
    pub device_id: u32,
    /// Its Curve25519 identity key.
    pub identity: Vec<u8>,
}

impl Peer {
    pub fn new(handle: &str, device_id: u32, identity: &[u8]) -> Self {
        Self { handle: handle.to_string(), device_id, identity: identity.to_vec() }
    }

    /// The session map's (and store's) key: `handle/device/identity-hex`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.handle, self.device_id, hex(&self.identity))
    }
}

/// A one-time or fallback key to upload, with this device's signature.
pub struct SignedPrekey {
    pub key: [u8; 32],
    pub signature: Vec<u8>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn curve(bytes: &[u8]) -> Result<Curve25519PublicKey, DecryptFailure> {
    Curve25519PublicKey::from_slice(bytes).map_err(|_| DecryptFailure("a device key is malformed".into()))
}

impl Olm {
    pub fn new() -> Self {
        Self { account: Account::new(), sessions: Map::new(), legacy: Map::new() }
    }

    pub fn load(account: &[u8], sessions: Vec<(String, Vec<u8>)>) -> Result<Self, String> {
        let pickle = crate::json::from_slice(account).map_err(|e| format!("olm account: {e}"))?;
        let (mut map, mut legacy) = (Map::new(), Map::new());
        for (peer, bytes) in sessions {
            let pickles: Vec<vodozemac::olm::SessionPickle> =
                crate::json::from_slice(&bytes).map_err(|e| format!("olm session: {e}"))?;
            let list = pickles.into_iter().map(Session::from_pickle).collect();
            if peer.contains('/') { map.insert(peer, list) } else { legacy.insert(peer, list) };
        }
        Ok(Self { account: Account::from_pickle(pickle), sessions: map, legacy })
    }

    /// Sessions from an older version wait for [`Olm::adopt_legacy`].
    pub fn has_legacy(&self) -> bool {
        !self.legacy.is_empty()
    }

    /// Gives each session stored under an identity key alone (an older
    /// version) to the one device `owner` finds with that key in a verified
    /// list; a key no device or several devices list is dropped.
    pub fn adopt_legacy(&mut self, owner: impl Fn(&[u8]) -> Option<Peer>, ops: &mut Vec<Op>) {
        for (identity_hex, sessions) in std::mem::take(&mut self.legacy) {
            ops.push(Op::Delete { ns: NS_SESSIONS, key: identity_hex.clone() });
            let identity: Vec<u8> = (0..identity_hex.len() / 2).filter_map(|i| u8::from_str_radix(identity_hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
            if let Some(peer) = owner(&identity) {
                let key = peer.key();
                self.sessions.entry(key.clone()).or_default().extend(sessions);
                ops.push(self.save_sessions(&key));
            }
        }
    }

    /// Signs `msg` with this device's Ed25519 key.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.account.sign(msg).to_bytes().to_vec()
    }

    pub fn identity_key(&self) -> [u8; 32] {
        self.account.curve25519_key().to_bytes()
    }

    pub fn signing_key(&self) -> [u8; 32] {
        *self.account.ed25519_key().as_bytes()
    }

    pub fn save_account(&self) -> Op {
        Op::Put { ns: NS_OLM, key: "account".into(), value: serde_json::to_vec(&self.account.pickle()).expect("pickle encodes") }
    }

    fn save_sessions(&self, peer: &str) -> Op {
        let pickles: Vec<_> = self.sessions.get(peer).map(|v| v.iter().map(|s| s.pickle()).collect()).unwrap_or_default();
        Op::Put { ns: NS_SESSIONS, key: peer.to_string(), value: serde_json::to_vec(&pickles).expect("pickle encodes") }
    }

    pub fn has_session(&self, peer: &Peer) -> bool {
        self.sessions.get(&peer.key()).is_some_and(|v| !v.is_empty())
    }

    /// New one-time keys and a fallback key to publish, each signed with
    /// this device's Ed25519 key over `device_list::prekey_signed_bytes`;
    /// marks them published.
    pub fn new_prekeys(&mut self, count: usize) -> (Vec<SignedPrekey>, Option<SignedPrekey>) {
        self.account.generate_one_time_keys(count);
        let otks: Vec<[u8; 32]> = self.account.one_time_keys().values().map(|k| k.to_bytes()).collect();
        self.account.generate_fallback_key();
        let fallback = self.account.fallback_key().values().next().map(|k| k.to_bytes());
        self.account.mark_keys_as_published();
        let signed = |key: [u8; 32]| SignedPrekey { key, signature: self.sign(&tether_proto::device_list::prekey_signed_bytes(&key)) };
        (otks.into_iter().map(signed).collect(), fallback.map(signed))
    }

    /// Starts a session with a peer device from a claimed one-time (or
    /// fallback) key, whose signature the caller has checked.
    pub fn start_session(&mut self, peer: &Peer, one_time_key: &[u8], ops: &mut Vec<Op>) -> Result<(), DecryptFailure> {
        let session = self
            .account
            .create_outbound_session(SessionConfig::version_1(), curve(&peer.identity)?, curve(one_time_key)?)
            .map_err(|e| DecryptFailure(format!("could not start a session: {e}")))?;
        let peer = peer.key();
        self.sessions.entry(peer.clone()).or_default().push(session);
        ops.push(self.save_sessions(&peer));
        Ok(())
    }

    /// Encrypts with the newest session to the peer: (message type, bytes).
    pub fn encrypt(&mut self, peer: &Peer, plaintext: &[u8], ops: &mut Vec<Op>) -> Option<(u32, Vec<u8>)> {
        let peer = peer.key();
        let session = self.sessions.get_mut(&peer)?.last_mut()?;
        let msg = session.encrypt(plaintext).ok()?;
        let (kind, bytes) = msg.to_parts();
        ops.push(self.save_sessions(&peer));
        Some((kind as u32, bytes))
    }

    /// Decrypts a message from a peer device (its identity key taken from
    /// its verified device list), only with sessions made with that device.
    pub fn decrypt(&mut self, from: &Peer, kind: u32, body: &[u8], ops: &mut Vec<Op>) -> Result<Vec<u8>, DecryptFailure> {
        let msg = OlmMessage::from_parts(kind as usize, body).map_err(|_| DecryptFailure("not an Olm message".into()))?;
        let peer = from.key();
        if let Some(sessions) = self.sessions.get_mut(&peer) {
            for s in sessions.iter_mut().rev() {
                if let Ok(plain) = s.decrypt(&msg) {
                    ops.push(self.save_sessions(&peer));
                    return Ok(plain);
                }
            }
        }
        match msg {
            OlmMessage::PreKey(_) if self.sessions.get(&peer).is_some_and(|v| v.len() >= MAX_SESSIONS_PER_DEVICE) => {
                Err(DecryptFailure(OVER_CAP.into()))
            }
            OlmMessage::PreKey(pre) => {
                let created = self
                    .account
                    .create_inbound_session(SessionConfig::version_1(), curve(&from.identity)?, &pre)
                    .map_err(|e| DecryptFailure(format!("no session could decrypt it ({e})")))?;
                self.sessions.entry(peer.clone()).or_default().push(created.session);
                ops.push(self.save_sessions(&peer));
                ops.push(self.save_account());
                Ok(created.plaintext)
            }
            OlmMessage::Normal(_) => Err(DecryptFailure("no session with the sender can decrypt it".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_belong_to_one_device_and_legacy_ones_go_to_their_one_owner() {
        let mut alice = Olm::new();
        let mut bob = Account::new();
        bob.generate_one_time_keys(1);
        let otk = bob.one_time_keys().values().next().unwrap().to_bytes();
        let bob0 = Peer::new("bob", 0, &bob.curve25519_key().to_bytes());
        let mallory1 = Peer::new("mallory", 1, &bob0.identity);
        let mut ops = Vec::new();
        alice.start_session(&bob0, &otk, &mut ops).unwrap();
        assert!(alice.has_session(&bob0));
        assert!(!alice.has_session(&mallory1), "the same identity key under another device has no session");
        assert!(alice.encrypt(&mallory1, b"x", &mut ops).is_none());

        // As an older version stored it: under the identity key alone.
        let pickles: Vec<_> = alice.sessions[&bob0.key()].iter().map(|s| s.pickle()).collect();
        let legacy = vec![(hex(&bob0.identity), serde_json::to_vec(&pickles).unwrap())];
        let account = serde_json::to_vec(&alice.account.pickle()).unwrap();
        let mut loaded = Olm::load(&account, legacy.clone()).unwrap();
        assert!(loaded.has_legacy() && !loaded.has_session(&bob0));
        loaded.adopt_legacy(|id| (id == bob0.identity.as_slice()).then(|| bob0.clone()), &mut ops);
        assert!(loaded.has_session(&bob0) && !loaded.has_session(&mallory1) && !loaded.has_legacy());
        // A key no single verified device lists: dropped, not guessed.
        let mut dropped = Olm::load(&account, legacy).unwrap();
        dropped.adopt_legacy(|_| None, &mut ops);
        assert!(!dropped.has_session(&bob0) && !dropped.has_legacy());
    }

    #[test]
    fn a_peer_device_can_make_at_most_the_cap_of_sessions() {
        let mut bob = Olm::new();
        let (otks, _) = bob.new_prekeys(MAX_SESSIONS_PER_DEVICE + 2);
        let mut alice = Olm::new();
        let a = Peer::new("alice", 0, &alice.identity_key());
        let b = Peer::new("bob", 0, &bob.identity_key());
        let mut ops = vec![];
        let mut results = vec![];
        for otk in otks.iter().take(MAX_SESSIONS_PER_DEVICE + 1) {
            // Alice throws her session away each time and starts a new one.
            alice.sessions.clear();
            alice.start_session(&b, &otk.key, &mut ops).unwrap();
            let (kind, body) = alice.encrypt(&b, b"hi", &mut ops).unwrap();
            results.push(bob.decrypt(&a, kind, &body, &mut ops));
        }
        assert!(results[..MAX_SESSIONS_PER_DEVICE].iter().all(|r| r.is_ok()));
        let last = results.last().unwrap().as_ref().unwrap_err();
        assert!(last.is_over_cap(), "the session past the cap is refused");
        assert_eq!(bob.sessions[&a.key()].len(), MAX_SESSIONS_PER_DEVICE);
        // The refused message did not use up a one-time key: the next
        // honest session from another device still works.
        let mut carol = Olm::new();
        let c = Peer::new("carol", 0, &carol.identity_key());
        carol.start_session(&b, &otks[MAX_SESSIONS_PER_DEVICE + 1].key, &mut ops).unwrap();
        let (kind, body) = carol.encrypt(&b, b"hello", &mut ops).unwrap();
        assert_eq!(bob.decrypt(&c, kind, &body, &mut ops).unwrap(), b"hello");
    }
}
