//! `setTimeout` bound with wasm-bindgen: the global function, so it works
//! in a service worker and in a page alike.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// A pending callback; dropping it cancels the callback. The callback
/// must not drop its own `Timer` (the core's callbacks only queue an input).
pub struct Timer {
    id: JsValue,
    /// Keeps the JS function alive until it ran or was cancelled.
    _callback: Closure<dyn FnMut()>,
}

impl Timer {
    /// Calls `f` once after `ms` milliseconds (0 or less: on the next task).
    pub fn after(ms: f64, f: impl FnOnce() + 'static) -> Self {
        let callback = Closure::once(f);
        let id = set_timeout(callback.as_ref().unchecked_ref(), ms.max(0.0));
        Timer { id, _callback: callback }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}
