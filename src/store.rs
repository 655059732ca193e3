//! The engine's `KvStore` in the browser: an in-memory mirror of
//! `chrome.storage.local` that logs every write until the host persists it,
//! and, apart from it, the message history in IndexedDB.
//!
//! Keys in chrome.storage.local are `kv/<ns>/<key>`, values base64: the
//! device, contacts, chat summaries, the outbox: small, loaded at every
//! wake. The history namespaces (`HISTORY_NAMESPACES`: messages and their
//! word index) go to IndexedDB (`<ns>/<key>` → the value as text) and are
//! never loaded at wake: the engine asks for a chat when it needs it
//! (`Engine::poll_want`) and the core reads it through the host. Both
//! stores are written by the same persist, IndexedDB first, and the core
//! awaits it before any frame leaves (docs/architecture.md).
//!
//! History an older version kept in chrome.storage.local is loaded once
//! more and moved: the engine writes it again (to IndexedDB) and its old
//! keys are removed in the same persist.

use crate::settings::Settings;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use tether_client::sorted::Map;
use tether_client::store::{HISTORY_NAMESPACES, KvStore, Op};
use tsify::Tsify;

/// Storage key prefix in chrome.storage.local: `kv/<ns>/<key>`.
pub const PREFIX: &str = "kv/";
/// The extension's settings, beside the engine's keys (a log-out clears
/// the engine's keys, never the settings).
pub const SETTINGS_KEY: &str = "settings";

/// One write for the host to persist.
enum Write {
    Put(String, Vec<u8>),
    Delete(String),
    Clear,
}

#[derive(Default)]
struct Mirror {
    data: Map<(String, String), Vec<u8>>,
    pending: Vec<Write>,
    /// History writes for IndexedDB, in order (`None`: delete).
    history: Vec<(String, Option<String>)>,
}

fn is_history(ns: &str) -> bool {
    HISTORY_NAMESPACES.contains(&ns)
}

/// What the host writes to chrome.storage.local, in this order: with
/// `clear`, remove every `kv/` key; then remove `remove`; then set `set`
/// (and `settings` under the key `settings`, when present).
#[derive(Debug, Default, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct Writes {
    /// Remove every `kv/` key and everything in IndexedDB first.
    pub clear: bool,
    /// `kv/<ns>/<key>` → base64 value.
    #[tsify(type = "Map<string, string>")]
    #[serde(serialize_with = "tether_client::sorted::object::serialize")]
    pub set: Map<String, String>,
    pub remove: Vec<String>,
    pub settings: Option<Settings>,
    /// IndexedDB, written before the rest: `<ns>/<key>` → value (text).
    #[tsify(type = "Record<string, string>")]
    #[serde(serialize_with = "tether_client::sorted::object::serialize")]
    pub history_set: Map<String, String>,
    /// IndexedDB keys to delete (after `history_set`'s puts... never the
    /// same key: a later write of a key replaces an earlier one).
    pub history_remove: Vec<String>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        !self.clear && self.set.is_empty() && self.remove.is_empty() && self.settings.is_none() && self.history_set.is_empty() && self.history_remove.is_empty()
    }
}

/// The mirror, shared by the engine (which writes through it) and the core
/// (which takes the writes).
#[derive(Clone, Default)]
pub struct MirrorStore(Rc<RefCell<Mirror>>);

fn storage_key(ns: &str, key: &str) -> String {
    format!("{PREFIX}{ns}/{key}")
}

impl MirrorStore {
    /// Loads one stored entry; keys outside `kv/` and unreadable values are
    /// skipped (they are not the engine's).
    #[cfg(test)]
    pub fn load(&self, key: &str, base64: &str) {
        self.load_all([(key.to_string(), base64.to_string())]);
    }

    /// Loads stored entries (storage key, base64 value), as [`Self::load`]
    /// does one, sorting them once.
    pub fn load_all(&self, entries: impl IntoIterator<Item = (String, String)>) {
        let entries = entries.into_iter().filter_map(|(key, base64)| {
            let (ns, key) = key.strip_prefix(PREFIX)?.split_once('/')?;
            Some(((ns.to_string(), key.to_string()), B64.decode(base64).ok()?))
        });
        self.0.borrow_mut().data.extend(entries);
    }

    /// The writes since the last call, folded into one batch.
    pub fn take_writes(&self) -> Writes {
        let pending = std::mem::take(&mut self.0.borrow_mut().pending);
        let history = std::mem::take(&mut self.0.borrow_mut().history);
        let mut w = Writes::default();
        for (key, value) in history {
            match value {
                Some(v) => {
                    w.history_remove.retain(|r| *r != key);
                    w.history_set.insert(key, v);
                }
                None => {
                    w.history_set.remove(&key);
                    w.history_remove.push(key);
                }
            }
        }
        for write in pending {
            match write {
                Write::Clear => {
                    w.clear = true;
                    w.set.clear();
                    w.remove.clear();
                    w.history_set.clear();
                    w.history_remove.clear();
                }
                Write::Put(k, v) => {
                    w.remove.retain(|r| *r != k);
                    w.set.insert(k, B64.encode(v));
                }
                Write::Delete(k) => {
                    w.set.remove(&k);
                    w.remove.push(k);
                }
            }
        }
        w
    }

    /// Writes not yet taken.
    #[cfg(test)]
    pub fn pending_len(&self) -> usize {
        self.0.borrow().pending.len()
    }
}

impl KvStore for MirrorStore {
    /// (For a history namespace: only what an older version kept in
    /// chrome.storage.local, to move.)
    fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        let m = self.0.borrow();
        Ok(m.data.iter().filter(|((n, _), _)| n == ns).map(|((_, k), v)| (k.clone(), v.clone())).collect())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), String> {
        let mut m = self.0.borrow_mut();
        for op in ops {
            match op {
                Op::Put { ns, key, value } if is_history(ns) => {
                    let text = String::from_utf8(value.clone()).map_err(|_| format!("a {ns} record is not text"))?;
                    m.history.push((format!("{ns}/{key}"), Some(text)));
                    if m.data.remove(&(ns.to_string(), key.clone())).is_some() {
                        // Moved out of chrome.storage.local.
                        m.pending.push(Write::Delete(storage_key(ns, key)));
                    }
                }
                Op::Delete { ns, key } if is_history(ns) => {
                    m.history.push((format!("{ns}/{key}"), None));
                    if m.data.remove(&(ns.to_string(), key.clone())).is_some() {
                        m.pending.push(Write::Delete(storage_key(ns, key)));
                    }
                }
                Op::Put { ns, key, value } => {
                    m.data.insert((ns.to_string(), key.clone()), value.clone());
                    m.pending.push(Write::Put(storage_key(ns, key), value.clone()));
                }
                Op::Delete { ns, key } => {
                    m.data.remove(&(ns.to_string(), key.clone()));
                    m.pending.push(Write::Delete(storage_key(ns, key)));
                }
                Op::Clear => {
                    m.data.clear();
                    m.history.clear();
                    m.pending.push(Write::Clear);
                }
            }
        }
        Ok(())
    }

    /// History is in IndexedDB: the core reads it through the host.
    fn scan_prefix(&self, ns: &str, prefix: &str) -> Result<Option<Vec<(String, Vec<u8>)>>, String> {
        if is_history(ns) {
            return Ok(None);
        }
        Ok(Some(self.scan(ns)?.into_iter().filter(|(k, _)| k.starts_with(prefix)).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_passes_the_kv_store_conformance_suite() {
        tether_client::store::conformance::run(&mut MirrorStore::default());
    }

    #[test]
    fn history_goes_to_indexeddb_and_history_kept_the_old_way_moves_there() {
        let mut store = MirrorStore::default();
        // An older version kept a message in chrome.storage.local.
        store.load("kv/messages/bob/0001/aa", "eyJ4IjoxfQ==");
        assert_eq!(store.scan("messages").unwrap().len(), 1, "what is left to move");
        assert_eq!(store.scan_prefix("messages", "bob/").unwrap(), None, "history is read through the host");
        store
            .apply(&[
                Op::Put { ns: "messages", key: "bob/0001/aa".into(), value: br#"{"x":1}"#.to_vec() },
                Op::Put { ns: "words", key: "hello/bob/0001/aa".into(), value: vec![] },
                Op::Put { ns: "chats", key: "bob".into(), value: b"{}".to_vec() },
                Op::Delete { ns: "words", key: "hello/bob/0001/aa".into() },
            ])
            .unwrap();
        let w = store.take_writes();
        assert_eq!(w.history_set.into_iter().collect::<Vec<_>>(), [("messages/bob/0001/aa".to_string(), r#"{"x":1}"#.to_string())]);
        assert_eq!(w.history_remove, ["words/hello/bob/0001/aa"]);
        assert_eq!(w.remove, ["kv/messages/bob/0001/aa"], "moved out of chrome.storage.local");
        assert_eq!(w.set.keys().collect::<Vec<_>>(), ["kv/chats/bob"]);
        assert!(store.scan("messages").unwrap().is_empty(), "moved once");
        store.apply(&[Op::Put { ns: "messages", key: "k".into(), value: vec![0xff] }]).unwrap_err();
    }

    #[test]
    fn entries_load_in_any_order_and_scan_in_key_order() {
        let store = MirrorStore::default();
        // "one", "two", "three", in the order chrome.storage.local may give them.
        store.load_all([
            ("kv/a/2".to_string(), "dHdv".to_string()),
            ("settings".to_string(), "ignored".to_string()),
            ("kv/b/1".to_string(), "dGhyZWU=".to_string()),
            ("kv/a/1".to_string(), "b25l".to_string()),
            ("kv/a/3".to_string(), "not base64!".to_string()),
        ]);
        assert_eq!(store.scan("a").unwrap(), vec![("1".to_string(), b"one".to_vec()), ("2".to_string(), b"two".to_vec())]);
        assert_eq!(store.scan("b").unwrap(), vec![("1".to_string(), b"three".to_vec())]);
    }

    #[test]
    fn writes_fold_into_one_batch_in_order() {
        let mut store = MirrorStore::default();
        store
            .apply(&[
                Op::Put { ns: "a", key: "1".into(), value: b"one".to_vec() },
                Op::Put { ns: "a", key: "2".into(), value: b"two".to_vec() },
                Op::Delete { ns: "a", key: "1".into() },
            ])
            .unwrap();
        let w = store.take_writes();
        assert!(!w.clear);
        assert_eq!(w.remove, ["kv/a/1"]);
        assert_eq!(w.set.keys().collect::<Vec<_>>(), ["kv/a/2"]);
        assert_eq!(store.pending_len(), 0);
        store.apply(&[Op::Put { ns: "a", key: "3".into(), value: vec![] }, Op::Clear]).unwrap();
        let w = store.take_writes();
        assert!(w.clear && w.set.is_empty() && w.remove.is_empty());
        // What was written loads back.
        let again = MirrorStore::default();
        again.load("kv/a/2", "dHdv");
        again.load("settings", "ignored");
        assert_eq!(again.scan("a").unwrap(), vec![("2".to_string(), b"two".to_vec())]);
    }
}
