//! Linking, both roles, and history sync.
//!
//! Companion: ask for refs → show a QR per ref as they rotate (and, when
//! linking by code, run SPAKE2 with the primary through the server: see
//! `tether_proto::pairing`) → on `LinkApproved`, check the HMAC
//! with the link secret, the account's signature and that the signed list
//! holds exactly this device's keys → linked; history arrives sealed to
//! this device's link key, signed by the account.
//!
//! Primary: parse a QR payload (or receive it sealed after a pairing-code
//! exchange), check
//! the server fingerprint, ask the user, and on confirmation sign the
//! companion into the device list, approve the ref, then send the last 90
//! days of history and the contacts sealed to the companion.

use super::{Engine, HISTORY_DAYS, days_ago};
use crate::content::{HistoryChunk, SEALED_HISTORY, Sealed};
use crate::error::Error;
use crate::event::Event;
use crate::linking::{AwaitRefs, CodeEntry, CodeOffer, CodeStage, LinkFlow, Showing};
use crate::model::{HistoryPart, HistoryWindow, Role};
use crate::requests::Pending;
use prost::Message;
use tether_proto::device_list::{self, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, Request};
use tether_proto::link::{DeviceIdentity, LinkPayload, make_approval, open_approval};
use tether_proto::noise::StaticKey;
use tether_proto::pairing::{self, CONFIRM_LEN, PAKE_MESSAGE_LEN, Pake, Side};
use tether_proto::seal;

/// Signature context for history chunks: the account key signs
/// `context || link secret || device id (4 bytes, big-endian) || sealed
/// bytes`, so a chunk belongs to one link of one device.
const HISTORY_CONTEXT: &[u8] = b"tether history chunk v2\0";
const HISTORY_AAD: &[u8] = b"tether history v1";
/// Codes a companion makes in a row (slots taken, wrong guesses) before it
/// stops and says so.
const MAX_CODES: u32 = 5;
/// What a companion answers a primary whose confirmation failed.
const PAIRING_REFUSED: &[u8] = &[0];
/// Largest history chunk before sealing.
const CHUNK_BYTES: usize = 40 * 1024;

impl Engine {
    // ---------------------------------------------------------- companion

    /// Companion: start linking through `server_url`. Connect afterwards;
    /// `Event::LinkCode` (and with `with_code`, `Event::PairingCode`) follow.
    pub fn start_link(&mut self, server_url: &str, with_code: bool, now: u64) -> Result<(), Error> {
        if let Some(h) = self.handle() {
            return Err(Error::AlreadyRegistered(h.to_string()));
        }
        self.me.server_url = server_url.to_string();
        self.save_me();
        self.linking.flow = LinkFlow::AwaitRefs(AwaitRefs { link_secret: self.random::<32>(), with_code });
        if self.is_open() {
            self.request(Request::RequestLinkRefs(f::RequestLinkRefs {}), Pending::LinkRefs, now);
        }
        self.finish();
        Ok(())
    }

    pub(super) fn refs_arrived(&mut self, refs: f::LinkRefs, now: u64) {
        let LinkFlow::AwaitRefs(a) = std::mem::take(&mut self.linking.flow) else {
            return self.fx.error(Error::MismatchedResponse { request: "link codes" }.to_string());
        };
        self.linking.flow = LinkFlow::Showing(Showing { refs: refs.refs, index: 0, link_secret: a.link_secret, code: None });
        self.handle_timeout_link(now);
        self.show_current(now);
        if a.with_code {
            self.new_pairing_code(now);
        }
    }

    /// Companion: makes a new pairing code and puts its SPAKE2 message in
    /// the code's slot (again when the slot is taken or a guess failed).
    pub(super) fn new_pairing_code(&mut self, now: u64) {
        let made = match &self.linking.flow {
            LinkFlow::Showing(s) => s.code.as_ref().map_or(0, |c| c.made),
            _ => return,
        };
        if made >= MAX_CODES {
            self.fx.error("pairing codes kept failing (someone may be guessing): show a new code to try again");
            self.link.close = Some("pairing codes failed".into());
            return;
        }
        let code = pairing::new_code(self.random::<5>());
        let started = pairing::slot(&code).and_then(|slot| Ok((slot, Pake::start(Side::Companion, &code, self.random::<64>())?)));
        let (slot, (pake, message)) = match started {
            Ok(v) => v,
            Err(e) => return self.fx.error(e.to_string()),
        };
        if let LinkFlow::Showing(s) = &mut self.linking.flow {
            s.code = Some(CodeOffer { slot, stage: CodeStage::Waiting(pake), made: made + 1 });
        }
        let req = Request::PairingPublish(f::PairingPublish { lookup: slot.to_vec(), payload: message });
        self.request(req, Pending::PairingPublish, now);
        self.fx.emit(Event::PairingCode { code });
    }

    /// A pairing answer: the primary's message and confirmation (on the
    /// companion), or the companion's sealed link code (on the primary).
    pub(super) fn on_pairing_answer(&mut self, answer: f::PairingOffer, now: u64) {
        if let LinkFlow::Showing(s) = &mut self.linking.flow {
            let Some(offer) = s.code.as_mut().filter(|c| c.slot.as_slice() == answer.lookup) else {
                return self.fx.error("a pairing answer for another code arrived: ignored");
            };
            let CodeStage::Waiting(pake) = std::mem::take(&mut offer.stage) else {
                return self.fx.error("a second pairing answer arrived: ignored");
            };
            let slot = offer.slot;
            return self.primary_answered(slot, pake, &answer.payload, now);
        }
        match self.linking.code.take() {
            Some(CodeEntry::AwaitOffer { slot, keys }) if slot.as_slice() == answer.lookup => {
                if answer.payload == PAIRING_REFUSED {
                    return self.fx.error(pairing_mismatch());
                }
                match keys.open_offer(&answer.payload) {
                    Ok(uri) => {
                        if let Err(e) = self.ask_to_link(&uri, Some(keys.sas())) {
                            self.fx.error(e.to_string());
                        }
                    }
                    Err(_) => self.fx.error(pairing_mismatch()),
                }
            }
            other => {
                self.linking.code = other;
                self.fx.error("an unexpected pairing answer arrived: ignored");
            }
        }
    }

    /// Companion: checks the primary's proof that it knows the code; only
    /// then sends this device's link code, sealed to the shared key.
    fn primary_answered(&mut self, slot: [u8; 2], pake: Pake, payload: &[u8], now: u64) {
        let keys = (payload.len() == PAKE_MESSAGE_LEN + CONFIRM_LEN)
            .then(|| pake.finish(&payload[..PAKE_MESSAGE_LEN]).ok())
            .flatten()
            .filter(|k| k.check_primary(&payload[PAKE_MESSAGE_LEN..]).is_ok());
        let Some(keys) = keys else {
            // A wrong code (or a guess): tell the other side, show a new code.
            let req = Request::PairingReply(f::PairingReply { lookup: slot.to_vec(), payload: PAIRING_REFUSED.to_vec() });
            self.request(req, Pending::PairingReply, now);
            self.fx.error("a device entered a wrong pairing code: here is a new one");
            return self.new_pairing_code(now);
        };
        let LinkFlow::Showing(s) = &self.linking.flow else { return };
        let Some(r) = s.refs.get(s.index).cloned() else { return };
        let Some(link) = self.payload_for(&r, s.link_secret) else { return };
        let sealed = keys.seal_offer(&link.to_uri(), self.random::<12>());
        let req = Request::PairingReply(f::PairingReply { lookup: slot.to_vec(), payload: sealed });
        self.request(req, Pending::PairingReply, now);
        if let LinkFlow::Showing(Showing { code: Some(c), .. }) = &mut self.linking.flow {
            c.stage = CodeStage::Matched;
        }
        self.fx.emit(Event::PairingMatched { confirmation: keys.sas() });
    }

    /// Skips refs that expired before they arrived.
    fn handle_timeout_link(&mut self, now: u64) {
        if self.linking.flow.rotate(now) == crate::linking::Rotation::Exhausted {
            self.fx.emit(Event::LinkCodesExhausted);
            self.link.close = Some("link codes expired".into());
        }
    }

    fn payload_for(&self, r: &f::LinkRef, link_secret: [u8; 32]) -> Option<LinkPayload> {
        let key = StaticKey::from_private(&self.me.noise_private).ok()?;
        let link_secret_key: [u8; 32] = self.me.link_secret_key.as_slice().try_into().ok()?;
        Some(LinkPayload {
            server: self.server_fingerprint()?,
            link_ref: r.link_ref.as_slice().try_into().ok()?,
            noise_key: key.public(),
            identity_key: self.olm.identity_key(),
            signing_key: self.olm.signing_key(),
            link_key: seal::public_key(&link_secret_key),
            link_secret,
            platform: self.info.platform.clone(),
            name: self.info.name.clone(),
        })
    }

    /// Shows the current ref's QR.
    pub(super) fn show_current(&mut self, _now: u64) {
        let LinkFlow::Showing(s) = &self.linking.flow else { return };
        let Some(r) = s.refs.get(s.index).cloned() else { return };
        let (index, total, secret) = (s.index, s.refs.len(), s.link_secret);
        let Some(payload) = self.payload_for(&r, secret) else { return };
        self.fx.emit(Event::LinkCode { uri: payload.to_uri(), expires_ms: r.expires_ms, index, total });
    }

    pub(super) fn on_link_approved(&mut self, a: f::LinkApproved, now: u64) {
        let LinkFlow::Showing(s) = &self.linking.flow else {
            return self.fx.error("a link approval arrived while this device shows no code: ignored");
        };
        let secret = s.link_secret;
        match self.check_approval(&a, &secret) {
            Ok(signed) => {
                self.linking.flow = LinkFlow::Idle;
                self.me.role = Role::Companion { handle: a.handle.clone(), device_id: a.device_id, account_key: a.account_key.clone() };
                self.me.unconfirmed = true;
                self.me.history = Some(HistoryWindow { binding: history_binding(&secret, a.device_id), total: None, seen: vec![] });
                self.save_me();
                self.directory.set_own(&signed, &mut self.fx);
                self.publish_entry_signature(now);
                self.fx.emit(Event::ConfirmAccount { handle: a.handle });
            }
            Err(why) => {
                self.fx.error(format!("the link approval was refused: {why}"));
                // We are a device of that account now on the server: leave it.
                let req = Request::RemoveDevice(f::RemoveDevice { device_id: a.device_id, new_list: None });
                self.request(req, Pending::RemoveDevice { device_id: a.device_id, list: None }, now);
            }
        }
    }

    /// Companion: the person's answer to "Linked to @handle: is this
    /// you?". Yes: the device comes alive (prekeys, held messages, history).
    /// No: it leaves the account at once and wipes itself.
    pub fn confirm_account(&mut self, yes: bool, now: u64) -> Result<(), Error> {
        let Role::Companion { handle, device_id, .. } = self.me.role.clone() else { return Err(Error::NotRegistered) };
        if !self.me.unconfirmed {
            return Err(Error::Invalid("this device's account is already confirmed".into()));
        }
        self.online()?;
        if yes {
            self.me.unconfirmed = false;
            self.save_me();
            self.upload_prekeys(now);
            self.fx.emit(Event::Linked { handle, device_id });
            for e in self.inbox.take_held() {
                self.on_envelope(e, now);
            }
            self.pump(now);
        } else {
            let req = Request::RemoveDevice(f::RemoveDevice { device_id, new_list: None });
            self.request(req, Pending::RemoveDevice { device_id, list: None }, now);
        }
        self.finish();
        Ok(())
    }

    /// Companion: hands the server this device's own signature over its
    /// entry in the account's list (it can only make it once the approval
    /// told it its handle and id); contacts require it once the list is
    /// older than `COMPANION_SIGNATURE_GRACE_MS`. Again on every connection
    /// until the server has it.
    pub(super) fn publish_entry_signature(&mut self, now: u64) {
        let Role::Companion { handle, device_id, account_key } = self.me.role.clone() else { return };
        if self.me.entry_signed || !self.is_open() {
            return;
        }
        let Some(list) = self.directory.own_list(&account_key) else { return };
        let Some(entry) = device_list::device(&list, device_id) else { return };
        let signature = self.olm.sign(&device_list::entry_signed_bytes(&handle, entry));
        self.request(Request::PublishEntrySignature(f::PublishEntrySignature { signature }), Pending::EntrySignature, now);
    }

    /// Companion: the account waiting for the person's confirmation.
    pub fn account_to_confirm(&self) -> Option<&str> {
        self.me.unconfirmed.then(|| self.handle()).flatten()
    }

    /// Checks an approval against this device and its code on show;
    /// returns the signed list that holds this device.
    fn check_approval(&self, a: &f::LinkApproved, secret: &[u8; 32]) -> Result<f::SignedDeviceList, &'static str> {
        let identity = open_approval(&a.approval, &a.account_key, secret).map_err(|_| "it does not prove the primary scanned this code")?;
        let own_noise = StaticKey::from_private(&self.me.noise_private).map(|k| k.public()).unwrap_or_default();
        if identity.handle != a.handle
            || identity.device_id != a.device_id
            || identity.noise_key != own_noise
            || identity.identity_key != self.olm.identity_key()
            || identity.signing_key != self.olm.signing_key()
        {
            return Err("it names other keys than this device's");
        }
        let signed = a.list.clone().ok_or("no device list")?;
        let list = device_list::verify(&a.account_key, &signed).map_err(|_| "the device list is not signed by the account")?;
        if !list.devices.iter().any(|d| d.device_id == a.device_id && d.identity_key == self.olm.identity_key().to_vec()) {
            return Err("the device list does not hold this device");
        }
        Ok(signed)
    }

    /// Companion: a sealed history chunk from our primary. Accepted only
    /// while this link's history is incomplete, signed for this link, and
    /// each chunk once: a replayed chunk cannot roll contacts back.
    pub(super) fn on_history(&mut self, e: &f::Envelope, sealed: Sealed, now: u64) {
        let Role::Companion { handle, account_key, .. } = self.me.role.clone() else {
            return self.fx.error("history arrived on a device that is not a companion: ignored");
        };
        if e.sender_handle != handle || e.sender_device != PRIMARY_DEVICE {
            return self.fx.error("history from another device than this account's primary: ignored");
        }
        let Some(window) = self.me.history.clone() else {
            return self.fx.error("history arrived after this device's history was complete: ignored");
        };
        let signed = [window.binding.as_slice(), &sealed.body].concat();
        if device_list::verify_bytes(&account_key, HISTORY_CONTEXT, &signed, &sealed.signature).is_err() {
            return self.fx.error("a history chunk was not signed by this account for this link: ignored");
        }
        let Ok(secret) = <[u8; 32]>::try_from(self.me.link_secret_key.as_slice()) else { return };
        let Ok(plain) = seal::open(&secret, &sealed.body, HISTORY_AAD) else {
            return self.fx.error("a history chunk could not be opened");
        };
        let part = HistoryChunk::decode(plain.as_slice()).ok().and_then(|c| Some((c.index, c.total, crate::json::from_slice::<HistoryPart>(&c.data).ok()?)));
        let Some((index, total, part)) = part else {
            return self.fx.error("a history chunk is unreadable: ignored");
        };
        if index >= total || window.total.is_some_and(|t| t != total) || window.seen.contains(&index) {
            return self.fx.error("a history chunk arrived twice or does not fit: ignored");
        }
        for c in part.contacts.into_iter().filter(|c| c.handle != handle) {
            self.directory.import(c, &mut self.fx);
        }
        for g in part.groups {
            self.groups.import(g, &mut self.fx);
        }
        for (sender, action) in part.standings.iter().filter(|(h, _)| *h != handle) {
            self.apply_standing(sender, *action, now);
        }
        let messages = self.chats.import(part.chats, part.messages, &mut self.fx);
        self.expire(now);
        let mut window = window;
        window.total = Some(total);
        window.seen.push(index);
        self.me.history = (window.seen.len() < total as usize).then_some(window);
        self.save_me();
        self.fx.emit(Event::HistoryImported { chunk: index, total, messages });
    }

    // ------------------------------------------------------------ primary

    /// Primary: a scanned QR (or pasted link). Checks it and asks for
    /// confirmation with `Event::LinkRequest`; call `confirm_link` then.
    pub fn link_from_uri(&mut self, uri: &str) -> Result<(String, String), Error> {
        self.ask_to_link(uri, None)
    }

    fn ask_to_link(&mut self, uri: &str, confirmation: Option<String>) -> Result<(String, String), Error> {
        let Role::Primary { .. } = self.me.role else { return Err(Error::NotPrimary) };
        let payload = LinkPayload::from_uri(uri)?;
        if Some(payload.server) != self.server_fingerprint() {
            return Err(Error::WrongServer(payload.server.to_string()));
        }
        let ask = (payload.platform.clone(), payload.name.clone());
        self.linking.request = Some(payload);
        self.fx.emit(Event::LinkRequest { platform: ask.0.clone(), name: ask.1.clone(), confirmation });
        Ok(ask)
    }

    /// Primary: starts the SPAKE2 exchange for a typed pairing code:
    /// fetches the companion's message from the code's slot.
    /// `Event::LinkRequest` follows once both sides proved the code.
    pub fn link_with_code(&mut self, code: &str, now: u64) -> Result<(), Error> {
        let Role::Primary { .. } = self.me.role else { return Err(Error::NotPrimary) };
        self.online()?;
        let slot = pairing::slot(code)?;
        let (pake, message) = Pake::start(Side::Primary, code, self.random::<64>())?;
        self.linking.code = Some(CodeEntry::Fetching { slot, pake, message });
        self.request(Request::PairingFetch(f::PairingFetch { lookup: slot.to_vec() }), Pending::PairingFetch, now);
        self.finish();
        Ok(())
    }

    /// Primary: the companion's message arrived; answer with ours and the
    /// proof that we know the code.
    pub(super) fn pairing_fetched(&mut self, offer: f::PairingOffer, now: u64) {
        let Some(CodeEntry::Fetching { slot, pake, message }) = self.linking.code.take() else {
            return self.fx.error(Error::MismatchedResponse { request: "pairing fetch" }.to_string());
        };
        let keys = match pake.finish(&offer.payload) {
            Ok(keys) => keys,
            Err(e) => return self.fx.error(e.to_string()),
        };
        let payload = [message.as_slice(), &keys.primary_confirmation()].concat();
        self.request(Request::PairingReply(f::PairingReply { lookup: slot.to_vec(), payload }), Pending::PairingReply, now);
        self.linking.code = Some(CodeEntry::AwaitOffer { slot, keys });
    }

    /// Primary: the user confirmed; sign the companion in and approve.
    pub fn confirm_link(&mut self, now: u64) -> Result<u32, Error> {
        let Role::Primary { handle, .. } = self.me.role.clone() else { return Err(Error::NotPrimary) };
        let key = self.me.role.account_key().ok_or_else(|| Error::Corrupt("account key".into()))?;
        self.online()?;
        let payload = self.linking.request.take().ok_or_else(|| Error::Invalid("nothing is waiting to be linked".into()))?;
        let device_id = self.directory.next_device();
        let new = self.directory.sign_own(&key, now, |list| {
            list.devices.push(f::DeviceEntry {
                device_id,
                noise_key: payload.noise_key.to_vec(),
                identity_key: payload.identity_key.to_vec(),
                signing_key: payload.signing_key.to_vec(),
                platform: payload.platform.clone(),
                // Kept on the primary (SelfState::device_names), not in the list.
                name: String::new(),
                linked_at_ms: now,
                // The companion's proof of its keys, once the link flow carries it (device_list::entry_signed_bytes).
                self_signature: Vec::new(),
            })
        })?;
        let identity = DeviceIdentity {
            handle,
            device_id,
            noise_key: payload.noise_key,
            identity_key: payload.identity_key,
            signing_key: payload.signing_key,
            linked_at_ms: now,
        };
        let approval = make_approval(&key, &identity, &payload.link_secret);
        let req = Request::ApproveLink(f::ApproveLink { link_ref: payload.link_ref.to_vec(), device_id, new_list: Some(new.clone()), approval });
        let binding = history_binding(&payload.link_secret, device_id);
        self.me.device_names.insert(device_id, payload.name.clone());
        self.save_me();
        self.request(req, Pending::Approve { device_id, list: new, link_key: payload.link_key, binding }, now);
        self.finish();
        Ok(device_id)
    }

    pub(super) fn link_approved(&mut self, device_id: u32, list: &f::SignedDeviceList, link_key: [u8; 32], binding: Vec<u8>, now: u64) {
        self.directory.set_own(list, &mut self.fx);
        self.fx.emit(Event::LinkApproved { device_id });
        self.send_history(device_id, link_key, &binding, now);
    }

    /// Seals the last 90 days of history and the contacts to a new
    /// companion, each chunk signed for this link (`binding`).
    pub(super) fn send_history(&mut self, device_id: u32, link_key: [u8; 32], binding: &[u8], now: u64) {
        let (Some(handle), Some(key)) = (self.handle().map(str::to_string), self.me.role.account_key()) else { return };
        // Lazy history: every chat is loaded first (the host is asked; this
        // goes on from `load_chat` once they all are).
        let chats: Vec<String> = self.chats.all().map(|c| c.handle.clone()).collect();
        let missing = chats.iter().filter(|c| !self.resident(c)).count();
        if missing > 0 {
            self.history_job = Some((device_id, link_key, binding.to_vec()));
            return;
        }
        self.history_job = None;
        let contacts = self.directory.contacts().cloned().collect();
        let chats = self.chats.all().cloned().collect();
        let messages = self.chats.messages_since(days_ago(now, HISTORY_DAYS), now);
        // Part 0: contacts and chats; then messages in parts under CHUNK_BYTES.
        let standings = self.msg_requests.answers();
        let groups = self.groups.all().cloned().collect();
        let mut parts = vec![HistoryPart { contacts, chats, messages: vec![], standings, groups }];
        let mut current = HistoryPart::default();
        let mut size = 0;
        for m in messages {
            let len = serde_json::to_vec(&m).map(|v| v.len()).unwrap_or(0);
            if size + len > CHUNK_BYTES && !current.messages.is_empty() {
                parts.push(std::mem::take(&mut current));
                size = 0;
            }
            size += len;
            current.messages.push(m);
        }
        if !current.messages.is_empty() {
            parts.push(current);
        }
        let total = parts.len() as u32;
        let count: usize = parts.iter().map(|p| p.messages.len()).sum();
        for (i, part) in parts.into_iter().enumerate() {
            let chunk = HistoryChunk { index: i as u32, total, data: serde_json::to_vec(&part).expect("history encodes") };
            let eph = self.random::<32>();
            let nonce = self.random::<12>();
            let body = seal::seal(&link_key, &chunk.encode_to_vec(), HISTORY_AAD, eph, nonce);
            let signature = key.sign_bytes(HISTORY_CONTEXT, &[binding, &body].concat()).to_vec();
            let ciphertext = Sealed { kind: SEALED_HISTORY, body, signature }.encode_to_vec();
            let req = Request::Send(f::SendMessage {
                message_id: self.random::<16>().to_vec(),
                copies: vec![f::Copy { handle: handle.clone(), device_id, ciphertext, list_version: 0 }],
                // Files named in the history stay readable by the account's
                // devices while they live; the history names no blob itself.
                blob_ids: vec![],
                ..Default::default()
            });
            self.request(req, Pending::SendHistory, now);
        }
        self.fx.emit(Event::HistorySent { device_id, messages: count, chunks: total as usize });
    }

    // ------------------------------------------------------------ both

    /// Companion: logs out (the server forgets this device, then all local
    /// data is wiped). Primary: wipes local data only.
    pub fn logout(&mut self, now: u64) -> Result<(), Error> {
        match self.me.role.clone() {
            Role::Companion { device_id, .. } => {
                self.online()?;
                let req = Request::RemoveDevice(f::RemoveDevice { device_id, new_list: None });
                self.request(req, Pending::RemoveDevice { device_id, list: None }, now);
            }
            Role::Primary { .. } => self.wipe("Logged out: this device's account data was deleted.".into()),
            Role::Unlinked { .. } => return Err(Error::NotRegistered),
        }
        self.finish();
        Ok(())
    }
}

/// What both sides say when the codes did not match.
fn pairing_mismatch() -> String {
    tether_proto::Error::PairingMismatch.to_string()
}

/// What a history chunk's signature binds it to: the link secret of the
/// code the primary scanned and the device id it gave the companion.
fn history_binding(link_secret: &[u8; 32], device_id: u32) -> Vec<u8> {
    [link_secret.as_slice(), &device_id.to_be_bytes()].concat()
}
