//! A map whose entries expire, bounded in total and per source: the shape
//! of every in-memory table a peer can make the server fill (link refs,
//! pairing slots, held approvals, claim and lookup counters).
//!
//! - **Bounded**: at most `cap` entries, and at most `per_source` entries
//!   from one source (an IP address or /64 network, an account). A full map
//!   refuses new keys; replacing an entry under the same key always fits.
//! - **Expiry in O(1) amortised**: entries are queued by expiry time. Every
//!   caller of one map uses one constant lifetime (or a lifetime from `now`
//!   that only grows), so the queue is in time order and [`BoundedMap::expire`]
//!   pops from its front. An entry replaced or removed early leaves a stale
//!   queue item, recognised by its sequence number and skipped; when stale
//!   items outnumber live entries the queue is compacted once, which costs
//!   O(live) after at least as many insertions: O(1) per insertion.
//! - **Accounted**: each entry carries an estimate of its heap bytes, so
//!   [`BoundedMap::bytes`] is the map's memory footprint.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::mem::size_of;

/// Why an insertion was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The map holds `cap` entries.
    Full,
    /// The source holds `per_source` entries.
    SourceFull,
}

#[derive(Debug)]
struct Entry<V, S> {
    value: V,
    source: S,
    expires_ms: u64,
    /// Matches the one queue item that is this entry's expiry.
    seq: u64,
    /// Heap bytes owned by `value` (estimated by the caller).
    heap: usize,
}

/// See the module documentation.
#[derive(Debug)]
pub struct BoundedMap<K, V, S> {
    entries: HashMap<K, Entry<V, S>>,
    /// (expires_ms, seq, key), in expiry order.
    queue: VecDeque<(u64, u64, K)>,
    /// Live entries per source; a source with none has no item.
    per_source: HashMap<S, u32>,
    cap: usize,
    per_source_cap: u32,
    next_seq: u64,
    /// Sum of the entries' `heap`.
    heap: usize,
}

impl<K: Hash + Eq + Clone, V, S: Hash + Eq + Clone> BoundedMap<K, V, S> {
    pub fn new(cap: usize, per_source_cap: u32) -> Self {
        Self {
            entries: HashMap::new(),
            queue: VecDeque::new(),
            per_source: HashMap::new(),
            cap,
            per_source_cap,
            next_seq: 0,
            heap: 0,
        }
    }

    /// Removes every entry that expired before `now_ms` (`expires_ms <
    /// now_ms`) and hands each to `gone` (to clean up indexes).
    pub fn expire(&mut self, now_ms: u64, mut gone: impl FnMut(K, V)) {
        while let Some(&(expires, seq, _)) = self.queue.front() {
            if expires >= now_ms {
                break;
            }
            let (_, _, key) = self.queue.pop_front().expect("front exists");
            if self.entries.get(&key).is_some_and(|e| e.seq == seq)
                && let Some(v) = self.remove(&key)
            {
                gone(key, v);
            }
        }
    }

    /// Would an entry from `source` under `key` fit?
    pub fn room(&self, key: &K, source: &S) -> Result<(), Refused> {
        let old = self.entries.get(key);
        let same_source = old.is_some_and(|e| e.source == *source);
        if old.is_none() && self.entries.len() >= self.cap {
            return Err(Refused::Full);
        }
        let held = self.per_source.get(source).copied().unwrap_or(0);
        if !same_source && held >= self.per_source_cap {
            return Err(Refused::SourceFull);
        }
        Ok(())
    }

    /// Inserts (or replaces) `key`, living until `expires_ms`. Returns the
    /// value it replaced. Refused (and nothing changed) when it does not fit.
    pub fn insert(&mut self, key: K, value: V, source: S, expires_ms: u64, heap: usize) -> Result<Option<V>, Refused> {
        self.room(&key, &source)?;
        let old = self.remove(&key);
        let seq = self.push_expiry(expires_ms, &key);
        *self.per_source.entry(source.clone()).or_insert(0) += 1;
        self.heap += heap;
        self.entries.insert(key, Entry { value, source, expires_ms, seq, heap });
        Ok(old)
    }

    /// The live value under `key` and when it expires (an entry expired but
    /// not purged yet is returned too: callers compare with `now`).
    pub fn get(&self, key: &K) -> Option<(&V, u64)> {
        self.entries.get(key).map(|e| (&e.value, e.expires_ms))
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key).map(|e| &mut e.value)
    }

    /// Moves `key`'s expiry to `expires_ms` (which must not be earlier than
    /// any expiry queued before: callers pass `now` plus a constant).
    pub fn extend(&mut self, key: &K, expires_ms: u64) {
        if !self.entries.contains_key(key) {
            return;
        }
        let seq = self.push_expiry(expires_ms, key);
        if let Some(e) = self.entries.get_mut(key) {
            e.expires_ms = expires_ms;
            e.seq = seq;
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let e = self.entries.remove(key)?;
        self.heap -= e.heap;
        if let Some(n) = self.per_source.get_mut(&e.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&e.source);
            }
        }
        Some(e.value)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries held by `source`.
    #[cfg(test)]
    pub fn held_by(&self, source: &S) -> u32 {
        self.per_source.get(source).copied().unwrap_or(0)
    }

    /// Estimated memory: the tables' allocations plus the entries' heap.
    pub fn bytes(&self) -> usize {
        self.entries.capacity() * (size_of::<K>() + size_of::<Entry<V, S>>() + 1)
            + self.queue.capacity() * size_of::<(u64, u64, K)>()
            + self.per_source.capacity() * (size_of::<S>() + size_of::<u32>() + 1)
            + self.heap
    }

    fn push_expiry(&mut self, expires_ms: u64, key: &K) -> u64 {
        self.next_seq += 1;
        // More stale items than live entries (plus slack): drop the stale
        // ones. At least `len + 64` insertions happened since the last
        // compaction, so this is O(1) per insertion.
        if self.queue.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.queue.retain(|(_, seq, k)| entries.get(k).is_some_and(|e| e.seq == *seq));
            self.queue.shrink_to(2 * self.entries.len() + 64);
        }
        self.queue.push_back((expires_ms, self.next_seq, key.clone()));
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_in_total_and_per_source_and_replacing_always_fits() {
        let mut m: BoundedMap<u32, (), u8> = BoundedMap::new(3, 2);
        m.insert(1, (), 0, 10, 0).unwrap();
        m.insert(2, (), 0, 10, 0).unwrap();
        assert_eq!(m.insert(3, (), 0, 10, 0), Err(Refused::SourceFull));
        assert_eq!(m.insert(2, (), 0, 11, 0), Ok(Some(())), "replacing fits");
        m.insert(3, (), 1, 10, 0).unwrap();
        assert_eq!(m.insert(4, (), 2, 10, 0), Err(Refused::Full));
        assert_eq!(m.len(), 3);
        m.remove(&1);
        assert_eq!(m.held_by(&0), 1);
        m.insert(4, (), 2, 10, 0).unwrap();
    }

    #[test]
    fn expiry_pops_in_time_order_and_skips_replaced_entries() {
        let mut m: BoundedMap<u32, u32, u8> = BoundedMap::new(100, 100);
        m.insert(1, 1, 0, 10, 0).unwrap();
        m.insert(2, 2, 0, 20, 0).unwrap();
        m.insert(1, 11, 0, 30, 0).unwrap();
        let mut gone = vec![];
        m.expire(25, |k, v| gone.push((k, v)));
        assert_eq!(gone, vec![(2, 2)], "key 1 was replaced and lives until 30");
        m.expire(31, |k, v| gone.push((k, v)));
        assert_eq!(gone, vec![(2, 2), (1, 11)]);
        assert_eq!(m.len(), 0);
        assert_eq!(m.held_by(&0), 0);
    }

    #[test]
    fn replacing_one_key_forever_keeps_the_queue_small() {
        let mut m: BoundedMap<u32, (), u8> = BoundedMap::new(10, 10);
        for t in 0..100_000 {
            m.insert(7, (), 0, 1_000_000 + t, 0).unwrap();
        }
        assert!(m.queue.len() <= 2 * m.len() + 65, "queue {}", m.queue.len());
    }
}
