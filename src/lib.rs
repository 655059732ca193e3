//! The Tether extension's core, compiled to WebAssembly and run by the MV3
//! service worker (`background/worker.js`).
//!
//! This layer is thin: it wraps the sans-IO engine from `tether-client` in a
//! wasm-bindgen API and converts values to and from JavaScript. It is not a
//! public API; only `background/` calls it.
#![forbid(unsafe_code)]

use js_sys::{Object, Reflect};
use tether_client::{Engine, LinkState};
use wasm_bindgen::prelude::*;

/// The engine as the service worker sees it.
#[wasm_bindgen]
pub struct Core {
    /// The sans-IO engine that holds every protocol rule.
    inner: Engine,
}

#[wasm_bindgen]
impl Core {
    /// Start a core. Called once per service-worker start.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Core {
        Core {
            inner: Engine::new(),
        }
    }

    /// The snapshot the popup renders:
    /// `{ version, protocolVersion, linked, handle?, deviceId? }`.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        let status = self.inner.status();
        let out = Object::new();
        Reflect::set(&out, &"version".into(), &status.version.into())?;
        Reflect::set(
            &out,
            &"protocolVersion".into(),
            &status.protocol_version.into(),
        )?;
        match status.link {
            LinkState::Unlinked => {
                Reflect::set(&out, &"linked".into(), &false.into())?;
            }
            LinkState::Linked { handle, device_id } => {
                Reflect::set(&out, &"linked".into(), &true.into())?;
                Reflect::set(&out, &"handle".into(), &handle.into())?;
                Reflect::set(&out, &"deviceId".into(), &device_id.into())?;
            }
        }
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
        assert_eq!(
            get(&status, "version").as_string().as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(get(&status, "linked").as_bool(), Some(false));
        assert_eq!(
            get(&status, "protocolVersion").as_f64(),
            Some(f64::from(tether_proto::PROTOCOL_VERSION))
        );
        assert!(get(&status, "handle").is_undefined());
    }

    #[wasm_bindgen_test]
    fn version_matches_the_engine() {
        assert_eq!(version(), tether_client::VERSION);
    }
}
