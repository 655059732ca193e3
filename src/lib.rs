//! The Tether extension's core, compiled to WebAssembly and run by the MV3
//! service worker (`background/`). It holds the linked session and the
//! socket: the sans-IO engine from `tether-client`, the WebSocket to the
//! server (web-sys), reconnects with backoff, the engine's timer, and the
//! persist-then-send pump. The worker only applies what the core asks for
//! through a [`host::Host`] (storage writes, notifications, badge, menus).
//!
//! Modules, top-down: `core` (the serial queue of inputs and the pump),
//! `snapshot` (what the popup paints), `primary` (what a primary shows:
//! link requests, devices), `chat` (what the message menu may offer),
//! `contact` and `group` (the info screens),
//! `settings`, `store` (the engine's
//! store: a mirror of chrome.storage.local), `host` (what the core asks of
//! the worker), `media` (file transfer orders, the format's per-chunk values,
//! the blob digest), `socket` (WebSocket), `timer` (setTimeout), `backoff`.
//!
//! Values cross the boundary as serde types through JSON (serde_json, which
//! the engine's store links anyway, and `JSON.parse`/`stringify`); the
//! TypeScript declarations come from the same Rust types (tsify), so
//! `wasm/tether_core.d.ts` types every call. Not a public API: only
//! `background/` calls it.
//!
//! With the cargo feature `app` the same core is the phone web app's
//! (`app/`, served by tether-server): `app` adds the primary's exports
//! (register, link a companion, devices, recovery) and `scan` (QR codes
//! in camera frames, rqrr). The extension's build leaves them out.
#![forbid(unsafe_code)]

#[cfg(feature = "app")]
mod app;
mod backoff;
mod chat;
mod contact;
mod core;
mod group;
mod host;
pub mod media;
mod primary;
#[cfg(feature = "app")]
pub mod scan;
mod settings;
mod snapshot;
mod socket;
mod store;
mod timer;
#[cfg(all(test, target_arch = "wasm32"))]
mod wasm_tests;

use crate::core::{Shared, chat_command, command, file_command};
use crate::host::{JsHost, from_js, to_js};
use crate::settings::{Settings, StoredSettings};
use crate::snapshot::RequestAction;
use crate::store::{MirrorStore, SETTINGS_KEY};
use js_sys::Promise;
use serde::de::IntoDeserializer;
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use tether_client::{ChatFlag, GroupOp};
use tsify::Tsify;

use wasm_bindgen::prelude::*;

/// Chats offered in the context menu.
pub const RECENT_CHATS: usize = 5;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(s: &str);
}

/// Logs a failure (what failed, never a key or message content).
pub(crate) fn log(what: &str) {
    #[cfg(target_arch = "wasm32")]
    console_warn(&format!("tether: {what}"));
    #[cfg(not(target_arch = "wasm32"))]
    let _ = what;
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn fill_random(buf: &mut [u8]) {
    getrandom_04::fill(buf).expect("crypto.getRandomValues");
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn fill_random(_buf: &mut [u8]) {
    // Native builds of this crate (cargo test --workspace) test only the
    // pure parts; the core itself runs in the browser.
    unreachable!("the core's randomness is crypto.getRandomValues (wasm32 only)");
}

/// The core as the service worker sees it. Commands return promises that
/// settle after their turn in the queue: persisted, then sent.
#[wasm_bindgen]
pub struct Core {
    shared: Rc<Shared>,
}

#[wasm_bindgen]
impl Core {
    /// Opens the core over what chrome.storage.local holds (`entries`, as
    /// `chrome.storage.local.get(null)` returns it: the engine's `kv/` keys
    /// and `settings`; other keys are ignored). `platform` is the id this
    /// device reports (`chrome/linux`); `defaultName` and `defaultServer`
    /// apply until the user changes them.
    pub fn open(
        host: JsHost,
        platform: &str,
        #[wasm_bindgen(js_name = defaultName)] default_name: &str,
        #[wasm_bindgen(js_name = defaultServer)] default_server: &str,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] entries: JsValue,
    ) -> Result<Core, JsError> {
        let store = MirrorStore::default();
        let mut stored = StoredSettings::default();
        let object: js_sys::Object = entries.dyn_into().map_err(|_| JsError::new("storage entries must be an object"))?;
        let mut kv = Vec::new();
        for pair in js_sys::Object::entries(&object) {
            let pair: js_sys::Array = pair.unchecked_into();
            let (key, value) = (pair.get(0).as_string().unwrap_or_default(), pair.get(1));
            if key == SETTINGS_KEY {
                stored = from_js(&value).unwrap_or_default();
            } else if let Some(b64) = value.as_string() {
                kv.push((key, b64));
            }
        }
        store.load_all(kv);
        let settings = Settings::new(default_server, default_name, stored);
        let shared = Shared::open(Box::new(host), store, platform, settings).map_err(|e| JsError::new(&e))?;
        Ok(Core { shared })
    }

    // ----------------------------------------------------------- queries

    /// Everything the popup shows.
    #[wasm_bindgen(unchecked_return_type = "Snapshot")]
    pub fn snapshot(&self) -> JsValue {
        to_js(&self.shared.state.borrow().snapshot())
    }

    /// Which of a chat's messages may be reacted to, edited or deleted
    /// for everyone now (the message menu).
    #[wasm_bindgen(js_name = messageActions, unchecked_return_type = "MessageActions")]
    pub fn message_actions(&self, chat: &str) -> JsValue {
        to_js(&chat::message_actions(&self.shared.state.borrow().engine, chat, js_sys::Date::now() as u64))
    }

    /// The last `limit` messages of a chat (more if `around` names an
    /// older one: from a few before it), oldest first, and how many the
    /// chat has: what a chat view shows, a page at a time.
    #[wasm_bindgen(js_name = messagePage, unchecked_return_type = "MessagePage")]
    pub fn message_page(&self, chat: &str, limit: usize, around: Option<String>) -> JsValue {
        let s = self.shared.state.borrow();
        let all = s.engine.messages(chat);
        let mut from = all.len().saturating_sub(limit);
        if let Some(i) = around.and_then(|id| all.iter().position(|m| m.id == id)) {
            from = from.min(i.saturating_sub(10));
        }
        to_js(&chat::MessagePage { messages: all[from..].to_vec(), total: all.len() })
    }

    /// Has a chat's messages loaded (once per wake, or after it left
    /// memory): `messages` then has them all.
    #[wasm_bindgen(js_name = loadChat, unchecked_return_type = "Promise<void>")]
    pub fn load_chat(&self, chat: String) -> Promise {
        chat_command(&self.shared, &chat, |_, _, _| Ok(JsValue::UNDEFINED))
    }

    /// Messages with every word of `query` (each starting a word), in
    /// `chat` or everywhere, newest first, at most `limit`: read from the
    /// history's word index, not from memory.
    #[wasm_bindgen(unchecked_return_type = "Promise<SearchHit[]>")]
    pub fn search(&self, query: String, chat: Option<String>, limit: usize) -> Promise {
        let shared = self.shared.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let hits = core::search(&shared, &query, chat.as_deref(), limit).await.map_err(|e| JsValue::from(JsError::new(&e)))?;
            Ok(to_js(&hits))
        })
    }

    /// The `n` most recent chats that are not archived (menus, the command).
    #[wasm_bindgen(js_name = recentChats, unchecked_return_type = "RecentChat[]")]
    pub fn recent_chats(&self, n: usize) -> JsValue {
        to_js(&snapshot::recent_chats(&self.shared.state.borrow().engine, n))
    }

    // ---------------------------------------------------------- commands

    /// The worker woke (start, alarm, popup): show owed notifications,
    /// connect if a connection is wanted, publish.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn wake(&self) -> Promise {
        command(&self.shared, |shared, s, _| {
            s.wake(shared);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// A popup opened: like `wake`, and an unlinked browser starts showing a QR.
    #[wasm_bindgen(js_name = popupOpened, unchecked_return_type = "Promise<void>")]
    pub fn popup_opened(&self) -> Promise {
        command(&self.shared, |shared, s, now| {
            s.ensure_link_code(shared, now);
            s.wake(shared);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The first-run screen confirmed a server (the worker checked `/healthz`).
    #[wasm_bindgen(js_name = setServer, unchecked_return_type = "Promise<void>")]
    pub fn set_server(&self, url: String) -> Promise {
        command(&self.shared, move |shared, s, now| {
            s.set_server(shared, &url, now);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Shows a new QR (and with `withCode`, a pairing code).
    #[wasm_bindgen(js_name = startLink, unchecked_return_type = "Promise<void>")]
    pub fn start_link(&self, #[wasm_bindgen(js_name = withCode)] with_code: bool) -> Promise {
        command(&self.shared, move |shared, s, now| s.start_link(shared, with_code, now).map(|()| JsValue::UNDEFINED))
    }

    /// Sends a text; resolves to the message id.
    #[wasm_bindgen(js_name = sendText, unchecked_return_type = "Promise<string>")]
    pub fn send_text(&self, chat: String, text: String) -> Promise {
        command(&self.shared, move |_, s, now| s.send_text(&chat, &text, now).map(JsValue::from))
    }

    /// Shares a page, link, selection or image, with the preview the
    /// worker made from the tab (background/preview.js) or null; resolves
    /// to the message id. A preview that does not read as a `LinkPreview`
    /// is left out: it never stops the link.
    #[wasm_bindgen(js_name = sendLink, unchecked_return_type = "Promise<string>")]
    pub fn send_link(&self, chat: String, url: String, title: String, selection: String, #[wasm_bindgen(unchecked_param_type = "LinkPreview | null")] preview: JsValue) -> Promise {
        let preview: Option<tether_client::LinkPreview> = from_js(&preview).ok().flatten();
        command(&self.shared, move |_, s, now| s.send_link(&chat, &url, &title, &selection, preview, now).map(JsValue::from))
    }

    /// Sends a file whose bytes the worker keeps (IndexedDB); resolves to
    /// `{ id, key }` (the message id and the file's key, hex). The worker
    /// gets `transfer` orders once the server gave a ticket.
    #[wasm_bindgen(js_name = sendFile, unchecked_return_type = "Promise<SentFile>")]
    pub fn send_file(&self, chat: String, #[wasm_bindgen(unchecked_param_type = "FileInfo")] info: JsValue, caption: String) -> Promise {
        let info: Result<tether_client::FileInfo, _> = from_js(&info);
        command(&self.shared, move |_, s, now| {
            let info = info.map_err(|e| format!("bad file info: {e}"))?;
            let (id, key) = s.send_file(&chat, info, &caption, now)?;
            Ok(to_js(&SentFile { id, key }))
        })
    }

    /// The worker uploaded the whole blob of `id` (`digest`: its SHA-256, hex).
    #[wasm_bindgen(js_name = uploadFinished, unchecked_return_type = "Promise<void>")]
    pub fn upload_finished(&self, id: String, digest: String) -> Promise {
        file_command(&self.shared, &id.clone(), move |_, s, now| s.engine.upload_finished(&id, &digest, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// The upload of `id` broke off (network, token, restart): a new ticket
    /// says where to go on.
    #[wasm_bindgen(js_name = uploadInterrupted, unchecked_return_type = "Promise<void>")]
    pub fn upload_interrupted(&self, id: String) -> Promise {
        command(&self.shared, move |_, s, now| {
            s.engine.upload_interrupted(&id, now);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The user cancels a file being sent (it shows as not sent, with retry).
    #[wasm_bindgen(js_name = cancelUpload, unchecked_return_type = "Promise<void>")]
    pub fn cancel_upload(&self, id: String) -> Promise {
        command(&self.shared, move |_, s, _| {
            s.engine.cancel_upload(&id);
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = retryUpload, unchecked_return_type = "Promise<void>")]
    pub fn retry_upload(&self, id: String) -> Promise {
        file_command(&self.shared, &id.clone(), move |_, s, now| s.engine.retry_upload(&id, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// Gives up on a file for good (its bytes are gone from this browser).
    #[wasm_bindgen(js_name = discardUpload, unchecked_return_type = "Promise<void>")]
    pub fn discard_upload(&self, id: String) -> Promise {
        command(&self.shared, move |_, s, _| {
            s.engine.discard_upload(&id);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Asks for the file of message `id` (a `download` order follows).
    #[wasm_bindgen(js_name = downloadFile, unchecked_return_type = "Promise<void>")]
    pub fn download_file(&self, id: String) -> Promise {
        file_command(&self.shared, &id.clone(), move |_, s, now| s.engine.download_file(&id, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// The worker has the file of `id`, checked and decrypted.
    #[wasm_bindgen(js_name = downloadFinished, unchecked_return_type = "Promise<void>")]
    pub fn download_finished(&self, id: String) -> Promise {
        file_command(&self.shared, &id.clone(), move |_, s, now| {
            s.engine.download_finished(&id, now);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Unfinished uploads (their ids: the files the worker must keep).
    #[wasm_bindgen(unchecked_return_type = "Upload[]")]
    pub fn uploads(&self) -> JsValue {
        to_js(&self.shared.state.borrow().engine.uploads())
    }

    /// Answers message `replyTo` of `chat` with a text; resolves to its id.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn reply(&self, chat: String, #[wasm_bindgen(js_name = replyTo)] reply_to: String, text: String) -> Promise {
        chat_command(&self.shared, &chat.clone(), move |_, s, now| s.engine.reply(&chat, &reply_to, &text, now).map(JsValue::from).map_err(|e| e.to_string()))
    }

    /// Reacts to a message with `emoji` (one per person: it replaces this
    /// account's earlier one); an empty `emoji` takes it back.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn react(&self, chat: String, id: String, emoji: String) -> Promise {
        chat_command(&self.shared, &chat.clone(), move |_, s, now| s.engine.react(&chat, &id, &emoji, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// Edits an own text (or a file's caption) within the edit window.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn edit(&self, chat: String, id: String, text: String) -> Promise {
        chat_command(&self.shared, &chat.clone(), move |_, s, now| s.engine.edit(&chat, &id, &text, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// Deletes an own message for everyone (within the delete window).
    #[wasm_bindgen(js_name = deleteForEveryone, unchecked_return_type = "Promise<void>")]
    pub fn delete_for_everyone(&self, chat: String, id: String) -> Promise {
        chat_command(&self.shared, &chat.clone(), move |_, s, now| s.engine.delete_for_everyone(&chat, &id, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// Deletes messages from this account's devices only.
    #[wasm_bindgen(js_name = deleteForMe, unchecked_return_type = "Promise<void>")]
    pub fn delete_for_me(&self, chat: String, ids: Vec<String>) -> Promise {
        chat_command(&self.shared, &chat.clone(), move |_, s, now| s.engine.delete_for_me(&chat, &ids, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// Sets a chat's disappearing-messages timer (seconds; 0 turns it off).
    #[wasm_bindgen(js_name = setDisappearing, unchecked_return_type = "Promise<void>")]
    pub fn set_disappearing(&self, chat: String, seconds: u32) -> Promise {
        command(&self.shared, move |_, s, now| s.engine.set_disappearing(&chat, seconds, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// Keeps the composer's unsent text of a chat (empty: none), here and
    /// on this account's other devices.
    #[wasm_bindgen(js_name = setDraft, unchecked_return_type = "Promise<void>")]
    pub fn set_draft(&self, chat: String, text: String) -> Promise {
        command(&self.shared, move |_, s, now| s.engine.set_draft(&chat, &text, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    #[wasm_bindgen(js_name = markRead, unchecked_return_type = "Promise<void>")]
    pub fn mark_read(&self, chat: String) -> Promise {
        chat_command(&self.shared, &chat.clone(), move |_, s, now| s.mark_read(&chat, now).map(|()| JsValue::UNDEFINED))
    }

    /// Turns one of a chat's flags on or off (against the current state).
    #[wasm_bindgen(js_name = setFlag, unchecked_return_type = "Promise<void>")]
    pub fn set_flag(&self, chat: String, #[wasm_bindgen(unchecked_param_type = "ChatFlag")] flag: String, on: bool) -> Promise {
        // ChatFlag's own serde names ("muted", …), read from the string.
        let flag: Result<ChatFlag, serde::de::value::Error> = ChatFlag::deserialize(flag.as_str().into_deserializer());
        command(&self.shared, move |_, s, now| {
            let flag = flag.map_err(|_| "unknown chat flag".to_string())?;
            s.set_flag(&chat, flag, on, now).map(|()| JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = addContact, unchecked_return_type = "Promise<void>")]
    pub fn add_contact(&self, handle: String, name: String) -> Promise {
        command(&self.shared, move |_, s, now| s.add_contact(&handle, &name, now).map(|()| JsValue::UNDEFINED))
    }

    /// Answers a message request: accept, delete, block, report (spam), or
    /// unblock a blocked sender.
    #[wasm_bindgen(js_name = answerRequest, unchecked_return_type = "Promise<void>")]
    pub fn answer_request(&self, handle: String, #[wasm_bindgen(unchecked_param_type = "RequestAction")] action: String) -> Promise {
        let action: Result<RequestAction, serde::de::value::Error> = RequestAction::deserialize(action.as_str().into_deserializer());
        command(&self.shared, move |_, s, now| {
            let action = action.map_err(|_| "unknown request action".to_string())?;
            s.answer_request(&handle, action, now).map(|()| JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = setNotifications, unchecked_return_type = "Promise<void>")]
    pub fn set_notifications(&self, on: bool) -> Promise {
        command(&self.shared, move |_, s, _| {
            s.set_notifications(on);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Renames this browser (only before it is linked).
    #[wasm_bindgen(js_name = setDeviceName, unchecked_return_type = "Promise<void>")]
    pub fn set_device_name(&self, name: String) -> Promise {
        command(&self.shared, move |shared, s, now| s.set_device_name(shared, &name, now).map(|()| JsValue::UNDEFINED))
    }

    /// The answer to "Linked to @handle: is this you?".
    #[wasm_bindgen(js_name = confirmAccount, unchecked_return_type = "Promise<void>")]
    pub fn confirm_account(&self, yes: bool) -> Promise {
        command(&self.shared, move |_, s, now| s.confirm_account(yes, now).map(|()| JsValue::UNDEFINED))
    }

    /// The contact info screen's data for `chat` (null if not a contact).
    #[wasm_bindgen(js_name = contactInfo, unchecked_return_type = "ContactInfo | null")]
    pub fn contact_info(&self, chat: &str) -> JsValue {
        to_js(&contact::contact_info(&self.shared.state.borrow().engine, chat))
    }

    /// The user compared the safety number with the contact.
    #[wasm_bindgen(js_name = markVerified, unchecked_return_type = "Promise<void>")]
    pub fn mark_verified(&self, chat: String) -> Promise {
        command(&self.shared, move |_, s, _| s.engine.mark_verified(&chat).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// Accepts a contact's new account key (it starts unverified); held messages go.
    #[wasm_bindgen(js_name = acceptKey, unchecked_return_type = "Promise<void>")]
    pub fn accept_key(&self, chat: String) -> Promise {
        command(&self.shared, move |_, s, now| s.engine.trust_contact(&chat, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string()))
    }

    /// A group chat's name, members and admins, and what this account may
    /// do there (null if `chat` is not a group this device knows).
    #[wasm_bindgen(js_name = groupInfo, unchecked_return_type = "GroupInfo | null")]
    pub fn group_info(&self, chat: &str) -> JsValue {
        to_js(&self.shared.state.borrow().engine.group_info(chat))
    }

    /// Every group this device knows, by name.
    #[wasm_bindgen(js_name = groupList, unchecked_return_type = "GroupInfo[]")]
    pub fn group_list(&self) -> JsValue {
        to_js(&self.shared.state.borrow().engine.group_list())
    }

    /// Who has own message `id` of group chat `chat` ("read by").
    #[wasm_bindgen(js_name = messageReceipts, unchecked_return_type = "MemberReceipt[]")]
    pub fn message_receipts(&self, chat: &str, id: &str) -> JsValue {
        to_js(&group::message_receipts(&self.shared.state.borrow().engine, chat, id))
    }

    /// Creates a group of this account and `members` (contacts' handles);
    /// resolves to its chat (`g:` and the id).
    #[wasm_bindgen(js_name = createGroup, unchecked_return_type = "Promise<string>")]
    pub fn create_group(&self, name: String, members: Vec<String>) -> Promise {
        command(&self.shared, move |_, s, now| s.engine.create_group(&name, &members, now).map(JsValue::from).map_err(|e| e.to_string()))
    }

    /// Changes a group: add or remove members, leave, rename, make or
    /// unmake an admin (the engine checks who may).
    #[wasm_bindgen(js_name = changeGroup, unchecked_return_type = "Promise<void>")]
    pub fn change_group(&self, chat: String, #[wasm_bindgen(unchecked_param_type = "GroupOp")] op: JsValue) -> Promise {
        // Read through JSON, as every value from the worker (`from_js`):
        // the engine's store reads a `GroupOp` the same way (its outbox
        // keeps them).
        let op: Result<GroupOp, String> = from_js(&op);
        command(&self.shared, move |_, s, now| {
            let op = op.map_err(|e| format!("bad group change: {e}"))?;
            s.engine.change_group(&chat, op, now).map(|()| JsValue::UNDEFINED).map_err(|e| e.to_string())
        })
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn logout(&self) -> Promise {
        command(&self.shared, move |_, s, now| s.logout(now).map(|()| JsValue::UNDEFINED))
    }
}

/// A file message just made: its id and the file's key (hex).
#[derive(Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct SentFile {
    pub id: String,
    pub key: String,
}

/// A handle as typed, checked by the protocol's own rule.
#[derive(Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct HandleCheck {
    /// The normalized handle, when valid.
    pub handle: Option<String>,
    /// Why it is not valid.
    pub error: Option<String>,
}

/// Checks a handle the user typed (`alice`, `+15550000001`).
#[wasm_bindgen(js_name = checkHandle, unchecked_return_type = "HandleCheck")]
pub fn check_handle(text: &str) -> JsValue {
    let check = match tether_proto::normalize_handle(text) {
        Ok(handle) => HandleCheck { handle: Some(handle), error: None },
        Err(e) => HandleCheck { handle: None, error: Some(e.to_string()) },
    };
    to_js(&check)
}

/// A server fingerprint as people compare it (`abcd-ef01-…`).
#[wasm_bindgen(js_name = formatFingerprint)]
pub fn format_fingerprint(hex: &str) -> String {
    tether_client::view::format_fingerprint(hex)
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
