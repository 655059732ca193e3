//! The Tether extension's core, compiled to WebAssembly and run by the MV3
//! service worker (`background/worker.js`).
//!
//! This layer is thin: it wraps the sans-IO engine from `tether-client` in a
//! wasm-bindgen API and converts values to and from JavaScript. It is not a
//! public API; only `background/` calls it.
#![forbid(unsafe_code)]

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

/// The core as the service worker sees it.
#[wasm_bindgen]
pub struct Core {
    /// Whether a linked session is held. The worker does not link yet (the
    /// companion flow runs in the engine natively; its browser adapter is
    /// the next step), so a fresh core is unlinked.
    linked: bool,
}

#[wasm_bindgen]
impl Core {
    /// Start a core. Called once per service-worker start.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Core {
        Core { linked: false }
    }

    /// The snapshot the popup renders: `{ version, protocolVersion, linked }`.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        let out = Object::new();
        Reflect::set(&out, &"version".into(), &tether_client::VERSION.into())?;
        Reflect::set(&out, &"protocolVersion".into(), &tether_proto::PROTOCOL_VERSION.into())?;
        Reflect::set(&out, &"linked".into(), &self.linked.into())?;
        Ok(out.into())
    }
}

impl Default for Core {
    fn default() -> Self {
        Self::new()
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
    fn status_reports_version_and_unlinked_state_to_js() {
        let status = Core::new().status().expect("status converts to JS");
        assert_eq!(get(&status, "version").as_string().as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(get(&status, "linked").as_bool(), Some(false));
        assert_eq!(get(&status, "protocolVersion").as_f64(), Some(f64::from(tether_proto::PROTOCOL_VERSION)));
        assert!(get(&status, "handle").is_undefined());
    }

    #[wasm_bindgen_test]
    fn version_matches_the_engine() {
        assert_eq!(version(), tether_client::VERSION);
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
}
