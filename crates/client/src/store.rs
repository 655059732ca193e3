//! Local persistence as a small key-value trait: namespaces of keys to
//! bytes, written in atomic batches. The engine loads what it needs at open
//! and writes a batch at the end of every input, before any frame it
//! produced is handed out — so nothing is sent that would be forgotten.
//!
//! Backends: [`MemoryStore`] (tests), SQLite (the CLI), browser storage
//! (the extension). All pass [`conformance::run`].

use std::collections::BTreeMap;

/// One write in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { ns: &'static str, key: String, value: Vec<u8> },
    Delete { ns: &'static str, key: String },
    /// Deletes everything (log out, device removed).
    Clear,
}

/// A key-value store with atomic batches.
pub trait KvStore {
    /// Every key and value of a namespace, in key order.
    fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String>;
    /// Applies all ops or none.
    fn apply(&mut self, ops: &[Op]) -> Result<(), String>;
    /// The keys and values of a namespace whose keys start with `prefix`,
    /// in key order; or `None` if this store keeps the namespace apart
    /// and its host reads it asynchronously (the message history in the
    /// browser: see [`HISTORY_NAMESPACES`] and `Engine::poll_want`).
    fn scan_prefix(&self, ns: &str, prefix: &str) -> Result<Option<Vec<(String, Vec<u8>)>>, String> {
        Ok(Some(self.scan(ns)?.into_iter().filter(|(k, _)| k.starts_with(prefix)).collect()))
    }
}

/// The namespaces of message history. A store may keep them apart and
/// read them on demand (`scan_prefix` answers `None`); the engine then
/// loads a chat's messages only when it needs them.
pub const HISTORY_NAMESPACES: [&str; 2] = [crate::chats::NS_MESSAGES, crate::chats::NS_WORDS];

/// Decodes a JSON record read from a store.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, crate::error::Error> {
    crate::json::from_slice(bytes).map_err(|e| crate::error::Error::Corrupt(format!("{what}: {e}")))
}

/// Every record of a namespace, decoded.
pub(crate) fn load_all<T: serde::de::DeserializeOwned>(store: &dyn KvStore, ns: &str, what: &str) -> Result<Vec<T>, crate::error::Error> {
    let rows = store.scan(ns).map_err(crate::error::Error::Store)?;
    rows.iter().map(|(_, v)| decode(what, v)).collect()
}

/// In-memory store.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    data: BTreeMap<(String, String), Vec<u8>>,
}

impl KvStore for MemoryStore {
    fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        Ok(self.data.iter().filter(|((n, _), _)| n == ns).map(|((_, k), v)| (k.clone(), v.clone())).collect())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), String> {
        for op in ops {
            match op {
                Op::Put { ns, key, value } => {
                    self.data.insert((ns.to_string(), key.clone()), value.clone());
                }
                Op::Delete { ns, key } => {
                    self.data.remove(&(ns.to_string(), key.clone()));
                }
                Op::Clear => self.data.clear(),
            }
        }
        Ok(())
    }
}

/// The behaviour every backend must have.
pub mod conformance {
    use super::*;

    pub fn run(store: &mut dyn KvStore) {
        assert!(store.scan("a").unwrap().is_empty());
        store
            .apply(&[
                Op::Put { ns: "a", key: "2".into(), value: b"two".to_vec() },
                Op::Put { ns: "a", key: "1".into(), value: b"one".to_vec() },
                Op::Put { ns: "b", key: "1".into(), value: b"other".to_vec() },
            ])
            .unwrap();
        assert_eq!(store.scan("a").unwrap(), vec![("1".into(), b"one".to_vec()), ("2".into(), b"two".to_vec())]);
        store.apply(&[Op::Put { ns: "a", key: "1".into(), value: b"uno".to_vec() }, Op::Delete { ns: "a", key: "2".into() }]).unwrap();
        assert_eq!(store.scan("a").unwrap(), vec![("1".into(), b"uno".to_vec())]);
        assert_eq!(store.scan("b").unwrap().len(), 1, "namespaces are separate");
        store.apply(&[Op::Delete { ns: "a", key: "missing".into() }]).unwrap();
        store.apply(&[Op::Put { ns: "a", key: "10".into(), value: b"ten".to_vec() }]).unwrap();
        if let Some(rows) = store.scan_prefix("a", "1").unwrap() {
            assert_eq!(rows, vec![("1".into(), b"uno".to_vec()), ("10".into(), b"ten".to_vec())], "a prefix scan is in key order");
        }
        store.apply(&[Op::Delete { ns: "a", key: "10".into() }]).unwrap();
        store.apply(&[Op::Clear, Op::Put { ns: "c", key: "k".into(), value: vec![] }]).unwrap();
        assert!(store.scan("a").unwrap().is_empty() && store.scan("b").unwrap().is_empty(), "clear wipes everything");
        assert_eq!(store.scan("c").unwrap(), vec![("k".into(), vec![])], "ops after a clear in the same batch apply");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_store_passes_the_conformance_suite() {
        super::conformance::run(&mut super::MemoryStore::default());
    }
}
