//! The Tether client engine: sans-IO, shared by the browser extension (in
//! WebAssembly) and the `tether` CLI. See [`Engine`] for the call order and
//! docs/architecture.md for where it sits.
//!
//! Parts, each owning its data and rules: `directory` (contacts, pinned
//! account keys, verified device lists, the own signed list), `chats`
//! (messages in one order, read state, owed notifications), `outbox`
//! (unsent messages in send order), `linking` (link and registration
//! states), `message_requests` (non-contacts' messages waiting for the user;
//! blocked senders), `inbox` (dedup, parked envelopes), `requests` (what is in
//! flight), `olm` (vodozemac sessions). `engine` drives them and speaks the
//! protocol; `effects` collects each input's writes and events; `store` is
//! the key-value trait; `recovery` spells the account seed as the recovery
//! phrase; `content` is what travels end to end; `model` is what is kept;
//! `view` is what a UI shows; `event` is what the UI hears.
//! `sorted` (ordered maps and sets as sorted vectors) and `json` (how JSON
//! is read) keep the wasm core small.
#![forbid(unsafe_code)]

mod chats;
mod content;
mod directory;
mod effects;
mod engine;
mod error;
mod event;
pub mod groups;
mod inbox;
pub mod json;
mod linking;
mod megolm;
mod names;
mod message_requests;
pub mod model;
mod olm;
mod outbox;
pub mod recovery;
mod requests;
pub mod uploads;
pub mod sorted;
pub mod store;
mod tagged;
pub mod view;

pub use chats::Chats;
pub use directory::Directory;
pub use message_requests::{KEPT_PER_REQUEST, MAX_REQUESTS, MessageRequests, Request as MessageRequest, Standing};
pub use groups::{GroupOp, Member as GroupMember, MAX_GROUP_MEMBERS};
pub use engine::{ClientInfo, Engine, FileInfo, GroupInfo, GroupMemberView, HISTORY_DAYS, KEEPALIVE_MS, NOTE_TO_SELF, RESTORED_ELSEWHERE, Random, SEARCH_CANDIDATES, SEARCH_LIMIT, Ticket, timer_words};
pub use chats::{DELETE_WINDOW_MS, DISAPPEAR_TIMERS, EDIT_WINDOW_MS, deletable_for_everyone, editable, reactable};
pub use uploads::{Upload, UploadState};
pub use error::Error;
pub use event::{Change, Event};
pub use model::{
    Chat, ChatFlag, ChatMessage, Contact, DeviceSummary, EditRecord, FileKind, FileRef, HistoryPart, LinkPreview, MessageBody, Notification, OutboxEntry, ReplyRef, Role, SelfState, Status,
};
pub use names::{MAX_NAME_CHARS, sanitize_name};
pub use olm::MAX_SESSIONS_PER_DEVICE;
pub use outbox::Outbox;
pub use recovery::{PHRASE_WORDS, PhraseError};
pub use view::{Comparison, SafetyNumberView, SearchHit};

/// Version of the engine (the workspace version), shown by every client.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

