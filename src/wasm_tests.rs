//! The core in a real browser (headless Chromium through
//! wasm-bindgen-test-runner): the socket against a real tether-server
//! (`cargo xtask test` starts one and passes its URL at compile time as
//! `TETHER_TEST_SERVER`), the persist-then-send order, the engine's timer,
//! reconnecting after the socket drops, and the crypto with the browser's
//! randomness.

use crate::core::Shared;
use crate::host::Host;
use crate::settings::{Settings, StoredSettings};
use crate::snapshot::{Connection, LinkState, Update};
use crate::store::{MirrorStore, Writes};
use crate::{Core, qr_svg};
use js_sys::{Function, Promise};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use tether_client::Notification;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: i32);
}

async fn sleep(ms: i32) {
    JsFuture::from(Promise::new(&mut |resolve, _| set_timeout(&resolve, ms))).await.unwrap();
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `secs`.
async fn until(what: &str, secs: u32, mut cond: impl FnMut() -> bool) {
    for _ in 0..secs * 50 {
        if cond() {
            return;
        }
        sleep(20).await;
    }
    panic!("timed out waiting for {what}");
}

/// What a test host does with a persist.
#[derive(Clone, Copy, PartialEq)]
enum Persist {
    /// Resolves at once.
    Ok,
    /// Stays pending until the test releases it.
    Hold,
    /// Rejects (storage failed).
    Fail,
}

/// The worker's stand-in: records what the core asks.
#[derive(Clone)]
struct TestHost(Rc<Recorded>);

struct Recorded {
    mode: Cell<Persist>,
    /// Every batch persisted (or asked to), in order.
    writes: RefCell<Vec<Writes>>,
    /// Resolvers of held persists.
    held: RefCell<Vec<Function>>,
    updates: Cell<usize>,
    shown: RefCell<Vec<String>>,
    /// What the history's IndexedDB would hold (`<ns>/<key>` → value).
    history: RefCell<std::collections::BTreeMap<String, String>>,
}

impl TestHost {
    fn new(mode: Persist) -> Self {
        TestHost(Rc::new(Recorded {
            mode: Cell::new(mode),
            writes: RefCell::default(),
            held: RefCell::default(),
            updates: Cell::new(0),
            shown: RefCell::default(),
            history: RefCell::default(),
        }))
    }

    /// Resolves every held persist; later ones resolve at once.
    fn release(&self) {
        self.0.mode.set(Persist::Ok);
        for resolve in self.0.held.borrow_mut().drain(..) {
            resolve.call0(&JsValue::NULL).unwrap();
        }
    }
}

impl Host for TestHost {
    fn persist(&self, writes: &Writes) -> Promise {
        {
            let mut h = self.0.history.borrow_mut();
            if writes.clear {
                h.clear();
            }
            for (k, v) in &writes.history_set {
                h.insert(k.clone(), v.clone());
            }
            for k in &writes.history_remove {
                h.remove(k);
            }
        }
        self.0.writes.borrow_mut().push(Writes {
            clear: writes.clear,
            set: writes.set.clone(),
            remove: writes.remove.clone(),
            settings: writes.settings.clone(),
            history_set: writes.history_set.clone(),
            history_remove: writes.history_remove.clone(),
        });
        match self.0.mode.get() {
            Persist::Ok => Promise::resolve(&JsValue::UNDEFINED),
            Persist::Fail => Promise::reject(&JsError::new("quota exceeded").into()),
            Persist::Hold => {
                let held = self.0.clone();
                Promise::new(&mut |resolve, _| held.held.borrow_mut().push(resolve))
            }
        }
    }

    fn read_history(&self, ns: &str, prefix: &str) -> Promise {
        let want = format!("{ns}/{prefix}");
        let rows: Vec<(String, String)> = self
            .0
            .history
            .borrow()
            .range(want.clone()..)
            .take_while(|(k, _)| k.starts_with(&want))
            .map(|(k, v)| (k[ns.len() + 1..].to_string(), v.clone()))
            .collect();
        Promise::resolve(&crate::host::to_js(&rows))
    }

    fn history_keys(&self, ns: &str, prefix: &str, limit: u32) -> Promise {
        let want = format!("{ns}/{prefix}");
        let keys: Vec<String> = self
            .0
            .history
            .borrow()
            .range(want.clone()..)
            .take_while(|(k, _)| k.starts_with(&want))
            .take(limit as usize)
            .map(|(k, _)| k[ns.len() + 1..].to_string())
            .collect();
        Promise::resolve(&crate::host::to_js(&keys))
    }

    fn get_history(&self, ns: &str, keys: Vec<String>) -> Promise {
        let h = self.0.history.borrow();
        let values: Vec<Option<String>> = keys.iter().map(|k| h.get(&format!("{ns}/{k}")).cloned()).collect();
        Promise::resolve(&crate::host::to_js(&values))
    }

    fn show_notification(&self, n: &Notification) -> Promise {
        self.0.shown.borrow_mut().push(n.id.clone());
        Promise::resolve(&JsValue::UNDEFINED)
    }

    fn clear_notifications(&self, _chat: Option<&str>) -> Promise {
        Promise::resolve(&JsValue::UNDEFINED)
    }

    fn publish(&self, _update: &Update) {
        self.0.updates.set(self.0.updates.get() + 1);
    }

    fn transfer(&self, _order: &crate::media::Transfer) {}
}

/// The server `cargo xtask test` started for this run.
fn server() -> &'static str {
    option_env!("TETHER_TEST_SERVER").expect("TETHER_TEST_SERVER is not set: run the wasm tests through `cargo xtask test`")
}

fn open(host: &TestHost, store: MirrorStore) -> Core {
    open_with(host, store, Settings::new("http://127.0.0.1:9", "Chrome on Linux", StoredSettings::default()))
}

fn open_with(host: &TestHost, store: MirrorStore, settings: Settings) -> Core {
    let shared = Shared::open(Box::new(host.clone()), store, "chrome/linux", settings).unwrap();
    Core { shared }
}

async fn done(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

impl Core {
    fn connection(&self) -> Connection {
        self.shared.state.borrow().connection
    }

    fn frames_sent(&self) -> u64 {
        self.shared.state.borrow().frames_sent
    }
}

#[wasm_bindgen_test]
async fn a_fresh_core_persists_its_keys_first_and_reopens_from_them() {
    let host = TestHost::new(Persist::Ok);
    let core = open(&host, MirrorStore::default());
    done(core.wake()).await.unwrap();
    let snap = core.shared.state.borrow().snapshot();
    assert_eq!(snap.state, LinkState::Setup);
    assert_eq!(snap.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(snap.protocol_version, tether_proto::PROTOCOL_VERSION);
    assert!(snap.account.is_none() && snap.link.is_none());
    assert!(host.0.updates.get() > 0, "the wake published a snapshot");
    let writes = host.0.writes.borrow();
    let first = writes.first().expect("the new device's keys are persisted");
    assert!(first.set.contains_key("kv/self/me") && first.set.contains_key("kv/olm/account"));
    // Reopen from exactly what was written: the same device comes back (a
    // fresh one would write new keys).
    let again = MirrorStore::default();
    for (k, v) in &first.set {
        again.load(k, v);
    }
    let reopened = open(&TestHost::new(Persist::Ok), again.clone());
    assert_eq!(again.pending_len(), 0, "reopening the stored device writes nothing");
    drop(reopened);
}

#[wasm_bindgen_test]
async fn connects_and_completes_the_handshake_with_a_real_server() {
    let host = TestHost::new(Persist::Ok);
    let core = open(&host, MirrorStore::default());
    // Confirming the server starts linking: connect, handshake, a QR.
    done(core.set_server(server().to_string())).await.unwrap();
    assert_eq!(core.connection(), Connection::Connecting);
    until("the handshake", 20, || core.connection() == Connection::Connected).await;
    until("a link code", 20, || core.shared.state.borrow().snapshot().link.is_some()).await;
    let snap = core.shared.state.borrow().snapshot();
    assert_eq!(snap.state, LinkState::Unlinked, "unlinked, showing a code");
    let link = snap.link.unwrap();
    assert!(link.uri.starts_with("tether://link#") && link.qr_svg.contains("<svg"));
    let fp = snap.server_fingerprint.expect("the server key is pinned");
    assert_eq!(fp.len(), 39, "eight groups of four: {fp}");
    assert_eq!(fp.matches('-').count(), 7);
    assert_eq!(snap.server, server());
    assert!(core.shared.state.borrow().engine.is_open());
    let settings = host.0.writes.borrow().iter().find_map(|w| w.settings.clone()).expect("settings persisted");
    assert!(settings.configured && settings.server == server());
}

#[wasm_bindgen_test]
async fn no_frame_leaves_before_the_host_persisted() {
    let host = TestHost::new(Persist::Hold);
    let core = open(&host, MirrorStore::default());
    let configured = core.set_server(server().to_string());
    // The command's writes (keys, settings) are held: the queue waits, so
    // the socket's open is not even handled yet.
    until("the first persist", 10, || !host.0.held.borrow().is_empty()).await;
    sleep(300).await;
    assert_eq!(core.frames_sent(), 0);
    host.release();
    done(configured).await.unwrap();
    // The handshake's first frame needs no write; the server's answer pins
    // its key (a write), and the frame that finishes the handshake must wait.
    host.0.mode.set(Persist::Hold);
    until("the pin's persist", 20, || !host.0.held.borrow().is_empty()).await;
    let sent = core.frames_sent();
    assert_eq!(sent, 1, "only the handshake's first message went out");
    sleep(500).await;
    assert_eq!(core.frames_sent(), sent, "nothing left while the write was pending");
    assert_ne!(core.connection(), Connection::Connected);
    host.release();
    until("the handshake", 20, || core.connection() == Connection::Connected).await;
    assert!(core.frames_sent() > sent);
}

#[wasm_bindgen_test]
async fn a_failed_persist_sends_nothing_and_says_so() {
    let host = TestHost::new(Persist::Fail);
    let core = open(&host, MirrorStore::default());
    let err = done(core.set_server(server().to_string())).await.expect_err("the command fails");
    assert!(err.dyn_ref::<js_sys::Error>().is_some_and(|e| String::from(e.message()).contains("storage")));
    assert_eq!(core.frames_sent(), 0);
    assert!(core.shared.state.borrow().error.as_deref().is_some_and(|e| e.contains("storage")));
}

#[wasm_bindgen_test]
async fn the_engine_timer_is_armed_for_the_keepalive() {
    let host = TestHost::new(Persist::Ok);
    let core = open(&host, MirrorStore::default());
    assert_eq!(core.shared.state.borrow().timer_at(), None, "nothing to time while offline");
    done(core.set_server(server().to_string())).await.unwrap();
    until("the handshake", 20, || core.connection() == Connection::Connected).await;
    let now = js_sys::Date::now() as u64;
    let at = core.shared.state.borrow().timer_at().expect("a timer is armed while connected");
    let engine_wants = core.shared.state.borrow().engine.poll_timeout().unwrap();
    assert_eq!(at, engine_wants, "armed for exactly what the engine asked");
    assert!(at > now && at <= now + tether_client::KEEPALIVE_MS, "within one keepalive interval: {at} vs {now}");
}

#[wasm_bindgen_test]
async fn reconnects_with_backoff_after_the_socket_drops() {
    let host = TestHost::new(Persist::Ok);
    let core = open(&host, MirrorStore::default());
    done(core.set_server(server().to_string())).await.unwrap();
    until("the handshake", 20, || core.connection() == Connection::Connected).await;
    assert_eq!(core.shared.state.borrow().backoff_attempts(), 0);
    // The connection drops (as when the network goes, or the server restarts).
    core.shared.state.borrow().drop_connection_for_test();
    until("the drop", 10, || core.connection() == Connection::Offline).await;
    assert_eq!(core.shared.state.borrow().backoff_attempts(), 1, "one reconnect scheduled");
    assert!(!core.shared.state.borrow().has_socket(), "no socket until the delay passed");
    until("the reconnect", 20, || core.connection() == Connection::Connected).await;
    assert_eq!(core.shared.state.borrow().backoff_attempts(), 0, "a handshake resets the backoff");
    until("a link code again", 20, || core.shared.state.borrow().snapshot().link.is_some()).await;
}

#[wasm_bindgen_test]
async fn a_stopped_worker_reconnects_on_wake() {
    // The worker stopped: a new core over the same storage, woken.
    let host = TestHost::new(Persist::Ok);
    let core = open(&host, MirrorStore::default());
    done(core.set_server(server().to_string())).await.unwrap();
    until("the handshake", 20, || core.connection() == Connection::Connected).await;
    let store = MirrorStore::default();
    let mut settings = None;
    for w in host.0.writes.borrow().iter() {
        for (k, v) in &w.set {
            store.load(k, v);
        }
        settings = w.settings.clone().or(settings);
    }
    drop(core);
    let host = TestHost::new(Persist::Ok);
    let again = open_with(&host, store, settings.expect("settings were persisted"));
    done(again.wake()).await.unwrap();
    // Not linked and no link asked for since the restart: no connection
    // wanted until a popup asks for a code.
    assert!(!again.shared.state.borrow().has_socket());
    done(again.popup_opened()).await.unwrap();
    assert!(again.shared.state.borrow().has_socket(), "a popup of an unlinked browser asks for a QR");
    until("the handshake", 20, || again.connection() == Connection::Connected).await;
    assert!(host.0.shown.borrow().is_empty(), "nothing owed on a fresh device");
}

#[wasm_bindgen_test]
fn qr_codes_render_as_svg() {
    let svg = qr_svg("tether://link#abc");
    assert!(svg.starts_with("<?xml") || svg.contains("<svg"), "{svg}");
    assert!(svg.contains("#000000") && svg.contains("#ffffff"));
}

#[wasm_bindgen_test]
fn handles_are_checked_by_the_protocol_rule() {
    let get = |v: &JsValue, k: &str| js_sys::Reflect::get(v, &k.into()).unwrap();
    let ok = crate::check_handle(" +15550000001 ");
    assert_eq!(get(&ok, "handle").as_string().as_deref(), Some("+15550000001"));
    assert!(get(&ok, "error").is_null(), "null, not undefined: the declared type is string | null");
    let bad = crate::check_handle("no spaces please");
    assert!(get(&bad, "handle").is_null() && get(&bad, "error").is_string());
    assert_eq!(crate::format_fingerprint(&"ab".repeat(32)), "abab-abab-abab-abab-abab-abab-abab-abab");
}

/// Search lowercases words in the browser with JavaScript's
/// `toLowerCase` (tether_client's `chats::lowercase`): the same words as
/// Rust's mapping, which the native engine and the CLI use.
#[wasm_bindgen_test]
fn search_words_are_lowercased_as_rust_does() {
    use tether_client::Engine;
    for word in ["ÄPFELSAFT", "Straße", "İstanbul", "ΟΔΟΣ", "ПРИВЕТ", "ǅemal", "ÉCOLE42", "plain"] {
        assert_eq!(Engine::search_word(word), Some(word.to_lowercase()), "{word}");
    }
    assert_eq!(Engine::search_word("Grüße an ÖSTERREICH!"), Some("österreich".into()));
    // Split as Rust's `char::is_alphanumeric` splits: the longest run of
    // each text as Rust finds it.
    let rust = |text: &str| {
        let runs: std::collections::BTreeSet<String> =
            text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
        runs.into_iter().max_by_key(|w| w.chars().count())
    };
    for text in [
        "x²³⁴⁵⁶ and a",
        "١٢٣٤٥٦٧ أرقام",
        "日本語のテキスト, ASCII",
        "नमस्ते दुनिया",
        "emoji 🎉party🎉time🎉",
        "ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ",
        "l'été—à Paris",
        "Ⅻ roman ⅫⅫⅫⅫⅫⅫ",
    ] {
        assert_eq!(Engine::search_word(text), rust(text), "{text}");
    }
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
