//! What the engine keeps: this device, contacts, chats, messages, the
//! outbox. Stored as JSON records (fields added later default), so a newer
//! engine reads an older store.

use serde::{Deserialize, Serialize};
use tether_proto::device_list::AccountKey;

/// The role of this device.
// Read through `tagged` (see its `Deserialize`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    /// No account. `reason` says why, after a log-out or removal.
    Unlinked { reason: Option<String> },
    /// The primary: holds the account key.
    Primary { handle: String, account_seed: Vec<u8> },
    /// A linked companion.
    Companion { handle: String, device_id: u32, account_key: Vec<u8> },
}

/// This device's own state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SelfState {
    pub role: Role,
    /// The server's URL (http(s)://host:port).
    pub server_url: String,
    /// The pinned server fingerprint (64 hex), once known.
    pub pin: Option<String>,
    /// This device's Noise static private key.
    pub noise_private: Vec<u8>,
    /// X25519 secret for sealed history (companions).
    pub link_secret_key: Vec<u8>,
    /// Companion: linked, but the person has not yet said the account is
    /// theirs ("Linked to @handle: is this you?"). Inert until then: no
    /// messages are applied or sent.
    #[serde(default)]
    pub unconfirmed: bool,
    /// Companion: the server holds this device's signature over its own
    /// list entry (see `Engine::publish_entry_signature`).
    #[serde(default)]
    pub entry_signed: bool,
    /// Companion: the history this link may still receive (see
    /// [`HistoryWindow`]); `None` once it is complete, or never expected.
    #[serde(default)]
    pub history: Option<HistoryWindow>,
    /// Primary: the names of the account's devices, by id. Names stay on
    /// the devices (they are not in the device list, which the server and
    /// contacts see).
    #[serde(default, with = "crate::sorted::object")]
    pub device_names: crate::sorted::Map<u32, String>,
}

/// Companion: history is accepted only from this link, each chunk once,
/// and only until every chunk has arrived.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistoryWindow {
    /// SHA-256 over the link secret and this device's id; the primary's
    /// signature over each chunk covers it.
    pub binding: Vec<u8>,
    /// Chunks announced (from the first chunk that arrived).
    pub total: Option<u32>,
    /// Chunks imported.
    pub seen: Vec<u32>,
}

/// The `kind`-tagged records the derived form reads, through one flat
/// struct (see `tagged`).
impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::tagged::need;
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Unlinked,
            Primary,
            Companion,
        }
        #[derive(Deserialize)]
        struct Flat {
            kind: Kind,
            reason: Option<String>,
            handle: Option<String>,
            account_seed: Option<Vec<u8>>,
            device_id: Option<u32>,
            account_key: Option<Vec<u8>>,
        }
        let f = Flat::deserialize(d)?;
        Ok(match f.kind {
            Kind::Unlinked => Role::Unlinked { reason: f.reason },
            Kind::Primary => {
                Role::Primary { handle: need(f.handle, "handle")?, account_seed: need(f.account_seed, "account_seed")? }
            }
            Kind::Companion => Role::Companion {
                handle: need(f.handle, "handle")?,
                device_id: need(f.device_id, "device_id")?,
                account_key: need(f.account_key, "account_key")?,
            },
        })
    }
}

impl Role {
    /// The account handle, once registered or linked.
    pub fn handle(&self) -> Option<&str> {
        match self {
            Role::Primary { handle, .. } | Role::Companion { handle, .. } => Some(handle),
            Role::Unlinked { .. } => None,
        }
    }

    /// The primary's account key (the root of trust); None on other roles
    /// or if the stored seed is unreadable.
    pub fn account_key(&self) -> Option<AccountKey> {
        match self {
            Role::Primary { account_seed, .. } => <[u8; 32]>::try_from(account_seed.as_slice()).ok().map(|s| AccountKey::from_seed(&s)),
            _ => None,
        }
    }

    /// The account's public key, as every device of the account knows it.
    pub fn account_public(&self) -> Option<Vec<u8>> {
        match self {
            Role::Primary { .. } => self.account_key().map(|k| k.public().to_vec()),
            Role::Companion { account_key, .. } => Some(account_key.clone()),
            Role::Unlinked { .. } => None,
        }
    }
}

/// A contact: a handle with its pinned account key and verified devices.
/// Records are camelCase; the aliases read records written before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct Contact {
    pub handle: String,
    /// What the user calls them (their handle when the user gave no name).
    pub name: String,
    /// Pinned on first contact (32 bytes); a different key later is a
    /// safety warning, never accepted silently.
    #[serde(default, alias = "account_key")]
    pub account_key: Vec<u8>,
    /// Their verified signed list (encoded SignedDeviceList).
    #[serde(default)]
    pub list: Vec<u8>,
    #[serde(default)]
    pub removed: Vec<u32>,
    /// Why we refuse to encrypt to them right now, if we do.
    #[serde(default)]
    pub warning: Option<String>,
    /// The name they chose for themselves (their profile), cleaned; shown
    /// only with their handle beside it, and never over `name`.
    #[serde(default)]
    pub profile_name: String,
    /// The account key the server presented instead of the pinned one
    /// (the one a key-change warning is about): accepting pins exactly
    /// this key, not whatever the server serves next.
    #[serde(default)]
    pub offered_key: Vec<u8>,
    /// The user compared the safety number of `account_key` with them (by
    /// reading or scanning). A different account key is never verified.
    #[serde(default)]
    pub verified: bool,
}

/// One chat (1:1 with a handle).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct Chat {
    pub handle: String,
    pub unread: u32,
    #[serde(alias = "last_ms")]
    pub last_ms: u64,
    #[serde(alias = "last_preview")]
    pub last_preview: String,
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub pinned: bool,
    /// Incoming messages up to this time are read (synced between own devices).
    #[serde(default, alias = "read_up_to_ms")]
    pub read_up_to_ms: u64,
    /// When this account last sent a message here (from any of its
    /// devices); 0 if never. Orders the "recent chats" that one click sends
    /// to, so only the user's own sends decide them, never what others send.
    #[serde(default)]
    pub last_sent_ms: u64,
    /// Marked as unread by the user (synced; cleared when the chat is read).
    #[serde(default)]
    pub marked_unread: bool,
    /// Disappearing messages: what this account sends here disappears
    /// this many seconds after it was sent (0: off). Either side sets it.
    #[serde(default)]
    pub disappear_secs: u32,
    /// The composer's unsent text (synced between own devices).
    #[serde(default)]
    pub draft: String,
    /// When `draft` was typed (a newer draft wins, here or from another device).
    #[serde(default)]
    pub draft_ms: u64,
    /// When `disappear_secs` was set (a later setting wins).
    #[serde(default)]
    pub disappear_set_ms: u64,
}

/// One of a chat's flags (see `Engine::set_chat_flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub enum ChatFlag {
    Muted,
    Archived,
    Pinned,
    /// "Mark as unread" (reading the chat clears it).
    Unread,
}

/// Delivery state of an own message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub enum Status {
    /// Will not be sent: the server refused it, or the recipient's keys
    /// cannot be trusted and it was given up on. Never retried.
    Failed,
    /// In the outbox, not yet accepted by the server.
    #[default]
    Pending,
    /// Stored by the server.
    Sent,
    /// On at least one of the recipient's devices.
    Delivered,
    /// Read by the recipient.
    Read,
}

/// What a message says.
// Read through `tagged` (see its `Deserialize`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub enum MessageBody {
    Text { body: String },
    Link {
        url: String,
        title: String,
        selection: String,
        /// The sender's preview of the page, if it made one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preview: Option<LinkPreview>,
    },
    /// A file: a photo, a document, a voice note (docs/protocol.md §14).
    File { file: FileRef, caption: String },
    /// Could not be decrypted or read; never dropped silently.
    Undecryptable { reason: String },
    /// A line in a chat, not a message: a change of a group ("alice added
    /// bob"), a new disappearing-messages timer.
    GroupEvent { text: String },
    /// Deleted for everyone by its sender: "This message was deleted".
    Deleted,
}

impl Default for MessageBody {
    fn default() -> Self {
        MessageBody::Text { body: String::new() }
    }
}

/// The `kind`-tagged records the derived form reads, through one flat
/// struct (see `tagged`).
impl<'de> Deserialize<'de> for MessageBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::tagged::need;
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Text,
            Link,
            File,
            Undecryptable,
            GroupEvent,
            Deleted,
        }
        #[derive(Deserialize)]
        struct Flat {
            kind: Kind,
            body: Option<String>,
            url: Option<String>,
            title: Option<String>,
            selection: Option<String>,
            preview: Option<LinkPreview>,
            file: Option<FileRef>,
            caption: Option<String>,
            reason: Option<String>,
            text: Option<String>,
        }
        let f = Flat::deserialize(d)?;
        Ok(match f.kind {
            Kind::Text => MessageBody::Text { body: need(f.body, "body")? },
            Kind::Link => MessageBody::Link {
                url: need(f.url, "url")?,
                title: need(f.title, "title")?,
                selection: need(f.selection, "selection")?,
                preview: f.preview,
            },
            Kind::File => MessageBody::File { file: need(f.file, "file")?, caption: need(f.caption, "caption")? },
            Kind::Undecryptable => MessageBody::Undecryptable { reason: need(f.reason, "reason")? },
            Kind::GroupEvent => MessageBody::GroupEvent { text: need(f.text, "text")? },
            Kind::Deleted => MessageBody::Deleted,
        })
    }
}

/// Most bytes of a link preview's image.
pub const PREVIEW_IMAGE_MAX: usize = 48 * 1024;

/// A shared page's preview, made by the sender from its tab.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct LinkPreview {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub site_name: String,
    /// Base64 of a small JPEG or PNG; empty if none.
    #[serde(default)]
    pub image: String,
}

/// The message a reply answers, as its sender quoted it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct ReplyRef {
    /// The answered message's id (32 hex digits).
    pub id: String,
    /// Its sender's handle.
    pub author: String,
    /// The start of what it said.
    pub text: String,
}

/// An earlier version of an edited message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct EditRecord {
    /// What it said until `replaced_ms`.
    pub text: String,
    pub replaced_ms: u64,
}

/// A file in a message: the end-to-end `Attachment`, in a form JSON keeps
/// small. `blob_id` and `digest` are empty while the sender's upload is
/// unfinished. `key` is the file's secret: never logged or printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct FileRef {
    /// Hex.
    pub blob_id: String,
    /// Hex, 32 bytes.
    pub key: String,
    /// Hex SHA-256 of the blob.
    pub digest: String,
    /// Plaintext bytes.
    pub size: u64,
    pub mime_type: String,
    pub file_name: String,
    pub width: u32,
    pub height: u32,
    /// Base64 of a small JPEG or PNG (images, video); empty if none.
    pub thumbnail: String,
    pub duration_ms: u32,
    /// Voice notes: up to 256 samples 0–255.
    pub waveform: Vec<u8>,
}

impl FileRef {
    /// What kind of file it is, for previews and icons.
    pub fn kind(&self) -> FileKind {
        let m = self.mime_type.as_str();
        if m.starts_with("image/") {
            FileKind::Photo
        } else if m.starts_with("video/") {
            FileKind::Video
        } else if m.starts_with("audio/") && !self.waveform.is_empty() {
            FileKind::Voice
        } else if m.starts_with("audio/") {
            FileKind::Audio
        } else {
            FileKind::Document
        }
    }

    /// "📷 Photo", "🎤 Voice message 0:12", "📄 invoice.pdf".
    pub fn preview(&self, caption: &str) -> String {
        let what = match self.kind() {
            FileKind::Photo => "📷 Photo".to_string(),
            FileKind::Video => "🎬 Video".to_string(),
            FileKind::Voice => format!("🎤 Voice message {}", duration(self.duration_ms)),
            FileKind::Audio => format!("🎵 {}", if self.file_name.is_empty() { "Audio" } else { &self.file_name }),
            FileKind::Document => format!("📄 {}", if self.file_name.is_empty() { "File" } else { &self.file_name }),
        };
        let caption = caption.lines().next().unwrap_or("").trim();
        if caption.is_empty() { what } else { format!("{what}: {}", caption.chars().take(60).collect::<String>()) }
    }
}

/// `m:ss` for a length in milliseconds, to the nearest second: what the
/// popup's and the web app's bubbles show (`clock` in
/// popup/screens/voice.js), so a note reads the same length in a
/// notification, the CLI and its bubble.
pub fn duration(ms: u32) -> String {
    let s = (u64::from(ms) + 500) / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

/// What a file is, as far as showing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Photo,
    Video,
    Voice,
    Audio,
    Document,
}

/// One message in a chat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct ChatMessage {
    /// 32 hex digits.
    pub id: String,
    pub chat: String,
    /// Sent by this account (from any of its devices).
    #[serde(alias = "from_me")]
    pub from_me: bool,
    #[serde(alias = "sender_handle")]
    pub sender_handle: String,
    #[serde(alias = "sender_device")]
    pub sender_device: u32,
    #[serde(alias = "time_ms")]
    pub time_ms: u64,
    pub body: MessageBody,
    /// Own messages: how far it got.
    pub status: Status,
    /// Local arrival sequence: breaks ties between messages of the same
    /// millisecond (see `chats`), assigned when the message is added.
    #[serde(default)]
    pub seq: u64,
    /// Own messages in a group: how far it got with each member (handle →
    /// delivered or read); `status` sums them up.
    #[serde(default, skip_serializing_if = "crate::sorted::Map::is_empty", with = "crate::sorted::object")]
    #[cfg_attr(feature = "wasm", tsify(type = "Record<string, Status>"))]
    pub receipts: crate::sorted::Map<String, Status>,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyRef>,
    /// Reactions: handle → emoji, one per person.
    #[serde(default, skip_serializing_if = "crate::sorted::Map::is_empty", with = "crate::sorted::object")]
    #[cfg_attr(feature = "wasm", tsify(type = "Record<string, string>"))]
    pub reactions: crate::sorted::Map<String, String>,
    /// Earlier versions, oldest first (the message was edited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<EditRecord>,
    /// When it was last edited (0: never).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub edited_ms: u64,
    /// Disappearing: removed from every device at this time (0: kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expires_ms: u64,
}

impl ChatMessage {
    /// A one-line preview for chat lists and notifications.
    pub fn preview(&self) -> String {
        match &self.body {
            MessageBody::Text { body } => body.lines().next().unwrap_or("").chars().take(80).collect(),
            MessageBody::Link { url, title, .. } => if title.is_empty() { url.clone() } else { format!("{title} ({url})") },
            MessageBody::File { file, caption } => file.preview(caption),
            MessageBody::Undecryptable { .. } => "⚠ message could not be decrypted".into(),
            MessageBody::GroupEvent { text } => text.clone(),
            MessageBody::Deleted => "🚫 This message was deleted".into(),
        }
    }
}

/// A message waiting for the server to accept it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// 32 hex digits.
    pub id: String,
    /// The accounts whose every device gets `to_them`.
    pub to: Vec<String>,
    /// Encoded Payload for the recipients.
    pub to_them: Vec<u8>,
    /// Encoded Payload for this account's other devices (empty: none).
    pub to_me: Vec<u8>,
    pub created_ms: u64,
    /// Position in send order (assigned when queued; resends keep it).
    #[serde(default)]
    pub seq: u64,
    /// Hex ids of the blobs the message names (`SendMessage.blob_ids`).
    #[serde(default)]
    pub blob_ids: Vec<String>,
    /// A group message (hex group id): `to_them` goes once, in this
    /// device's Megolm session, to every device of the group's members
    /// (`to` and `to_me` are unused).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// A change of the group, made on the group's state when it is sent
    /// (then written to `to_them`); `epoch` is the epoch it was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_op: Option<crate::groups::GroupOp>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    /// The chat where the entry shows as a message (empty: it shows as
    /// none, e.g. a receipt or a reaction).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chat: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A part of the history a primary sends to a new companion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryPart {
    pub contacts: Vec<Contact>,
    pub chats: Vec<Chat>,
    pub messages: Vec<ChatMessage>,
    /// The primary's answers to senders (handle, `STANDING_*` action):
    /// accepted contacts stay contacts and blocked ones stay blocked on
    /// the new companion.
    #[serde(default)]
    pub standings: Vec<(String, u32)>,
    /// The groups the account is in, as the primary holds them.
    #[serde(default)]
    pub groups: Vec<crate::groups::Group>,
}

/// A linked device as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct DeviceSummary {
    pub device_id: u32,
    pub platform: String,
    pub name: String,
    pub linked_at_ms: u64,
    pub last_active_ms: u64,
    pub current: bool,
}

/// A notification the adapter owes the user: one per incoming message in a
/// chat that is not muted, kept (persisted) until the adapter reports it
/// shown, so a stop between "stored" and "shown" loses none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct Notification {
    /// The message's id; also the notification's, so showing it twice replaces it.
    pub id: String,
    pub chat: String,
    /// The sender's display name.
    pub title: String,
    /// The message preview.
    pub body: String,
    pub time_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn a_length_reads_to_the_nearest_second_as_the_bubbles_show_it() {
        assert_eq!(duration(0), "0:00");
        assert_eq!(duration(2_499), "0:02");
        assert_eq!(duration(2_500), "0:03");
        assert_eq!(duration(4_200), "0:04");
        assert_eq!(duration(59_600), "1:00");
        assert_eq!(duration(61_000), "1:01");
        assert_eq!(duration(u32::MAX), "71582:47");
    }
}
