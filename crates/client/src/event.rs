//! What the engine tells the UI.

use crate::engine::Ticket;
use crate::model::{Chat, ChatMessage, Contact, DeviceSummary, FileRef, Notification, Status};

/// What the engine tells the UI. Serialized for JavaScript as
/// `{ "kind": "message", "message": {…} }` (camelCase names). Deliberately
/// exhaustive: an adapter that matches on it must handle a new variant.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub enum Event {
    /// The handshake finished; `fingerprint` is the pinned server key (hex).
    Connected { fingerprint: String },
    Disconnected { reason: String },
    /// This device is now the primary of `handle`: after `register`, and
    /// after `restore` from the recovery phrase (the same event: either way
    /// this device holds the account key; a restore has no contacts or
    /// chats yet, and the account's other devices were logged out).
    Registered { handle: String, fingerprint: String },
    /// Companion: show this QR (`tether://link#…`) until `expires_ms`.
    LinkCode { uri: String, expires_ms: u64, index: usize, total: usize },
    /// Companion: the 8-character code to type on the primary (a new one
    /// replaces the one on show).
    PairingCode { code: String },
    /// Companion: a primary typed the code on show and proved it; both
    /// screens show `confirmation` (6 digits, `123 456`) for the person to
    /// compare before approving on the primary.
    PairingMatched { confirmation: String },
    /// Companion: every code expired; offer to show a new one.
    LinkCodesExhausted,
    /// Companion: the primary of `handle` approved this device. Ask "Linked
    /// to @handle: is this you?" and answer with `confirm_account`; the
    /// device stays inert until then (someone else may have scanned the code).
    ConfirmAccount { handle: String },
    /// Companion: linked to `handle` as `device_id` (and confirmed).
    Linked { handle: String, device_id: u32 },
    /// This device is no longer linked (removed, logged out, or its account
    /// was restored on another device: `reason` says which); all local data is gone.
    Unlinked { reason: String },
    /// Primary: a companion asks to link; confirm with `confirm_link`.
    /// `confirmation` (linking by code) must match what the companion shows.
    LinkRequest { platform: String, name: String, confirmation: Option<String> },
    /// Primary: the companion was added.
    LinkApproved { device_id: u32 },
    /// Primary: history sent to a new companion.
    HistorySent { device_id: u32, messages: usize, chunks: usize },
    /// Companion: a history chunk was imported.
    HistoryImported { chunk: u32, total: u32, messages: usize },
    /// A message was added to a chat.
    Message { message: ChatMessage },
    /// An own message got further (sent, delivered, read).
    MessageStatus { chat: String, id: String, status: Status },
    /// An outbox entry was accepted by the server.
    Sent { id: String },
    /// Upload the file of message `id` (to `chat`): encrypt it with `key`
    /// (hex) and PATCH its blob from `ticket.offset`, then call
    /// `upload_finished` with the blob's SHA-256 (or `upload_interrupted`).
    UploadTicket { id: String, chat: String, key: String, ticket: Ticket },
    /// The upload of message `id` stopped (refused, or cancelled): `reason`
    /// in words; the message shows as not sent, `retry_upload` goes on.
    UploadStopped { id: String, reason: String },
    /// Download the blob of message `id` with `ticket`, check and decrypt
    /// it with `file` (key, size, digest), then call `download_finished`.
    DownloadTicket { id: String, chat: String, file: FileRef, ticket: Ticket },
    /// The file of message `id` cannot be fetched: `reason` in words.
    DownloadFailed { id: String, code: Option<tether_proto::ErrorCode>, reason: String },
    ChatChanged { chat: Chat },
    ContactChanged { contact: Contact },
    /// Something about a contact's keys is wrong; nothing is encrypted to them until resolved.
    SafetyWarning { handle: String, warning: String },
    Devices { devices: Vec<DeviceSummary> },
    /// Primary: a companion was removed.
    DeviceRemoved { device_id: u32 },
    /// A message from someone who is not a contact was filed as a message
    /// request (no notification, no unread count, no receipt); `count` is
    /// how many the request now holds.
    Request { handle: String, message: ChatMessage, count: u32 },
    /// A message that should raise a notification (incoming, unread, chat
    /// not muted). It stays owed (see `Engine::notifications_owed`) until the
    /// adapter calls `Engine::notification_shown`.
    Notify { notification: Notification },
    /// A request failed, or something went wrong; `code` is the server's
    /// error code when the server refused (None for local failures and codes
    /// this version does not know).
    Error { code: Option<tether_proto::ErrorCode>, message: String },
    /// A message changed in place: `message` is how it is now.
    MessageChanged { message: ChatMessage, change: Change },
    /// A message is gone from this device: deleted "for me" (here or on
    /// another own device), or its disappearing timer ran out.
    MessageRemoved { chat: String, id: String, expired: bool },
}

/// How a message changed (see [`Event::MessageChanged`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub enum Change {
    /// `handle` reacted with `emoji` (empty: took the reaction back).
    Reaction { handle: String, emoji: String },
    /// Its sender edited it.
    Edited,
    /// Its sender deleted it for everyone.
    Deleted,
    /// The message it answers was deleted: its quote lost the words.
    QuoteDeleted,
}
