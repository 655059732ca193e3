//! This device's Olm account and its pairwise sessions (vodozemac), with
//! pickling to the store. Sessions are kept per peer identity key.

use crate::store::Op;
use std::collections::HashMap;
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
    /// Peer identity key (hex) → sessions, newest last.
    sessions: HashMap<String, Vec<Session>>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn curve(bytes: &[u8]) -> Result<Curve25519PublicKey, DecryptFailure> {
    Curve25519PublicKey::from_slice(bytes).map_err(|_| DecryptFailure("a device key is malformed".into()))
}

impl Olm {
    pub fn new() -> Self {
        Self { account: Account::new(), sessions: HashMap::new() }
    }

    pub fn load(account: &[u8], sessions: Vec<(String, Vec<u8>)>) -> Result<Self, String> {
        let pickle = serde_json::from_slice(account).map_err(|e| format!("olm account: {e}"))?;
        let mut map = HashMap::new();
        for (peer, bytes) in sessions {
            let pickles: Vec<vodozemac::olm::SessionPickle> =
                serde_json::from_slice(&bytes).map_err(|e| format!("olm session: {e}"))?;
            map.insert(peer, pickles.into_iter().map(Session::from_pickle).collect());
        }
        Ok(Self { account: Account::from_pickle(pickle), sessions: map })
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

    pub fn has_session(&self, peer_identity: &[u8]) -> bool {
        self.sessions.get(&hex(peer_identity)).is_some_and(|v| !v.is_empty())
    }

    /// New one-time keys and a fallback key to publish; marks them published.
    pub fn new_prekeys(&mut self, count: usize) -> (Vec<[u8; 32]>, Option<[u8; 32]>) {
        self.account.generate_one_time_keys(count);
        let otks: Vec<[u8; 32]> = self.account.one_time_keys().values().map(|k| k.to_bytes()).collect();
        self.account.generate_fallback_key();
        let fallback = self.account.fallback_key().values().next().map(|k| k.to_bytes());
        self.account.mark_keys_as_published();
        (otks, fallback)
    }

    /// Starts a session with a peer from a claimed one-time (or fallback) key.
    pub fn start_session(&mut self, peer_identity: &[u8], one_time_key: &[u8], ops: &mut Vec<Op>) -> Result<(), DecryptFailure> {
        let session = self
            .account
            .create_outbound_session(SessionConfig::version_1(), curve(peer_identity)?, curve(one_time_key)?)
            .map_err(|e| DecryptFailure(format!("could not start a session: {e}")))?;
        let peer = hex(peer_identity);
        self.sessions.entry(peer.clone()).or_default().push(session);
        ops.push(self.save_sessions(&peer));
        Ok(())
    }

    /// Encrypts with the newest session to the peer: (message type, bytes).
    pub fn encrypt(&mut self, peer_identity: &[u8], plaintext: &[u8], ops: &mut Vec<Op>) -> Option<(u32, Vec<u8>)> {
        let peer = hex(peer_identity);
        let session = self.sessions.get_mut(&peer)?.last_mut()?;
        let msg = session.encrypt(plaintext).ok()?;
        let (kind, bytes) = msg.to_parts();
        ops.push(self.save_sessions(&peer));
        Some((kind as u32, bytes))
    }

    /// Decrypts a message from the device whose identity key is
    /// `peer_identity` (taken from its verified device list).
    pub fn decrypt(&mut self, peer_identity: &[u8], kind: u32, body: &[u8], ops: &mut Vec<Op>) -> Result<Vec<u8>, DecryptFailure> {
        let msg = OlmMessage::from_parts(kind as usize, body).map_err(|_| DecryptFailure("not an Olm message".into()))?;
        let peer = hex(peer_identity);
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
                    .create_inbound_session(SessionConfig::version_1(), curve(peer_identity)?, &pre)
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
    fn a_peer_device_can_make_at_most_the_cap_of_sessions() {
        let mut bob = Olm::new();
        let (otks, _) = bob.new_prekeys(MAX_SESSIONS_PER_DEVICE + 2);
        let mut alice = Olm::new();
        let (a_id, b_id) = (alice.identity_key(), bob.identity_key());
        let mut ops = vec![];
        let mut results = vec![];
        for otk in otks.iter().take(MAX_SESSIONS_PER_DEVICE + 1) {
            // Alice throws her session away each time and starts a new one.
            alice.sessions.clear();
            alice.start_session(&b_id, otk, &mut ops).unwrap();
            let (kind, body) = alice.encrypt(&b_id, b"hi", &mut ops).unwrap();
            results.push(bob.decrypt(&a_id, kind, &body, &mut ops));
        }
        assert!(results[..MAX_SESSIONS_PER_DEVICE].iter().all(|r| r.is_ok()));
        let last = results.last().unwrap().as_ref().unwrap_err();
        assert!(last.is_over_cap(), "the session past the cap is refused");
        assert_eq!(bob.sessions[&hex(&a_id)].len(), MAX_SESSIONS_PER_DEVICE);
        // The refused message did not use up a one-time key: the next
        // honest session from another device still works.
        let mut carol = Olm::new();
        carol.start_session(&b_id, &otks[MAX_SESSIONS_PER_DEVICE + 1], &mut ops).unwrap();
        let (kind, body) = carol.encrypt(&b_id, b"hello", &mut ops).unwrap();
        assert_eq!(bob.decrypt(&carol.identity_key(), kind, &body, &mut ops).unwrap(), b"hello");
    }
}
