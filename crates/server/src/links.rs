//! Link rendezvous, in memory: link refs handed to companions-to-be, pairing
//! slots relaying a PAKE between a guest and a device, and approvals waiting
//! for a companion that went offline. All of it lives minutes at most; a
//! restart only means "show a new code".
//!
//! Every table is a [`BoundedMap`]: capped in total and per source (the
//! peer's IP address, or its /64 for IPv6), expired in time order, never
//! scanned on the request path. One mutex guards them all; every operation
//! under it is O(1) amortised (a batch of refs: O(refs per batch)).

use crate::bounded::{BoundedMap, Refused};
use crate::router::ConnHandle;
use std::collections::HashMap;
use std::mem::size_of;
use std::net::IpAddr;
use std::sync::Mutex;
use tether_proto::frames::LinkApproved;

/// How long an approval waits for a companion that was offline when its
/// primary approved it.
pub const APPROVAL_TTL_MS: u64 = 10 * 60 * 1000;
/// Most replies each side of a pairing slot may relay.
pub const MAX_PAIRING_REPLIES: u8 = 4;

/// Where a request comes from, for the per-source caps: an IPv4 address, or
/// the /64 network of an IPv6 address (one host usually has a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    /// The address (or /64) counted.
    pub fn ip(&self) -> IpAddr {
        self.0
    }

    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Source(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Source(IpAddr::V6(bits.into()))
                }
            },
        }
    }
}

/// Caps of the rendezvous tables (from the config).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub ref_batches: usize,
    pub pairings: usize,
    pub approvals: usize,
    pub per_source: u32,
}

/// One issued link ref, as `lookup` reports it.
#[derive(Debug, Clone)]
pub struct RefEntry {
    /// The companion-to-be's Noise static key: it becomes the device's key.
    pub noise_key: [u8; 32],
    /// Refs of one request share a batch; using one retires the batch.
    pub batch: u64,
}

/// One guest key's refs.
#[derive(Debug)]
struct Batch {
    id: u64,
    /// (ref, expires_ms), in issue order.
    refs: Vec<([u8; 16], u64)>,
}

/// A pairing slot: a guest's first PAKE message, waiting for one device.
#[derive(Debug)]
pub struct PairingSlot {
    /// The guest connection that published it (the slot dies with it).
    pub owner: ConnHandle,
    pub payload: Vec<u8>,
    /// The device that fetched it (handle, device id): the only one that
    /// may fetch it again or reply.
    pub claimer: Option<(String, u32)>,
    /// Replies relayed so far from the owner and from the claimer.
    pub replies: [u8; 2],
}

/// Who sends a `PairingReply`.
#[derive(Debug)]
pub enum Replier<'a> {
    /// A guest connection (by its connection id).
    Guest(u64),
    Device(&'a str, u32),
}

/// Where a `PairingReply` goes.
#[derive(Debug)]
pub enum ReplyTo {
    /// The guest that owns the slot.
    Owner(ConnHandle),
    /// The device that claimed it (its live connection, if any).
    Claimer(String, u32),
}

/// Why a pairing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingError {
    /// Another guest holds that slot.
    Taken,
    /// No such slot, claimed by someone else, or not the caller's.
    Unknown,
    /// This side relayed [`MAX_PAIRING_REPLIES`] replies already.
    TooManyReplies,
    Refused(Refused),
}

/// What the rendezvous tables hold now (see [`Links::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Ref batches (one per guest key that asked for refs).
    pub ref_batches: usize,
    /// Refs in those batches.
    pub refs: usize,
    /// Pairing slots.
    pub pairings: usize,
    /// Approvals waiting for an offline companion.
    pub approvals: usize,
    /// Estimated memory of all of it, tables and contents, in bytes.
    pub bytes: usize,
}

impl Footprint {
    /// Entries of all tables.
    pub fn entries(&self) -> usize {
        self.ref_batches + self.refs + self.pairings + self.approvals
    }
}

#[derive(Debug)]
struct Tables {
    /// Guest Noise key -> its one batch of refs.
    batches: BoundedMap<[u8; 32], Batch, Source>,
    /// Ref -> the key whose batch holds it. Holds exactly the refs of
    /// `batches`.
    refs: HashMap<[u8; 16], [u8; 32]>,
    /// Slot number -> slot.
    pairings: BoundedMap<u16, PairingSlot, Source>,
    /// Guest connection id -> its one slot. Holds exactly the owners of
    /// `pairings`.
    slot_of: HashMap<u64, u16>,
    /// Companion Noise key -> its held approval.
    approvals: BoundedMap<[u8; 32], LinkApproved, Source>,
    next_batch: u64,
}

#[derive(Debug)]
pub struct Links {
    tables: Mutex<Tables>,
}

/// What looking up a ref found.
#[derive(Debug)]
pub enum RefLookup {
    Valid(RefEntry),
    Expired,
    Unknown,
}

impl Links {
    pub fn new(caps: Caps) -> Self {
        Self {
            tables: Mutex::new(Tables {
                batches: BoundedMap::new(caps.ref_batches, caps.per_source),
                refs: HashMap::new(),
                pairings: BoundedMap::new(caps.pairings, caps.per_source),
                slot_of: HashMap::new(),
                approvals: BoundedMap::new(caps.approvals, caps.per_source),
                // Random, so batch ids of several nodes do not collide.
                next_batch: {
                    let mut b = [0u8; 8];
                    getrandom::fill(&mut b).expect("OS randomness");
                    u64::from_le_bytes(b) >> 1
                },
            }),
        }
    }

    fn lock(&self, now_ms: u64) -> std::sync::MutexGuard<'_, Tables> {
        let mut t = self.tables.lock().expect("links lock");
        t.expire(now_ms);
        t
    }

    /// Issues `n` refs for `noise_key`: the first valid for `first_ms`, each
    /// later one for `next_ms` after the previous. Returns (ref, not_before,
    /// expires). The key's previous batch is dropped.
    pub fn issue(
        &self,
        noise_key: [u8; 32],
        source: Source,
        now_ms: u64,
        n: u32,
        first_ms: u64,
        next_ms: u64,
    ) -> Result<Vec<([u8; 16], u64, u64)>, Refused> {
        let mut t = self.lock(now_ms);
        t.batches.room(&noise_key, &source)?;
        t.next_batch += 1;
        let mut batch = Batch { id: t.next_batch, refs: Vec::with_capacity(n as usize) };
        let mut out = Vec::with_capacity(n as usize);
        let mut start = now_ms;
        for i in 0..n {
            let end = start + if i == 0 { first_ms } else { next_ms };
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).expect("OS randomness");
            batch.refs.push((id, end));
            out.push((id, start, end));
            start = end;
        }
        let heap = batch.refs.capacity() * size_of::<([u8; 16], u64)>();
        let ids: Vec<[u8; 16]> = batch.refs.iter().map(|r| r.0).collect();
        if let Some(old) = t.batches.insert(noise_key, batch, source, start, heap)? {
            t.forget_refs(&old);
        }
        for id in ids {
            t.refs.insert(id, noise_key);
        }
        Ok(out)
    }

    pub fn lookup(&self, link_ref: &[u8], now_ms: u64) -> RefLookup {
        let Ok(id) = <[u8; 16]>::try_from(link_ref) else {
            return RefLookup::Unknown;
        };
        let t = self.lock(now_ms);
        let Some(key) = t.refs.get(&id) else {
            return RefLookup::Unknown;
        };
        let Some((batch, _)) = t.batches.get(key) else {
            return RefLookup::Unknown;
        };
        match batch.refs.iter().find(|r| r.0 == id) {
            Some(&(_, expires_ms)) if expires_ms >= now_ms => {
                RefLookup::Valid(RefEntry { noise_key: *key, batch: batch.id })
            }
            Some(_) => RefLookup::Expired,
            None => RefLookup::Unknown,
        }
    }

    /// Retires every ref of the entry's batch (refs are single-use);
    /// false if this node holds no such batch.
    pub fn retire(&self, entry: &RefEntry, now_ms: u64) -> bool {
        let mut t = self.lock(now_ms);
        if t.batches.get(&entry.noise_key).is_some_and(|(b, _)| b.id == entry.batch)
            && let Some(old) = t.batches.remove(&entry.noise_key)
        {
            t.forget_refs(&old);
            return true;
        }
        false
    }

    /// Is there room to hold an approval from `source`?
    pub fn approval_room(&self, noise_key: &[u8; 32], source: Source, now_ms: u64) -> Result<(), Refused> {
        self.lock(now_ms).approvals.room(noise_key, &source)
    }

    pub fn hold_approval(
        &self,
        noise_key: [u8; 32],
        approval: LinkApproved,
        source: Source,
        now_ms: u64,
    ) -> Result<(), Refused> {
        let heap = prost::Message::encoded_len(&approval);
        let mut t = self.lock(now_ms);
        t.approvals.insert(noise_key, approval, source, now_ms + APPROVAL_TTL_MS, heap).map(|_| ())
    }

    pub fn take_approval(&self, noise_key: &[u8; 32], now_ms: u64) -> Option<LinkApproved> {
        self.lock(now_ms).approvals.remove(noise_key)
    }

    /// Publishes the guest connection `owner`'s slot `slot` until
    /// `expires_ms`, replacing the connection's previous slot.
    pub fn publish_pairing(
        &self,
        slot: u16,
        owner: ConnHandle,
        payload: Vec<u8>,
        source: Source,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<(), PairingError> {
        let mut t = self.lock(now_ms);
        if t.pairings.get(&slot).is_some_and(|(s, _)| s.owner.id != owner.id) {
            return Err(PairingError::Taken);
        }
        // One slot per connection: the new one replaces the old.
        t.drop_pairing_of(owner.id);
        let conn_id = owner.id;
        let heap = payload.capacity();
        let new = PairingSlot { owner, payload, claimer: None, replies: [0, 0] };
        t.pairings.insert(slot, new, source, expires_ms, heap).map_err(PairingError::Refused)?;
        t.slot_of.insert(conn_id, slot);
        Ok(())
    }

    /// Whether a guest here holds slot `slot`.
    pub fn has_pairing(&self, slot: u16, now_ms: u64) -> bool {
        self.lock(now_ms).pairings.get(&slot).is_some()
    }

    /// A device fetches slot `slot`: the first fetch claims it; only the
    /// claimer may fetch it again.
    pub fn fetch_pairing(&self, slot: u16, device: (&str, u32), now_ms: u64) -> Result<Vec<u8>, PairingError> {
        let mut t = self.lock(now_ms);
        let s = t.pairings.get_mut(&slot).ok_or(PairingError::Unknown)?;
        match &s.claimer {
            None => s.claimer = Some((device.0.to_string(), device.1)),
            Some((h, d)) if h == device.0 && *d == device.1 => {}
            Some(_) => return Err(PairingError::Unknown),
        }
        Ok(s.payload.clone())
    }

    /// Counts a reply on slot `slot` from `from` and says where it goes.
    pub fn reply_pairing(&self, slot: u16, from: Replier<'_>, now_ms: u64) -> Result<ReplyTo, PairingError> {
        let mut t = self.lock(now_ms);
        let s = t.pairings.get_mut(&slot).ok_or(PairingError::Unknown)?;
        let (side, to) = match from {
            Replier::Guest(conn) if conn == s.owner.id => {
                let (h, d) = s.claimer.clone().ok_or(PairingError::Unknown)?;
                (1, ReplyTo::Claimer(h, d))
            }
            Replier::Device(h, d) if s.claimer.as_ref().is_some_and(|c| c.0 == h && c.1 == d) => {
                (0, ReplyTo::Owner(s.owner.clone()))
            }
            _ => return Err(PairingError::Unknown),
        };
        if s.replies[side] >= MAX_PAIRING_REPLIES {
            return Err(PairingError::TooManyReplies);
        }
        s.replies[side] += 1;
        Ok(to)
    }

    /// The guest connection `conn_id` closed or became a device: its slot goes.
    pub fn drop_pairing_of(&self, conn_id: u64) {
        self.tables.lock().expect("links lock").drop_pairing_of(conn_id);
    }

    /// What the tables hold, and their estimated memory.
    pub fn footprint(&self, now_ms: u64) -> Footprint {
        let t = self.lock(now_ms);
        Footprint {
            ref_batches: t.batches.len(),
            refs: t.refs.len(),
            pairings: t.pairings.len(),
            approvals: t.approvals.len(),
            bytes: t.batches.bytes()
                + t.refs.capacity() * (size_of::<([u8; 16], [u8; 32])>() + 1)
                + t.pairings.bytes()
                + t.slot_of.capacity() * (size_of::<(u64, u16)>() + 1)
                + t.approvals.bytes(),
        }
    }
}

impl Tables {
    fn expire(&mut self, now_ms: u64) {
        let Tables { batches, refs, pairings, slot_of, approvals, .. } = self;
        batches.expire(now_ms, |_, b| {
            for (id, _) in &b.refs {
                refs.remove(id);
            }
        });
        pairings.expire(now_ms, |_, s| {
            slot_of.remove(&s.owner.id);
        });
        approvals.expire(now_ms, |_, _| {});
    }

    fn forget_refs(&mut self, batch: &Batch) {
        for (id, _) in &batch.refs {
            self.refs.remove(id);
        }
    }

    fn drop_pairing_of(&mut self, conn_id: u64) {
        if let Some(slot) = self.slot_of.remove(&conn_id)
            && self.pairings.get(&slot).is_some_and(|(s, _)| s.owner.id == conn_id)
        {
            self.pairings.remove(&slot);
        }
    }
}
