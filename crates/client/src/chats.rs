//! Chats and their messages, with the one ordering rule, read state, flags
//! and the notifications owed to the user.
//!
//! Order: by (time, local sequence), everywhere: at load, at arrival and at
//! history import. The local sequence is assigned when a message is added
//! and persisted with it, so messages of the same millisecond keep the order
//! they arrived in, across restarts.
//!
//! History can be lazy: when the store keeps messages apart and reads them
//! asynchronously (the browser's IndexedDB), nothing of it is loaded at
//! open. A chat's messages are then in memory ("resident") only once the
//! engine needed them and the host loaded them (`want` / `load_chat`);
//! new messages are written without loading their chat, and the least
//! recently used chats leave memory again (`evict`). Lazy stores also keep
//! a word index for search (`NS_WORDS`) and an index of what disappears
//! when (`NS_EXPIRING`), so neither needs the history in memory.

use crate::effects::Effects;
use crate::error::Error;
use crate::event::{Change, Event};
use crate::model::{Chat, ChatMessage, EditRecord, MessageBody, Notification, Status};
use crate::store::{KvStore, load_all};
use crate::sorted::{Map, Set};

const NS_CHATS: &str = "chats";
pub(crate) const NS_MESSAGES: &str = "messages";
const NS_NOTIFY: &str = "notify";
/// Lazy history: `<word>/<message key>` → nothing, for every word of a
/// message's searchable text.
pub(crate) const NS_WORDS: &str = "words";
/// Lazy history: `<time:016>/<chat>/<id>` → nothing, for messages that disappear.
const NS_EXPIRING: &str = "expiring";
/// Lazy history: `seq` → the next local sequence number.
const NS_CHAT_META: &str = "chatmeta";
/// Lazy history: at most this many messages stay in memory (least
/// recently used chats go first; a chat in use stays whatever its size).
pub const RESIDENT_MAX: usize = 20_000;
/// Most distinct words indexed per message.
const WORDS_PER_MESSAGE: usize = 64;
/// Longest word indexed (longer ones are cut).
const WORD_MAX_CHARS: usize = 32;

/// How long after sending its sender may edit a message.
pub const EDIT_WINDOW_MS: u64 = 24 * 3600 * 1000;
/// How long after sending its sender may delete a message for everyone.
pub const DELETE_WINDOW_MS: u64 = 48 * 3600 * 1000;
/// Clocks differ: an edit or a delete this much past its window still counts.
const CLOCK_SLACK_MS: u64 = 60_000;
/// The disappearing-messages timers a chat may have (seconds): off, 24
/// hours, 7 days, 90 days.
pub const DISAPPEAR_TIMERS: [u32; 4] = [0, 86_400, 604_800, 7_776_000];
/// Most characters of a reaction.
const REACTION_MAX_BYTES: usize = 32;

/// Why a change of a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

fn refused<T>(why: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(why.into()))
}

#[derive(Default)]
pub struct Chats {
    /// By the other party's handle.
    chats: Map<String, Chat>,
    /// Per chat, in order (see the module docs).
    messages: Map<String, Vec<ChatMessage>>,
    /// Notifications owed to the user, by message id.
    owed: Map<String, Notification>,
    /// The next local sequence number.
    next_seq: u64,
    /// Messages that disappear: (when, chat, id).
    expiring: Set<(u64, String, String)>,
    /// The history is lazy (see the module docs).
    lazy: bool,
    /// Lazy: the chats whose messages are in `messages`, with when each was last used.
    resident: Map<String, u64>,
    uses: u64,
    /// Lazy: chats whose messages the host should load.
    wants: Set<String>,
}

/// The ordering key of a message.
fn order(m: &ChatMessage) -> (u64, u64, &str) {
    (m.time_ms, m.seq, &m.id)
}

/// A message this account sent (readable: an undecryptable one claiming
/// to be from an own device proves nothing).
fn sent_by_user(m: &ChatMessage) -> bool {
    m.from_me && !matches!(m.body, crate::model::MessageBody::Undecryptable { .. })
}

/// Storage key of a message: chat, time, id.
fn message_key(m: &ChatMessage) -> String {
    format!("{}/{:016}/{}", m.chat, m.time_ms, m.id)
}

fn expiring_key(m: &ChatMessage) -> String {
    format!("{:016}/{}/{}", m.expires_ms, m.chat, m.id)
}

/// The words search finds a message by: lowercase runs of letters and
/// digits, each once, cut to [`WORD_MAX_CHARS`].
pub(crate) fn words(text: &str) -> Set<String> {
    runs(text, WORDS_PER_MESSAGE * 4)
        .into_iter()
        .map(|w| w.chars().take(WORD_MAX_CHARS).collect::<String>())
        .collect::<Set<_>>()
        .into_iter()
        .take(WORDS_PER_MESSAGE)
        .collect()
}

/// The first `limit` runs of letters and digits (Unicode's Alphabetic and
/// Number: `char::is_alphanumeric`), lowercased by Unicode's default
/// mapping.
#[cfg(not(all(feature = "wasm", target_arch = "wasm32")))]
fn runs(text: &str, limit: usize) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).take(limit).map(str::to_lowercase).collect()
}

/// In the browser, text that is not ASCII is split and lowercased by
/// JavaScript (a regular expression of the same two Unicode classes, and
/// `toLowerCase`, the same mapping): Rust's tables for them would be about
/// 9 KB of the wasm core, gzipped. The index and the queries of one store
/// are made by the same code, so they always agree.
#[cfg(all(feature = "wasm", target_arch = "wasm32"))]
fn runs(text: &str, limit: usize) -> Vec<String> {
    use wasm_bindgen::JsCast;
    if text.is_ascii() {
        return text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(limit)
            .map(str::to_ascii_lowercase)
            .collect();
    }
    let runs = js_sys::RegExp::new(r"[\p{Alphabetic}\p{N}]+", "gu");
    let Some(found) = js_sys::JsString::from(text).match_(&runs) else { return Vec::new() };
    found
        .unchecked_into::<js_sys::Array>()
        .iter()
        .take(limit)
        .map(|w| w.unchecked_into::<js_sys::JsString>().to_lower_case().into())
        .collect()
}

impl Chats {
    pub(crate) fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let mut this = Self::default();
        for c in load_all::<Chat>(store, NS_CHATS, "chat")? {
            this.chats.insert(c.handle.clone(), c);
        }
        let Some(rows) = store.scan_prefix(NS_MESSAGES, "").map_err(Error::Store)? else {
            this.lazy = true;
            for (k, v) in store.scan(NS_CHAT_META).map_err(Error::Store)? {
                if k == "seq" {
                    this.next_seq = crate::store::decode("sequence", &v)?;
                }
            }
            for (k, _) in store.scan(NS_EXPIRING).map_err(Error::Store)? {
                let mut parts = k.splitn(3, '/');
                if let (Some(t), Some(chat), Some(id)) = (parts.next(), parts.next(), parts.next())
                    && let Ok(t) = t.parse()
                {
                    this.expiring.insert((t, chat.to_string(), id.to_string()));
                }
            }
            for n in load_all::<Notification>(store, NS_NOTIFY, "notification")? {
                this.owed.insert(n.id.clone(), n);
            }
            return Ok(this);
        };
        let all: Vec<ChatMessage> = rows.iter().map(|(_, v)| crate::store::decode("message", v)).collect::<Result<_, _>>()?;
        for m in all {
            this.next_seq = this.next_seq.max(m.seq + 1);
            if m.expires_ms > 0 {
                this.expiring.insert((m.expires_ms, m.chat.clone(), m.id.clone()));
            }
            this.messages.entry(m.chat.clone()).or_default().push(m);
        }
        for (_, list) in this.messages.iter_mut() {
            list.sort_by(|a, b| order(a).cmp(&order(b)));
        }
        // Chats stored before `last_sent_ms` existed learn it from their messages.
        for (handle, list) in &this.messages {
            if let (Some(c), Some(t)) = (this.chats.get_mut(handle), list.iter().filter(|m| sent_by_user(m)).map(|m| m.time_ms).max()) {
                c.last_sent_ms = c.last_sent_ms.max(t);
            }
        }
        for n in load_all::<Notification>(store, NS_NOTIFY, "notification")? {
            this.owed.insert(n.id.clone(), n);
        }
        Ok(this)
    }

    pub(crate) fn clear(&mut self) {
        let lazy = self.lazy;
        *self = Self::default();
        self.lazy = lazy;
    }

    // ------------------------------------------------------ residency

    /// Whether the history is lazy (see the module docs).
    pub fn is_lazy(&self) -> bool {
        self.lazy
    }

    /// Whether `chat`'s messages are in memory (always, unless lazy).
    pub fn is_resident(&self, chat: &str) -> bool {
        !self.lazy || self.resident.contains_key(chat)
    }

    /// Makes `chat`'s messages resident if the store can read them now;
    /// otherwise asks the host for them (`take_wants`) and returns false.
    pub(crate) fn ensure(&mut self, chat: &str, store: &dyn KvStore) -> Result<bool, Error> {
        if !self.lazy {
            return Ok(true);
        }
        self.uses += 1;
        if let Some(used) = self.resident.get_mut(chat) {
            *used = self.uses;
            return Ok(true);
        }
        if !self.chats.contains_key(chat) {
            // A chat not written yet has no messages to load.
            self.load_chat(chat, vec![]);
            return Ok(true);
        }
        match store.scan_prefix(NS_MESSAGES, &format!("{chat}/")).map_err(Error::Store)? {
            Some(rows) => {
                self.load_chat(chat, rows);
                Ok(true)
            }
            None => {
                self.wants.insert(chat.to_string());
                Ok(false)
            }
        }
    }

    /// `chat`'s stored messages (every record under `<chat>/`), read by the
    /// host: the chat is resident from now on. Unreadable records are
    /// skipped; returns how many.
    pub(crate) fn load_chat(&mut self, chat: &str, rows: Vec<(String, Vec<u8>)>) -> usize {
        let mut bad = 0;
        let mut list: Vec<ChatMessage> = rows
            .iter()
            .filter_map(|(_, v)| {
                let m = crate::json::from_slice::<ChatMessage>(v).ok().filter(|m| m.chat == chat);
                bad += usize::from(m.is_none());
                m
            })
            .collect();
        list.sort_by(|a, b| order(a).cmp(&order(b)));
        let mut seen = crate::sorted::Set::new();
        list.retain(|m| seen.insert(m.id.clone()));
        self.messages.insert(chat.to_string(), list);
        self.uses += 1;
        self.resident.insert(chat.to_string(), self.uses);
        self.wants.remove(chat);
        bad
    }

    /// Chats whose messages the host should load, taken once.
    pub(crate) fn take_wants(&mut self) -> Vec<String> {
        std::mem::take(&mut self.wants).into_iter().collect()
    }

    /// Lazy: drops the least recently used chats from memory while more
    /// than `max` messages are resident; chats `keep` names stay.
    pub(crate) fn evict(&mut self, max: usize, keep: impl Fn(&str) -> bool) {
        if !self.lazy {
            return;
        }
        let mut total: usize = self.messages.values().map(Vec::len).sum();
        if total <= max {
            return;
        }
        let mut by_use: Vec<(u64, String)> = self.resident.iter().map(|(c, u)| (*u, c.clone())).collect();
        by_use.sort();
        // The chat used last stays, whatever its size.
        by_use.pop();
        for (_, chat) in by_use {
            if total <= max {
                break;
            }
            if keep(&chat) {
                continue;
            }
            total -= self.messages.remove(&chat).map_or(0, |l| l.len());
            self.resident.remove(&chat);
        }
    }

    /// Lazy: the word index of a message (see [`NS_WORDS`]).
    fn index(&self, m: &ChatMessage, fx: &mut Effects) {
        if self.lazy {
            for w in searchable(m).map(|t| words(&t)).unwrap_or_default() {
                fx.ops.push(crate::store::Op::Put { ns: NS_WORDS, key: format!("{w}/{}", message_key(m)), value: vec![] });
            }
        }
    }

    fn unindex(&self, m: &ChatMessage, fx: &mut Effects) {
        if self.lazy {
            for w in searchable(m).map(|t| words(&t)).unwrap_or_default() {
                fx.delete(NS_WORDS, &format!("{w}/{}", message_key(m)));
            }
        }
    }

    /// Lazy: messages written before the history was lazy (kept where the
    /// store had them) move to where it keeps history now, with their index.
    pub(crate) fn migrate(&mut self, store: &dyn KvStore, fx: &mut Effects) -> Result<usize, Error> {
        if !self.lazy {
            return Ok(0);
        }
        let rows = store.scan(NS_MESSAGES).map_err(Error::Store)?;
        let mut count = 0;
        for (_, v) in rows {
            let Ok(m) = crate::json::from_slice::<ChatMessage>(&v) else { continue };
            self.next_seq = self.next_seq.max(m.seq + 1);
            fx.put(NS_MESSAGES, &message_key(&m), &m);
            self.index(&m, fx);
            if m.expires_ms > 0 {
                fx.ops.push(crate::store::Op::Put { ns: NS_EXPIRING, key: expiring_key(&m), value: vec![] });
                self.expiring.insert((m.expires_ms, m.chat.clone(), m.id.clone()));
            }
            count += 1;
        }
        if count > 0 {
            fx.put(NS_CHAT_META, "seq", &self.next_seq);
        }
        Ok(count)
    }

    /// The chats this account sent to most recently (not archived), up to
    /// `n`, latest send first (ties by handle): the targets of one-click
    /// sends (the context menu, "send page to last chat"). Only the user's
    /// own sends count, so nobody else can put a chat there.
    pub fn recent(&self, n: usize) -> Vec<&Chat> {
        let mut v: Vec<&Chat> = self.chats.values().filter(|c| c.last_sent_ms > 0 && !c.archived).collect();
        v.sort_by(|a, b| b.last_sent_ms.cmp(&a.last_sent_ms).then(a.handle.cmp(&b.handle)));
        v.truncate(n);
        v
    }

    /// Chats, pinned first, then newest first.
    pub fn ordered(&self) -> Vec<&Chat> {
        let mut v: Vec<&Chat> = self.chats.values().collect();
        v.sort_by(|a, b| b.pinned.cmp(&a.pinned).then(b.last_ms.cmp(&a.last_ms)).then(a.handle.cmp(&b.handle)));
        v
    }

    pub fn all(&self) -> impl Iterator<Item = &Chat> {
        self.chats.values()
    }

    pub fn get(&self, handle: &str) -> Option<&Chat> {
        self.chats.get(handle)
    }

    /// A chat's messages, oldest first.
    pub fn messages(&self, chat: &str) -> &[ChatMessage] {
        self.messages.get(chat).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every message since `since_ms` that has not disappeared by `now`,
    /// chat by chat, in order.
    pub(crate) fn messages_since(&self, since_ms: u64, now: u64) -> Vec<ChatMessage> {
        self.messages.values().flatten().filter(|m| m.time_ms >= since_ms && (m.expires_ms == 0 || m.expires_ms > now)).cloned().collect()
    }

    /// Unread messages over all chats that are not muted (a chat marked
    /// as unread counts one).
    pub fn unread_unmuted(&self) -> u32 {
        self.chats.values().filter(|c| !c.muted).map(|c| if c.unread == 0 && c.marked_unread { 1 } else { c.unread }).sum()
    }

    /// Notifications not yet reported shown, oldest first.
    pub fn owed(&self) -> Vec<Notification> {
        let mut v: Vec<Notification> = self.owed.values().cloned().collect();
        v.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
        v
    }

    pub(crate) fn notification_shown(&mut self, id: &str, fx: &mut Effects) {
        if self.owed.remove(id).is_some() {
            fx.delete(NS_NOTIFY, id);
        }
    }

    /// Adds a message to its chat (once), in order, updating the chat's
    /// summary. `title` names the sender if the message is owed a
    /// notification. Returns whether it was new.
    pub(crate) fn add(&mut self, m: ChatMessage, count_unread: bool, title: &str, fx: &mut Effects) -> bool {
        self.add_with(m, count_unread, true, title, fx)
    }

    /// Adds a message that counts as unread but is owed no notification
    /// (an accepted message request's messages: the user saw them there).
    pub(crate) fn add_unnotified(&mut self, m: ChatMessage, fx: &mut Effects) -> bool {
        self.add_with(m, true, false, "", fx)
    }

    fn add_with(&mut self, m: ChatMessage, count_unread: bool, notify: bool, title: &str, fx: &mut Effects) -> bool {
        let Some(m) = self.insert(m, fx) else { return false };
        let c = self.chats.entry(m.chat.clone()).or_insert_with(|| Chat { handle: m.chat.clone(), ..Default::default() });
        if m.time_ms >= c.last_ms {
            c.last_ms = m.time_ms;
            c.last_preview = m.preview();
        }
        if sent_by_user(&m) {
            c.last_sent_ms = c.last_sent_ms.max(m.time_ms);
            if c.draft_ms <= m.time_ms && !c.draft.is_empty() {
                // Sent from here or another own device: the draft went with it.
                c.draft.clear();
                c.draft_ms = m.time_ms;
            }
        }
        let unread = count_unread && !m.from_me && m.time_ms > c.read_up_to_ms;
        if unread {
            c.unread += 1;
        }
        if c.archived && !m.from_me && !c.muted {
            c.archived = false; // a new message brings an archived chat back
        }
        let c = c.clone();
        fx.put(NS_CHATS, &c.handle, &c);
        let notification = (notify && unread && !c.muted).then(|| Notification {
            id: m.id.clone(),
            chat: m.chat.clone(),
            title: title.to_string(),
            body: m.preview(),
            time_ms: m.time_ms,
        });
        fx.emit(Event::Message { message: m });
        fx.emit(Event::ChatChanged { chat: c });
        if let Some(n) = notification {
            fx.put(NS_NOTIFY, &n.id, &n);
            self.owed.insert(n.id.clone(), n.clone());
            fx.emit(Event::Notify { notification: n });
        }
        true
    }

    /// Imports history from the primary: chats as they are there, messages
    /// in the same order rule as everywhere. Returns how many were new.
    pub(crate) fn import(&mut self, chats: Vec<Chat>, messages: Vec<ChatMessage>, fx: &mut Effects) -> usize {
        for c in chats {
            fx.put(NS_CHATS, &c.handle, &c);
            self.chats.insert(c.handle.clone(), c);
        }
        let mut count = 0;
        for m in messages {
            let Some(m) = self.insert(m, fx) else { continue };
            count += 1;
            if let Some(c) = self.chats.get_mut(&m.chat).filter(|c| sent_by_user(&m) && m.time_ms > c.last_sent_ms) {
                c.last_sent_ms = m.time_ms;
                fx.put(NS_CHATS, &c.handle, &*c);
            }
        }
        count
    }

    /// Stores a message (once, by id) in its place under the order rule,
    /// with the next local sequence; returns it as stored, or None if it
    /// was already there.
    fn insert(&mut self, mut m: ChatMessage, fx: &mut Effects) -> Option<ChatMessage> {
        if self.lazy && !self.chats.contains_key(&m.chat) && !self.resident.contains_key(&m.chat) {
            // A new chat: nothing of it is stored, so it is resident, empty.
            self.load_chat(&m.chat.clone(), vec![]);
        }
        let resident = self.is_resident(&m.chat);
        if resident && self.messages.get(&m.chat).is_some_and(|l| l.iter().any(|x| x.id == m.id)) {
            return None;
        }
        m.seq = self.next_seq;
        self.next_seq += 1;
        if m.expires_ms > 0 {
            self.expiring.insert((m.expires_ms, m.chat.clone(), m.id.clone()));
            if self.lazy {
                fx.ops.push(crate::store::Op::Put { ns: NS_EXPIRING, key: expiring_key(&m), value: vec![] });
            }
        }
        if resident {
            // Lazy and not resident: written only; a load reads it back.
            let list = self.messages.entry(m.chat.clone()).or_default();
            let pos = list.partition_point(|x| order(x) <= order(&m));
            list.insert(pos, m.clone());
        }
        fx.put(NS_MESSAGES, &message_key(&m), &m);
        self.index(&m, fx);
        if self.lazy {
            fx.put(NS_CHAT_META, "seq", &self.next_seq);
        }
        Some(m)
    }

    /// An own message got further (statuses only move forward).
    pub(crate) fn set_status(&mut self, id: &str, status: Status, fx: &mut Effects) {
        self.update_own(id, fx, |m| (status > m.status).then_some(status));
    }

    /// A receipt from the other party of `chat`: only an own message of
    /// that chat moves forward (a contact's receipt never touches another chat).
    pub(crate) fn set_status_in(&mut self, chat: &str, id: &str, status: Status, fx: &mut Effects) {
        let Some(msgs) = self.messages.get_mut(chat) else { return };
        if let Some(m) = msgs.iter_mut().find(|m| m.id == id && m.from_me && status > m.status) {
            m.status = status;
            fx.put(NS_MESSAGES, &message_key(m), &*m);
            fx.emit(Event::MessageStatus { chat: chat.to_string(), id: id.to_string(), status });
        }
    }

    /// A group member's receipt for an own message of the group's chat:
    /// kept per member; the message is delivered (read) once every one of
    /// `others` (the other members now) has it (read it).
    pub(crate) fn set_member_receipt(&mut self, chat: &str, id: &str, who: &str, status: Status, others: &[String], fx: &mut Effects) {
        let Some(msgs) = self.messages.get_mut(chat) else { return };
        let Some(m) = msgs.iter_mut().find(|m| m.id == id && m.from_me) else { return };
        let was = m.receipts.get(who).copied();
        if was.is_some_and(|w| w >= status) {
            return;
        }
        m.receipts.insert(who.to_string(), status);
        let least = others.iter().map(|h| m.receipts.get(h).copied().unwrap_or(Status::Sent)).min().unwrap_or(status);
        let before = m.status;
        if least > m.status {
            m.status = least;
        }
        fx.put(NS_MESSAGES, &message_key(m), &*m);
        if m.status != before {
            fx.emit(Event::MessageStatus { chat: chat.to_string(), id: id.to_string(), status: m.status });
        }
    }

    /// A message by id, in any chat.
    pub fn find(&self, id: &str) -> Option<&ChatMessage> {
        self.messages.values().flat_map(|v| v.iter()).find(|m| m.id == id)
    }

    /// Replaces what an own message says (a file's blob id and digest once
    /// its upload finished); the chat's preview follows.
    pub(crate) fn set_body(&mut self, id: &str, body: crate::model::MessageBody, fx: &mut Effects) {
        for (chat, msgs) in self.messages.iter_mut() {
            if let Some(m) = msgs.iter_mut().find(|m| m.id == id && m.from_me) {
                m.body = body;
                fx.put(NS_MESSAGES, &message_key(m), &*m);
                let m = m.clone();
                if let Some(c) = self.chats.get_mut(chat).filter(|c| c.last_ms == m.time_ms) {
                    c.last_preview = m.preview();
                    fx.put(NS_CHATS, &c.handle, &*c);
                }
                fx.emit(Event::Message { message: m });
                return;
            }
        }
    }

    /// A failed own message goes again (a retried upload): pending.
    pub(crate) fn reopen(&mut self, id: &str, fx: &mut Effects) {
        for (chat, msgs) in self.messages.iter_mut() {
            if let Some(m) = msgs.iter_mut().find(|m| m.id == id && m.from_me && m.status == Status::Failed) {
                m.status = Status::Pending;
                fx.put(NS_MESSAGES, &message_key(m), &*m);
                fx.emit(Event::MessageStatus { chat: chat.clone(), id: id.to_string(), status: Status::Pending });
                return;
            }
        }
    }

    /// An own message that will never be sent (only from pending).
    pub(crate) fn mark_failed(&mut self, id: &str, fx: &mut Effects) {
        self.update_own(id, fx, |m| (m.status == Status::Pending).then_some(Status::Failed));
    }

    /// Sets the status `next` picks for own message `id`, if any.
    fn update_own(&mut self, id: &str, fx: &mut Effects, next: impl FnOnce(&ChatMessage) -> Option<Status>) {
        for (chat, msgs) in self.messages.iter_mut() {
            if let Some(m) = msgs.iter_mut().find(|m| m.id == id && m.from_me) {
                if let Some(status) = next(m) {
                    m.status = status;
                    fx.put(NS_MESSAGES, &message_key(m), &*m);
                    fx.emit(Event::MessageStatus { chat: chat.clone(), id: id.to_string(), status });
                }
                return;
            }
        }
    }

    /// Incoming messages of `chat` not yet read, as the ids receipts carry.
    pub(crate) fn unread_ids(&self, chat: &str) -> Vec<String> {
        let read = self.chats.get(chat).map_or(0, |c| c.read_up_to_ms);
        self.messages(chat).iter().filter(|m| !m.from_me && m.time_ms > read).map(|m| m.id.clone()).collect()
    }

    /// The chat is read up to `up_to` (here or on another own device).
    pub(crate) fn apply_read(&mut self, chat: &str, up_to: u64, fx: &mut Effects) {
        let unread = self.messages(chat).iter().filter(|m| !m.from_me && m.time_ms > up_to).count() as u32;
        let Some(c) = self.chats.get_mut(chat) else { return };
        if up_to <= c.read_up_to_ms && c.unread == unread && !c.marked_unread {
            return;
        }
        c.marked_unread = false;
        c.read_up_to_ms = c.read_up_to_ms.max(up_to);
        c.unread = unread;
        let c = c.clone();
        fx.put(NS_CHATS, chat, &c);
        fx.emit(Event::ChatChanged { chat: c });
        self.drop_owed(chat, Some(up_to), fx);
    }

    /// Sets a chat's flags (here or from another own device).
    pub(crate) fn apply_flags(&mut self, chat: &str, muted: bool, archived: bool, pinned: bool, marked_unread: bool, fx: &mut Effects) {
        let c = self.chats.entry(chat.to_string()).or_insert_with(|| Chat { handle: chat.to_string(), ..Default::default() });
        c.muted = muted;
        c.archived = archived;
        c.pinned = pinned;
        c.marked_unread = marked_unread;
        let c = c.clone();
        fx.put(NS_CHATS, chat, &c);
        fx.emit(Event::ChatChanged { chat: c });
        if muted {
            self.drop_owed(chat, None, fx);
        }
    }

    /// A message of `chat`, by id.
    pub fn find_in(&self, chat: &str, id: &str) -> Option<&ChatMessage> {
        self.messages.get(chat)?.iter().find(|m| m.id == id)
    }

    /// Changes message `id` of `chat` with `f` (which may refuse), then
    /// persists it, refreshes the chat's preview and tells the UI.
    fn change(&mut self, chat: &str, id: &str, change: Change, fx: &mut Effects, f: impl FnOnce(&mut ChatMessage) -> Result<(), Refused>) -> Result<ChatMessage, Refused> {
        let Some(m) = self.messages.get_mut(chat).and_then(|l| l.iter_mut().find(|m| m.id == id)) else {
            return refused("there is no such message in this chat");
        };
        let before = m.clone();
        f(m)?;
        fx.put(NS_MESSAGES, &message_key(m), &*m);
        let m = m.clone();
        if searchable(&before) != searchable(&m) {
            self.unindex(&before, fx);
            self.index(&m, fx);
        }
        self.refresh_preview(chat, fx);
        fx.emit(Event::MessageChanged { message: m.clone(), change });
        Ok(m)
    }

    /// The chat's preview follows its last message (after an edit, a
    /// delete or a removal).
    fn refresh_preview(&mut self, chat: &str, fx: &mut Effects) {
        let preview = self.messages(chat).last().map(ChatMessage::preview).unwrap_or_default();
        if let Some(c) = self.chats.get_mut(chat).filter(|c| c.last_preview != preview) {
            c.last_preview = preview;
            let c = c.clone();
            fx.put(NS_CHATS, chat, &c);
            fx.emit(Event::ChatChanged { chat: c });
        }
    }

    /// `who` reacts to a message of `chat` with `emoji` (empty: takes its
    /// reaction back). One reaction per person.
    pub(crate) fn react(&mut self, chat: &str, id: &str, who: &str, emoji: &str, fx: &mut Effects) -> Result<ChatMessage, Refused> {
        if emoji.len() > REACTION_MAX_BYTES || emoji.chars().any(|c| c.is_control() || c.is_whitespace() || c.is_ascii_alphanumeric()) {
            return refused("a reaction is one emoji");
        }
        let change = Change::Reaction { handle: who.to_string(), emoji: emoji.to_string() };
        self.change(chat, id, change, fx, |m| {
            if !reactable(m) {
                return refused("this message cannot take a reaction");
            }
            if emoji.is_empty() {
                m.reactions.remove(who);
            } else {
                m.reactions.insert(who.to_string(), emoji.to_string());
            }
            Ok(())
        })
    }

    /// Its sender `who` edits a message of `chat` (a text, or a file's
    /// caption) at `at`, within [`EDIT_WINDOW_MS`]; the earlier text is kept.
    pub(crate) fn edit(&mut self, chat: &str, id: &str, who: &str, text: &str, at: u64, fx: &mut Effects) -> Result<ChatMessage, Refused> {
        if text.trim().is_empty() {
            return refused("the new text is empty");
        }
        self.change(chat, id, Change::Edited, fx, |m| {
            own_and_recent(m, who, at, EDIT_WINDOW_MS, "edited")?;
            if at <= m.edited_ms {
                return refused("a later edit is already applied");
            }
            let old = match &mut m.body {
                MessageBody::Text { body } => std::mem::replace(body, text.to_string()),
                MessageBody::File { caption, .. } => std::mem::replace(caption, text.to_string()),
                _ => return refused("only a text or a caption can be edited"),
            };
            m.edits.push(EditRecord { text: old, replaced_ms: at });
            m.edited_ms = at;
            Ok(())
        })
    }

    /// Its sender `who` deletes a message of `chat` for everyone at `at`,
    /// within [`DELETE_WINDOW_MS`]. Returns the message as it was.
    pub(crate) fn delete_for_everyone(&mut self, chat: &str, id: &str, who: &str, at: u64, fx: &mut Effects) -> Result<ChatMessage, Refused> {
        let mut before = None;
        self.change(chat, id, Change::Deleted, fx, |m| {
            if m.body == MessageBody::Deleted {
                return refused("the message is already deleted");
            }
            own_and_recent(m, who, at, DELETE_WINDOW_MS, "deleted for everyone")?;
            before = Some(m.clone());
            m.body = MessageBody::Deleted;
            m.reply_to = None;
            m.reactions.clear();
            m.edits.clear();
            Ok(())
        })?;
        self.drop_owed_ids(&[id.to_string()], fx);
        // Replies keep their place but not the deleted words.
        let quoting: Vec<String> =
            self.messages(chat).iter().filter(|m| m.reply_to.as_ref().is_some_and(|r| r.id == id && !r.text.is_empty())).map(|m| m.id.clone()).collect();
        for q in quoting {
            let _ = self.change(chat, &q, Change::QuoteDeleted, fx, |m| {
                if let Some(r) = m.reply_to.as_mut() {
                    r.text.clear();
                }
                Ok(())
            });
        }
        Ok(before.expect("changed"))
    }

    /// Removes messages from this device (deleted for me, or expired).
    /// Returns the ones that were here.
    pub(crate) fn remove(&mut self, chat: &str, ids: &[String], expired: bool, fx: &mut Effects) -> Vec<ChatMessage> {
        let Some(list) = self.messages.get_mut(chat) else { return vec![] };
        let mut gone = Vec::new();
        list.retain(|m| {
            let keep = !ids.contains(&m.id);
            if !keep {
                gone.push(m.clone());
            }
            keep
        });
        for m in &gone {
            fx.delete(NS_MESSAGES, &message_key(m));
            self.unindex(m, fx);
            if m.expires_ms > 0 && self.lazy {
                fx.delete(NS_EXPIRING, &expiring_key(m));
            }
            self.expiring.remove(&(m.expires_ms, m.chat.clone(), m.id.clone()));
            fx.emit(Event::MessageRemoved { chat: chat.to_string(), id: m.id.clone(), expired });
        }
        if !gone.is_empty() {
            let read = self.chats.get(chat).map_or(0, |c| c.read_up_to_ms);
            let unread = self.messages(chat).iter().filter(|m| !m.from_me && m.time_ms > read).count() as u32;
            if let Some(c) = self.chats.get_mut(chat).filter(|c| c.unread > unread) {
                c.unread = unread;
                let c = c.clone();
                fx.put(NS_CHATS, chat, &c);
                fx.emit(Event::ChatChanged { chat: c });
            }
            self.refresh_preview(chat, fx);
            let ids: Vec<String> = gone.iter().map(|m| m.id.clone()).collect();
            self.drop_owed_ids(&ids, fx);
        }
        gone
    }

    /// Removes every message whose disappearing timer ran out by `now`
    /// (lazy: of the chats the store can read now; the others are asked
    /// for, and go once loaded).
    pub(crate) fn expire(&mut self, now: u64, store: &dyn KvStore, fx: &mut Effects) -> Vec<ChatMessage> {
        let due: Vec<(u64, String, String)> = self.expiring.iter().take_while(|(t, _, _)| *t <= now).cloned().collect();
        let mut by_chat: Map<String, Vec<(u64, String)>> = Map::new();
        for (t, c, id) in due {
            by_chat.entry(c).or_default().push((t, id));
        }
        let mut gone = Vec::new();
        for (chat, due) in by_chat {
            if !self.ensure(&chat, store).unwrap_or(false) {
                continue;
            }
            let ids: Vec<String> = due.iter().map(|(_, id)| id.clone()).collect();
            gone.extend(self.remove(&chat, &ids, true, fx));
            // Entries whose message is gone already.
            for (t, id) in due {
                if self.expiring.remove(&(t, chat.clone(), id.clone())) && self.lazy {
                    fx.delete(NS_EXPIRING, &format!("{t:016}/{chat}/{id}"));
                }
            }
        }
        gone
    }

    /// When the next message disappears.
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.expiring.first().map(|(t, _, _)| *t)
    }

    /// The composer's text of a chat, typed at `at` (here or on another
    /// own device): the newest wins. Returns whether it changed.
    pub(crate) fn set_draft(&mut self, chat: &str, text: &str, at: u64, fx: &mut Effects) -> bool {
        let c = self.chats.entry(chat.to_string()).or_insert_with(|| Chat { handle: chat.to_string(), ..Default::default() });
        if at < c.draft_ms || (at == c.draft_ms && c.draft == text) {
            return false;
        }
        c.draft = text.to_string();
        c.draft_ms = at;
        let c = c.clone();
        fx.put(NS_CHATS, chat, &c);
        fx.emit(Event::ChatChanged { chat: c });
        true
    }

    /// A chat's disappearing-messages timer, set at `at` (the later setting
    /// wins). Returns whether it changed.
    pub(crate) fn set_disappear(&mut self, chat: &str, secs: u32, at: u64, fx: &mut Effects) -> bool {
        let c = self.chats.entry(chat.to_string()).or_insert_with(|| Chat { handle: chat.to_string(), ..Default::default() });
        if at < c.disappear_set_ms {
            return false;
        }
        c.disappear_set_ms = at;
        c.disappear_secs = secs;
        let c = c.clone();
        fx.put(NS_CHATS, chat, &c);
        fx.emit(Event::ChatChanged { chat: c });
        true
    }

    /// Messages whose words include every word of `query` (ignoring
    /// case), in one chat or all, newest first, at most `limit`.
    /// (Of the resident messages: lazy history searches its word index,
    /// see `Engine::search`.)
    pub fn search(&self, query: &str, chat: Option<&str>, limit: usize) -> Vec<&ChatMessage> {
        let q = words(query);
        if q.is_empty() || limit == 0 {
            return vec![];
        }
        let lists: Vec<&Vec<ChatMessage>> = match chat {
            Some(c) => self.messages.get(c).into_iter().collect(),
            None => self.messages.values().collect(),
        };
        let mut hits: Vec<&ChatMessage> = lists.into_iter().flat_map(|l| l.iter()).filter(|m| matches(m, &q)).collect();
        hits.sort_by(|a, b| order(b).cmp(&order(a)));
        hits.truncate(limit);
        hits
    }

    fn drop_owed_ids(&mut self, ids: &[String], fx: &mut Effects) {
        for id in ids {
            if self.owed.remove(id).is_some() {
                fx.delete(NS_NOTIFY, id);
            }
        }
    }

    /// Drops owed notifications of a chat that was read (up to a time) or muted.
    fn drop_owed(&mut self, chat: &str, up_to: Option<u64>, fx: &mut Effects) {
        let gone: Vec<String> =
            self.owed.values().filter(|n| n.chat == chat && up_to.is_none_or(|t| n.time_ms <= t)).map(|n| n.id.clone()).collect();
        for id in gone {
            self.owed.remove(&id);
            fx.delete(NS_NOTIFY, &id);
        }
    }
}

/// Whether a message can take reactions (not a line, not deleted or unreadable).
pub fn reactable(m: &ChatMessage) -> bool {
    matches!(m.body, MessageBody::Text { .. } | MessageBody::Link { .. } | MessageBody::File { .. })
}

/// Whether `who` may edit `m` at `now` (what a UI offers; a received
/// edit is allowed a minute of clock difference more): its sender, a text or a caption,
/// within [`EDIT_WINDOW_MS`].
pub fn editable(m: &ChatMessage, who: &str, now: u64) -> bool {
    matches!(m.body, MessageBody::Text { .. } | MessageBody::File { .. }) && m.sender_handle == who && now <= m.time_ms + EDIT_WINDOW_MS
}

/// Whether `who` may delete `m` for everyone at `now` (what a UI offers):
/// its sender, not deleted yet, within [`DELETE_WINDOW_MS`].
pub fn deletable_for_everyone(m: &ChatMessage, who: &str, now: u64) -> bool {
    reactable(m) && m.sender_handle == who && now <= m.time_ms + DELETE_WINDOW_MS
}

/// `who` sent `m`, and `at` is within `window` of when it was sent.
fn own_and_recent(m: &ChatMessage, who: &str, at: u64, window: u64, what: &str) -> Result<(), Refused> {
    if m.sender_handle != who || matches!(m.body, MessageBody::Undecryptable { .. } | MessageBody::GroupEvent { .. }) {
        return refused(format!("only its sender's own message can be {what}"));
    }
    if at > m.time_ms + window + CLOCK_SLACK_MS {
        return refused(format!("the message is too old to be {what}"));
    }
    Ok(())
}

/// Whether every word of a query starts a word of the message (ignoring case).
pub(crate) fn matches(m: &ChatMessage, query: &Set<String>) -> bool {
    let Some(text) = searchable(m) else { return false };
    let have = words(&text);
    query.iter().all(|q| have.iter_from(q.as_str()).next().is_some_and(|w| w.starts_with(q.as_str())))
}

/// The words of a message that search looks at (None: not searchable).
fn searchable(m: &ChatMessage) -> Option<String> {
    match &m.body {
        MessageBody::Text { body } => Some(body.clone()),
        MessageBody::Link { url, title, selection, preview } => {
            let p = preview.as_ref().map(|p| format!("{} {}", p.description, p.site_name)).unwrap_or_default();
            Some(format!("{title} {url} {selection} {p}"))
        }
        MessageBody::File { file, caption } => Some(format!("{caption} {}", file.file_name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageBody;
    use crate::store::MemoryStore;

    fn msg(id: &str, time_ms: u64) -> ChatMessage {
        ChatMessage {
            id: id.into(),
            chat: "bob".into(),
            from_me: false,
            sender_handle: "bob".into(),
            sender_device: 0,
            time_ms,
            body: MessageBody::Text { body: id.into() },
            status: Status::Delivered,
            seq: 0,
            receipts: Default::default(),
            ..Default::default()
        }
    }

    fn ids(chats: &Chats) -> Vec<&str> {
        chats.messages("bob").iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn one_order_at_arrival_import_and_load() {
        let mut chats = Chats::default();
        let mut fx = Effects::default();
        // Same millisecond: arrival order, even against the ids' order.
        chats.add(msg("zz", 10), true, "Bob", &mut fx);
        chats.add(msg("aa", 10), true, "Bob", &mut fx);
        chats.add(msg("mm", 5), true, "Bob", &mut fx);
        chats.import(vec![], vec![msg("yy", 10), msg("bb", 7)], &mut fx);
        let live: Vec<String> = ids(&chats).into_iter().map(String::from).collect();
        assert_eq!(live, ["mm", "bb", "zz", "aa", "yy"]);
        let mut store = MemoryStore::default();
        store.apply(&fx.ops).unwrap();
        let reloaded = Chats::load(&store).unwrap();
        assert_eq!(ids(&reloaded), live, "a restart keeps the order");
        assert_eq!(chats.owed().len(), 3, "each added incoming message is owed a notification");
    }

    #[test]
    fn only_the_sender_edits_or_deletes_and_only_within_the_window() {
        let mut chats = Chats::default();
        let mut fx = Effects::default();
        chats.add(msg("a", 1_000), true, "Bob", &mut fx);
        // Someone else in the chat (an own device, a group member) cannot.
        assert!(chats.edit("bob", "a", "alice", "forged", 2_000, &mut fx).is_err());
        assert!(chats.delete_for_everyone("bob", "a", "alice", 2_000, &mut fx).is_err());
        // The sender can, until the window closes (with a minute's slack).
        assert!(chats.edit("bob", "a", "bob", "late", 1_000 + EDIT_WINDOW_MS + 120_000, &mut fx).is_err());
        chats.edit("bob", "a", "bob", "second", 5_000, &mut fx).unwrap();
        assert!(chats.edit("bob", "a", "bob", "older edit", 4_000, &mut fx).is_err(), "an older edit arriving late changes nothing");
        let m = chats.find_in("bob", "a").unwrap();
        assert_eq!((m.body.clone(), m.edits.len()), (MessageBody::Text { body: "second".into() }, 1));
        // Reactions are one emoji, not text.
        assert!(chats.react("bob", "a", "alice", "two words", &mut fx).is_err());
        chats.react("bob", "a", "alice", "👍", &mut fx).unwrap();
        chats.delete_for_everyone("bob", "a", "bob", 1_000 + DELETE_WINDOW_MS, &mut fx).unwrap();
        let m = chats.find_in("bob", "a").unwrap();
        assert!(m.body == MessageBody::Deleted && m.reactions.is_empty() && m.edits.is_empty(), "nothing of it is left");
        assert!(chats.react("bob", "a", "alice", "👍", &mut fx).is_err(), "a deleted message takes no reaction");
        assert!(chats.owed().is_empty(), "its notification went with it");
    }

    #[test]
    fn removing_and_expiring_keep_unread_counts_and_previews_true() {
        let mut chats = Chats::default();
        let mut fx = Effects::default();
        chats.add(msg("a", 10), true, "Bob", &mut fx);
        let mut b = msg("b", 20);
        b.expires_ms = 100;
        chats.add(b, true, "Bob", &mut fx);
        assert_eq!((chats.get("bob").unwrap().unread, chats.next_expiry()), (2, Some(100)));
        assert!(chats.expire(99, &MemoryStore::default(), &mut fx).is_empty());
        assert_eq!(chats.expire(100, &MemoryStore::default(), &mut fx).len(), 1);
        let c = chats.get("bob").unwrap();
        assert_eq!((c.unread, c.last_preview.as_str(), chats.next_expiry()), (1, "a", None));
        assert_eq!(chats.search("A", None, 10).len(), 1);
        chats.remove("bob", &["a".to_string()], false, &mut fx);
        assert_eq!((chats.get("bob").unwrap().unread, chats.get("bob").unwrap().last_preview.as_str()), (0, ""));
        assert!(chats.search("a", None, 10).is_empty());
        // Gone from the store too.
        let mut store = MemoryStore::default();
        store.apply(&fx.ops).unwrap();
        assert!(Chats::load(&store).unwrap().messages("bob").is_empty());
    }

    #[test]
    fn lazy_chats_load_on_demand_and_the_least_recently_used_leave_memory() {
        let mut chats = Chats { lazy: true, ..Default::default() };
        let mut fx = Effects::default();
        for (chat, n) in [("bob", 3), ("carol", 2)] {
            for i in 0..n {
                let mut m = msg(&format!("{chat}{i}"), 10 + i);
                m.chat = chat.into();
                chats.add(m, true, "", &mut fx);
            }
        }
        // New chats start resident (nothing of them was stored before).
        assert!(chats.is_resident("bob") && chats.is_resident("carol"));
        chats.evict(3, |_| false);
        assert!(!chats.is_resident("bob") && chats.is_resident("carol"), "the least recently used went");
        // A message for a chat not in memory is written, not loaded.
        let mut late = msg("bob3", 20);
        late.chat = "bob".into();
        chats.add(late, true, "", &mut fx);
        assert!(!chats.is_resident("bob"));
        assert_eq!(chats.get("bob").unwrap().unread, 4);
        // The store reads it back with the rest, and its words are indexed.
        let mut store = MemoryStore::default();
        store.apply(&fx.ops).unwrap();
        assert!(chats.ensure("bob", &store).unwrap());
        assert_eq!(ids(&chats), ["bob0", "bob1", "bob2", "bob3"]);
        assert_eq!(store.scan_prefix(NS_WORDS, "bob3/").unwrap().unwrap().len(), 1);
        // Reopened: nothing resident, the sequence goes on.
        let mut again = Chats::load(&LazyMem(store)).unwrap();
        assert!(again.is_lazy() && !again.is_resident("bob"));
        assert_eq!(again.next_seq, 6);
        assert!(!again.ensure("bob", &LazyMem(MemoryStore::default())).unwrap());
        assert_eq!(again.take_wants(), ["bob"]);
    }

    /// A memory store that keeps history apart, as the browser's does.
    struct LazyMem(MemoryStore);
    impl KvStore for LazyMem {
        fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
            if crate::store::HISTORY_NAMESPACES.contains(&ns) { Ok(vec![]) } else { self.0.scan(ns) }
        }
        fn apply(&mut self, ops: &[crate::store::Op]) -> Result<(), String> {
            self.0.apply(ops)
        }
        fn scan_prefix(&self, ns: &str, prefix: &str) -> Result<Option<Vec<(String, Vec<u8>)>>, String> {
            if crate::store::HISTORY_NAMESPACES.contains(&ns) { Ok(None) } else { self.0.scan_prefix(ns, prefix) }
        }
    }

    #[test]
    fn reading_or_muting_drops_owed_notifications() {
        let mut chats = Chats::default();
        let mut fx = Effects::default();
        chats.add(msg("a", 10), true, "Bob", &mut fx);
        chats.add(msg("b", 20), true, "Bob", &mut fx);
        chats.apply_read("bob", 10, &mut fx);
        assert_eq!(chats.owed().iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["b"]);
        chats.apply_flags("bob", true, false, false, false, &mut fx);
        assert!(chats.owed().is_empty());
        chats.add(msg("c", 30), true, "Bob", &mut fx);
        assert!(chats.owed().is_empty(), "a muted chat owes no notification");
        assert_eq!(chats.get("bob").unwrap().unread, 2);
    }

    #[test]
    fn what_a_ui_offers_follows_the_sender_and_the_windows() {
        let m = msg("a", 1_000);
        assert!(editable(&m, "bob", 1_000 + EDIT_WINDOW_MS));
        assert!(!editable(&m, "bob", 1_001 + EDIT_WINDOW_MS), "the edit window closed");
        assert!(!editable(&m, "alice", 1_000), "someone else's message");
        assert!(deletable_for_everyone(&m, "bob", 1_000 + DELETE_WINDOW_MS));
        assert!(!deletable_for_everyone(&m, "bob", 1_001 + DELETE_WINDOW_MS));
        let link = ChatMessage {
            body: MessageBody::Link {
                url: "https://example.org".into(),
                title: String::new(),
                selection: String::new(),
                preview: None,
            },
            ..m.clone()
        };
        assert!(!editable(&link, "bob", 1_000), "a link has no text to edit");
        assert!(deletable_for_everyone(&link, "bob", 1_000) && reactable(&link));
        let deleted = ChatMessage { body: MessageBody::Deleted, ..m.clone() };
        assert!(
            !editable(&deleted, "bob", 1_000)
                && !deletable_for_everyone(&deleted, "bob", 1_000)
                && !reactable(&deleted)
        );
        let line = ChatMessage { body: MessageBody::GroupEvent { text: "bob added carol".into() }, ..m };
        assert!(!reactable(&line) && !deletable_for_everyone(&line, "bob", 1_000));
    }
}
