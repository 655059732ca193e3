//! Sending: commands that write messages, and the pump that moves the
//! outbox (in send order) through device lists, sessions and per-device
//! encryption into one `Send` per entry.

use super::{Engine, RETRY_MS};
use crate::content::{Body, ChatFlags, LinkShare, Payload, Profile, Quote, RECEIPT_DELIVERED, RECEIPT_READ, ReadSync, Receipt, Sealed, Text};
use crate::error::Error;
use crate::event::Event;
use crate::model::{ChatFlag, ChatMessage, LinkPreview, MessageBody, OutboxEntry, PREVIEW_IMAGE_MAX, ReplyRef, Status};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crate::olm::{Peer, hex};
use prost::Message;
use crate::sorted::Set;
use tether_proto::frames::{self as f, Request};
use tether_proto::{ErrorCode, normalize_handle};

/// A device we must encrypt to.
struct Target {
    handle: String,
    device_id: u32,
    identity: Vec<u8>,
    /// One of this account's other devices (gets the copy for own devices).
    own: bool,
    /// The version of the verified list the device is from (stated in the
    /// copy, so the server refuses it if the account's list is newer).
    list_version: u64,
}

impl Target {
    /// The device as sessions are kept: handle, device id and identity key.
    fn peer(&self) -> Peer {
        Peer::new(&self.handle, self.device_id, &self.identity)
    }
}

impl Engine {
    // ----------------------------------------------------------- commands

    /// Sends a text message; returns its id.
    pub fn send_text(&mut self, chat: &str, text: &str, now: u64) -> Result<String, Error> {
        if text.trim().is_empty() {
            return Err(Error::Invalid("the message is empty".into()));
        }
        let body = Body::Text(Text { body: text.to_string() });
        self.send_content(chat, body, MessageBody::Text { body: text.to_string() }, now)
    }

    /// Shares a link (a page's URL and title, with the selected text if
    /// any, and the preview the sender made from its tab, if any).
    pub fn send_link(&mut self, chat: &str, url: &str, title: &str, selection: &str, preview: Option<LinkPreview>, now: u64) -> Result<String, Error> {
        if url.trim().is_empty() {
            return Err(Error::Invalid("the link is empty".into()));
        }
        let preview = preview.map(clean_preview).transpose()?;
        let image = preview.as_ref().map(|p| B64.decode(p.image.as_bytes()).unwrap_or_default()).unwrap_or_default();
        let share = LinkShare {
            url: url.into(),
            title: title.into(),
            selection: selection.into(),
            description: preview.as_ref().map(|p| p.description.clone()).unwrap_or_default(),
            site_name: preview.as_ref().map(|p| p.site_name.clone()).unwrap_or_default(),
            image,
        };
        let msg = link_body(share.clone());
        self.send_content(chat, Body::Link(share), msg, now)
    }

    /// Tells a contact the name this account goes by (their devices show
    /// it beside the handle, and only where they gave no name of their
    /// own). Receivers clean it with `sanitize_name`; so does this.
    pub fn send_profile(&mut self, chat: &str, name: &str, now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        let chat = normalize_handle(chat)?;
        let name = crate::names::sanitize_name(name);
        self.send_raw_profile(&chat, &name, now);
        Ok(())
    }

    /// Sends a profile name as given, uncleaned: what a hostile client
    /// could send. For the attack tests only.
    #[doc(hidden)]
    pub fn danger_send_raw_profile(&mut self, chat: &str, name: &str, now: u64) {
        self.send_raw_profile(chat, name, now);
    }

    fn send_raw_profile(&mut self, chat: &str, name: &str, now: u64) {
        let id = self.new_message_id();
        let body = Body::Profile(Profile { display_name: name.to_string() });
        let entry = OutboxEntry { id, to: vec![chat.to_string()], to_them: Payload::new("", now, body).bytes(), to_me: vec![], created_ms: now, seq: 0, blob_ids: vec![], ..Default::default() };
        self.queue(entry, now);
        self.finish();
    }

    /// Marks a chat read: read receipts to the contact, read-sync to this
    /// account's other devices.
    pub fn mark_read(&mut self, chat: &str, now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        self.need(chat)?;
        let Some(c) = self.chats.get(chat).cloned() else { return Ok(()) };
        let unread: Vec<Vec<u8>> = self.chats.unread_ids(chat).iter().map(|id| hex_to_bytes(id)).collect();
        let up_to = self.chats.messages(chat).last().map(|m| m.time_ms).unwrap_or(now).max(c.read_up_to_ms);
        if let Some(group) = crate::groups::group_of(chat) {
            let group = group.to_string();
            self.group_read(chat, &group, now);
            self.chats.apply_read(chat, up_to, &mut self.fx);
        } else {
            self.chats.apply_read(chat, up_to, &mut self.fx);
        }
        if !unread.is_empty() && crate::groups::group_of(chat).is_none() {
            self.receipt(chat, RECEIPT_READ, unread, now);
        }
        self.to_own_devices(chat, Body::ReadSync(ReadSync { chat: chat.to_string(), up_to_ms: up_to }), now);
        self.finish();
        Ok(())
    }

    /// Mutes, archives or pins a chat here and on this account's other devices.
    pub fn set_chat_flags(&mut self, chat: &str, muted: bool, archived: bool, pinned: bool, now: u64) -> Result<(), Error> {
        let marked_unread = self.chats.get(chat).is_some_and(|c| c.marked_unread);
        self.write_flags(chat, muted, archived, pinned, marked_unread, now)
    }

    fn write_flags(&mut self, chat: &str, muted: bool, archived: bool, pinned: bool, marked_unread: bool, now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        self.chats.apply_flags(chat, muted, archived, pinned, marked_unread, &mut self.fx);
        self.to_own_devices(chat, Body::Flags(ChatFlags { chat: chat.to_string(), muted, archived, pinned, marked_unread }), now);
        self.finish();
        Ok(())
    }

    /// Turns one flag of a chat on or off, keeping the others as they are
    /// now (so a UI never writes back a stale copy of the other two).
    pub fn set_chat_flag(&mut self, chat: &str, flag: ChatFlag, on: bool, now: u64) -> Result<(), Error> {
        let c = self.chats.get(chat).cloned().unwrap_or_default();
        let (mut muted, mut archived, mut pinned, mut unread) = (c.muted, c.archived, c.pinned, c.marked_unread);
        match flag {
            ChatFlag::Muted => muted = on,
            ChatFlag::Archived => archived = on,
            ChatFlag::Pinned => pinned = on,
            ChatFlag::Unread => unread = on,
        }
        self.write_flags(chat, muted, archived, pinned, unread, now)
    }

    // ----------------------------------------------------------- internals

    pub(super) fn new_message_id(&mut self) -> String {
        hex(&self.random::<16>())
    }

    pub(super) fn send_content(&mut self, chat: &str, body: Body, shown: MessageBody, now: u64) -> Result<String, Error> {
        self.send_content_with(chat, body, shown, None, now)
    }

    /// Sends a message (a reply if `reply` names the answered one) and shows it.
    pub(super) fn send_content_with(&mut self, chat: &str, body: Body, shown: MessageBody, reply: Option<ReplyRef>, now: u64) -> Result<String, Error> {
        let chat = self.writable_chat(chat)?;
        if crate::groups::group_of(&chat).is_none() && Some(chat.as_str()) != self.handle() {
            self.accept_by_writing(&chat, now);
        }
        let id = self.new_message_id();
        self.show_own_reply(&id, &chat, shown, reply.clone(), now);
        let quote = reply.map(|r| Quote { message_id: hex_to_bytes(&r.id), author: r.author, text: r.text });
        self.queue_payload(&id, &chat, body, vec![], quote, now);
        self.finish();
        Ok(id)
    }

    /// The chat a message may be written to: a group this account is in,
    /// a contact, or the account itself (note to self).
    pub(super) fn writable_chat(&self, chat: &str) -> Result<String, Error> {
        let me = self.handle().ok_or(Error::NotRegistered)?.to_string();
        if let Some(group) = crate::groups::group_of(chat) {
            let g = self.groups.get(group).ok_or_else(|| Error::Invalid("no such group".into()))?;
            if !g.is_member(&me) {
                return Err(Error::Invalid(format!("you are no longer in “{}”", g.name)));
            }
            return Ok(chat.to_string());
        }
        let chat = normalize_handle(chat)?;
        if chat != me && self.directory.contact(&chat).is_none() {
            return Err(Error::UnknownContact(chat));
        }
        Ok(chat)
    }

    /// Shows a message this device writes in its chat, pending.
    pub(super) fn show_own(&mut self, id: &str, chat: &str, body: MessageBody, now: u64) {
        self.show_own_reply(id, chat, body, None, now);
    }

    fn show_own_reply(&mut self, id: &str, chat: &str, body: MessageBody, reply_to: Option<ReplyRef>, now: u64) {
        let secs = self.chats.get(chat).map_or(0, |c| c.disappear_secs);
        let m = ChatMessage {
            id: id.to_string(),
            chat: chat.to_string(),
            from_me: true,
            sender_handle: self.handle().unwrap_or_default().to_string(),
            sender_device: self.device_id().expect("registered"),
            time_ms: now,
            body,
            status: Status::Pending,
            reply_to,
            expires_ms: if secs > 0 { now + u64::from(secs) * 1000 } else { 0 },
            ..Default::default()
        };
        self.chats.add(m, false, "", &mut self.fx);
    }

    /// Queues a message already shown in `chat` (id `id`) for the contact
    /// and this account's other devices, naming the blobs it refers to.
    pub(super) fn queue_with_blobs(&mut self, id: &str, chat: &str, body: Body, blob_ids: Vec<String>, now: u64) {
        self.queue_payload(id, chat, body, blob_ids, None, now);
    }

    /// Queues `body` for everyone in `chat` (the contact and this account's
    /// other devices, a group's members, or only this account's other
    /// devices for the note to self). A message (text, link, file) carries
    /// the chat's disappearing timer.
    pub(super) fn queue_payload(&mut self, id: &str, chat: &str, body: Body, blob_ids: Vec<String>, reply: Option<Quote>, now: u64) {
        let message = matches!(body, Body::Text(_) | Body::Link(_) | Body::File(_));
        let expires_secs = if message { self.chats.get(chat).map_or(0, |c| c.disappear_secs) } else { 0 };
        let payload = |chat: &str| Payload { reply: reply.clone(), expires_secs, ..Payload::new(chat, now, body.clone()) }.bytes();
        if let Some(group) = crate::groups::group_of(chat) {
            let group = group.to_string();
            return self.queue_group_payload(id, &group, payload(""), blob_ids, message, now);
        }
        let shown = if message { chat.to_string() } else { String::new() };
        if Some(chat) == self.handle() {
            let entry = OutboxEntry { id: id.to_string(), to_me: payload(chat), created_ms: now, blob_ids, chat: shown, ..Default::default() };
            return self.queue(entry, now);
        }
        if let Some(warning) = self.directory.warning(chat) {
            // Queued, but held until the user acts: say so now.
            let warning = warning.to_string();
            self.fx.emit(Event::SafetyWarning { handle: chat.to_string(), warning });
        }
        let entry = OutboxEntry {
            id: id.to_string(),
            to: vec![chat.to_string()],
            to_them: payload(""),
            to_me: payload(chat),
            chat: shown,
            created_ms: now,
            seq: 0,
            blob_ids,
            ..Default::default()
        };
        self.queue(entry, now);
    }

    /// Something for this account's other devices only (read-sync, flags).
    pub(super) fn to_own_devices(&mut self, chat: &str, body: Body, now: u64) {
        let id = self.new_message_id();
        let entry = OutboxEntry { id, to: vec![], to_them: vec![], to_me: Payload::new(chat, now, body).bytes(), created_ms: now, seq: 0, blob_ids: vec![], ..Default::default() };
        self.queue(entry, now);
    }

    /// Delivered / read receipts to a contact.
    pub(super) fn receipt(&mut self, chat: &str, kind: u32, ids: Vec<Vec<u8>>, now: u64) {
        self.receipt_for(chat, kind, ids, vec![], now);
    }

    /// Receipts to the account `to`, for messages of a group (`group_id`,
    /// 16 bytes) or of the 1:1 chat with it (empty).
    pub(super) fn receipt_for(&mut self, to: &str, kind: u32, ids: Vec<Vec<u8>>, group_id: Vec<u8>, now: u64) {
        let id = self.new_message_id();
        let body = Body::Receipt(Receipt { kind, message_ids: ids, group_id });
        let entry = OutboxEntry { id, to: vec![to.to_string()], to_them: Payload::new("", now, body).bytes(), created_ms: now, ..Default::default() };
        self.queue(entry, now);
    }

    pub(super) fn delivered(&mut self, chat: &str, message_id: Vec<u8>, now: u64) {
        self.receipt(chat, RECEIPT_DELIVERED, vec![message_id], now);
    }

    pub(super) fn queue(&mut self, entry: OutboxEntry, now: u64) {
        self.outbox.push(entry, &mut self.fx);
        self.pump(now);
    }

    /// Advances every outbox entry as far as it can go, in send order; an
    /// entry that must wait holds back every later entry to the same
    /// recipients, so nobody receives them out of order. (Copies for this
    /// account's other devices do not hold anything back: those devices
    /// order what they get by time, and a sync must not wait behind a
    /// message held for a contact.)
    pub(super) fn pump(&mut self, now: u64) {
        if !self.is_open() || self.me.unconfirmed {
            return;
        }
        let (Some(account), Some(my_device)) = (self.account(), self.device_id()) else { return };
        self.ask_tickets(now);
        let me = account.handle.clone();
        let mut held: Set<String> = Set::new();
        for entry in self.outbox.in_send_order() {
            if !entry.group.is_empty() {
                // A group's entries go in order; a change in flight holds
                // back what follows it (it may change who gets it).
                let key = crate::groups::chat_key(&entry.group);
                if held.contains(&key) {
                    continue;
                }
                let change = entry.epoch > 0 || entry.group_op.is_some();
                if self.outbox.is_in_flight(&entry.id) {
                    if change {
                        held.insert(key);
                    }
                    continue;
                }
                if let super::groups::Step::Held = self.pump_group(entry, &account, my_device, now) {
                    held.insert(key);
                }
                continue;
            }
            let accounts = &entry.to;
            if self.outbox.is_in_flight(&entry.id) {
                continue; // sent on this connection; later ones may follow it
            }
            if accounts.iter().any(|a| held.contains(a)) {
                held.extend(accounts.iter().cloned());
                continue;
            }
            let mut targets = Vec::new();
            let mut ready = true;
            for h in &entry.to {
                if self.directory.warning(h).is_some() {
                    ready = false; // held back until the user acts
                    continue;
                }
                if self.directory.needs_recheck(h) {
                    ready = false; // its list is being fetched again
                    self.need_list(h, now);
                    continue;
                }
                let list_version = self.directory.list_version(Some(&account), h);
                match self.directory.devices(Some(&account), h) {
                    Some(devs) => targets.extend(devs.into_iter().map(|d| Target { handle: h.clone(), device_id: d.device_id, identity: d.identity_key, own: false, list_version })),
                    None => {
                        ready = false;
                        self.need_list(h, now);
                    }
                }
            }
            if !entry.to_me.is_empty() {
                let list_version = self.directory.list_version(Some(&account), &me);
                for d in self.directory.devices(Some(&account), &me).unwrap_or_default() {
                    if d.device_id != my_device {
                        targets.push(Target { handle: me.clone(), device_id: d.device_id, identity: d.identity_key, own: true, list_version });
                    }
                }
            }
            for t in &targets {
                if !self.olm.has_session(&t.peer()) {
                    ready = false;
                    if !self.link.requests.claim_pending(&t.handle, t.device_id) {
                        let req = Request::ClaimPrekey(f::ClaimPrekey { handle: t.handle.clone(), device_id: t.device_id });
                        self.request(req, crate::requests::Pending::Claim { handle: t.handle.clone(), device_id: t.device_id }, now);
                    }
                }
            }
            if !ready {
                held.extend(accounts.iter().cloned());
                continue;
            }
            if targets.is_empty() {
                // Nobody to send to (e.g. a read-sync with no other device).
                self.outbox.remove(&entry.id, &mut self.fx);
                self.own_status(&entry.chat, &entry.id, Status::Sent);
                self.fx.emit(Event::Sent { id: entry.id.clone() });
                continue;
            }
            let mut copies = Vec::with_capacity(targets.len());
            for t in &targets {
                let plain = if t.own { &entry.to_me } else { &entry.to_them };
                let Some((kind, body)) = self.olm.encrypt(&t.peer(), plain, &mut self.fx.ops) else { continue };
                let sealed = Sealed { kind, body, signature: vec![] }.encode_to_vec();
                copies.push(f::Copy { handle: t.handle.clone(), device_id: t.device_id, ciphertext: sealed, list_version: t.list_version });
            }
            let blob_ids = entry.blob_ids.iter().map(|b| hex_to_bytes(b)).collect();
            let req = Request::Send(f::SendMessage { message_id: hex_to_bytes(&entry.id), copies, blob_ids, ..Default::default() });
            if self.request(req, crate::requests::Pending::Send { entry: entry.id.clone() }, now) {
                self.outbox.mark_in_flight(&entry.id, self.directory.serve_generation());
            }
        }
    }

    /// Takes an entry out of the outbox for good: its message shows as failed.
    pub(super) fn give_up(&mut self, id: &str) {
        let chat = self.outbox.remove(id, &mut self.fx).map(|o| o.chat).unwrap_or_default();
        self.own_status(&chat, id, Status::Failed);
    }

    /// The server refused a send.
    pub(super) fn send_failed(&mut self, entry: &str, code: Option<ErrorCode>, err: f::ErrorInfo, now: u64) {
        let sent_at = self.outbox.returned(entry);
        match code {
            Some(ErrorCode::DeviceListChanged) => {
                for reply in err.device_lists {
                    let handle = reply.handle.clone();
                    if self.directory.served_again(&reply, sent_at) {
                        // The same list twice: the server wants devices the
                        // signed list does not give us. Refuse.
                        self.warn(&handle, "the server asks to encrypt to devices that this account's signed list does not contain; messages to it are held back");
                        if Some(handle.as_str()) == self.handle() {
                            // Our own list: nothing to hold back for; give up on this one.
                            self.give_up(entry);
                            return;
                        }
                    } else {
                        self.apply_list_reply(&handle, reply, now);
                    }
                }
                self.pump(now);
            }
            Some(ErrorCode::GroupEpochTaken) => {
                // Another change of the group came first: this one is made
                // again on top of it once it arrives.
                if let Some(o) = self.outbox.get(entry)
                    && let Some(g) = self.groups.get(&o.group)
                {
                    let again = now + super::groups::EPOCH_RETRY_MS;
                    self.group_blocked.insert(g.id.clone(), (g.epoch, err.group_epoch, again));
                    self.link.retry_at = Some(self.link.retry_at.map_or(again, |r| r.min(again)));
                }
            }
            Some(
                ErrorCode::Internal
                | ErrorCode::StoreUnavailable
                | ErrorCode::GoingAway
                | ErrorCode::RateLimited
                | ErrorCode::ServerBusy,
            )
            | None => {
                // Not the message's fault: it stays in the outbox and goes again.
                self.link.retry_at = Some(now + RETRY_MS);
            }
            Some(_) => {
                self.fx.emit(Event::Error { code, message: err.message });
                self.give_up(entry);
            }
        }
    }
}

/// A received or sent link as a chat shows it.
pub(super) fn link_body(l: LinkShare) -> MessageBody {
    let preview = (!l.description.is_empty() || !l.site_name.is_empty() || !l.image.is_empty()).then(|| LinkPreview {
        description: l.description,
        site_name: l.site_name,
        image: if l.image.len() <= PREVIEW_IMAGE_MAX { B64.encode(&l.image) } else { String::new() },
    });
    MessageBody::Link { url: l.url, title: l.title, selection: l.selection, preview }
}

/// Bounds a preview the host made: its image must be base64 of at most
/// [`PREVIEW_IMAGE_MAX`] bytes; the texts are cut to their first lines.
fn clean_preview(mut p: LinkPreview) -> Result<LinkPreview, Error> {
    let image = B64.decode(p.image.as_bytes()).map_err(|_| Error::Invalid("the preview image is not base64".into()))?;
    if image.len() > PREVIEW_IMAGE_MAX {
        return Err(Error::Invalid(format!("the preview image is over {} KB", PREVIEW_IMAGE_MAX / 1024)));
    }
    p.description = p.description.chars().take(300).collect();
    p.site_name = p.site_name.chars().take(80).collect();
    Ok(p)
}

pub(crate) fn hex_to_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::{B64, clean_preview, link_body};
    use crate::content::LinkShare;
    use crate::model::{LinkPreview, MessageBody, PREVIEW_IMAGE_MAX};
    use base64::Engine as _;

    /// A shared page's preview is bounded where it is made and where it
    /// arrives: a sender's picture over 48 KiB (or not base64) is refused,
    /// its texts are cut; a received picture over 48 KiB is dropped, its
    /// texts kept; a link without preview fields has no preview.
    #[test]
    fn link_previews_are_bounded_when_sent_and_when_received() {
        let over = LinkPreview { image: B64.encode(vec![0u8; PREVIEW_IMAGE_MAX + 1]), ..Default::default() };
        assert!(clean_preview(over).is_err());
        assert!(clean_preview(LinkPreview { image: "not base64!".into(), ..Default::default() }).is_err());
        let long = LinkPreview { description: "d".repeat(1000), site_name: "s".repeat(200), image: B64.encode([0xff, 0xd8, 0xff]) };
        let cut = clean_preview(long).unwrap();
        assert_eq!((cut.description.chars().count(), cut.site_name.chars().count(), cut.image.as_str()), (300, 80, "/9j/"));

        let share = |description: &str, image: Vec<u8>| LinkShare {
            url: "https://example.org/".into(),
            title: "A page".into(),
            description: description.into(),
            image,
            ..Default::default()
        };
        let MessageBody::Link { preview: Some(p), .. } = link_body(share("what it says", vec![0; PREVIEW_IMAGE_MAX + 1])) else {
            panic!("the texts make a preview");
        };
        assert_eq!((p.description.as_str(), p.image.as_str()), ("what it says", ""), "an oversized picture is dropped");
        let MessageBody::Link { preview: Some(p), .. } = link_body(share("", vec![1, 2, 3])) else { panic!("a picture makes a preview") };
        assert_eq!(p.image, "AQID");
        assert!(matches!(link_body(share("", Vec::new())), MessageBody::Link { preview: None, .. }));
    }
}
