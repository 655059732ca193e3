//! Receiving: envelope → the sender's verified device → decrypt → apply →
//! persist → ack. Envelopes from a device not (yet) in its account's list
//! wait once for a fresh list, then show as undecryptable, never silently
//! dropped. So does a pre-key message from a listed device that does not
//! decrypt with the listed identity key: the device may have new keys
//! under the same id (an account restored from its recovery phrase).

use super::Engine;
use crate::content::{Body, Payload, RECEIPT_READ, SEALED_GROUP, SEALED_HISTORY, Sealed};
use crate::event::Event;
use crate::model::{ChatMessage, MessageBody, Status};
use crate::olm::{Peer, hex};
use crate::requests::Pending;
use prost::Message;
use tether_proto::frames::{self as f, Request};

const NOT_IN_LIST: &str = "the sender's device is not in their signed device list";
/// `Sealed.kind` of an Olm pre-key message (one that starts a session).
const OLM_PRE_KEY: u32 = 0;

impl Engine {
    pub(super) fn on_envelope(&mut self, e: f::Envelope, now: u64) {
        if self.inbox.was_applied(&e) {
            return self.ack(e.envelope_id, now);
        }
        if self.me.unconfirmed {
            // Not applied, not acknowledged: the person has not said yet
            // that this account is theirs.
            return self.inbox.hold(e);
        }
        if self.is_blocked(&e.sender_handle) && Some(e.sender_handle.as_str()) != self.handle() {
            // Blocked: dropped unread (no session, no list fetch, no trace).
            return self.ack(e.envelope_id, now);
        }
        let sealed = match Sealed::decode(e.ciphertext.as_slice()) {
            Ok(s) => s,
            Err(_) => return self.undecryptable(&e, "the message is malformed".into(), now),
        };
        if sealed.kind == SEALED_HISTORY {
            self.on_history(&e, sealed, now);
            self.inbox.applied(&e, now, &mut self.fx);
            return self.ack(e.envelope_id, now);
        }
        let Some(identity) = self.identity_of(&e.sender_handle, e.sender_device) else {
            // Their list is unknown or old: fetch it, then try again once.
            if !self.inbox.is_parked(&e) {
                let refreshing = self.link.requests.list_pending(&e.sender_handle);
                if refreshing || !self.inbox.sender_parked(&e.sender_handle) {
                    self.need_list(&e.sender_handle, now);
                    self.inbox.park(e);
                    return;
                }
            }
            return self.undecryptable(&e, NOT_IN_LIST.into(), now);
        };
        let from = Peer::new(&e.sender_handle, e.sender_device, &identity);
        if sealed.kind == SEALED_GROUP {
            return self.on_group_envelope(&e, &from, &sealed.body, now);
        }
        let plain = self.olm.decrypt(&from, sealed.kind, &sealed.body, &mut self.fx.ops);
        let plain = match plain {
            Ok(p) => p,
            Err(reason) if reason.is_over_cap() => {
                self.fx.error(format!("dropped a message from {}: {}", e.sender_handle, reason.0));
                self.inbox.applied(&e, now, &mut self.fx);
                return self.ack(e.envelope_id, now);
            }
            Err(_) if sealed.kind == OLM_PRE_KEY && self.inbox.first_refresh(&e) => {
                // The listed keys may be old (the account was restored and
                // its device came back with new keys): fetch the list, then
                // try again once.
                self.need_list(&e.sender_handle, now);
                return self.inbox.park(e);
            }
            Err(reason) => return self.undecryptable(&e, reason.0, now),
        };
        match Payload::decode(plain.as_slice()) {
            Ok(payload) => self.apply_payload(&e, Some(&from), payload, now),
            Err(_) => return self.undecryptable(&e, "the decrypted content is unreadable".into(), now),
        }
        self.inbox.applied(&e, now, &mut self.fx);
        self.ack(e.envelope_id, now);
    }

    /// The identity key of a device of an account, from its verified list
    /// (never this device's own).
    fn identity_of(&self, handle: &str, device_id: u32) -> Option<Vec<u8>> {
        if Some(handle) == self.handle() && Some(device_id) == self.device_id() {
            return None;
        }
        let account = self.account();
        self.directory.devices(account.as_ref(), handle)?.into_iter().find(|d| d.device_id == device_id).map(|d| d.identity_key)
    }

    /// Re-tries parked envelopes once their senders' lists arrived.
    pub(super) fn unpark(&mut self, now: u64) {
        let requests = &self.link.requests;
        let ready = self.inbox.unpark(|e| !requests.list_pending(&e.sender_handle));
        for e in ready {
            // Second chance: if the device is still unknown, it is shown as
            // undecryptable rather than parked forever.
            if self.identity_of(&e.sender_handle, e.sender_device).is_none() {
                self.undecryptable(&e, NOT_IN_LIST.into(), now);
            } else {
                self.on_envelope(e, now);
            }
        }
    }

    fn undecryptable(&mut self, e: &f::Envelope, reason: String, now: u64) {
        self.undecryptable_in(e, &e.sender_handle.clone(), reason, now);
    }

    /// Shows an envelope that could not be read in `chat` (the sender's, or
    /// a group's), then acknowledges it.
    pub(super) fn undecryptable_in(&mut self, e: &f::Envelope, chat: &str, reason: String, now: u64) {
        let from_me = Some(e.sender_handle.as_str()) == self.handle();
        let m = ChatMessage {
            id: hex(&e.message_id),
            chat: chat.to_string(),
            from_me,
            sender_handle: e.sender_handle.clone(),
            sender_device: e.sender_device,
            time_ms: e.server_time_ms,
            body: MessageBody::Undecryptable { reason },
            status: Status::Sent,
            seq: 0,
            receipts: Default::default(),
            ..Default::default()
        };
        if crate::groups::group_of(chat).is_some() {
            self.chats.add(m, !from_me, chat, &mut self.fx);
        } else {
            self.add_message(m, !from_me);
        }
        self.applied_and_ack(e, now);
    }

    pub(super) fn applied_and_ack(&mut self, e: &f::Envelope, now: u64) {
        self.inbox.applied(e, now, &mut self.fx);
        self.ack(e.envelope_id, now);
    }

    fn ack(&mut self, envelope_id: u64, now: u64) {
        self.request(Request::Ack(f::Ack { envelope_ids: vec![envelope_id] }), Pending::Ack, now);
    }

    /// Adds a message to its chat, with a contact for a new sender; a
    /// non-contact's goes to a message request instead, a blocked sender's
    /// nowhere. Returns whether it went to a chat.
    fn add_message(&mut self, m: ChatMessage, count_unread: bool) -> bool {
        if !m.from_me && !self.screen(&m) {
            return false;
        }
        if Some(m.chat.as_str()) == self.handle() {
            // The note to self: no contact, no notification.
            return self.chats.add(m, false, "", &mut self.fx);
        }
        self.directory.ensure(&m.chat, &mut self.fx);
        let title = self.directory.display_name(&m.chat);
        self.chats.add(m, count_unread, &title, &mut self.fx);
        true
    }

    /// A message as received in `chat` from the envelope's sender.
    pub(super) fn received(&self, e: &f::Envelope, chat: &str, time: u64, body: MessageBody) -> ChatMessage {
        let from_me = Some(e.sender_handle.as_str()) == self.handle();
        ChatMessage {
            id: hex(&e.message_id),
            chat: chat.to_string(),
            from_me,
            sender_handle: e.sender_handle.clone(),
            sender_device: e.sender_device,
            time_ms: time,
            body,
            status: if from_me { Status::Sent } else { Status::Delivered },
            seq: 0,
            receipts: Default::default(),
            ..Default::default()
        }
    }

    /// A received message with what its payload adds: the quote it
    /// answers, its disappearing timer.
    pub(super) fn received_in(&self, e: &f::Envelope, chat: &str, time: u64, body: MessageBody, p: &Payload) -> ChatMessage {
        let mut m = self.received(e, chat, time, body);
        m.reply_to = super::messaging::received_quote(p.reply.clone());
        if p.expires_secs > 0 {
            m.expires_ms = time + u64::from(p.expires_secs) * 1000;
        }
        m
    }

    /// Applies a decrypted payload from `from` (None when it waited for
    /// its chat to load: see `history`).
    pub(super) fn apply_payload(&mut self, e: &f::Envelope, from: Option<&Peer>, p: Payload, now: u64) {
        let from_me = Some(e.sender_handle.as_str()) == self.handle();
        let chat = if from_me { p.chat.clone() } else { e.sender_handle.clone() };
        // A change of existing messages waits until their chat is loaded.
        let target = match &p.body {
            Some(Body::Receipt(r)) if !from_me && !r.group_id.is_empty() => Some(crate::groups::chat_key(&hex(&r.group_id))),
            Some(Body::Receipt(_) | Body::Reaction(_) | Body::Edit(_) | Body::Delete(_)) => Some(chat.clone()),
            Some(Body::ReadSync(r)) if from_me => Some(r.chat.clone()),
            Some(Body::DeleteForMe(d)) if from_me => Some(d.chat.clone()),
            _ => None,
        };
        if let Some(target) = target
            && !self.ready_for(&target)
        {
            return self.park_payload(e, &target, &p, "");
        }
        // The sender's clock, but never later than the server received it.
        let time = if p.sent_at_ms > 0 { p.sent_at_ms.min(e.server_time_ms) } else { e.server_time_ms };
        let shown = match &p.body {
            Some(Body::Text(t)) => Some(MessageBody::Text { body: t.body.clone() }),
            Some(Body::Link(l)) => Some(super::send::link_body(l.clone())),
            Some(Body::File(share)) => Some(super::media::received(share.clone())),
            _ => None,
        };
        if let Some(shown) = shown {
            let in_chat = self.add_message(self.received_in(e, &chat, time, shown, &p), !from_me);
            if !from_me && in_chat {
                self.delivered(&chat, e.message_id.clone(), now);
            }
            return;
        }
        if let Some(body) = &p.body {
            if (from_me || self.directory.contact(&chat).is_some()) && self.on_message_change(e, &chat, body, time, now) {
                return;
            }
            if from_me && self.on_own_sync(body) {
                return;
            }
        }
        match p.body {
            Some(Body::Text(_) | Body::Link(_) | Body::File(_)) => {}
            Some(Body::GroupKey(k)) => {
                if let Some(from) = from {
                    self.on_group_key(from, k);
                }
            }
            Some(Body::Receipt(r)) if !from_me && !r.group_id.is_empty() => self.on_group_receipt(&e.sender_handle, r),
            Some(Body::Receipt(r)) if !from_me => {
                let status = if r.kind == RECEIPT_READ { Status::Read } else { Status::Delivered };
                // Only messages in the sender's own chat: a receipt for an id
                // of another chat is ignored.
                for mid in r.message_ids {
                    self.chats.set_status_in(&chat, &hex(&mid), status, &mut self.fx);
                }
            }
            Some(Body::ReadSync(r)) if from_me => self.chats.apply_read(&r.chat, r.up_to_ms, &mut self.fx),
            Some(Body::Flags(fl)) if from_me => self.chats.apply_flags(&fl.chat, fl.muted, fl.archived, fl.pinned, fl.marked_unread, &mut self.fx),
            Some(Body::Standing(st)) if from_me => {
                self.apply_standing(&st.handle, st.action, now);
            }
            Some(Body::Profile(pr)) if !from_me => self.directory.profile_name(&chat, &pr.display_name, &mut self.fx),
            // Receipts from own devices, read-sync or flags from others, a
            // profile of our own: not for us to apply.
            Some(
                Body::Receipt(_)
                | Body::ReadSync(_)
                | Body::Flags(_)
                | Body::Profile(_)
                | Body::Standing(_)
                | Body::GroupChange(_)
                | Body::Reaction(_)
                | Body::Edit(_)
                | Body::Delete(_)
                | Body::Disappear(_)
                | Body::Draft(_)
                | Body::DeleteForMe(_),
            ) => {
                self.fx.emit(Event::Error { code: None, message: format!("ignored a {} that {} may not send", body_name(&p.body), e.sender_handle) });
            }
            None => {
                self.add_message(self.received(e, &chat, time, MessageBody::Undecryptable { reason: "a newer Tether sent something this version cannot show".into() }), !from_me);
            }
        }
    }
}

fn body_name(b: &Option<Body>) -> &'static str {
    match b {
        Some(Body::Text(_)) => "text",
        Some(Body::Link(_)) => "link",
        Some(Body::File(_)) => "file",
        Some(Body::Receipt(_)) => "receipt",
        Some(Body::ReadSync(_)) => "read-sync",
        Some(Body::Flags(_)) => "flags update",
        Some(Body::Profile(_)) => "profile",
        Some(Body::Standing(_)) => "message-request answer",
        Some(Body::GroupKey(_)) => "group key",
        Some(Body::GroupChange(_)) => "group change outside its group",
        Some(Body::Reaction(_)) => "reaction",
        Some(Body::Edit(_)) => "edit",
        Some(Body::Delete(_)) => "delete",
        Some(Body::Disappear(_)) => "disappearing-messages timer",
        Some(Body::Draft(_)) => "draft",
        Some(Body::DeleteForMe(_)) => "delete-for-me",
        None => "message",
    }
}
