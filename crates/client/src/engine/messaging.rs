//! Everyday messaging on top of sending and receiving: replies,
//! reactions, edits, deletes (for me, for everyone), disappearing
//! messages, drafts, the note to self, search and "mark as unread".
//!
//! Every change of a message travels like a message (to the chat's other
//! party or group, and to this account's other devices) and is checked
//! the same way on every device by `chats` (who may change what, and
//! until when), so all devices end up agreeing.

use super::Engine;
use super::send::hex_to_bytes;
use crate::chats::{DISAPPEAR_TIMERS, Refused};
use crate::content::{Body, Delete, DeleteForMe, Disappear, Draft, Edit, Quote, Reaction, Text};
use crate::error::Error;
use crate::model::{ChatMessage, MessageBody, ReplyRef, Status};
use crate::olm::hex;
use crate::view::SearchHit;
use tether_proto::frames as f;

/// Most characters of a reply's quote.
const QUOTE_CHARS: usize = 200;
/// Most results of one search.
pub const SEARCH_LIMIT: usize = 200;

impl Engine {
    // ----------------------------------------------------------- commands

    /// Answers message `reply_to` of `chat` with a text; returns its id.
    pub fn reply(&mut self, chat: &str, reply_to: &str, text: &str, now: u64) -> Result<String, Error> {
        if text.trim().is_empty() {
            return Err(Error::Invalid("the message is empty".into()));
        }
        let chat = self.writable_chat(chat)?;
        self.need(&chat)?;
        let target = self.chats.find_in(&chat, reply_to).ok_or_else(|| Error::Invalid("there is no such message in this chat".into()))?;
        let quote = ReplyRef { id: target.id.clone(), author: target.sender_handle.clone(), text: quote_of(target) };
        let body = Body::Text(Text { body: text.to_string() });
        self.send_content_with(&chat, body, MessageBody::Text { body: text.to_string() }, Some(quote), now)
    }

    /// Reacts to a message with `emoji`, replacing this account's earlier
    /// reaction; an empty `emoji` takes it back.
    pub fn react(&mut self, chat: &str, message_id: &str, emoji: &str, now: u64) -> Result<(), Error> {
        let chat = self.writable_chat(chat)?;
        self.need(&chat)?;
        let me = self.handle().unwrap_or_default().to_string();
        self.chats.react(&chat, message_id, &me, emoji, &mut self.fx).map_err(invalid)?;
        self.send_change(&chat, Body::Reaction(Reaction { message_id: hex_to_bytes(message_id), emoji: emoji.to_string() }), now);
        Ok(())
    }

    /// Edits an own message (a text or a file's caption) within
    /// [`crate::chats::EDIT_WINDOW_MS`] of sending it.
    pub fn edit(&mut self, chat: &str, message_id: &str, text: &str, now: u64) -> Result<(), Error> {
        let chat = self.writable_chat(chat)?;
        self.need(&chat)?;
        let me = self.handle().unwrap_or_default().to_string();
        self.chats.edit(&chat, message_id, &me, text, now, &mut self.fx).map_err(invalid)?;
        self.send_change(&chat, Body::Edit(Edit { message_id: hex_to_bytes(message_id), text: text.to_string() }), now);
        Ok(())
    }

    /// Deletes an own message for everyone within
    /// [`crate::chats::DELETE_WINDOW_MS`]; a file goes from the server too.
    pub fn delete_for_everyone(&mut self, chat: &str, message_id: &str, now: u64) -> Result<(), Error> {
        let chat = self.writable_chat(chat)?;
        self.need(&chat)?;
        let me = self.handle().unwrap_or_default().to_string();
        let was = self.chats.delete_for_everyone(&chat, message_id, &me, now, &mut self.fx).map_err(invalid)?;
        self.send_change(&chat, Body::Delete(Delete { message_id: hex_to_bytes(message_id) }), now);
        self.forget_file(&was, now);
        self.finish();
        Ok(())
    }

    /// Deletes messages of a chat from this device and this account's
    /// other devices (the others in the chat keep them).
    pub fn delete_for_me(&mut self, chat: &str, message_ids: &[String], now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        self.need(chat)?;
        let gone = self.chats.remove(chat, message_ids, false, &mut self.fx);
        if gone.is_empty() {
            return Err(Error::Invalid("there is no such message in this chat".into()));
        }
        for m in &gone {
            // Only this account's copy goes: the others keep the file, so
            // this device just stops being one of its readers.
            if let MessageBody::File { file, .. } = &m.body {
                self.file_fetched(&file.blob_id, now);
            }
        }
        let ids = gone.iter().map(|m| hex_to_bytes(&m.id)).collect();
        self.to_own_devices(chat, Body::DeleteForMe(DeleteForMe { chat: chat.to_string(), message_ids: ids }), now);
        self.finish();
        Ok(())
    }

    /// Sets a chat's disappearing-messages timer (0, 24 h, 7 days or 90
    /// days, in seconds) for both sides; a line in the chat says so.
    pub fn set_disappearing(&mut self, chat: &str, seconds: u32, now: u64) -> Result<(), Error> {
        if !DISAPPEAR_TIMERS.contains(&seconds) {
            return Err(Error::Invalid("the timer is off, 24 hours, 7 days or 90 days".into()));
        }
        let chat = self.writable_chat(chat)?;
        let me = self.handle().unwrap_or_default().to_string();
        let id = self.new_message_id();
        self.apply_disappear(&chat, &id, &me, 0, seconds, now);
        self.queue_payload(&id, &chat, Body::Disappear(Disappear { seconds }), vec![], None, now);
        self.finish();
        Ok(())
    }

    /// The composer's text of a chat (empty: none), kept across restarts
    /// and sent to this account's other devices. Call it when typing
    /// pauses, not on every key.
    pub fn set_draft(&mut self, chat: &str, text: &str, now: u64) -> Result<(), Error> {
        let chat = self.writable_chat(chat)?;
        if self.chats.get(&chat).is_some_and(|c| c.draft == text) {
            return Ok(());
        }
        if self.chats.set_draft(&chat, text, now, &mut self.fx) {
            self.to_own_devices(&chat, Body::Draft(Draft { chat: chat.clone(), text: text.to_string(), updated_ms: now }), now);
        }
        self.finish();
        Ok(())
    }

    /// Messages whose text has every word of `query`, in `chat` or in all
    /// chats, newest first (local only: the server has nothing to search).
    /// With lazy history this searches the store's word index if the
    /// store reads it now; a host that reads it asynchronously does the
    /// three steps itself (`search_word`, `search_keys`, `search_results`).
    pub fn search(&self, query: &str, chat: Option<&str>, limit: usize) -> Vec<SearchHit> {
        let limit = limit.min(SEARCH_LIMIT);
        if self.chats.is_lazy() {
            return self.search_index(query, chat, limit).unwrap_or_default();
        }
        self.chats
            .search(query, chat, limit)
            .into_iter()
            .map(|m| SearchHit { chat_name: self.chat_name(&m.chat), message: m.clone() })
            .collect()
    }

    /// The note-to-self chat's key (this account's handle), once registered.
    pub fn note_to_self(&self) -> Option<&str> {
        self.handle()
    }

    /// The name a chat goes by: a group's name, "Note to self", or the
    /// contact's display name.
    pub fn chat_name(&self, chat: &str) -> String {
        if let Some(g) = crate::groups::group_of(chat).and_then(|id| self.groups.get(id)) {
            return g.name.clone();
        }
        if Some(chat) == self.handle() {
            return NOTE_TO_SELF.to_string();
        }
        self.display_name(chat)
    }

    // ----------------------------------------------------------- internals

    /// Sends a change of a message (or a setting) to everyone in `chat`.
    fn send_change(&mut self, chat: &str, body: Body, now: u64) {
        let id = self.new_message_id();
        self.queue_payload(&id, chat, body, vec![], None, now);
        self.finish();
    }

    /// The file of a message this device will not show again: deleted
    /// from the server if this account sent it, given up as a reader
    /// otherwise.
    fn forget_file(&mut self, m: &ChatMessage, now: u64) {
        let MessageBody::File { file, .. } = &m.body else { return };
        if file.blob_id.is_empty() {
            return;
        }
        if m.from_me {
            self.delete_blobs(&[file.blob_id.clone()], now);
        } else {
            self.file_fetched(&file.blob_id, now);
        }
    }

    /// This device no longer needs a blob (it may then go from the server).
    fn file_fetched(&mut self, blob_id: &str, now: u64) {
        if !blob_id.is_empty() {
            let req = f::Request::BlobFetched(f::BlobFetched { blob_ids: vec![hex_to_bytes(blob_id)] });
            self.request(req, crate::requests::Pending::BlobFetched, now);
        }
    }

    fn apply_disappear(&mut self, chat: &str, line_id: &str, who: &str, device: u32, seconds: u32, at: u64) {
        if !self.chats.set_disappear(chat, seconds, at, &mut self.fx) {
            return;
        }
        let me = Some(who) == self.handle();
        let name = if me { "You".to_string() } else { self.display_name(who) };
        let text = match seconds {
            0 => format!("{name} turned off disappearing messages"),
            s => format!("{name} set messages to disappear after {}", timer_words(s)),
        };
        let m = ChatMessage {
            id: line_id.to_string(),
            chat: chat.to_string(),
            from_me: me,
            sender_handle: who.to_string(),
            sender_device: device,
            time_ms: at,
            body: MessageBody::GroupEvent { text },
            status: Status::Sent,
            ..Default::default()
        };
        self.chats.add(m, false, "", &mut self.fx);
    }

    // ----------------------------------------------------------- receiving

    /// A change of a message or of the chat's timer from `e`'s sender, in
    /// `chat` (the sender's 1:1 chat, the chat an own copy names, or a group
    /// the sender is in). Returns false if `body` is not one.
    pub(super) fn on_message_change(&mut self, e: &f::Envelope, chat: &str, body: &Body, time: u64, now: u64) -> bool {
        let who = e.sender_handle.as_str();
        let result: Result<(), Refused> = match body {
            Body::Reaction(r) => self.chats.react(chat, &hex(&r.message_id), who, &r.emoji, &mut self.fx).map(drop),
            Body::Edit(ed) => self.chats.edit(chat, &hex(&ed.message_id), who, &ed.text, time, &mut self.fx).map(drop),
            Body::Delete(d) => self.chats.delete_for_everyone(chat, &hex(&d.message_id), who, time, &mut self.fx).map(|was| {
                // The sender's device deletes the blob; a reader stops being one.
                if !was.from_me {
                    self.forget_file(&was, now);
                }
            }),
            Body::Disappear(d) if DISAPPEAR_TIMERS.contains(&d.seconds) => {
                self.apply_disappear(chat, &hex(&e.message_id), who, e.sender_device, d.seconds, time);
                Ok(())
            }
            Body::Disappear(_) => Err(Refused("an unknown disappearing-messages timer".into())),
            _ => return false,
        };
        if let Err(Refused(why)) = result {
            self.fx.error(format!("ignored a change of a message from {who}: {why}"));
        }
        true
    }

    /// What an own device tells the others about a chat: a draft, or
    /// messages deleted for me. Returns false if `body` is not one.
    pub(super) fn on_own_sync(&mut self, body: &Body) -> bool {
        match body {
            Body::Draft(d) => {
                self.chats.set_draft(&d.chat, &d.text, d.updated_ms, &mut self.fx);
            }
            Body::DeleteForMe(d) => {
                let ids: Vec<String> = d.message_ids.iter().map(|id| hex(id)).collect();
                self.chats.remove(&d.chat, &ids, false, &mut self.fx);
            }
            _ => return false,
        }
        true
    }

    /// Removes messages whose disappearing timer ran out; their files go
    /// from the server (the sender's device deletes them, a reader stops
    /// being one).
    pub(super) fn expire(&mut self, now: u64) {
        for m in self.chats.expire(now, &*self.store, &mut self.fx) {
            self.forget_file(&m, now);
        }
    }
}

/// The name of the note-to-self chat.
pub const NOTE_TO_SELF: &str = "Note to self";

/// "24 hours", "7 days", "90 days".
pub fn timer_words(seconds: u32) -> String {
    match seconds {
        s if s % 86_400 == 0 && s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

/// A reply's quote of a message: the start of what it says.
fn quote_of(m: &ChatMessage) -> String {
    let text = match &m.body {
        MessageBody::Text { body } => body.clone(),
        _ => m.preview(),
    };
    text.chars().take(QUOTE_CHARS).collect()
}

/// A received quote, bounded; None if it names no message.
pub(super) fn received_quote(q: Option<Quote>) -> Option<ReplyRef> {
    let q = q?;
    (q.message_id.len() == 16).then(|| ReplyRef {
        id: hex(&q.message_id),
        author: q.author.chars().take(64).collect(),
        text: q.text.chars().take(QUOTE_CHARS).collect(),
    })
}

fn invalid(r: Refused) -> Error {
    Error::Invalid(r.0)
}
