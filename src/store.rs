//! The engine's `KvStore` in the browser: an in-memory mirror of
//! `chrome.storage.local` that logs every write until the host persists it.
//!
//! Keys are `kv/<ns>/<key>`, values base64. History lives here too (see
//! docs/architecture.md): one store means one ordered write path, and the
//! core awaits the host's write before any frame leaves.

use crate::settings::Settings;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use tether_client::store::{KvStore, Op};
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
    data: BTreeMap<(String, String), Vec<u8>>,
    pending: Vec<Write>,
}

/// What the host writes to chrome.storage.local, in this order: with
/// `clear`, remove every `kv/` key; then remove `remove`; then set `set`
/// (and `settings` under the key `settings`, when present).
#[derive(Debug, Default, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct Writes {
    pub clear: bool,
    /// `kv/<ns>/<key>` → base64 value.
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
    pub settings: Option<Settings>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        !self.clear && self.set.is_empty() && self.remove.is_empty() && self.settings.is_none()
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
    pub fn load(&self, key: &str, base64: &str) {
        let Some((ns, key)) = key.strip_prefix(PREFIX).and_then(|rest| rest.split_once('/')) else { return };
        if let Ok(bytes) = B64.decode(base64) {
            self.0.borrow_mut().data.insert((ns.to_string(), key.to_string()), bytes);
        }
    }

    /// The writes since the last call, folded into one batch.
    pub fn take_writes(&self) -> Writes {
        let pending = std::mem::take(&mut self.0.borrow_mut().pending);
        let mut w = Writes::default();
        for write in pending {
            match write {
                Write::Clear => {
                    w.clear = true;
                    w.set.clear();
                    w.remove.clear();
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
    fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        let m = self.0.borrow();
        Ok(m.data.iter().filter(|((n, _), _)| n == ns).map(|((_, k), v)| (k.clone(), v.clone())).collect())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), String> {
        let mut m = self.0.borrow_mut();
        for op in ops {
            match op {
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
                    m.pending.push(Write::Clear);
                }
            }
        }
        Ok(())
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
