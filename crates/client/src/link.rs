//! Linking, both roles.
//!
//! Companion (typed states in [`LinkFlow`]): `AwaitRefs` (asked the server
//! for refs) → `Showing` (a QR per ref as they rotate, optionally a pairing
//! code) → on `LinkApproved`: check the HMAC with the link secret and the
//! account's signature, check the signed list holds exactly our keys →
//! linked; history arrives sealed to our link key.
//!
//! Primary: parse a QR payload (or fetch a pairing offer by code), check
//! the server fingerprint, show what asks to link, and on confirmation sign
//! the companion into the device list, approve the ref, then send the last
//! 90 days of history and the contacts sealed to the companion.

use crate::content::*;
use crate::engine::*;
use crate::model::*;
use crate::{Error, Event};
use prost::Message;
use tether_proto::device_list::{AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, Request, ResponseBody};
use tether_proto::link::{DeviceIdentity, LinkPayload, make_approval, open_approval};
use tether_proto::noise::StaticKey;
use tether_proto::{pairing, seal};

/// Signature context for history chunks (account key over the sealed bytes).
const HISTORY_CONTEXT: &[u8] = b"tether history chunk v1\0";
const HISTORY_AAD: &[u8] = b"tether history v1";
const PAIRING_AAD: &[u8] = b"tether pairing offer v1";
/// Largest history chunk before sealing.
const CHUNK_BYTES: usize = 40 * 1024;

/// Waiting for the server's refs.
#[derive(Debug)]
pub struct AwaitRefs {
    pub link_secret: [u8; 32],
    pub with_code: bool,
}

/// Showing codes as they rotate.
pub struct Showing {
    pub refs: Vec<f::LinkRef>,
    pub index: usize,
    pub link_secret: [u8; 32],
    /// The pairing code and the keys derived from it, when linking by code.
    pub code: Option<(String, pairing::CodeKeys)>,
}

/// The companion's linking flow.
#[derive(Default)]
pub enum LinkFlow {
    #[default]
    Idle,
    AwaitRefs(AwaitRefs),
    Showing(Showing),
    /// Every ref expired: the UI offers "show a new code".
    Exhausted,
}

impl LinkFlow {
    pub fn wants_refs(&self) -> bool {
        matches!(self, LinkFlow::AwaitRefs(_))
    }

    pub fn next_deadline(&self) -> Option<u64> {
        match self {
            LinkFlow::Showing(s) => s.refs.get(s.index).map(|r| r.expires_ms),
            _ => None,
        }
    }
}


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
        self.link = LinkFlow::AwaitRefs(AwaitRefs { link_secret: self.random::<32>(), with_code });
        if self.is_open() {
            self.request(Request::RequestLinkRefs(f::RequestLinkRefs {}), Pending::LinkRefs, now);
        }
        self.finish();
        Ok(())
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

    /// Shows the current ref: QR event, and the pairing offer if by code.
    fn show_current(&mut self, now: u64) {
        let LinkFlow::Showing(s) = &self.link else { return };
        let Some(r) = s.refs.get(s.index).cloned() else { return };
        let (index, total, secret) = (s.index, s.refs.len(), s.link_secret);
        let code = s.code.as_ref().map(|(c, k)| (c.clone(), k.lookup, k.key));
        let Some(payload) = self.payload_for(&r, secret) else { return };
        let uri = payload.to_uri();
        self.events.push_back(Event::LinkCode { uri: uri.clone(), expires_ms: r.expires_ms, index, total });
        if let Some((code, lookup, key)) = code {
            let nonce = self.random::<12>();
            let offer = seal::encrypt_with_key(&key, uri.as_bytes(), PAIRING_AAD, nonce);
            let req = Request::PairingPublish(f::PairingPublish { lookup: lookup.to_vec(), payload: offer });
            self.request(req, Pending::PairingPublish, now);
            if index == 0 {
                self.events.push_back(Event::PairingCode { code });
            }
        }
    }

    pub(crate) fn link_timeout(&mut self, now: u64) {
        let LinkFlow::Showing(s) = &mut self.link else { return };
        let mut moved = false;
        while s.refs.get(s.index).is_some_and(|r| now >= r.expires_ms) {
            s.index += 1;
            moved = true;
        }
        if s.index >= s.refs.len() {
            self.link = LinkFlow::Exhausted;
            self.events.push_back(Event::LinkCodesExhausted);
            self.close = Some("link codes expired".into());
        } else if moved {
            self.show_current(now);
        }
    }

    // ------------------------------------------------------------ primary

    /// Primary: a scanned QR (or pasted link). Checks it and asks for
    /// confirmation with `Event::LinkRequest`; call `confirm_link` then.
    pub fn link_from_uri(&mut self, uri: &str) -> Result<(String, String), Error> {
        let Role::Primary { .. } = self.me.role else { return Err(Error::NotPrimary) };
        let payload = LinkPayload::from_uri(uri)?;
        if Some(payload.server) != self.server_fingerprint() {
            return Err(Error::WrongServer(payload.server.to_string()));
        }
        let ask = (payload.platform.clone(), payload.name.clone());
        self.link_request = Some(payload);
        self.events.push_back(Event::LinkRequest { platform: ask.0.clone(), name: ask.1.clone() });
        Ok(ask)
    }

    /// Primary: fetches the offer behind an 8-character pairing code;
    /// `Event::LinkRequest` follows.
    pub fn link_with_code(&mut self, code: &str, now: u64) -> Result<(), Error> {
        let Role::Primary { .. } = self.me.role else { return Err(Error::NotPrimary) };
        self.online()?;
        let keys = pairing::derive(&pairing::normalize_code(code)?)?;
        let req = Request::PairingFetch(f::PairingFetch { lookup: keys.lookup.to_vec() });
        self.request(req, Pending::PairingFetch { key: keys.key }, now);
        self.finish();
        Ok(())
    }

    /// Primary: the user confirmed; sign the companion in and approve.
    pub fn confirm_link(&mut self, now: u64) -> Result<u32, Error> {
        let Role::Primary { handle, account_seed } = self.me.role.clone() else { return Err(Error::NotPrimary) };
        self.online()?;
        let payload = self.link_request.take().ok_or_else(|| Error::Invalid("nothing is waiting to be linked".into()))?;
        let seed: [u8; 32] = account_seed.as_slice().try_into().map_err(|_| Error::Corrupt("account key".into()))?;
        let key = AccountKey::from_seed(&seed);
        let signed = f::SignedDeviceList::decode(self.me.own_list.as_slice()).map_err(|e| Error::Proto(e.into()))?;
        let mut list = tether_proto::device_list::verify(&key.public(), &signed)?;
        let device_id = self.me.next_device.max(list.devices.iter().map(|d| d.device_id + 1).max().unwrap_or(1));
        list.version += 1;
        list.issued_at_ms = now;
        list.devices.push(f::DeviceEntry {
            device_id,
            noise_key: payload.noise_key.to_vec(),
            identity_key: payload.identity_key.to_vec(),
            signing_key: payload.signing_key.to_vec(),
            platform: payload.platform.clone(),
            name: payload.name.clone(),
            linked_at_ms: now,
        });
        let new = key.sign(&list);
        let identity = DeviceIdentity {
            handle: handle.clone(),
            device_id,
            noise_key: payload.noise_key,
            identity_key: payload.identity_key,
            signing_key: payload.signing_key,
            linked_at_ms: now,
        };
        let approval = make_approval(&key, &identity, &payload.link_secret);
        let req = Request::ApproveLink(f::ApproveLink { link_ref: payload.link_ref.to_vec(), device_id, new_list: Some(new.clone()), approval });
        self.request(req, Pending::Approve { device_id, list: new, link_key: payload.link_key }, now);
        self.finish();
        Ok(device_id)
    }

    /// Seals the last 90 days of history and the contacts to a new companion.
    fn send_history(&mut self, device_id: u32, link_key: [u8; 32], now: u64) {
        let Role::Primary { handle, account_seed } = self.me.role.clone() else { return };
        let Ok(seed) = <[u8; 32]>::try_from(account_seed.as_slice()) else { return };
        let key = AccountKey::from_seed(&seed);
        let since = days_ago(now, HISTORY_DAYS);
        let contacts: Vec<Contact> = self.contacts.values().cloned().collect();
        let chats: Vec<Chat> = self.chats.values().cloned().collect();
        let messages: Vec<ChatMessage> = self.messages.values().flatten().filter(|m| m.time_ms >= since).cloned().collect();
        // Part 0: contacts and chats; then messages in parts under CHUNK_BYTES.
        let mut parts = vec![HistoryPart { contacts, chats, messages: vec![] }];
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
            let signature = key.sign_bytes(HISTORY_CONTEXT, &body).to_vec();
            let ciphertext = Sealed { kind: SEALED_HISTORY, body, signature }.encode_to_vec();
            let req = Request::Send(f::SendMessage {
                message_id: self.random::<16>().to_vec(),
                copies: vec![f::Copy { handle: handle.clone(), device_id, ciphertext }],
            });
            self.request(req, Pending::SendHistory, now);
        }
        self.events.push_back(Event::HistorySent { device_id, messages: count, chunks: total as usize });
    }

    /// Companion: a sealed history chunk from our primary.
    pub(crate) fn on_history(&mut self, e: &f::Envelope, sealed: Sealed, now: u64) {
        let _ = now;
        let Role::Companion { handle, account_key, .. } = self.me.role.clone() else { return };
        if e.sender_handle != handle || e.sender_device != PRIMARY_DEVICE {
            return; // history is accepted only from our own primary
        }
        if tether_proto::device_list::verify_bytes(&account_key, HISTORY_CONTEXT, &sealed.body, &sealed.signature).is_err() {
            self.events.push_back(Event::Error { code: None, message: "a history chunk was not signed by this account: ignored".into() });
            return;
        }
        let Ok(secret) = <[u8; 32]>::try_from(self.me.link_secret_key.as_slice()) else { return };
        let Ok(plain) = seal::open(&secret, &sealed.body, HISTORY_AAD) else {
            self.events.push_back(Event::Error { code: None, message: "a history chunk could not be opened".into() });
            return;
        };
        let Ok(chunk) = HistoryChunk::decode(plain.as_slice()) else { return };
        let Ok(part) = serde_json::from_slice::<HistoryPart>(&chunk.data) else { return };
        for c in part.contacts {
            if c.handle != handle {
                self.ops.push(put(NS_CONTACTS, &c.handle, &c));
                self.contacts.insert(c.handle.clone(), c);
            }
        }
        for c in part.chats {
            self.ops.push(put(NS_CHATS, &c.handle, &c));
            self.chats.insert(c.handle.clone(), c);
        }
        let n = part.messages.len();
        for m in part.messages {
            let list = self.messages.entry(m.chat.clone()).or_default();
            if !list.iter().any(|x| x.id == m.id) {
                let pos = list.partition_point(|x| (x.time_ms, &x.id) < (m.time_ms, &m.id));
                self.ops.push(put(NS_MESSAGES, &crate::messaging::message_key(&m), &m));
                list.insert(pos, m);
            }
        }
        self.events.push_back(Event::HistoryImported { chunk: chunk.index, total: chunk.total, messages: n });
    }

    // ------------------------------------------------------------ results

    pub(crate) fn link_success(&mut self, why: Pending, body: ResponseBody, now: u64) {
        match (why, body) {
            (Pending::LinkRefs, ResponseBody::LinkRefs(refs)) => {
                let LinkFlow::AwaitRefs(a) = std::mem::take(&mut self.link) else { return };
                let code = if a.with_code {
                    let code = pairing::new_code(self.random::<5>());
                    match pairing::derive(&code) {
                        Ok(keys) => Some((code, keys)),
                        Err(e) => {
                            self.events.push_back(Event::Error { code: None, message: e.to_string() });
                            None
                        }
                    }
                } else {
                    None
                };
                self.link = LinkFlow::Showing(Showing { refs: refs.refs, index: 0, link_secret: a.link_secret, code });
                self.link_timeout(now);
                self.show_current(now);
            }
            (Pending::Approve { device_id, list, link_key }, ResponseBody::Done(_)) => {
                self.me.own_list = list.encode_to_vec();
                self.me.next_device = self.me.next_device.max(device_id + 1);
                self.save_me();
                self.events.push_back(Event::LinkApproved { device_id });
                self.send_history(device_id, link_key, now);
            }
            (Pending::PairingFetch { key }, ResponseBody::Pairing(offer)) => {
                match seal::decrypt_with_key(&key, &offer.payload, PAIRING_AAD)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                {
                    Some(uri) => {
                        if let Err(e) = self.link_from_uri(&uri) {
                            self.events.push_back(Event::Error { code: None, message: e.to_string() });
                        }
                    }
                    None => self.events.push_back(Event::Error { code: None, message: "that pairing code does not match: check it and try again".into() }),
                }
            }
            (Pending::RemoveDevice { device_id, list }, ResponseBody::Done(_)) => {
                if let Some(list) = list {
                    self.me.own_list = list.encode_to_vec();
                    self.save_me();
                    self.events.push_back(Event::DeviceRemoved { device_id });
                } else {
                    self.wipe("Logged out on this device.".into());
                }
            }
            (Pending::PublishList { list }, ResponseBody::Done(_)) => {
                self.me.own_list = list.encode_to_vec();
                self.me.own_removed.clear();
                self.save_me();
            }
            _ => {}
        }
    }

    pub(crate) fn link_event(&mut self, body: f::EventBody, now: u64) {
        if let f::EventBody::LinkApproved(a) = body {
            self.on_link_approved(a, now);
        }
    }

    fn on_link_approved(&mut self, a: f::LinkApproved, now: u64) {
        let secret = match &self.link {
            LinkFlow::Showing(s) => s.link_secret,
            _ => return,
        };
        let refuse = |this: &mut Self, why: &str| {
            this.events.push_back(Event::Error { code: None, message: format!("the link approval was refused: {why}") });
            // We are a device of that account now on the server: leave it.
            let req = Request::RemoveDevice(f::RemoveDevice { device_id: a.device_id, new_list: None });
            this.request(req, Pending::RemoveDevice { device_id: a.device_id, list: None }, now);
        };
        let identity = match open_approval(&a.approval, &a.account_key, &secret) {
            Ok(i) => i,
            Err(_) => return refuse(self, "it does not prove the primary scanned this code"),
        };
        let own_noise = StaticKey::from_private(&self.me.noise_private).map(|k| k.public()).unwrap_or_default();
        if identity.handle != a.handle
            || identity.device_id != a.device_id
            || identity.noise_key != own_noise
            || identity.identity_key != self.olm.identity_key()
            || identity.signing_key != self.olm.signing_key()
        {
            return refuse(self, "it names other keys than this device's");
        }
        let Some(signed) = a.list.clone() else { return refuse(self, "no device list") };
        let list = match tether_proto::device_list::verify(&a.account_key, &signed) {
            Ok(l) => l,
            Err(_) => return refuse(self, "the device list is not signed by the account"),
        };
        if !list.devices.iter().any(|d| d.device_id == a.device_id && d.identity_key == self.olm.identity_key().to_vec()) {
            return refuse(self, "the device list does not hold this device");
        }
        self.link = LinkFlow::Idle;
        self.me.role = Role::Companion { handle: a.handle.clone(), device_id: a.device_id, account_key: a.account_key.clone() };
        self.me.own_list = signed.encode_to_vec();
        self.save_me();
        self.upload_prekeys(now);
        self.events.push_back(Event::Linked { handle: a.handle, device_id: a.device_id });
    }

    /// Companion: logs out (the server forgets this device, then all local
    /// data is wiped). Primary: wipes local data only.
    pub fn logout(&mut self, now: u64) -> Result<(), Error> {
        match self.me.role.clone() {
            Role::Companion { device_id, .. } => {
                if self.is_open() {
                    let req = Request::RemoveDevice(f::RemoveDevice { device_id, new_list: None });
                    self.request(req, Pending::RemoveDevice { device_id, list: None }, now);
                } else {
                    return Err(Error::Invalid("connect first, so the server forgets this device".into()));
                }
            }
            Role::Primary { .. } => self.wipe("Logged out: this device's account data was deleted.".into()),
            Role::Unlinked { .. } => return Err(Error::NotRegistered),
        }
        self.finish();
        Ok(())
    }

    /// The ops a wipe leaves (for adapters that mirror the store).
    pub fn cleared(&self) -> bool {
        matches!(self.me.role, Role::Unlinked { .. })
    }
}
