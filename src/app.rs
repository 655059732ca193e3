//! The phone web app's exports (feature `app`): the same core in the
//! primary role. Register an account, link a companion from its QR (read
//! from the camera with [`crate::scan`]) or its pairing code, list and log
//! out the account's devices, and the recovery phrase. Every command runs
//! in the core's queue like the extension's (persisted, then sent); what
//! the screens show arrives in the snapshot's `primary` part.

use crate::Core;
use crate::core::command;
use crate::primary::{LinkError, LinkFailure, LinkProgress};
use crate::settings::clean_server;
use js_sys::Promise;
use serde::Serialize;
use tether_client::Error;
use tsify::Tsify;
use wasm_bindgen::prelude::*;

/// What scanning (or pasting) a link code gave.
#[derive(Debug, Clone, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct ScanOutcome {
    /// A companion asks to be linked: the snapshot's `primary.request` says who.
    pub ok: bool,
    pub error: Option<LinkError>,
}

/// Longest display name kept (characters).
const DISPLAY_NAME_MAX: usize = 64;

#[wasm_bindgen]
impl Core {
    /// Registers this device as the primary of a new account `handle` on
    /// `server` (the page's origin). Resolves once the request is queued;
    /// the snapshot's `account` appears when the server agreed, `error`
    /// says why not (a handle taken).
    pub fn register(
        &self,
        handle: String,
        #[wasm_bindgen(js_name = displayName)] display_name: String,
        server: String,
    ) -> Promise {
        command(&self.shared, move |shared, s, now| {
            let server = clean_server(&server);
            s.engine.register(&handle, &server, now).map_err(|e| e.to_string())?;
            s.settings.server = server;
            s.settings.configured = true;
            s.settings.display_name = display_name.trim().chars().take(DISPLAY_NAME_MAX).collect();
            s.settings_dirty = true;
            s.error = None;
            s.connect(shared);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// A QR read by the camera (or a pasted `tether://link#…`): checked,
    /// then the snapshot's `primary.request` asks "Link Chrome on Linux?".
    #[wasm_bindgen(js_name = linkFromUri, unchecked_return_type = "Promise<ScanOutcome>")]
    pub fn link_from_uri(&self, text: String) -> Promise {
        command(&self.shared, move |_, s, _| {
            s.primary.error = None;
            let outcome = match s.engine.link_from_uri(text.trim()) {
                Ok(_) => ScanOutcome { ok: true, error: None },
                Err(e) => {
                    let kind = match &e {
                        Error::WrongServer(_) => LinkFailure::WrongServer,
                        Error::NotPrimary => LinkFailure::Other,
                        _ => LinkFailure::NotTether,
                    };
                    ScanOutcome { ok: false, error: Some(LinkError { kind, message: e.to_string() }) }
                }
            };
            Ok(crate::host::to_js(&outcome))
        })
    }

    /// The 8-character pairing code the companion shows: the request (with
    /// the 6-digit confirmation) follows once both sides proved it.
    #[wasm_bindgen(js_name = linkWithCode, unchecked_return_type = "Promise<void>")]
    pub fn link_with_code(&self, code: String) -> Promise {
        command(&self.shared, move |_, s, now| {
            s.primary.error = None;
            s.primary.request = None;
            s.engine.link_with_code(&code, now).map_err(|e| e.to_string())?;
            s.primary.progress = Some(LinkProgress::Pairing);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The person confirmed "Link Chrome on Linux?": sign it in, approve,
    /// send the history. Resolves to the new device's id.
    #[wasm_bindgen(js_name = confirmLink, unchecked_return_type = "Promise<number>")]
    pub fn confirm_link(&self) -> Promise {
        command(&self.shared, move |_, s, now| {
            let device = s.engine.confirm_link(now).map_err(|e| e.to_string())?;
            s.primary.request = None;
            s.primary.progress = Some(LinkProgress::Approving);
            Ok(JsValue::from(device))
        })
    }

    /// Forgets the link on show (declined, done, or the screen was left).
    #[wasm_bindgen(js_name = clearLink, unchecked_return_type = "Promise<void>")]
    pub fn clear_link(&self) -> Promise {
        command(&self.shared, move |_, s, _| {
            s.primary.request = None;
            s.primary.progress = None;
            s.primary.error = None;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Asks the server for the account's devices (`primary.devices` follows).
    #[wasm_bindgen(js_name = requestDevices, unchecked_return_type = "Promise<void>")]
    pub fn request_devices(&self) -> Promise {
        command(&self.shared, move |_, s, now| {
            s.engine.request_devices(now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string())
        })
    }

    /// Logs a companion out: a new signed list without it; the server
    /// closes its connection and it wipes itself.
    #[wasm_bindgen(js_name = removeDevice, unchecked_return_type = "Promise<void>")]
    pub fn remove_device(&self, #[wasm_bindgen(js_name = deviceId)] device_id: u32) -> Promise {
        command(&self.shared, move |_, s, now| {
            s.engine.remove_device(device_id, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string())
        })
    }

    /// The account key as 24 words, to write down (a primary only). A
    /// query, not a command: nothing changes, nothing is sent.
    #[wasm_bindgen(js_name = recoveryPhrase)]
    pub fn recovery_phrase(&self) -> Result<String, JsError> {
        self.shared.state.borrow().engine.recovery_phrase().map_err(|e| JsError::new(&e.to_string()))
    }

    /// Rebuilds the account `handle` from its recovery phrase on this
    /// device, which becomes the primary again.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn restore(&self, handle: String, phrase: String, server: String) -> Promise {
        command(&self.shared, move |shared, s, now| {
            let server = clean_server(&server);
            s.engine.restore(&handle, &server, &phrase, now).map_err(|e| e.to_string())?;
            s.settings.server = server;
            s.settings.configured = true;
            s.settings_dirty = true;
            s.error = None;
            s.connect(shared);
            Ok(JsValue::UNDEFINED)
        })
    }
}
