//! Sending (outbox → device lists → sessions → per-device encryption →
//! one `Send`) and receiving (envelope → sender's verified device →
//! decrypt → apply → persist → ack).

use crate::content::*;
use crate::engine::*;
use crate::model::*;
use crate::olm::hex;
use crate::store::Op;
use crate::{Error, Event};
use prost::Message;
use std::collections::BTreeSet;
use tether_proto::device_list::PRIMARY_DEVICE;
use tether_proto::frames::{self as f, Request};
use tether_proto::normalize_handle;

/// A device we must encrypt to.
struct Target {
    handle: String,
    device_id: u32,
    identity: Vec<u8>,
    own: bool,
}

impl Engine {
    // ------------------------------------------------------------- lists

    pub(crate) fn need_list(&mut self, handle: &str, now: u64) {
        if self.lists_in_flight.insert(handle.to_string()) {
            let req = Request::GetDeviceList(f::GetDeviceList { handle: handle.to_string() });
            if !self.request(req, Pending::List { handle: handle.to_string() }, now) {
                self.lists_in_flight.remove(handle);
            }
        }
    }

    /// The account key a list of `handle` must be signed with: our own,
    /// or the contact's pinned one (pinned now if this is first contact).
    fn account_key_for(&mut self, handle: &str, offered: &[u8]) -> Result<Vec<u8>, String> {
        match &self.me.role {
            Role::Primary { handle: h, account_seed } if h == handle => {
                let seed: [u8; 32] = account_seed.as_slice().try_into().map_err(|_| "own account key unreadable")?;
                return Ok(tether_proto::device_list::AccountKey::from_seed(&seed).public().to_vec());
            }
            Role::Companion { handle: h, account_key, .. } if h == handle => return Ok(account_key.clone()),
            _ => {}
        }
        let c = self.contacts.entry(handle.to_string()).or_insert_with(|| Contact { handle: handle.to_string(), ..Default::default() });
        if c.account_key.is_empty() {
            c.account_key = offered.to_vec();
        }
        if c.account_key != offered {
            return Err("their account key changed: this may be a new phone, or someone impersonating them. Check with them, then run `tether contacts trust`".into());
        }
        Ok(c.account_key.clone())
    }

    /// Verifies a served list and keeps it (or warns and refuses it).
    pub(crate) fn apply_list_reply(&mut self, handle: &str, reply: f::DeviceListReply, now: u64) {
        let _ = now;
        let key = match self.account_key_for(handle, &reply.account_key) {
            Ok(k) => k,
            Err(w) => return self.warn(handle, w),
        };
        let Some(signed) = reply.list.clone() else { return self.warn(handle, "the server sent no device list".into()) };
        let list = match tether_proto::device_list::verify(&key, &signed) {
            Ok(l) if l.handle == handle => l,
            Ok(_) => return self.warn(handle, "the server sent another account's device list".into()),
            Err(_) => {
                return self.warn(
                    handle,
                    "the server's device list is not signed by this account: nothing is encrypted to it (the server may be adding a device)".into(),
                );
            }
        };
        if Some(handle) == self.handle() {
            // Never go back to an older own list.
            let current = f::SignedDeviceList::decode(self.me.own_list.as_slice()).ok().and_then(|s| tether_proto::device_list::verify(&key, &s).ok());
            if current.is_none_or(|c| c.version <= list.version) {
                self.me.own_list = signed.encode_to_vec();
                self.me.own_removed = reply.removed.clone();
                if let Role::Primary { .. } = self.me.role {
                    self.me.next_device = self.me.next_device.max(list.devices.iter().map(|d| d.device_id + 1).max().unwrap_or(1));
                }
                self.save_me();
                self.primary_resign_if_needed(&list, &reply.removed, now);
            }
            return;
        }
        let c = self.contacts.get_mut(handle).expect("account_key_for made it");
        let changed = c.list != signed.encode_to_vec() || c.removed != reply.removed || c.warning.is_some();
        c.list = signed.encode_to_vec();
        c.removed = reply.removed;
        c.warning = None;
        if c.name.is_empty() {
            c.name = handle.to_string();
        }
        let c = c.clone();
        self.ops.push(put(NS_CONTACTS, handle, &c));
        if changed {
            self.events.push_back(Event::ContactChanged { contact: c });
        }
    }

    pub(crate) fn warn(&mut self, handle: &str, warning: String) {
        if Some(handle) == self.handle() {
            self.events.push_back(Event::SafetyWarning { handle: handle.to_string(), warning });
            return;
        }
        let c = self.contacts.entry(handle.to_string()).or_insert_with(|| Contact { handle: handle.to_string(), name: handle.to_string(), ..Default::default() });
        if c.warning.as_deref() != Some(warning.as_str()) {
            c.warning = Some(warning.clone());
            let c = c.clone();
            self.ops.push(put(NS_CONTACTS, handle, &c));
            self.events.push_back(Event::SafetyWarning { handle: handle.to_string(), warning });
        }
    }

    /// Verified, active devices of an account (for ours: all but this one).
    fn devices_of(&self, handle: &str) -> Option<Vec<f::DeviceEntry>> {
        let (list, removed, key): (&[u8], &[u32], Vec<u8>) = if Some(handle) == self.handle() {
            let key = match &self.me.role {
                Role::Primary { account_seed, .. } => {
                    let seed: [u8; 32] = account_seed.as_slice().try_into().ok()?;
                    tether_proto::device_list::AccountKey::from_seed(&seed).public().to_vec()
                }
                Role::Companion { account_key, .. } => account_key.clone(),
                Role::Unlinked { .. } => return None,
            };
            (&self.me.own_list, &self.me.own_removed, key)
        } else {
            let c = self.contacts.get(handle)?;
            if c.list.is_empty() || c.warning.is_some() {
                return None;
            }
            (&c.list, &c.removed, c.account_key.clone())
        };
        let signed = f::SignedDeviceList::decode(list).ok()?;
        let list = tether_proto::device_list::verify(&key, &signed).ok()?;
        Some(list.devices.into_iter().filter(|d| !removed.contains(&d.device_id)).collect())
    }

    pub(crate) fn identity_of(&self, handle: &str, device_id: u32) -> Option<Vec<u8>> {
        if Some(handle) == self.handle() && Some(device_id) == self.device_id() {
            return None;
        }
        self.devices_of(handle)?.into_iter().find(|d| d.device_id == device_id).map(|d| d.identity_key)
    }

    // ------------------------------------------------------------ sending

    pub(crate) fn queue(&mut self, mut entry: OutboxEntry, now: u64) {
        entry.seq = self.outbox.values().map(|o| o.seq).max().unwrap_or(0) + 1;
        self.ops.push(put(NS_OUTBOX, &entry.id, &entry));
        self.outbox.insert(entry.id.clone(), entry);
        self.pump(now);
    }

    /// Advances every outbox entry as far as it can go.
    pub(crate) fn pump(&mut self, now: u64) {
        if !self.is_open() || self.handle().is_none() {
            return;
        }
        let me = self.handle().expect("checked").to_string();
        let my_device = self.device_id().expect("linked");
        // In send order; an entry that must wait holds back every later
        // entry to the same accounts, so nobody receives them out of order.
        let mut order: Vec<(u64, u64, String)> = self.outbox.values().map(|o| (o.seq, o.created_ms, o.id.clone())).collect();
        order.sort();
        let mut held: BTreeSet<String> = BTreeSet::new();
        for (_, _, id) in order {
            let entry = self.outbox[&id].clone();
            let mut accounts = entry.to.clone();
            if !entry.to_me.is_empty() {
                accounts.push(me.clone());
            }
            if accounts.iter().any(|a| held.contains(a)) {
                held.extend(accounts);
                continue;
            }
            if self.in_flight.contains(&id) {
                continue;
            }
            let mut targets = Vec::new();
            let mut ready = true;
            for h in &entry.to {
                if self.contacts.get(h).is_some_and(|c| c.warning.is_some()) {
                    ready = false; // held back until the user acts
                    continue;
                }
                match self.devices_of(h) {
                    Some(devs) => targets.extend(devs.into_iter().map(|d| Target { handle: h.clone(), device_id: d.device_id, identity: d.identity_key, own: false })),
                    None => {
                        ready = false;
                        self.need_list(h, now);
                    }
                }
            }
            if !entry.to_me.is_empty() {
                for d in self.devices_of(&me).unwrap_or_default() {
                    if d.device_id != my_device && (entry.only_devices.is_empty() || entry.only_devices.contains(&d.device_id)) {
                        targets.push(Target { handle: me.clone(), device_id: d.device_id, identity: d.identity_key, own: true });
                    }
                }
            }
            for t in &targets {
                if !self.olm.has_session(&t.identity) {
                    ready = false;
                    if self.claims_in_flight.insert((t.handle.clone(), t.device_id)) {
                        let req = Request::ClaimPrekey(f::ClaimPrekey { handle: t.handle.clone(), device_id: t.device_id });
                        self.request(req, Pending::Claim { handle: t.handle.clone(), device_id: t.device_id }, now);
                    }
                }
            }
            if !ready {
                held.extend(accounts);
                continue;
            }
            if targets.is_empty() {
                // Nobody to send to (e.g. a read-sync with no other device).
                self.outbox.remove(&id);
                self.ops.push(Op::Delete { ns: NS_OUTBOX, key: id.clone() });
                self.set_status(&id, Status::Sent);
                continue;
            }
            let mut copies = Vec::with_capacity(targets.len());
            let mut ops = Vec::new();
            for t in &targets {
                let plain = if t.own { &entry.to_me } else { &entry.to_them };
                let Some((kind, body)) = self.olm.encrypt(&t.identity, plain, &mut ops) else { continue };
                let sealed = Sealed { kind, body, signature: vec![] }.encode_to_vec();
                copies.push(f::Copy { handle: t.handle.clone(), device_id: t.device_id, ciphertext: sealed });
            }
            self.ops.extend(ops);
            let message_id = hex_to_bytes(&id);
            if self.request(Request::Send(f::SendMessage { message_id, copies }), Pending::Send { entry: id.clone() }, now) {
                self.in_flight.insert(id);
            }
        }
    }

    pub(crate) fn fail_entry(&mut self, id: &str) {
        self.outbox.remove(id);
        self.ops.push(Op::Delete { ns: NS_OUTBOX, key: id.to_string() });
    }

    pub(crate) fn set_status(&mut self, id: &str, status: Status) {
        for (chat, msgs) in self.messages.iter_mut() {
            if let Some(m) = msgs.iter_mut().find(|m| m.id == id && m.from_me) {
                if status > m.status {
                    m.status = status;
                    let m = m.clone();
                    self.ops.push(put(NS_MESSAGES, &message_key(&m), &m));
                    self.events.push_back(Event::MessageStatus { chat: chat.clone(), id: id.to_string(), status });
                }
                return;
            }
        }
    }

    fn new_message_id(&mut self) -> String {
        hex(&self.random::<16>())
    }

    fn send_content(&mut self, chat: &str, body: Body, message: Option<MessageBody>, now: u64) -> Result<String, Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        let chat = normalize_handle(chat)?;
        if !self.contacts.contains_key(&chat) {
            return Err(Error::UnknownContact(chat));
        }
        let id = self.new_message_id();
        if let Some(body) = message {
            let m = ChatMessage {
                id: id.clone(),
                chat: chat.clone(),
                from_me: true,
                sender_handle: self.handle().expect("checked").to_string(),
                sender_device: self.device_id().expect("checked"),
                time_ms: now,
                body,
                status: Status::Pending,
            };
            self.add_message(m, false);
        }
        let entry = OutboxEntry {
            id: id.clone(),
            to: vec![chat.clone()],
            to_them: Payload::new("", now, body.clone()).bytes(),
            to_me: Payload::new(&chat, now, body).bytes(),
            only_devices: vec![],
            created_ms: now,
            seq: 0,
        };
        self.queue(entry, now);
        self.finish();
        Ok(id)
    }

    /// Sends a text message; returns its id.
    pub fn send_text(&mut self, chat: &str, text: &str, now: u64) -> Result<String, Error> {
        if text.trim().is_empty() {
            return Err(Error::Invalid("the message is empty".into()));
        }
        let body = Body::Text(Text { body: text.to_string() });
        self.send_content(chat, body, Some(MessageBody::Text { body: text.to_string() }), now)
    }

    /// Shares a link (a page's URL and title, with the selected text if any).
    pub fn send_link(&mut self, chat: &str, url: &str, title: &str, selection: &str, now: u64) -> Result<String, Error> {
        if url.trim().is_empty() {
            return Err(Error::Invalid("the link is empty".into()));
        }
        let share = LinkShare { url: url.into(), title: title.into(), selection: selection.into() };
        let msg = MessageBody::Link { url: url.into(), title: title.into(), selection: selection.into() };
        self.send_content(chat, Body::Link(share), Some(msg), now)
    }

    /// Marks a chat read: read receipts to the contact, read-sync to this
    /// account's other devices.
    pub fn mark_read(&mut self, chat: &str, now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        let Some(c) = self.chats.get(chat).cloned() else { return Ok(()) };
        let unread: Vec<Vec<u8>> = self
            .messages(chat)
            .iter()
            .filter(|m| !m.from_me && m.time_ms > c.read_up_to_ms)
            .map(|m| hex_to_bytes(&m.id))
            .collect();
        let up_to = self.messages(chat).last().map(|m| m.time_ms).unwrap_or(now).max(c.read_up_to_ms);
        self.apply_read(chat, up_to);
        if !unread.is_empty() {
            let id = self.new_message_id();
            let receipt = Body::Receipt(Receipt { kind: RECEIPT_READ, message_ids: unread });
            let entry = OutboxEntry { id, to: vec![chat.to_string()], to_them: Payload::new("", now, receipt).bytes(), to_me: vec![], only_devices: vec![], created_ms: now, seq: 0 };
            self.queue(entry, now);
        }
        let id = self.new_message_id();
        let sync = Body::ReadSync(ReadSync { chat: chat.to_string(), up_to_ms: up_to });
        let entry = OutboxEntry { id, to: vec![], to_them: vec![], to_me: Payload::new(chat, now, sync).bytes(), only_devices: vec![], created_ms: now, seq: 0 };
        self.queue(entry, now);
        self.finish();
        Ok(())
    }

    fn apply_read(&mut self, chat: &str, up_to: u64) {
        let unread = self.messages(chat).iter().filter(|m| !m.from_me && m.time_ms > up_to).count() as u32;
        let Some(c) = self.chats.get(chat) else { return };
        if up_to <= c.read_up_to_ms && c.unread == unread {
            return;
        }
        self.drop_notifications(chat, Some(up_to));
        let Some(c) = self.chats.get_mut(chat) else { return };
        c.read_up_to_ms = c.read_up_to_ms.max(up_to);
        c.unread = unread;
        let c = c.clone();
        self.ops.push(put(NS_CHATS, chat, &c));
        self.events.push_back(Event::ChatChanged { chat: c });
    }

    /// Mutes, archives or pins a chat here and on this account's other devices.
    pub fn set_chat_flags(&mut self, chat: &str, muted: bool, archived: bool, pinned: bool, now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        self.apply_flags(chat, muted, archived, pinned);
        let id = self.new_message_id();
        let body = Body::Flags(ChatFlags { chat: chat.to_string(), muted, archived, pinned });
        let entry = OutboxEntry { id, to: vec![], to_them: vec![], to_me: Payload::new(chat, now, body).bytes(), only_devices: vec![], created_ms: now, seq: 0 };
        self.queue(entry, now);
        self.finish();
        Ok(())
    }

    /// Turns one flag of a chat on or off, keeping the others as they are
    /// now (so a UI never writes back a stale copy of the other two).
    pub fn set_chat_flag(&mut self, chat: &str, flag: ChatFlag, on: bool, now: u64) -> Result<(), Error> {
        let c = self.chats.get(chat).cloned().unwrap_or_else(|| Chat { handle: chat.to_string(), ..Default::default() });
        let (mut muted, mut archived, mut pinned) = (c.muted, c.archived, c.pinned);
        match flag {
            ChatFlag::Muted => muted = on,
            ChatFlag::Archived => archived = on,
            ChatFlag::Pinned => pinned = on,
        }
        self.set_chat_flags(chat, muted, archived, pinned, now)
    }

    fn apply_flags(&mut self, chat: &str, muted: bool, archived: bool, pinned: bool) {
        let c = self.chats.entry(chat.to_string()).or_insert_with(|| Chat { handle: chat.to_string(), ..Default::default() });
        c.muted = muted;
        c.archived = archived;
        c.pinned = pinned;
        let c = c.clone();
        if muted {
            self.drop_notifications(chat, None);
        }
        self.ops.push(put(NS_CHATS, chat, &c));
        self.events.push_back(Event::ChatChanged { chat: c });
    }

    /// Adds a message to its chat (once), updating the chat's summary.
    pub(crate) fn add_message(&mut self, m: ChatMessage, count_unread: bool) {
        let list = self.messages.entry(m.chat.clone()).or_default();
        if list.iter().any(|x| x.id == m.id) {
            return;
        }
        // After every message of the same millisecond: arrival order breaks ties.
        let pos = list.partition_point(|x| x.time_ms <= m.time_ms);
        list.insert(pos, m.clone());
        let c = self.chats.entry(m.chat.clone()).or_insert_with(|| Chat { handle: m.chat.clone(), ..Default::default() });
        if m.time_ms >= c.last_ms {
            c.last_ms = m.time_ms;
            c.last_preview = m.preview();
        }
        let owed = count_unread && !m.from_me && m.time_ms > c.read_up_to_ms;
        if owed {
            c.unread += 1;
        }
        let owed = owed && !c.muted;
        if c.archived && !m.from_me && !c.muted {
            c.archived = false; // a new message brings an archived chat back
        }
        let c = c.clone();
        self.ops.push(put(NS_MESSAGES, &message_key(&m), &m));
        self.ops.push(put(NS_CHATS, &c.handle, &c));
        if !self.contacts.contains_key(&m.chat) {
            let contact = Contact { handle: m.chat.clone(), name: m.chat.clone(), ..Default::default() };
            self.ops.push(put(NS_CONTACTS, &m.chat, &contact));
            self.contacts.insert(m.chat.clone(), contact);
        }
        let notification = owed.then(|| Notification {
            id: m.id.clone(),
            chat: m.chat.clone(),
            title: self.display_name(&m.chat),
            body: m.preview(),
            time_ms: m.time_ms,
        });
        self.events.push_back(Event::Message { message: m });
        self.events.push_back(Event::ChatChanged { chat: c });
        if let Some(n) = notification {
            self.ops.push(put(NS_NOTIFY, &n.id, &n));
            self.notify.insert(n.id.clone(), n.clone());
            self.events.push_back(Event::Notify { notification: n });
        }
    }

    /// Drops owed notifications of a chat that was read (or muted).
    fn drop_notifications(&mut self, chat: &str, up_to: Option<u64>) {
        let gone: Vec<String> =
            self.notify.values().filter(|n| n.chat == chat && up_to.is_none_or(|t| n.time_ms <= t)).map(|n| n.id.clone()).collect();
        for id in gone {
            self.notify.remove(&id);
            self.ops.push(Op::Delete { ns: NS_NOTIFY, key: id });
        }
    }

    // ---------------------------------------------------------- receiving

    pub(crate) fn on_envelope(&mut self, e: f::Envelope, now: u64) {
        let seen_key = format!("{}/{}", e.sender_handle, hex(&e.message_id));
        if self.seen.contains(&seen_key) {
            return self.ack(e.envelope_id, now);
        }
        let sealed = match Sealed::decode(e.ciphertext.as_slice()) {
            Ok(s) => s,
            Err(_) => return self.undecryptable(&e, "the message is malformed".into(), &seen_key, now),
        };
        if sealed.kind == SEALED_HISTORY {
            self.on_history(&e, sealed, now);
            self.seen.insert(seen_key.clone());
            self.ops.push(Op::Put { ns: NS_SEEN, key: seen_key, value: now.to_le_bytes().to_vec() });
            return self.ack(e.envelope_id, now);
        }
        let identity = match self.identity_of(&e.sender_handle, e.sender_device) {
            Some(i) => i,
            None => {
                // Their list is unknown or old: fetch it, then try again.
                if !self.parked.iter().any(|p| p.envelope_id == e.envelope_id) {
                    let refreshed = self.lists_in_flight.contains(&e.sender_handle);
                    let first_try = !self.parked.iter().any(|p| p.sender_handle == e.sender_handle);
                    if first_try || refreshed {
                        self.need_list(&e.sender_handle, now);
                        self.parked.push(e);
                        return;
                    }
                }
                return self.undecryptable(&e, "the sender's device is not in their signed device list".into(), &seen_key, now);
            }
        };
        let mut ops = Vec::new();
        let plain = self.olm.decrypt(&identity, sealed.kind, &sealed.body, &mut ops);
        self.ops.extend(ops);
        let plain = match plain {
            Ok(p) => p,
            Err(reason) => return self.undecryptable(&e, reason.0, &seen_key, now),
        };
        let payload = match Payload::decode(plain.as_slice()) {
            Ok(p) => p,
            Err(_) => return self.undecryptable(&e, "the decrypted content is unreadable".into(), &seen_key, now),
        };
        self.apply_payload(&e, payload, now);
        self.seen.insert(seen_key.clone());
        self.ops.push(Op::Put { ns: NS_SEEN, key: seen_key, value: now.to_le_bytes().to_vec() });
        self.ack(e.envelope_id, now);
    }

    /// Re-tries parked envelopes once their senders' lists arrived.
    pub(crate) fn unpark(&mut self, now: u64) {
        let parked = std::mem::take(&mut self.parked);
        let (ready, waiting): (Vec<_>, Vec<_>) = parked.into_iter().partition(|p| !self.lists_in_flight.contains(&p.sender_handle));
        self.parked = waiting;
        for e in ready {
            // Second chance: if the identity is still unknown, it is shown
            // as undecryptable rather than parked forever.
            let seen_key = format!("{}/{}", e.sender_handle, hex(&e.message_id));
            if self.identity_of(&e.sender_handle, e.sender_device).is_none() {
                self.undecryptable(&e, "the sender's device is not in their signed device list".into(), &seen_key, now);
            } else {
                self.on_envelope(e, now);
            }
        }
    }

    fn undecryptable(&mut self, e: &f::Envelope, reason: String, seen_key: &str, now: u64) {
        let from_me = Some(e.sender_handle.as_str()) == self.handle();
        let m = ChatMessage {
            id: hex(&e.message_id),
            chat: e.sender_handle.clone(),
            from_me,
            sender_handle: e.sender_handle.clone(),
            sender_device: e.sender_device,
            time_ms: e.server_time_ms,
            body: MessageBody::Undecryptable { reason },
            status: Status::Sent,
        };
        self.add_message(m, !from_me);
        self.seen.insert(seen_key.to_string());
        self.ops.push(Op::Put { ns: NS_SEEN, key: seen_key.to_string(), value: now.to_le_bytes().to_vec() });
        self.ack(e.envelope_id, now);
    }

    fn ack(&mut self, envelope_id: u64, now: u64) {
        self.request(Request::Ack(f::Ack { envelope_ids: vec![envelope_id] }), Pending::Ack, now);
    }

    fn apply_payload(&mut self, e: &f::Envelope, p: Payload, now: u64) {
        let from_me = Some(e.sender_handle.as_str()) == self.handle();
        let chat = if from_me { p.chat.clone() } else { e.sender_handle.clone() };
        let id = hex(&e.message_id);
        let time = if p.sent_at_ms > 0 { p.sent_at_ms.min(e.server_time_ms.max(p.sent_at_ms)) } else { e.server_time_ms };
        let message = |body: MessageBody| ChatMessage {
            id: id.clone(),
            chat: chat.clone(),
            from_me,
            sender_handle: e.sender_handle.clone(),
            sender_device: e.sender_device,
            time_ms: time,
            body,
            status: if from_me { Status::Sent } else { Status::Delivered },
        };
        match p.body {
            Some(Body::Text(t)) => {
                self.add_message(message(MessageBody::Text { body: t.body }), !from_me);
                if !from_me {
                    self.receipt(&chat, RECEIPT_DELIVERED, vec![e.message_id.clone()], now);
                }
            }
            Some(Body::Link(l)) => {
                self.add_message(message(MessageBody::Link { url: l.url, title: l.title, selection: l.selection }), !from_me);
                if !from_me {
                    self.receipt(&chat, RECEIPT_DELIVERED, vec![e.message_id.clone()], now);
                }
            }
            Some(Body::Receipt(r)) if !from_me => {
                let status = if r.kind == RECEIPT_READ { Status::Read } else { Status::Delivered };
                for mid in r.message_ids {
                    self.set_status(&hex(&mid), status);
                }
            }
            Some(Body::ReadSync(r)) if from_me => self.apply_read(&r.chat, r.up_to_ms),
            Some(Body::Flags(fl)) if from_me => self.apply_flags(&fl.chat, fl.muted, fl.archived, fl.pinned),
            Some(Body::Profile(pr)) if !from_me => {
                if let Some(c) = self.contacts.get_mut(&chat) {
                    if c.name.is_empty() || c.name == c.handle {
                        c.name = pr.display_name;
                        let c = c.clone();
                        self.ops.push(put(NS_CONTACTS, &chat, &c));
                        self.events.push_back(Event::ContactChanged { contact: c });
                    }
                }
            }
            Some(_) => {}
            None => self.add_message(message(MessageBody::Undecryptable { reason: "a newer Tether sent something this version cannot show".into() }), !from_me),
        }
    }

    fn receipt(&mut self, chat: &str, kind: u32, ids: Vec<Vec<u8>>, now: u64) {
        let id = self.new_message_id();
        let body = Body::Receipt(Receipt { kind, message_ids: ids });
        let entry = OutboxEntry { id, to: vec![chat.to_string()], to_them: Payload::new("", now, body).bytes(), to_me: vec![], only_devices: vec![], created_ms: now, seq: 0 };
        self.queue(entry, now);
    }

    /// Primary: the server removed devices the signed list still has (a
    /// companion logged itself out, or the inactivity rules): sign anew.
    pub(crate) fn primary_resign_if_needed(&mut self, list: &f::DeviceList, removed: &[u32], now: u64) {
        let Role::Primary { account_seed, .. } = &self.me.role else { return };
        if removed.is_empty() {
            return;
        }
        let seed: [u8; 32] = match account_seed.as_slice().try_into() {
            Ok(s) => s,
            Err(_) => return,
        };
        let mut next = list.clone();
        next.version += 1;
        next.issued_at_ms = now;
        next.devices.retain(|d| !removed.contains(&d.device_id));
        let signed = tether_proto::device_list::AccountKey::from_seed(&seed).sign(&next);
        let req = Request::PublishDeviceList(f::PublishDeviceList { list: Some(signed.clone()) });
        self.request(req, Pending::PublishList { list: signed }, now);
    }

    /// Primary: removes a companion (the server closes its socket at once).
    pub fn remove_device(&mut self, device_id: u32, now: u64) -> Result<(), Error> {
        let Role::Primary { handle, account_seed } = self.me.role.clone() else { return Err(Error::NotPrimary) };
        if device_id == PRIMARY_DEVICE {
            return Err(Error::Invalid("the primary cannot unlink itself".into()));
        }
        self.online()?;
        let seed: [u8; 32] = account_seed.as_slice().try_into().map_err(|_| Error::Corrupt("account key".into()))?;
        let key = tether_proto::device_list::AccountKey::from_seed(&seed);
        let signed = f::SignedDeviceList::decode(self.me.own_list.as_slice()).map_err(|e| Error::Proto(e.into()))?;
        let mut list = tether_proto::device_list::verify(&key.public(), &signed)?;
        if !list.devices.iter().any(|d| d.device_id == device_id) {
            return Err(Error::Invalid(format!("{handle} has no device {device_id} (see `tether devices`)")));
        }
        list.version += 1;
        list.issued_at_ms = now;
        list.devices.retain(|d| d.device_id != device_id);
        let new = key.sign(&list);
        let req = Request::RemoveDevice(f::RemoveDevice { device_id, new_list: Some(new.clone()) });
        self.request(req, Pending::RemoveDevice { device_id, list: Some(new) }, now);
        self.finish();
        Ok(())
    }

    /// The device ids this account's verified list holds (active ones).
    pub fn own_devices(&self) -> BTreeSet<u32> {
        self.handle()
            .and_then(|h| self.devices_of(h))
            .map(|d| d.into_iter().map(|d| d.device_id).collect())
            .unwrap_or_default()
    }
}

/// Storage key of a message: chat, time, id (so a scan is in order).
pub(crate) fn message_key(m: &ChatMessage) -> String {
    format!("{}/{:016}/{}", m.chat, m.time_ms, m.id)
}

pub(crate) fn hex_to_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}
