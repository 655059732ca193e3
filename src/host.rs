//! What the core asks of the JavaScript that runs it (the service worker):
//! persist writes, show and clear notifications, publish updates. The core
//! decides; the host applies (chrome.storage.local, chrome.notifications,
//! the badge, menus and open popups).

use crate::media::Transfer;
use crate::snapshot::Update;
use crate::store::Writes;
use js_sys::Promise;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tether_client::Notification;
use wasm_bindgen::prelude::*;

/// The host as the core uses it (a trait, so tests can stand in for the worker).
pub trait Host {
    /// Persists one batch; the core sends nothing before it resolved.
    fn persist(&self, writes: &Writes) -> Promise;
    /// The history records of namespace `ns` whose keys start with
    /// `prefix`, in key order: resolves to `[key, value][]` (keys without `<ns>/`).
    fn read_history(&self, ns: &str, prefix: &str) -> Promise;
    /// Up to `limit` keys of namespace `ns` that start with `prefix`: resolves to `string[]`.
    fn history_keys(&self, ns: &str, prefix: &str, limit: u32) -> Promise;
    /// The values of these keys of `ns`: resolves to `(string | null)[]`.
    fn get_history(&self, ns: &str, keys: Vec<String>) -> Promise;
    /// Shows one notification (its id is the message id).
    fn show_notification(&self, notification: &Notification) -> Promise;
    /// Clears the shown notifications of `chat` (every one for `None`).
    fn clear_notifications(&self, chat: Option<&str>) -> Promise;
    /// The state changed: repaint badge, menus and popups.
    fn publish(&self, update: &Update);
    /// Start or stop moving a file's bytes (background/transfer.js).
    fn transfer(&self, order: &Transfer);
}

#[wasm_bindgen(typescript_custom_section)]
const HOST_TS: &'static str = r#"
/** What the core asks of the service worker (see src/host.rs). */
export interface Host {
  /** Persist one batch (history to IndexedDB, the rest to chrome.storage.local); nothing is sent before it resolves. */
  persist(writes: Writes): Promise<void>;
  /** History records of `ns` whose keys start with `prefix`, in key order, as [key, value] (key without `ns/`). */
  readHistory(ns: string, prefix: string): Promise<[string, string][]>;
  /** Up to `limit` history keys of `ns` that start with `prefix` (without `ns/`). */
  historyKeys(ns: string, prefix: string, limit: number): Promise<string[]>;
  /** The values of these history keys of `ns` (null where none). */
  getHistory(ns: string, keys: string[]): Promise<(string | null)[]>;
  /** Show one notification (id: the message id). */
  showNotification(notification: Notification): Promise<void>;
  /** Clear the shown notifications of a chat (all of them for null). */
  clearNotifications(chat: string | null): Promise<void>;
  /** The state changed: repaint the badge, menus and open popups. */
  publish(update: Update): void;
  /** Start or stop moving a file's bytes (an upload or download order). */
  transfer(order: Transfer): void;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// The worker's host object (`background/host.js`).
    #[wasm_bindgen(typescript_type = "Host")]
    pub type JsHost;

    #[wasm_bindgen(method, catch)]
    fn persist(this: &JsHost, writes: JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = readHistory)]
    fn read_history(this: &JsHost, ns: &str, prefix: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = historyKeys)]
    fn history_keys(this: &JsHost, ns: &str, prefix: &str, limit: u32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = getHistory)]
    fn get_history(this: &JsHost, ns: &str, keys: Vec<String>) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = showNotification)]
    fn show_notification(this: &JsHost, notification: JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = clearNotifications)]
    fn clear_notifications(this: &JsHost, chat: Option<String>) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn publish(this: &JsHost, update: JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn transfer(this: &JsHost, order: JsValue) -> Result<(), JsValue>;
}

/// A Rust value as a plain JS value: its JSON, parsed (objects, not Maps;
/// `null` for `None`), as the generated declarations say. Through JSON
/// rather than serde-wasm-bindgen: serde_json is in the core for the
/// engine's store anyway, and one serializer means one copy of each type's
/// serde code (the store's records cross too).
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    match serde_json::to_string(value) {
        Ok(json) => js_sys::JSON::parse(&json).unwrap_or_else(|e| e),
        Err(e) => JsValue::from(JsError::new(&e.to_string())),
    }
}

/// A plain JS value read as a Rust value, through its JSON (see [`to_js`];
/// `tether_client::json::from_slice`, as the store reads records, so no
/// second deserializer).
/// `undefined` reads as `null`.
pub fn from_js<T: DeserializeOwned>(value: &JsValue) -> Result<T, String> {
    let json = js_sys::JSON::stringify(value).map_err(|_| "not a JSON value".to_string())?;
    let json = JsValue::from(json).as_string().unwrap_or_else(|| "null".into());
    tether_client::json::from_slice(json.as_bytes()).map_err(|e| e.to_string())
}

/// A host call that threw: a rejected promise, so the caller's await sees it.
fn settle(r: Result<Promise, JsValue>) -> Promise {
    r.unwrap_or_else(|e| Promise::reject(&e))
}

impl Host for JsHost {
    fn persist(&self, writes: &Writes) -> Promise {
        settle(JsHost::persist(self, to_js(writes)))
    }

    fn read_history(&self, ns: &str, prefix: &str) -> Promise {
        settle(JsHost::read_history(self, ns, prefix))
    }

    fn history_keys(&self, ns: &str, prefix: &str, limit: u32) -> Promise {
        settle(JsHost::history_keys(self, ns, prefix, limit))
    }

    fn get_history(&self, ns: &str, keys: Vec<String>) -> Promise {
        settle(JsHost::get_history(self, ns, keys))
    }

    fn show_notification(&self, notification: &Notification) -> Promise {
        settle(JsHost::show_notification(self, to_js(notification)))
    }

    fn clear_notifications(&self, chat: Option<&str>) -> Promise {
        settle(JsHost::clear_notifications(self, chat.map(str::to_string)))
    }

    fn publish(&self, update: &Update) {
        if JsHost::publish(self, to_js(update)).is_err() {
            crate::log("the worker failed to apply an update");
        }
    }

    fn transfer(&self, order: &Transfer) {
        if JsHost::transfer(self, to_js(order)).is_err() {
            crate::log("the worker failed to start a transfer");
        }
    }
}
