//! Groups (docs/protocol.md §15): the commands that create and change a
//! group, the send path (the session key shared pairwise with devices
//! that lack it, then one Megolm ciphertext fanned out by the server) and
//! the receive path (decrypt with the sender's session, apply the state
//! rules, receipts per member).

use super::Engine;
use super::send::hex_to_bytes;
use crate::content::{Body, GroupChange, GroupKey, GroupSealed, Payload, RECEIPT_DELIVERED, RECEIPT_READ, Receipt, SEALED_GROUP, Sealed};
use crate::directory::Account;
use crate::error::Error;
use crate::groups::{Applied, Group, GroupOp, Groups, Member, chat_key, group_of};
use crate::megolm::GroupDecryptError;
use crate::model::{ChatMessage, MessageBody, OutboxEntry, Status};
use crate::olm::{Peer, hex};
use crate::requests::Pending;
use prost::Message;
use serde::Serialize;
use crate::sorted::{Map, Set};
use tether_proto::frames::{self as f, Request};
use tether_proto::normalize_handle;

/// How long a change refused as `group_epoch_taken` waits for the change
/// that came first before it is made again anyway.
pub(super) const EPOCH_RETRY_MS: u64 = 3_000;

/// Accounts per key-share send (the server takes at most 64 per send, and
/// the whole send must fit one frame).
const KEY_SHARE_ACCOUNTS: usize = 32;

/// A group as a UI shows it (see `Engine::group_info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct GroupInfo {
    /// 32 hex digits.
    pub id: String,
    /// The group's chat (`g:` and the id).
    pub chat: String,
    pub name: String,
    pub members: Vec<GroupMemberView>,
    /// This account is a member (false once it left or was removed).
    pub am_member: bool,
    pub am_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct GroupMemberView {
    pub handle: String,
    pub name: String,
    pub admin: bool,
    pub me: bool,
}

/// One device a group message goes to.
struct Dest {
    handle: String,
    device_id: u32,
    identity: Vec<u8>,
    list_version: u64,
}

impl Dest {
    fn peer(&self) -> Peer {
        Peer::new(&self.handle, self.device_id, &self.identity)
    }
}

/// What the pump did with a group entry.
pub(super) enum Step {
    /// Sent (or finished): later entries of the group may go.
    Went,
    /// Waiting (lists, sessions, key shares, an earlier change): later
    /// entries of the group wait too.
    Held,
}

impl Engine {
    // ----------------------------------------------------------- commands

    /// Creates a group of this account and `members` (contacts' handles),
    /// named `name`; returns its chat (`g:` and the id).
    pub fn create_group(&mut self, name: &str, members: &[String], now: u64) -> Result<String, Error> {
        let me = self.handle().ok_or(Error::NotRegistered)?.to_string();
        let mut others = Vec::new();
        for m in members {
            let h = normalize_handle(m)?;
            if h != me && self.directory.contact(&h).is_none() {
                return Err(Error::UnknownContact(h));
            }
            others.push(h);
        }
        let group_id = self.random::<16>();
        let change = Groups::creation(&group_id, name, &me, &others)?;
        let group = hex(&group_id);
        self.on_group_change(&me, &change, now);
        let entry = OutboxEntry {
            id: hex(&self.random::<16>()),
            to_them: Payload::new("", now, Body::GroupChange(change)).bytes(),
            created_ms: now,
            group: group.clone(),
            epoch: 1,
            ..Default::default()
        };
        self.queue(entry, now);
        self.finish();
        Ok(chat_key(&group))
    }

    /// Changes a group (add, remove, leave, rename, admins): checked now
    /// against the group as this device holds it, made when it is sent.
    pub fn change_group(&mut self, chat: &str, op: GroupOp, now: u64) -> Result<(), Error> {
        let me = self.handle().ok_or(Error::NotRegistered)?.to_string();
        let group = group_of(chat).ok_or_else(|| Error::Invalid(format!("{chat} is not a group")))?.to_string();
        let op = match op {
            GroupOp::Add { handles } => {
                let mut clean = Vec::new();
                for h in handles {
                    let h = normalize_handle(&h)?;
                    if self.directory.contact(&h).is_none() {
                        return Err(Error::UnknownContact(h));
                    }
                    clean.push(h);
                }
                GroupOp::Add { handles: clean }
            }
            GroupOp::Remove { handles } => GroupOp::Remove { handles: handles.iter().map(|h| normalize_handle(h)).collect::<Result<_, _>>()? },
            other => other,
        };
        let change = self.groups.change_for(&group, &me, &op, 0)?;
        let entry = OutboxEntry {
            id: hex(&self.random::<16>()),
            created_ms: now,
            group,
            group_op: Some(op),
            epoch: change.epoch,
            ..Default::default()
        };
        self.queue(entry, now);
        self.finish();
        Ok(())
    }

    /// Sends a change of a group's members as given, unchecked, on the
    /// state this device holds: what a hacked member's client could send.
    /// For the attack tests only.
    #[doc(hidden)]
    pub fn danger_send_group_members(&mut self, chat: &str, members: &[(&str, bool)], now: u64) {
        let Some(g) = group_of(chat).and_then(|id| self.groups.get(id)).cloned() else { return };
        let state = crate::content::GroupState {
            name: g.name.clone(),
            members: members.iter().map(|(h, admin)| crate::content::GroupMember { handle: h.to_string(), admin: *admin }).collect(),
        };
        let change = GroupChange { group_id: hex_to_bytes(&g.id), epoch: g.epoch + 1, parent: hex_to_bytes(&g.hash), state: Some(state) };
        let entry = OutboxEntry {
            id: hex(&self.random::<16>()),
            to_them: Payload::new("", now, Body::GroupChange(change)).bytes(),
            created_ms: now,
            group: g.id.clone(),
            epoch: g.epoch + 1,
            ..Default::default()
        };
        self.queue(entry, now);
        self.finish();
    }

    /// A group's state as the UI shows it.
    pub fn group_info(&self, chat: &str) -> Option<GroupInfo> {
        let g = self.groups.get(group_of(chat)?)?;
        let me = self.handle().unwrap_or_default();
        let members = g
            .members
            .iter()
            .map(|m| GroupMemberView { handle: m.handle.clone(), name: self.member_name(&m.handle), admin: m.admin, me: m.handle == me })
            .collect();
        Some(GroupInfo { id: g.id.clone(), chat: chat_key(&g.id), name: g.name.clone(), members, am_member: g.is_member(me), am_admin: g.is_admin(me) })
    }

    /// Every group this device knows, by name (ignoring ASCII case, as
    /// `contact_list`: Unicode case tables cost the wasm core ~8 KB).
    pub fn group_list(&self) -> Vec<GroupInfo> {
        let mut v: Vec<GroupInfo> = self.groups.all().filter_map(|g| self.group_info(&chat_key(&g.id))).collect();
        v.sort_by(|a, b| (a.name.to_ascii_lowercase(), &a.id).cmp(&(b.name.to_ascii_lowercase(), &b.id)));
        v
    }

    /// A group's name, for chat lists and notifications.
    pub(super) fn group_name(&self, chat: &str) -> Option<String> {
        Some(self.groups.get(group_of(chat)?)?.name.clone())
    }

    fn member_name(&self, handle: &str) -> String {
        if Some(handle) == self.handle() { "You".into() } else { self.directory.display_name(handle) }
    }

    // ----------------------------------------------------------- sending

    /// Queues a group message (text, link, file) already shown in `chat`.
    pub(super) fn queue_group_payload(&mut self, id: &str, group: &str, payload: Vec<u8>, blob_ids: Vec<String>, shown: bool, now: u64) {
        let entry = OutboxEntry {
            id: id.to_string(),
            chat: if shown { chat_key(group) } else { String::new() },
            to_them: payload,
            created_ms: now,
            blob_ids,
            group: group.to_string(),
            ..Default::default()
        };
        self.queue(entry, now);
    }

    /// Moves one group entry as far as it can go (see `pump`).
    pub(super) fn pump_group(&mut self, mut entry: OutboxEntry, account: &Account, my_device: u32, now: u64) -> Step {
        let me = account.handle.clone();
        let Some(g) = self.groups.get(&entry.group).cloned() else {
            self.give_up(&entry.id);
            return Step::Went;
        };
        if self.link.requests.lookups_pending() {
            // Lists or prekeys are on their way (a new group's creator
            // asks for one per member device): go over the group once
            // they are all here, not once per answer.
            return Step::Held;
        }
        // A change is made on the state current now.
        let mut change_epoch = None;
        let mut accounts: Set<String> = g.handles().map(str::to_string).collect();
        if let Some(op) = entry.group_op.clone() {
            let mut min_epoch = 0;
            if let Some(&(at, server, until)) = self.group_blocked.get(&g.id) {
                if at == g.epoch && now < until {
                    return Step::Held; // refused: give the change that came first time to arrive
                }
                min_epoch = server + 1;
            }
            match self.groups.change_for(&g.id, &me, &op, min_epoch) {
                Ok(change) => {
                    accounts.extend(change.state.iter().flat_map(|s| s.members.iter().map(|m| m.handle.clone())));
                    change_epoch = Some(change.epoch);
                    entry.epoch = change.epoch;
                    entry.to_them = Payload::new("", entry.created_ms, Body::GroupChange(change)).bytes();
                    self.outbox.replace(entry.clone(), &mut self.fx);
                }
                Err(e) => {
                    self.fx.error(format!("the change of group “{}” was not made: {e}", g.name));
                    self.give_up(&entry.id);
                    return Step::Went;
                }
            }
        } else if entry.epoch > 0 {
            // Made when it was queued (a creation).
            change_epoch = Some(entry.epoch);
            if let Ok(Payload { body: Some(Body::GroupChange(c)), .. }) = Payload::decode(entry.to_them.as_slice()) {
                accounts.extend(c.state.iter().flat_map(|s| s.members.iter().map(|m| m.handle.clone())));
            }
        } else if !g.is_member(&me) {
            self.fx.error(format!("not sent to “{}”: you are no longer in this group", g.name));
            self.give_up(&entry.id);
            return Step::Went;
        }
        // Every device of every account the entry goes to.
        let mut dests: Vec<Dest> = Vec::new();
        let mut ready = true;
        for h in &accounts {
            if *h != me {
                if self.directory.warning(h).is_some() {
                    ready = false;
                    continue;
                }
                if self.directory.needs_recheck(h) {
                    ready = false;
                    self.need_list(h, now);
                    continue;
                }
            }
            let list_version = self.directory.list_version(Some(account), h);
            match self.directory.devices(Some(account), h) {
                Some(devs) => dests.extend(
                    devs.into_iter()
                        .filter(|d| !(*h == me && d.device_id == my_device))
                        .map(|d| Dest { handle: h.clone(), device_id: d.device_id, identity: d.identity_key, list_version }),
                ),
                None => {
                    ready = false;
                    self.need_list(h, now);
                }
            }
        }
        if !ready {
            return Step::Held;
        }
        // The session: a new one if a device that had the key is not among
        // this entry's devices (a member left or was removed, a device
        // went). A change's devices are the old and the new members': the
        // removed learn of it in the old session; the next message rotates.
        let keys: Set<String> = dests.iter().map(|d| d.peer().key()).collect();
        let session_id = self.megolm.outbound(&g.id, &keys, now, &mut self.fx);
        let missing = self.megolm.missing(&g.id, keys.iter());
        if !missing.is_empty() {
            if !self.link.requests.group_keys_pending(&g.id) {
                self.share_group_key(&g.id, &session_id, &dests, &missing, now);
            }
            return Step::Held;
        }
        if self.link.requests.group_keys_pending(&g.id) {
            return Step::Held;
        }
        if dests.is_empty() {
            // Nobody else: done here.
            self.sent_group_entry(&entry);
            return Step::Went;
        }
        let Some((sid, ciphertext)) = self.megolm.encrypt(&g.id, &entry.to_them, &mut self.fx) else { return Step::Held };
        let group_id = hex_to_bytes(&g.id);
        let sealed = GroupSealed { group_id: group_id.clone(), session_id: sid, ciphertext };
        let shared = Sealed { kind: SEALED_GROUP, body: sealed.encode_to_vec(), signature: vec![] }.encode_to_vec();
        let mut fanout: Map<String, f::Recipients> = Map::new();
        for d in &dests {
            let r = fanout.entry(d.handle.clone()).or_insert_with(|| f::Recipients { handle: d.handle.clone(), device_ids: vec![], list_version: d.list_version });
            r.device_ids.push(d.device_id);
        }
        let req = Request::Send(f::SendMessage {
            message_id: hex_to_bytes(&entry.id),
            copies: vec![],
            blob_ids: entry.blob_ids.iter().map(|b| hex_to_bytes(b)).collect(),
            fanout: fanout.into_iter().map(|(_, r)| r).collect(),
            shared,
            group_epoch: change_epoch.map(|epoch| f::GroupEpoch { group_id, epoch }),
        });
        if self.request(req, Pending::Send { entry: entry.id.clone() }, now) {
            self.outbox.mark_in_flight(&entry.id, self.directory.serve_generation());
        }
        if change_epoch.is_some() { Step::Held } else { Step::Went }
    }

    /// Sends the group's session key pairwise to every device of each
    /// account that has a device without it (once each has an Olm session).
    fn share_group_key(&mut self, group: &str, session_id: &str, dests: &[Dest], missing: &[String], now: u64) {
        // Sets of owned strings: the type the engine's other sets have (one
        // copy of the set code in the wasm core).
        let missing: Set<String> = missing.iter().cloned().collect();
        let needy: Set<String> = dests.iter().filter(|d| missing.contains(&d.peer().key())).map(|d| d.handle.clone()).collect();
        let targets: Vec<&Dest> = dests.iter().filter(|d| needy.contains(d.handle.as_str())).collect();
        let mut sessions = true;
        for t in &targets {
            if !self.olm.has_session(&t.peer()) {
                sessions = false;
                if !self.link.requests.claim_pending(&t.handle, t.device_id) {
                    let req = Request::ClaimPrekey(f::ClaimPrekey { handle: t.handle.clone(), device_id: t.device_id });
                    self.request(req, Pending::Claim { handle: t.handle.clone(), device_id: t.device_id }, now);
                }
            }
        }
        if !sessions {
            return;
        }
        let Some(session_key) = self.megolm.session_key(group) else { return };
        let payload = Payload::new("", now, Body::GroupKey(GroupKey { group_id: hex_to_bytes(group), session_key })).bytes();
        let accounts: Vec<&str> = needy.iter().map(String::as_str).collect();
        for batch in accounts.chunks(KEY_SHARE_ACCOUNTS) {
            let mut copies = Vec::new();
            let mut peers = Vec::new();
            for t in targets.iter().filter(|t| batch.contains(&t.handle.as_str())) {
                let Some((kind, body)) = self.olm.encrypt(&t.peer(), &payload, &mut self.fx.ops) else { continue };
                let ciphertext = Sealed { kind, body, signature: vec![] }.encode_to_vec();
                copies.push(f::Copy { handle: t.handle.clone(), device_id: t.device_id, ciphertext, list_version: t.list_version });
                peers.push(t.peer().key());
            }
            let req = Request::Send(f::SendMessage { message_id: self.random::<16>().to_vec(), copies, ..Default::default() });
            self.request(req, Pending::GroupKeys { group: group.to_string(), session_id: session_id.to_string(), peers }, now);
        }
    }

    /// The server stored a group entry.
    pub(super) fn sent_group_entry(&mut self, entry: &OutboxEntry) {
        if entry.epoch > 0
            && let Ok(p) = Payload::decode(entry.to_them.as_slice())
            && let Some(Body::GroupChange(change)) = p.body
        {
            let me = self.handle().unwrap_or_default().to_string();
            self.on_group_change(&me, &change, p.sent_at_ms);
            let hash = change.state.as_ref().map(|s| hex(&crate::groups::state_hash(&change.group_id, change.epoch, &change.parent, s)));
            let applied = self.groups.get(&entry.group).is_some_and(|g| g.epoch > change.epoch || Some(&g.hash) == hash.as_ref());
            if !applied {
                self.fx.error("your change of the group crossed another one and was not applied; make it again");
            }
        }
        self.group_blocked.remove(&entry.group);
    }

    /// Key shares were stored: the devices have the key.
    pub(super) fn group_keys_sent(&mut self, group: &str, session_id: &str, peers: Vec<String>, now: u64) {
        self.megolm.mark_shared(group, session_id, peers, &mut self.fx);
        self.pump(now);
    }

    // ----------------------------------------------------------- receiving

    /// A group message from a device whose identity key its verified list gives.
    pub(super) fn on_group_envelope(&mut self, e: &f::Envelope, from: &Peer, body: &[u8], now: u64) {
        let Ok(sealed) = GroupSealed::decode(body) else {
            return self.undecryptable_in(e, &e.sender_handle, "the group message is malformed".into(), now);
        };
        let group = hex(&sealed.group_id);
        let chat = if self.groups.get(&group).is_some() { chat_key(&group) } else { e.sender_handle.clone() };
        let plain = match self.megolm.decrypt(&group, &sealed.session_id, from, &sealed.ciphertext, &mut self.fx) {
            Ok(p) => p,
            Err(GroupDecryptError::Replay) => {
                self.fx.error(format!("ignored a group message from {} that arrived before", e.sender_handle));
                return self.applied_and_ack(e, now);
            }
            Err(err) => return self.undecryptable_in(e, &chat, err.reason().into(), now),
        };
        let Ok(payload) = Payload::decode(plain.as_slice()) else {
            return self.undecryptable_in(e, &chat, "the decrypted content is unreadable".into(), now);
        };
        self.apply_group_payload(e, &group, payload, now);
        self.applied_and_ack(e, now);
    }

    /// Applies a decrypted group payload (now, or once its chat is loaded:
    /// see `history`).
    pub(super) fn apply_group_payload(&mut self, e: &f::Envelope, group: &str, payload: Payload, now: u64) {
        let group = group.to_string();
        let chat = if self.groups.get(&group).is_some() { chat_key(&group) } else { e.sender_handle.clone() };
        let time = if payload.sent_at_ms > 0 { payload.sent_at_ms.min(e.server_time_ms) } else { e.server_time_ms };
        let group_id = crate::engine::send::hex_to_bytes(&group);
        if matches!(payload.body, Some(Body::Reaction(_) | Body::Edit(_) | Body::Delete(_))) && !self.ready_for(&chat) {
            return self.park_payload(e, &chat, &payload, &group);
        }
        match payload.body {
            Some(Body::GroupChange(change)) if change.group_id == group_id => self.on_group_change(&e.sender_handle, &change, time),
            Some(Body::Text(_) | Body::Link(_) | Body::File(_)) => self.on_group_message(e, &group, &payload, time, now),
            Some(ref body @ (Body::Reaction(_) | Body::Edit(_) | Body::Delete(_) | Body::Disappear(_))) => {
                if self.groups.get(&group).is_some_and(|g| g.is_member(&e.sender_handle)) {
                    self.on_message_change(e, &chat, body, time, now);
                } else {
                    self.fx.error(format!("ignored a change in a group from {}, who is not in it", e.sender_handle));
                }
            }
            _ => self.fx.error(format!("ignored something in a group from {} that does not belong there", e.sender_handle)),
        }
    }

    fn on_group_message(&mut self, e: &f::Envelope, group: &str, payload: &Payload, time: u64, now: u64) {
        let Some(g) = self.groups.get(group) else { return };
        if !g.is_member(&e.sender_handle) {
            let name = g.name.clone();
            return self.fx.error(format!("ignored a message in “{name}” from {}, who is not in the group", e.sender_handle));
        }
        let title = format!("{} in {}", self.directory.display_name(&e.sender_handle), g.name);
        let from_me = Some(e.sender_handle.as_str()) == self.handle();
        let body = match payload.body.clone() {
            Some(Body::Text(t)) => MessageBody::Text { body: t.body },
            Some(Body::Link(l)) => super::send::link_body(l),
            Some(Body::File(share)) => super::media::received(share),
            _ => return,
        };
        let m = self.received_in(e, &chat_key(group), time, body, payload);
        let new = self.chats.add(m, !from_me, &title, &mut self.fx);
        if new && !from_me {
            self.group_receipt(&e.sender_handle, group, RECEIPT_DELIVERED, vec![e.message_id.clone()], now);
        }
        if new && from_me {
            self.auto_download_own_group_file(&hex(&e.message_id));
        }
    }

    /// Files sent from another own device are not fetched automatically
    /// (as in 1:1 chats); nothing to do here yet.
    fn auto_download_own_group_file(&mut self, _id: &str) {}

    /// A pairwise `GroupKey` from a device of another account or an own one.
    pub(super) fn on_group_key(&mut self, from: &Peer, key: GroupKey) {
        if key.group_id.len() != 16 {
            return self.fx.error(format!("ignored a malformed group key from {}", from.handle));
        }
        if let Err(why) = self.megolm.import(&hex(&key.group_id), from, &key.session_key, &mut self.fx) {
            self.fx.error(format!("ignored a group key from {}: {why}", from.handle));
        }
    }

    /// Applies a change by `author` (or shows why not) and writes what
    /// changed into the group's chat.
    pub(super) fn on_group_change(&mut self, author: &str, change: &GroupChange, time: u64) {
        let me = self.handle().map(str::to_string);
        match self.groups.receive(me.as_deref(), author, change, &mut self.fx) {
            Ok(Applied::Changed(steps)) => {
                for (before, after) in steps {
                    self.group_changed(author, before.as_ref(), &after, time);
                }
            }
            Ok(Applied::Waiting | Applied::Known) => {}
            Err(why) => self.fx.error(format!("ignored a group change by {author}: {why}")),
        }
    }

    fn group_changed(&mut self, author: &str, before: Option<&Group>, after: &Group, time: u64) {
        let me = self.handle().unwrap_or_default().to_string();
        for h in after.handles() {
            if h != me {
                self.directory.ensure(h, &mut self.fx);
            }
        }
        if !after.is_member(&me) {
            self.megolm.drop_outbound(&after.id, &mut self.fx);
        }
        let chat = chat_key(&after.id);
        for (i, text) in self.describe_change(author, before, after).into_iter().enumerate() {
            // The same change makes the same line (same id) on every device.
            let id = hex(&hex_to_bytes(&after.hash)[..15]) + &format!("{i:02x}");
            let m = ChatMessage {
                id,
                chat: chat.clone(),
                from_me: author == me,
                sender_handle: author.to_string(),
                sender_device: 0,
                time_ms: time,
                body: MessageBody::GroupEvent { text },
                status: Status::Sent,
                seq: 0,
                receipts: Default::default(),
                ..Default::default()
            };
            self.chats.add(m, false, &after.name, &mut self.fx);
        }
    }

    /// Lines for a group's chat saying what a change did.
    fn describe_change(&self, author: &str, before: Option<&Group>, after: &Group) -> Vec<String> {
        let who = self.member_name(author);
        // "You" opens a line; inside one it is "you".
        let inner = |h: &str| if Some(h) == self.handle() { "you".to_string() } else { self.member_name(h) };
        let names = |hs: Vec<&str>| hs.into_iter().map(inner).collect::<Vec<_>>().join(", ");
        let Some(before) = before else { return vec![format!("{who} created the group “{}”", after.name)] };
        let mut lines = Vec::new();
        let added: Vec<&str> = after.handles().filter(|h| !before.is_member(h)).collect();
        let gone: Vec<&str> = before.handles().filter(|h| !after.is_member(h)).collect();
        if !added.is_empty() {
            lines.push(format!("{who} added {}", names(added)));
        }
        if gone == [author] {
            lines.push(format!("{who} left"));
        } else if !gone.is_empty() {
            lines.push(format!("{who} removed {}", names(gone)));
        }
        if before.name != after.name {
            lines.push(format!("{who} renamed the group to “{}”", after.name));
        }
        let promoted: Vec<&str> = after.members.iter().filter(|m| m.admin && before.is_member(&m.handle) && !before.is_admin(&m.handle)).map(|m: &Member| m.handle.as_str()).collect();
        let demoted: Vec<&str> = after.members.iter().filter(|m| !m.admin && before.is_admin(&m.handle)).map(|m| m.handle.as_str()).collect();
        // "You are now an admin", "Bob is now an admin", "Bob, Carol are …".
        let state = |hs: Vec<&str>, what: &str| {
            let verb = if hs.len() == 1 && Some(hs[0]) != self.handle() { "is" } else { "are" };
            let list = hs.iter().map(|h| self.member_name(h)).collect::<Vec<_>>().join(", ");
            format!("{list} {verb} {what}")
        };
        if !promoted.is_empty() {
            lines.push(state(promoted, "now an admin"));
        }
        if !demoted.is_empty() {
            lines.push(state(demoted, "no longer an admin"));
        }
        lines
    }

    // ----------------------------------------------------------- receipts

    /// Delivered / read receipts for group messages, to their sender.
    pub(super) fn group_receipt(&mut self, to: &str, group: &str, kind: u32, ids: Vec<Vec<u8>>, now: u64) {
        self.receipt_for(to, kind, ids, hex_to_bytes(group), now);
    }

    /// Read receipts for a group chat's unread messages, one per sender.
    pub(super) fn group_read(&mut self, chat: &str, group: &str, now: u64) {
        // Once out of the group, its members ignore this account's receipts.
        let me = self.handle().unwrap_or_default();
        if !self.groups.get(group).is_some_and(|g| g.is_member(me)) {
            return;
        }
        let unread: Set<String> = self.chats.unread_ids(chat).into_iter().collect();
        let mut by_sender: Map<String, Vec<Vec<u8>>> = Map::new();
        for m in self.chats.messages(chat).iter().filter(|m| unread.contains(&m.id) && !m.from_me) {
            if matches!(m.body, MessageBody::GroupEvent { .. } | MessageBody::Undecryptable { .. }) {
                continue;
            }
            by_sender.entry(m.sender_handle.clone()).or_default().push(hex_to_bytes(&m.id));
        }
        for (sender, ids) in by_sender {
            self.group_receipt(&sender, group, RECEIPT_READ, ids, now);
        }
    }

    /// A member's receipt for own messages of a group.
    pub(super) fn on_group_receipt(&mut self, from: &str, r: Receipt) {
        let group = hex(&r.group_id);
        let Some(g) = self.groups.get(&group) else { return };
        if !g.is_member(from) {
            // Nothing to show: receipts a removed member sent for what it
            // got while still in (in flight during the removal) land here.
            return;
        }
        let me = self.handle().unwrap_or_default().to_string();
        let others: Vec<String> = g.handles().filter(|h| *h != me).map(str::to_string).collect();
        let status = if r.kind == RECEIPT_READ { Status::Read } else { Status::Delivered };
        let chat = chat_key(&group);
        for mid in r.message_ids {
            self.chats.set_member_receipt(&chat, &hex(&mid), from, status, &others, &mut self.fx);
        }
    }

    /// Who has read (and who has received) an own group message.
    pub fn message_receipts(&self, id: &str) -> Vec<(String, Status)> {
        self.chats.find(id).map(|m| m.receipts.iter().map(|(h, s)| (self.directory.display_name(h), *s)).collect()).unwrap_or_default()
    }
}
