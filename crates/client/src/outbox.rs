//! The outbox: what this device wrote and the server has not accepted yet.
//! Entries persist before anything is sent and go out in the order they
//! were written (a persisted sequence number), across restarts and outages.

use crate::effects::Effects;
use crate::error::Error;
use crate::model::OutboxEntry;
use crate::store::{KvStore, load_all};
use crate::sorted::Map;

const NS_OUTBOX: &str = "outbox";

#[derive(Default)]
pub struct Outbox {
    /// By message id.
    entries: Map<String, OutboxEntry>,
    /// Entries sent on the current connection, waiting for the server's answer.
    /// Entries sent on this connection, with the directory's serve
    /// generation when they were encrypted (see `Directory::served_again`).
    in_flight: Map<String, u64>,
}

impl Outbox {
    pub(crate) fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let entries = load_all::<OutboxEntry>(store, NS_OUTBOX, "outbox")?.into_iter().map(|o| (o.id.clone(), o)).collect();
        Ok(Self { entries, in_flight: Map::new() })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a message is still waiting for the server.
    pub fn contains(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    /// The ids of every entry still waiting: a host compares them before
    /// and after a command to learn what the command queued (a reaction,
    /// an edit, a setting synced to its other devices) and waits for those.
    pub fn ids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// The ids of a group's entries (messages and changes) still waiting,
    /// in the order they go: what a host waits on after a group command.
    pub fn group_ids(&self, group: &str) -> Vec<String> {
        let mut v: Vec<&OutboxEntry> = self.entries.values().filter(|o| o.group == group).collect();
        v.sort_by_key(|o| o.seq);
        v.into_iter().map(|o| o.id.clone()).collect()
    }

    /// Queues an entry behind every entry already queued.
    pub(crate) fn push(&mut self, mut entry: OutboxEntry, fx: &mut Effects) {
        entry.seq = self.entries.values().map(|o| o.seq).max().unwrap_or(0) + 1;
        fx.put(NS_OUTBOX, &entry.id, &entry);
        self.entries.insert(entry.id.clone(), entry);
    }

    /// Rewrites a queued entry in place (its order kept).
    pub(crate) fn replace(&mut self, entry: OutboxEntry, fx: &mut Effects) {
        if self.entries.contains_key(&entry.id) {
            fx.put(NS_OUTBOX, &entry.id, &entry);
            self.entries.insert(entry.id.clone(), entry);
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&OutboxEntry> {
        self.entries.get(id)
    }

    /// Every entry, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.entries.values()
    }

    /// Every entry, in the order it was written.
    pub(crate) fn in_send_order(&self) -> Vec<OutboxEntry> {
        let mut v: Vec<OutboxEntry> = self.entries.values().cloned().collect();
        v.sort_by(|a, b| (a.seq, a.created_ms, &a.id).cmp(&(b.seq, b.created_ms, &b.id)));
        v
    }

    pub(crate) fn is_in_flight(&self, id: &str) -> bool {
        self.in_flight.contains_key(id)
    }

    /// Sent, encrypted with the lists of serve generation `generation`.
    pub(crate) fn mark_in_flight(&mut self, id: &str, generation: u64) {
        self.in_flight.insert(id.to_string(), generation);
    }

    /// The server did not take it (yet): it goes again with the next pump.
    /// Returns the serve generation it was encrypted at.
    pub(crate) fn returned(&mut self, id: &str) -> u64 {
        self.in_flight.remove(id).unwrap_or(0)
    }

    /// Leaves the outbox (accepted by the server, or given up on).
    pub(crate) fn remove(&mut self, id: &str, fx: &mut Effects) -> Option<OutboxEntry> {
        self.in_flight.remove(id);
        let entry = self.entries.remove(id)?;
        fx.delete(NS_OUTBOX, id);
        Some(entry)
    }

    /// Ids of entries addressed to `handle`.
    pub(crate) fn addressed_to(&self, handle: &str) -> Vec<String> {
        self.entries().filter(|o| o.to.iter().any(|h| h == handle)).map(|o| o.id.clone()).collect()
    }

    /// The connection closed: nothing is in flight any more.
    pub(crate) fn disconnected(&mut self) {
        self.in_flight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, created_ms: u64) -> OutboxEntry {
        OutboxEntry { id: id.into(), to: vec!["bob".into()], to_them: vec![], to_me: vec![], created_ms, seq: 0, blob_ids: vec![], ..Default::default() }
    }

    #[test]
    fn entries_go_in_the_order_they_were_written_not_by_id() {
        let mut outbox = Outbox::default();
        let mut fx = Effects::default();
        for (i, id) in ["ff", "00", "7a", "01"].iter().enumerate() {
            outbox.push(entry(id, 1000 - i as u64), &mut fx);
        }
        let order: Vec<String> = outbox.in_send_order().into_iter().map(|o| o.id).collect();
        assert_eq!(order, ["ff", "00", "7a", "01"]);
        // A reload keeps the order (the sequence is persisted).
        let mut store = crate::store::MemoryStore::default();
        store.apply(&fx.ops).unwrap();
        let again = Outbox::load(&store).unwrap();
        assert_eq!(again.in_send_order().into_iter().map(|o| o.id).collect::<Vec<_>>(), order);
    }
}
