//! Lazy history (see `chats`): what arrives for a chat whose messages are
//! not in memory waits, persisted, until the host loaded them; the host
//! learns what to load from `poll_want`; search reads the word index.
//!
//! Only changes of existing messages wait (receipts, reactions, edits,
//! deletes, read state, an own message's status): a new message is
//! written without loading its chat. Whatever waits for a chat is applied
//! in arrival order once it is loaded, and while anything waits for a
//! chat, what follows for it waits too, so nothing overtakes.

use super::Engine;
use crate::chats::NS_WORDS;
use crate::content::Payload;
use crate::effects::Effects;
use crate::error::Error;
use crate::model::{ChatMessage, Status};
use crate::olm::hex;
use crate::store::KvStore;
use crate::view::SearchHit;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use prost::Message;
use serde::{Deserialize, Serialize};
use crate::sorted::Map;
use tether_proto::frames as f;

const NS_PARKED: &str = "parked";
/// Lazy search reads at most this many index entries of its rarest word.
pub const SEARCH_CANDIDATES: usize = 5_000;

/// Something that waits for its chat's messages.
// Read through `tagged` (see its `Deserialize`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Parked {
    /// A decrypted payload (Olm, or a group's Megolm when `group` names it).
    Payload { chat: String, sender: String, device: u32, message_id: String, server_time_ms: u64, payload: String, group: String },
    /// An own message was accepted by the server (`Sent`) or refused (`Failed`).
    Status { chat: String, id: String, status: Status },
}

/// The `kind`-tagged records the derived form reads, through one flat
/// struct (see `tagged`).
impl<'de> Deserialize<'de> for Parked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::tagged::need;
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Payload,
            Status,
        }
        #[derive(Deserialize)]
        struct Flat {
            kind: Kind,
            chat: Option<String>,
            sender: Option<String>,
            device: Option<u32>,
            message_id: Option<String>,
            server_time_ms: Option<u64>,
            payload: Option<String>,
            group: Option<String>,
            id: Option<String>,
            status: Option<Status>,
        }
        let f = Flat::deserialize(d)?;
        Ok(match f.kind {
            Kind::Payload => Parked::Payload {
                chat: need(f.chat, "chat")?,
                sender: need(f.sender, "sender")?,
                device: need(f.device, "device")?,
                message_id: need(f.message_id, "message_id")?,
                server_time_ms: need(f.server_time_ms, "server_time_ms")?,
                payload: need(f.payload, "payload")?,
                group: need(f.group, "group")?,
            },
            Kind::Status => {
                Parked::Status { chat: need(f.chat, "chat")?, id: need(f.id, "id")?, status: need(f.status, "status")? }
            }
        })
    }
}

impl Parked {
    fn chat(&self) -> &str {
        match self {
            Parked::Payload { chat, .. } | Parked::Status { chat, .. } => chat,
        }
    }
}

/// The waiting list, in arrival order, persisted.
#[derive(Default)]
pub(crate) struct ParkedQueue {
    items: Map<u64, Parked>,
}

impl ParkedQueue {
    pub(crate) fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let mut items = Map::new();
        for (k, v) in store.scan(NS_PARKED).map_err(Error::Store)? {
            if let (Ok(n), Ok(p)) = (k.parse::<u64>(), crate::store::decode::<Parked>("waiting change", &v)) {
                items.insert(n, p);
            }
        }
        Ok(Self { items })
    }

    fn push(&mut self, p: Parked, fx: &mut Effects) {
        let n = self.items.last().map_or(0, |(n, _)| n + 1);
        fx.put(NS_PARKED, &format!("{n:016}"), &p);
        self.items.insert(n, p);
    }

    pub(crate) fn waits(&self, chat: &str) -> bool {
        self.items.values().any(|p| p.chat() == chat)
    }

    fn take(&mut self, chat: &str, fx: &mut Effects) -> Vec<Parked> {
        let keys: Vec<u64> = self.items.iter().filter(|(_, p)| p.chat() == chat).map(|(n, _)| *n).collect();
        keys.into_iter()
            .filter_map(|n| {
                fx.delete(NS_PARKED, &format!("{n:016}"));
                self.items.remove(&n)
            })
            .collect()
    }

    /// Chats something waits for.
    fn chats(&self) -> Vec<String> {
        let mut v: Vec<String> = self.items.values().map(|p| p.chat().to_string()).collect();
        v.sort();
        v.dedup();
        v
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }
}

impl Engine {
    // ------------------------------------------------------- for the host

    /// Lazy history: a chat whose stored messages (every record of the
    /// `messages` namespace under `<chat>/`) the host should read and hand
    /// to [`Engine::load_chat`]. Poll after every input, like events.
    pub fn poll_want(&mut self) -> Option<String> {
        if self.wants.is_empty() {
            self.wants.extend(self.chats.take_wants());
        }
        self.wants.pop_front()
    }

    /// Lazy history: `chat`'s stored messages, read by the host. What
    /// waited for them is applied now.
    pub fn load_chat(&mut self, chat: &str, rows: Vec<(String, Vec<u8>)>, now: u64) {
        let bad = self.chats.load_chat(chat, rows);
        if bad > 0 {
            self.fx.error(format!("{bad} stored messages of a chat are unreadable and were skipped"));
        }
        for p in self.parked.take(chat, &mut self.fx) {
            self.replay(p, now);
        }
        if let Some((device, key, binding)) = self.history_job.clone() {
            self.send_history(device, key, &binding, now);
        }
        self.expire(now);
        self.pump(now);
        self.finish();
    }

    /// Whether `chat`'s messages are in memory; if not, the host is asked
    /// for them. Commands that change messages need it: a host with lazy
    /// history loads the chat (`poll_want`, `load_chat`) and tries again
    /// when a command answers [`Error::NotLoaded`].
    pub fn chat_loaded(&mut self, chat: &str) -> bool {
        self.resident(chat)
    }

    /// Imports contacts, chats and messages as a companion imports its
    /// primary's history, without a link: for benchmarks that need a big
    /// history (`cargo xtask bench history`), never for a UI.
    #[doc(hidden)]
    pub fn danger_import_history(&mut self, contacts: Vec<crate::model::Contact>, chats: Vec<crate::model::Chat>, messages: Vec<ChatMessage>) {
        for c in contacts {
            self.directory.import(c, &mut self.fx);
        }
        self.chats.import(chats, messages, &mut self.fx);
        self.finish();
    }

    // ------------------------------------------------------- internals

    pub(super) fn resident(&mut self, chat: &str) -> bool {
        match self.chats.ensure(chat, &*self.store) {
            Ok(here) => here,
            Err(e) => {
                self.fatal(format!("local storage failed: {e}"));
                false
            }
        }
    }

    /// For a command: the chat's messages must be in memory.
    pub(super) fn need(&mut self, chat: &str) -> Result<(), Error> {
        if self.resident(chat) { Ok(()) } else { Err(Error::NotLoaded(chat.to_string())) }
    }

    /// Whether a change for `chat` may apply now: its messages are here
    /// and nothing older waits for them.
    pub(super) fn ready_for(&mut self, chat: &str) -> bool {
        !self.parked.waits(chat) && self.resident(chat)
    }

    /// Keeps a decrypted payload until `chat` is loaded.
    pub(super) fn park_payload(&mut self, e: &f::Envelope, chat: &str, p: &Payload, group: &str) {
        if self.resident(chat) && !self.parked.waits(chat) {
            return;
        }
        let parked = Parked::Payload {
            chat: chat.to_string(),
            sender: e.sender_handle.clone(),
            device: e.sender_device,
            message_id: hex(&e.message_id),
            server_time_ms: e.server_time_ms,
            payload: B64.encode(p.encode_to_vec()),
            group: group.to_string(),
        };
        self.parked.push(parked, &mut self.fx);
    }

    /// An own message's new status (`Sent` or `Failed`), now or once its
    /// chat is loaded. `chat` is empty for entries that show no message.
    pub(super) fn own_status(&mut self, chat: &str, id: &str, status: Status) {
        if !chat.is_empty() && !self.ready_for(chat) {
            self.parked.push(Parked::Status { chat: chat.to_string(), id: id.to_string(), status }, &mut self.fx);
            return;
        }
        if status == Status::Failed {
            self.chats.mark_failed(id, &mut self.fx);
        } else {
            self.chats.set_status(id, status, &mut self.fx);
        }
    }

    fn replay(&mut self, p: Parked, now: u64) {
        match p {
            Parked::Status { id, status, .. } => {
                if status == Status::Failed {
                    self.chats.mark_failed(&id, &mut self.fx);
                } else {
                    self.chats.set_status(&id, status, &mut self.fx);
                }
            }
            Parked::Payload { sender, device, message_id, server_time_ms, payload, group, .. } => {
                let e = f::Envelope {
                    sender_handle: sender,
                    sender_device: device,
                    message_id: super::send::hex_to_bytes(&message_id),
                    server_time_ms,
                    ..Default::default()
                };
                let Some(p) = B64.decode(payload).ok().and_then(|b| Payload::decode(b.as_slice()).ok()) else { return };
                if group.is_empty() {
                    self.apply_payload(&e, None, p, now);
                } else {
                    self.apply_group_payload(&e, &group, p, now);
                }
            }
        }
    }

    /// Lazy: at the end of an input, chats not used lately leave memory
    /// (never one something waits for).
    pub(super) fn evict(&mut self) {
        if self.history_job.is_some() {
            return;
        }
        let parked = self.parked.chats();
        self.chats.evict(crate::chats::RESIDENT_MAX, |c| parked.iter().any(|p| p == c));
    }

    // ------------------------------------------------------- search

    /// Lazy search, step 1: the word whose index entries to read (every
    /// key of the `words` namespace that starts with it, at most
    /// [`SEARCH_CANDIDATES`]); None if the query has no word.
    pub fn search_word(query: &str) -> Option<String> {
        // The longest word is the likeliest to be rare.
        crate::chats::words(query).into_iter().max_by_key(|w| w.chars().count())
    }

    /// Lazy search, step 2: the message keys those index entries name,
    /// newest first, in `chat` if given (the host reads these records of
    /// the `messages` namespace, at most as many as it wants to show).
    pub fn search_keys(index_keys: &[String], chat: Option<&str>) -> Vec<String> {
        let mut keys: Vec<(String, String)> = index_keys
            .iter()
            .filter_map(|k| k.split_once('/').map(|(_, key)| key))
            .filter(|key| chat.is_none_or(|c| key.starts_with(&format!("{c}/"))))
            .filter_map(|key| {
                let mut parts = key.rsplitn(3, '/');
                let (_id, time) = (parts.next()?, parts.next()?);
                Some((time.to_string(), key.to_string()))
            })
            .collect();
        keys.sort_by(|a, b| b.cmp(a));
        keys.dedup();
        keys.into_iter().map(|(_, k)| k).collect()
    }

    /// Lazy search, step 3: the hits among the records read (every word
    /// of the query must start a word of the message), newest first.
    pub fn search_results(&self, query: &str, records: &[Vec<u8>], limit: usize) -> Vec<SearchHit> {
        let q = crate::chats::words(query);
        let mut hits: Vec<ChatMessage> =
            records.iter().filter_map(|r| crate::json::from_slice::<ChatMessage>(r).ok()).filter(|m| crate::chats::matches(m, &q)).collect();
        hits.sort_by(|a, b| (b.time_ms, b.seq).cmp(&(a.time_ms, a.seq)));
        hits.truncate(limit);
        hits.into_iter().map(|m| SearchHit { chat_name: self.chat_name(&m.chat), message: m }).collect()
    }

    /// Search through the store's word index when the store reads it now
    /// (None: the host must do the three steps itself).
    pub(super) fn search_index(&self, query: &str, chat: Option<&str>, limit: usize) -> Option<Vec<SearchHit>> {
        let word = Self::search_word(query)?;
        let index = self.store.scan_prefix(NS_WORDS, &word).ok()??;
        let index_keys: Vec<String> = index.into_iter().take(SEARCH_CANDIDATES).map(|(k, _)| k).collect();
        let mut records = Vec::new();
        for key in Self::search_keys(&index_keys, chat) {
            if let Some(rows) = self.store.scan_prefix(crate::chats::NS_MESSAGES, &key).ok()? {
                records.extend(rows.into_iter().filter(|(k, _)| *k == key).map(|(_, v)| v));
            }
            if records.len() >= limit * 4 {
                break;
            }
        }
        Some(self.search_results(query, &records, limit))
    }
}

/// Loads the waiting list (for `Engine::open`).
pub(crate) fn load_parked(store: &dyn KvStore) -> Result<ParkedQueue, Error> {
    ParkedQueue::load(store)
}

#[cfg(test)]
mod tests {
    use super::Parked;
    use crate::tagged::tests::same;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    /// `Parked` as it was derived before.
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum DerivedParked {
        Payload {
            chat: String,
            sender: String,
            device: u32,
            message_id: String,
            server_time_ms: u64,
            payload: String,
            group: String,
        },
        Status {
            chat: String,
            id: String,
            status: crate::model::Status,
        },
    }

    #[test]
    fn parked_changes_read_as_the_derived_form_read_them() {
        let payload = json!({"kind": "payload", "chat": "bob", "sender": "bob", "device": 1, "message_id": "m",
            "server_time_ms": 5, "payload": "AAAA", "group": ""});
        let mut missing = payload.clone();
        missing.as_object_mut().unwrap().remove("group");
        let records = [
            payload,
            missing,
            json!({"kind": "status", "chat": "bob", "id": "m", "status": "sent"}),
            json!({"kind": "status", "chat": "bob", "id": "m", "status": "gone"}),
            json!({"kind": "status", "chat": "bob", "id": "m"}),
            json!({"kind": "payloads", "chat": "bob"}),
        ];
        for record in &records {
            same::<Parked, DerivedParked>(record);
        }
    }
}
