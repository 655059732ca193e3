//! The Tether extension's core, compiled to WebAssembly and run by the MV3
//! service worker (`background/worker.js`).
//!
//! This layer is thin: it wraps the sans-IO engine from `tether-client` in a
//! wasm-bindgen API and converts values to and from JavaScript (JSON
//! strings, parsed by the worker). It is not a public API; only
//! `background/` calls it.
//!
//! Persistence: the engine writes through [`MirrorStore`], an in-memory copy
//! of `chrome.storage.local` that records every write. After each input the
//! worker takes the writes (`takeWrites`), awaits
//! `chrome.storage.local.set/remove`, and only then sends the frames the
//! engine produced — so nothing leaves that a worker stop could forget.
#![forbid(unsafe_code)]

mod convert;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use js_sys::{Object, Reflect};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use tether_client::store::{KvStore, Op};
use tether_client::{ClientInfo, Engine, Random, Role};
use wasm_bindgen::prelude::*;

/// Storage key prefix in chrome.storage.local: `kv/<ns>/<key>`.
const PREFIX: &str = "kv/";

/// One write for the worker to persist.
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

/// The engine's store in the browser: an in-memory mirror of
/// chrome.storage.local plus the log of writes not yet persisted.
#[derive(Clone, Default)]
struct MirrorStore(Rc<RefCell<Mirror>>);

fn storage_key(ns: &str, key: &str) -> String {
    format!("{PREFIX}{ns}/{key}")
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

struct BrowserRandom;
impl Random for BrowserRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom_fill(buf);
    }
}

#[cfg(target_arch = "wasm32")]
fn getrandom_fill(buf: &mut [u8]) {
    getrandom_04::fill(buf).expect("crypto.getRandomValues");
}

#[cfg(not(target_arch = "wasm32"))]
fn getrandom_fill(buf: &mut [u8]) {
    // Native builds of this crate (cargo test --workspace) never run the
    // core; the engine's own tests use the OS generator.
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
}

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// The engine as the service worker sees it.
#[wasm_bindgen]
pub struct Core {
    inner: Engine,
    store: MirrorStore,
    /// The latest link code shown (from engine events), for snapshots.
    link: Option<convert::LinkCode>,
}

#[wasm_bindgen]
impl Core {
    /// Opens the core over what chrome.storage.local holds: `entries` is a
    /// JSON object `{ "kv/<ns>/<key>": "<base64>", … }` (other keys ignored).
    #[wasm_bindgen(js_name = open)]
    pub fn open(platform: &str, name: &str, entries: &str) -> Result<Core, JsError> {
        let store = MirrorStore::default();
        {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(entries).map_err(err)?;
            let mut m = store.0.borrow_mut();
            for (k, v) in map {
                let Some(rest) = k.strip_prefix(PREFIX) else { continue };
                let Some((ns, key)) = rest.split_once('/') else { continue };
                let Some(b64) = v.as_str() else { continue };
                let bytes = B64.decode(b64).map_err(err)?;
                m.data.insert((ns.to_string(), key.to_string()), bytes);
            }
        }
        let info = ClientInfo {
            client_version: format!("tether-extension {}", tether_client::VERSION),
            platform: platform.to_string(),
            name: name.to_string(),
        };
        let inner = Engine::open(Box::new(store.clone()), Box::new(BrowserRandom), info).map_err(err)?;
        Ok(Core { inner, store, link: None })
    }

    /// The writes since the last call, as JSON for the worker to persist:
    /// `{ "clear": bool, "set": { key: base64 }, "remove": [key] }` (apply
    /// clear first, then remove, then set).
    #[wasm_bindgen(js_name = takeWrites)]
    pub fn take_writes(&mut self) -> String {
        let pending = std::mem::take(&mut self.store.0.borrow_mut().pending);
        let mut clear = false;
        let mut set = serde_json::Map::new();
        let mut remove = Vec::new();
        for w in pending {
            match w {
                Write::Clear => {
                    clear = true;
                    set.clear();
                    remove.clear();
                }
                Write::Put(k, v) => {
                    remove.retain(|r: &String| *r != k);
                    set.insert(k, B64.encode(v).into());
                }
                Write::Delete(k) => {
                    set.remove(&k);
                    remove.push(k);
                }
            }
        }
        serde_json::json!({ "clear": clear, "set": set, "remove": remove }).to_string()
    }

    /// The snapshot parts the core knows (the worker adds its own).
    pub fn snapshot(&self) -> String {
        convert::snapshot(&self.inner, self.link.as_ref()).to_string()
    }

    /// A chat's messages, oldest first (JSON array).
    pub fn messages(&self, chat: &str) -> String {
        convert::messages(&self.inner, chat).to_string()
    }

    /// The `n` most recent chats (JSON array of {handle, name}), for menus.
    #[wasm_bindgen(js_name = recentChats)]
    pub fn recent_chats(&self, n: usize) -> String {
        convert::recent(&self.inner, n).to_string()
    }

    /// Unread messages in chats that are not muted.
    pub fn unread(&self) -> u32 {
        self.inner.unread_unmuted()
    }

    #[wasm_bindgen(js_name = isLinked)]
    pub fn is_linked(&self) -> bool {
        !matches!(self.inner.role(), Role::Unlinked { .. })
    }

    /// Whether the engine wants a connection (linked, or linking).
    #[wasm_bindgen(js_name = wantsConnection)]
    pub fn wants_connection(&self) -> bool {
        self.is_linked() || self.link.is_some()
    }

    #[wasm_bindgen(js_name = isOpen)]
    pub fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    #[wasm_bindgen(js_name = serverUrl)]
    pub fn server_url(&self) -> String {
        self.inner.server_url().to_string()
    }

    /// Whether a message should raise a notification: incoming, in a chat
    /// that is not muted, and not already read (on another device).
    #[wasm_bindgen(js_name = shouldNotify)]
    pub fn should_notify(&self, chat: &str, id: &str) -> bool {
        let Some(c) = self.inner.chat(chat) else { return false };
        !c.muted && self.inner.messages(chat).iter().any(|m| m.id == id && !m.from_me && m.time_ms > c.read_up_to_ms)
    }

    /// The snapshot the first-slice tests read: `{ version, protocolVersion, linked }`.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        let out = Object::new();
        Reflect::set(&out, &"version".into(), &tether_client::VERSION.into())?;
        Reflect::set(&out, &"protocolVersion".into(), &tether_proto::PROTOCOL_VERSION.into())?;
        Reflect::set(&out, &"linked".into(), &self.is_linked().into())?;
        Ok(out.into())
    }

    // ---------------------------------------------------------- inputs

    #[wasm_bindgen(js_name = handleConnected)]
    pub fn handle_connected(&mut self, now: f64) {
        self.inner.handle_connected(now as u64);
    }

    #[wasm_bindgen(js_name = handleMessage)]
    pub fn handle_message(&mut self, bytes: &[u8], now: f64) {
        self.inner.handle_message(bytes, now as u64);
    }

    #[wasm_bindgen(js_name = handleDisconnected)]
    pub fn handle_disconnected(&mut self, now: f64, reason: &str) {
        self.inner.handle_disconnected(now as u64, reason);
    }

    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now: f64) {
        self.inner.handle_timeout(now as u64);
    }

    // --------------------------------------------------------- outputs

    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.inner.poll_transmit()
    }

    /// The next event as JSON (`{kind, …}`), or undefined.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Option<String> {
        let e = self.inner.poll_event()?;
        match &e {
            tether_client::Event::LinkCode { uri, expires_ms, index, total } => {
                let svg = qr_svg(uri);
                let code = self.link.as_ref().and_then(|l| l.pairing_code.clone());
                self.link = Some(convert::LinkCode {
                    uri: uri.clone(),
                    qr_svg: svg,
                    expires_ms: *expires_ms,
                    index: *index,
                    total: *total,
                    pairing_code: code,
                    exhausted: false,
                });
            }
            tether_client::Event::PairingCode { code } => {
                if let Some(l) = &mut self.link {
                    l.pairing_code = Some(code.clone());
                }
            }
            tether_client::Event::LinkCodesExhausted => {
                if let Some(l) = &mut self.link {
                    l.exhausted = true;
                }
            }
            tether_client::Event::Linked { .. } | tether_client::Event::Unlinked { .. } => self.link = None,
            _ => {}
        }
        Some(convert::event(&e).to_string())
    }

    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.inner.poll_timeout().map(|t| t as f64)
    }

    #[wasm_bindgen(js_name = pollClose)]
    pub fn poll_close(&mut self) -> Option<String> {
        self.inner.poll_close()
    }

    // -------------------------------------------------------- commands

    /// Starts linking through `server` (a new QR; with a pairing code too).
    #[wasm_bindgen(js_name = startLink)]
    pub fn start_link(&mut self, server: &str, with_code: bool, now: f64) -> Result<(), JsError> {
        self.link = Some(convert::LinkCode::pending());
        self.inner.start_link(server, with_code, now as u64).map_err(err)
    }

    #[wasm_bindgen(js_name = sendText)]
    pub fn send_text(&mut self, chat: &str, text: &str, now: f64) -> Result<String, JsError> {
        self.ensure_contact(chat, now)?;
        self.inner.send_text(chat, text, now as u64).map_err(err)
    }

    #[wasm_bindgen(js_name = sendLink)]
    pub fn send_link(&mut self, chat: &str, url: &str, title: &str, selection: &str, now: f64) -> Result<String, JsError> {
        self.ensure_contact(chat, now)?;
        self.inner.send_link(chat, url, title, selection, now as u64).map_err(err)
    }

    #[wasm_bindgen(js_name = markRead)]
    pub fn mark_read(&mut self, chat: &str, now: f64) -> Result<(), JsError> {
        self.inner.mark_read(chat, now as u64).map_err(err)
    }

    #[wasm_bindgen(js_name = setFlags)]
    pub fn set_flags(&mut self, chat: &str, muted: bool, archived: bool, pinned: bool, now: f64) -> Result<(), JsError> {
        self.inner.set_chat_flags(chat, muted, archived, pinned, now as u64).map_err(err)
    }

    #[wasm_bindgen(js_name = addContact)]
    pub fn add_contact(&mut self, handle: &str, name: &str, now: f64) -> Result<(), JsError> {
        self.inner.add_contact(handle, name, now as u64).map_err(err)
    }

    pub fn logout(&mut self, now: f64) -> Result<(), JsError> {
        self.inner.logout(now as u64).map_err(err)
    }

    fn ensure_contact(&mut self, chat: &str, now: f64) -> Result<(), JsError> {
        let handle = tether_proto::normalize_handle(chat).map_err(err)?;
        if self.inner.contact(&handle).is_none() {
            self.inner.add_contact(&handle, "", now as u64).map_err(err)?;
        }
        Ok(())
    }
}

/// A QR code as SVG (black on white with a quiet zone, so it scans in dark mode too).
#[wasm_bindgen(js_name = qrSvg)]
pub fn qr_svg(text: &str) -> String {
    use qrcode::render::svg;
    match qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<svg::Color>()
            .min_dimensions(240, 240)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// The core's version (the workspace version).
#[wasm_bindgen]
pub fn version() -> String {
    tether_client::VERSION.to_string()
}

#[cfg(all(test, target_arch = "wasm32"))]
mod wasm_tests {
    use super::*;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn get(obj: &JsValue, key: &str) -> JsValue {
        Reflect::get(obj, &key.into()).expect("status is an object")
    }

    #[wasm_bindgen_test]
    fn a_fresh_core_reports_its_version_and_is_unlinked() {
        let core = Core::open("chrome/linux", "Chrome on Linux", "{}").unwrap();
        let status = core.status().expect("status converts to JS");
        assert_eq!(get(&status, "version").as_string().as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(get(&status, "linked").as_bool(), Some(false));
        assert_eq!(get(&status, "protocolVersion").as_f64(), Some(f64::from(tether_proto::PROTOCOL_VERSION)));
        let snap: serde_json::Value = serde_json::from_str(&core.snapshot()).unwrap();
        assert_eq!(snap["state"], "unlinked");
    }

    #[wasm_bindgen_test]
    fn keys_made_in_the_browser_persist_and_reload() {
        let mut core = Core::open("chrome/linux", "Chrome on Linux", "{}").unwrap();
        let writes: serde_json::Value = serde_json::from_str(&core.take_writes()).unwrap();
        let set = writes["set"].as_object().unwrap().clone();
        assert!(set.keys().any(|k| k == "kv/self/me"), "the new device's keys are written: {set:?}");
        assert!(set.keys().any(|k| k == "kv/olm/account"));
        // Reopen from exactly what was written: the same device comes back
        // (a fresh one would write new keys).
        let again = Core::open("chrome/linux", "Chrome on Linux", &serde_json::Value::Object(set).to_string()).unwrap();
        assert_eq!(again.take_writes_len(), 0, "reopening the stored device writes nothing");
    }

    #[wasm_bindgen_test]
    fn qr_codes_render_as_svg() {
        let svg = qr_svg("tether://link#abc");
        assert!(svg.starts_with("<?xml") || svg.contains("<svg"), "{svg}");
        assert!(svg.contains("#000000") && svg.contains("#ffffff"));
    }

    /// The protocol crate's crypto runs in the browser: a Noise handshake
    /// between two in-page peers, with keys from crypto.getRandomValues.
    #[wasm_bindgen_test]
    fn noise_handshake_runs_in_the_browser() {
        use tether_proto::frames::{ClientHello, ServerHello};
        use tether_proto::noise::{ClientHandshake, ServerHandshake, StaticKey};
        let server = StaticKey::generate();
        let client = StaticKey::generate();
        let pin = tether_proto::Fingerprint::of(&server.public());
        let (expect, m1) = ClientHandshake::start(&client, Some(pin)).unwrap();
        let hello = ServerHello { server_version: "t".into(), protocol: 1, time_ms: 0 };
        let (expect_client, m2) = ServerHandshake::handle(&server, &m1, &hello).unwrap();
        let (mut c, m3) = expect.handle(&m2).unwrap().finish(&ClientHello { client_version: "w".into() }).unwrap();
        let mut s = expect_client.handle(&m3).unwrap().transport;
        let sealed = c.encrypt(b"frame").unwrap();
        assert_eq!(s.decrypt(&sealed).unwrap(), b"frame");
    }

    impl Core {
        fn take_writes_len(&self) -> usize {
            self.store.0.borrow().pending.len()
        }
    }
}
