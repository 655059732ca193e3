//! What travels end-to-end inside an Olm message (or a sealed history
//! chunk): protobuf, versioned like the wire. Unknown fields are ignored; an
//! unknown body is shown as "a message this version can't show".

use prost::{Message, Oneof};

/// Version of the content format.
pub const CONTENT_VERSION: u32 = 1;

/// The plaintext of one Olm message.
#[derive(Clone, PartialEq, Message)]
pub struct Payload {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// For copies to the sender's own devices: the chat (the other party's
    /// handle). Empty in copies to the recipient, whose chat is the sender.
    #[prost(string, tag = "2")]
    pub chat: String,
    /// The sender's clock when it was written.
    #[prost(uint64, tag = "3")]
    pub sent_at_ms: u64,
    /// A message this one answers (text, link or file), quoted as the
    /// sender saw it (docs/protocol.md §12.6).
    #[prost(message, optional, tag = "4")]
    pub reply: Option<Quote>,
    /// Disappearing messages: every device removes this message this many
    /// seconds after `sent_at_ms` (0: kept).
    #[prost(uint32, tag = "5")]
    pub expires_secs: u32,
    #[prost(oneof = "Body", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26")]
    pub body: Option<Body>,
}

/// The message a reply answers: its id, its sender and the start of what
/// it said (shown even where the original is not, e.g. expired).
#[derive(Clone, PartialEq, Message)]
pub struct Quote {
    #[prost(bytes = "vec", tag = "1")]
    pub message_id: Vec<u8>,
    #[prost(string, tag = "2")]
    pub author: String,
    #[prost(string, tag = "3")]
    pub text: String,
}

/// A reaction to a message of the chat: one per person per message; a
/// new one replaces it, an empty `emoji` removes it.
#[derive(Clone, PartialEq, Message)]
pub struct Reaction {
    #[prost(bytes = "vec", tag = "1")]
    pub message_id: Vec<u8>,
    #[prost(string, tag = "2")]
    pub emoji: String,
}

/// The sender's new text for one of its own messages (a text, or a file's
/// caption), within [`crate::chats::EDIT_WINDOW_MS`].
#[derive(Clone, PartialEq, Message)]
pub struct Edit {
    #[prost(bytes = "vec", tag = "1")]
    pub message_id: Vec<u8>,
    #[prost(string, tag = "2")]
    pub text: String,
}

/// Delete for everyone: the sender's own message, within
/// [`crate::chats::DELETE_WINDOW_MS`].
#[derive(Clone, PartialEq, Message)]
pub struct Delete {
    #[prost(bytes = "vec", tag = "1")]
    pub message_id: Vec<u8>,
}

/// A chat's disappearing-messages timer (either side may set it).
#[derive(Clone, PartialEq, Message)]
pub struct Disappear {
    /// 0 (off), 86,400, 604,800 or 7,776,000.
    #[prost(uint32, tag = "1")]
    pub seconds: u32,
}

/// To the sender's own devices: the composer's text of a chat (empty: none).
#[derive(Clone, PartialEq, Message)]
pub struct Draft {
    #[prost(string, tag = "1")]
    pub chat: String,
    #[prost(string, tag = "2")]
    pub text: String,
    /// When it was typed; a newer draft wins.
    #[prost(uint64, tag = "3")]
    pub updated_ms: u64,
}

/// To the sender's own devices: messages deleted "for me".
#[derive(Clone, PartialEq, Message)]
pub struct DeleteForMe {
    #[prost(string, tag = "1")]
    pub chat: String,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub message_ids: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum Body {
    #[prost(message, tag = "10")]
    Text(Text),
    #[prost(message, tag = "11")]
    Link(LinkShare),
    #[prost(message, tag = "12")]
    Receipt(Receipt),
    #[prost(message, tag = "13")]
    ReadSync(ReadSync),
    #[prost(message, tag = "14")]
    Profile(Profile),
    #[prost(message, tag = "15")]
    Flags(ChatFlags),
    /// A file (photo, document, voice note): the blob's descriptor, with
    /// an optional caption (docs/protocol.md §14).
    #[prost(message, tag = "16")]
    File(FileShare),
    /// Pairwise (Olm) only: the sender's Megolm session key for a group
    /// (docs/protocol.md §15.4).
    #[prost(message, tag = "17")]
    GroupKey(GroupKey),
    /// In a group's Megolm session only: a change of the group's state (§15.2).
    #[prost(message, tag = "18")]
    GroupChange(GroupChange),
    #[prost(message, tag = "20")]
    Standing(StandingSync),
    #[prost(message, tag = "21")]
    Reaction(Reaction),
    #[prost(message, tag = "22")]
    Edit(Edit),
    #[prost(message, tag = "23")]
    Delete(Delete),
    #[prost(message, tag = "24")]
    Disappear(Disappear),
    /// Own devices only.
    #[prost(message, tag = "25")]
    Draft(Draft),
    /// Own devices only.
    #[prost(message, tag = "26")]
    DeleteForMe(DeleteForMe),
}

#[derive(Clone, PartialEq, Message)]
pub struct Text {
    #[prost(string, tag = "1")]
    pub body: String,
}

/// A file the sender uploaded as an encrypted blob.
#[derive(Clone, PartialEq, Message)]
pub struct FileShare {
    #[prost(message, optional, tag = "1")]
    pub attachment: Option<tether_proto::media::Attachment>,
    #[prost(string, tag = "2")]
    pub caption: String,
}

/// A shared page or link, with the selected text if any.
#[derive(Clone, PartialEq, Message)]
pub struct LinkShare {
    #[prost(string, tag = "1")]
    pub url: String,
    #[prost(string, tag = "2")]
    pub title: String,
    #[prost(string, tag = "3")]
    pub selection: String,
    /// The page's preview, made by the sender from the tab it was on
    /// (recipients never fetch the URL).
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(string, tag = "5")]
    pub site_name: String,
    /// A small JPEG or PNG (at most [`crate::model::PREVIEW_IMAGE_MAX`] bytes).
    #[prost(bytes = "vec", tag = "6")]
    pub image: Vec<u8>,
}

/// Delivered / read receipts for messages of the recipient's.
#[derive(Clone, PartialEq, Message)]
pub struct Receipt {
    /// 1 = delivered, 2 = read.
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub message_ids: Vec<Vec<u8>>,
    /// For messages of a group (16 bytes); empty for a 1:1 chat.
    #[prost(bytes = "vec", tag = "3")]
    pub group_id: Vec<u8>,
}

/// A sender's Megolm session key for a group.
#[derive(Clone, PartialEq, Message)]
pub struct GroupKey {
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// `vodozemac::megolm::SessionKey::to_bytes`.
    #[prost(bytes = "vec", tag = "2")]
    pub session_key: Vec<u8>,
}

/// A group's whole state after a change, with its place in the chain.
#[derive(Clone, PartialEq, Message)]
pub struct GroupChange {
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub epoch: u64,
    /// The parent state's hash (32 zero bytes at epoch 1).
    #[prost(bytes = "vec", tag = "3")]
    pub parent: Vec<u8>,
    #[prost(message, optional, tag = "4")]
    pub state: Option<GroupState>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GroupState {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<GroupMember>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GroupMember {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(bool, tag = "2")]
    pub admin: bool,
}

/// `Sealed.body` of a group message (`kind` = [`SEALED_GROUP`]).
#[derive(Clone, PartialEq, Message)]
pub struct GroupSealed {
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    #[prost(string, tag = "2")]
    pub session_id: String,
    /// The Megolm message.
    #[prost(bytes = "vec", tag = "3")]
    pub ciphertext: Vec<u8>,
}

pub const RECEIPT_DELIVERED: u32 = 1;
pub const RECEIPT_READ: u32 = 2;

/// To the sender's own devices: the chat was read up to a time.
#[derive(Clone, PartialEq, Message)]
pub struct ReadSync {
    #[prost(string, tag = "1")]
    pub chat: String,
    #[prost(uint64, tag = "2")]
    pub up_to_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    #[prost(string, tag = "1")]
    pub display_name: String,
}

/// To the sender's own devices: a chat's flags changed.
#[derive(Clone, PartialEq, Message)]
pub struct ChatFlags {
    #[prost(string, tag = "1")]
    pub chat: String,
    #[prost(bool, tag = "2")]
    pub muted: bool,
    #[prost(bool, tag = "3")]
    pub archived: bool,
    #[prost(bool, tag = "4")]
    pub pinned: bool,
    /// Marked as unread by the user (cleared when the chat is read).
    #[prost(bool, tag = "5")]
    pub marked_unread: bool,
}

/// To the sender's own devices: the user accepted, blocked, reported,
/// unblocked or deleted a sender's message request (see `message_requests`).
#[derive(Clone, PartialEq, Message)]
pub struct StandingSync {
    #[prost(string, tag = "1")]
    pub handle: String,
    /// One of the `STANDING_*` actions.
    #[prost(uint32, tag = "2")]
    pub action: u32,
}

pub const STANDING_ACCEPT: u32 = 1;
pub const STANDING_BLOCK: u32 = 2;
pub const STANDING_REPORT: u32 = 3;
/// Unblock, or delete a request: forget the sender.
pub const STANDING_FORGET: u32 = 4;

/// A sealed history chunk (primary → new companion), after opening.
#[derive(Clone, PartialEq, Message)]
pub struct HistoryChunk {
    #[prost(uint32, tag = "1")]
    pub index: u32,
    #[prost(uint32, tag = "2")]
    pub total: u32,
    /// JSON of [`crate::model::HistoryPart`].
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

/// The envelope ciphertext: which kind of sealing, and the bytes.
#[derive(Clone, PartialEq, Message)]
pub struct Sealed {
    /// 0 = Olm pre-key message, 1 = Olm normal message, 2 = group
    /// (Megolm) message, 16 = sealed history chunk.
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub body: Vec<u8>,
    /// History chunks: the account key's signature over `body`.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

pub const SEALED_HISTORY: u32 = 16;
/// A group message: `body` is a [`GroupSealed`].
pub const SEALED_GROUP: u32 = 2;

impl Payload {
    pub fn new(chat: &str, sent_at_ms: u64, body: Body) -> Self {
        Self { version: CONTENT_VERSION, chat: chat.to_string(), sent_at_ms, body: Some(body), reply: None, expires_secs: 0 }
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}
