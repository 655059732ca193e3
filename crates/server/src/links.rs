//! Link rendezvous, in memory: link refs handed to companions-to-be, pairing
//! code offers, and approvals waiting for a companion that went offline.
//! All of it lives minutes at most; a restart only means "show a new code".

use std::collections::HashMap;
use std::sync::Mutex;
use tether_proto::frames::LinkApproved;

/// How long an approval waits for a companion that was offline when its
/// primary approved it.
const APPROVAL_TTL_MS: u64 = 10 * 60 * 1000;

/// One issued link ref.
#[derive(Debug, Clone)]
pub struct RefEntry {
    /// The companion-to-be's Noise static key: it becomes the device's key.
    pub noise_key: [u8; 32],
    pub expires_ms: u64,
    /// Refs of one request share a batch; using one retires the batch.
    pub batch: u64,
}

/// A pairing-code offer.
#[derive(Debug, Clone)]
pub struct PairingSlot {
    pub noise_key: [u8; 32],
    pub payload: Vec<u8>,
    pub expires_ms: u64,
}

#[derive(Debug, Default)]
pub struct Links {
    refs: Mutex<HashMap<[u8; 16], RefEntry>>,
    pairings: Mutex<HashMap<[u8; 16], PairingSlot>>,
    approvals: Mutex<HashMap<[u8; 32], (LinkApproved, u64)>>,
    next_batch: Mutex<u64>,
}

/// What looking up a ref found.
#[derive(Debug)]
pub enum RefLookup {
    Valid(RefEntry),
    Expired,
    Unknown,
}

impl Links {
    /// Issues `n` refs for `noise_key`: the first valid for `first_ms`, each
    /// later one for `next_ms` after the previous. Returns (ref, not_before, expires).
    pub fn issue(
        &self,
        noise_key: [u8; 32],
        now_ms: u64,
        n: u32,
        first_ms: u64,
        next_ms: u64,
    ) -> Vec<([u8; 16], u64, u64)> {
        let batch = {
            let mut b = self.next_batch.lock().expect("links lock");
            *b += 1;
            *b
        };
        let mut refs = self.refs.lock().expect("links lock");
        // Expired refs go, and so does this key's previous batch: one
        // batch per companion-to-be, so a guest cannot pile them up.
        refs.retain(|_, r| r.expires_ms > now_ms && r.noise_key != noise_key);
        let mut out = Vec::new();
        let mut start = now_ms;
        for i in 0..n {
            let end = start + if i == 0 { first_ms } else { next_ms };
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).expect("OS randomness");
            refs.insert(id, RefEntry { noise_key, expires_ms: end, batch });
            out.push((id, start, end));
            start = end;
        }
        out
    }

    pub fn lookup(&self, link_ref: &[u8], now_ms: u64) -> RefLookup {
        let Ok(id) = <[u8; 16]>::try_from(link_ref) else {
            return RefLookup::Unknown;
        };
        match self.refs.lock().expect("links lock").get(&id) {
            Some(r) if r.expires_ms >= now_ms => RefLookup::Valid(r.clone()),
            Some(_) => RefLookup::Expired,
            None => RefLookup::Unknown,
        }
    }

    /// Retires every ref of the batch (refs are single-use).
    pub fn retire(&self, batch: u64) {
        self.refs.lock().expect("links lock").retain(|_, r| r.batch != batch);
    }

    pub fn hold_approval(&self, noise_key: [u8; 32], approval: LinkApproved, now_ms: u64) {
        let mut a = self.approvals.lock().expect("links lock");
        a.retain(|_, (_, exp)| *exp > now_ms);
        a.insert(noise_key, (approval, now_ms + APPROVAL_TTL_MS));
    }

    pub fn take_approval(&self, noise_key: &[u8; 32], now_ms: u64) -> Option<LinkApproved> {
        let (approval, expires) = self.approvals.lock().expect("links lock").remove(noise_key)?;
        (expires > now_ms).then_some(approval)
    }

    /// Publishes an offer. False if another device holds that lookup id.
    pub fn publish_pairing(&self, lookup: [u8; 16], slot: PairingSlot, now_ms: u64) -> bool {
        let mut p = self.pairings.lock().expect("links lock");
        p.retain(|_, s| s.expires_ms > now_ms);
        if p.get(&lookup).is_some_and(|s| s.noise_key != slot.noise_key) {
            return false;
        }
        // One offer per companion-to-be: a new one replaces its previous.
        p.retain(|_, s| s.noise_key != slot.noise_key);
        p.insert(lookup, slot);
        true
    }

    pub fn pairing(&self, lookup: &[u8], now_ms: u64) -> Option<PairingSlot> {
        let id = <[u8; 16]>::try_from(lookup).ok()?;
        self.pairings.lock().expect("links lock").get(&id).filter(|s| s.expires_ms > now_ms).cloned()
    }
}
