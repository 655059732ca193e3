//! The engine: one struct that owns this device's state and speaks the
//! protocol. Sans-IO, in the style of quinn-proto:
//!
//! - inputs: `handle_connected`, `handle_message` (a WebSocket binary
//!   message), `handle_disconnected`, `handle_timeout`, and commands
//!   (`register`, `send_text`, `mark_read`, `start_link`, `confirm_link`, …);
//! - outputs: `poll_transmit` (WebSocket messages to send, in order),
//!   `poll_event` (for the UI), `poll_timeout` (when to call
//!   `handle_timeout`), `poll_close` (the engine wants the socket closed).
//!
//! Call order for an adapter: after every input, drain `poll_transmit`
//! (send each), then `poll_event`, then arm a timer for `poll_timeout`.
//! Every input persists its changes to the store before returning, so a
//! frame is never sent for state that could be forgotten.
//!
//! Time (`now`, ms since the Unix epoch) and randomness (the `Random` given
//! at open) come from outside. vodozemac and snow draw their own key
//! material from the OS generator (crypto.getRandomValues in the browser).

use crate::model::*;
use crate::olm::Olm;
use crate::store::{KvStore, Op};
use crate::{Error, Event};
use prost::Message;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use tether_proto::ErrorCode;
use tether_proto::device_list::{AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, ClientHello, Request, ResponseBody, ServerBody};
use tether_proto::noise::{ClientHandshake, ExpectServerHello, StaticKey, Transport};
use tether_proto::{Fingerprint, normalize_handle};

pub(crate) const NS_SELF: &str = "self";
pub(crate) const NS_CONTACTS: &str = "contacts";
pub(crate) const NS_CHATS: &str = "chats";
pub(crate) const NS_MESSAGES: &str = "messages";
pub(crate) const NS_OUTBOX: &str = "outbox";
pub(crate) const NS_SEEN: &str = "seen";
pub(crate) const NS_NOTIFY: &str = "notify";

/// One-time keys uploaded at a time.
const PREKEY_BATCH: usize = 50;
/// A socket message at least this often keeps the connection (and an MV3
/// service worker) alive.
pub const KEEPALIVE_MS: u64 = 20_000;
/// Blocked sends (no prekeys, no list) are retried this often.
const RETRY_MS: u64 = 30_000;
/// History sent to a new companion.
pub const HISTORY_DAYS: u64 = 90;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// Randomness from the caller (OS generator, crypto.getRandomValues, or a
/// seeded generator in tests).
pub trait Random {
    fn fill(&mut self, buf: &mut [u8]);
}

/// How this client describes itself.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// e.g. "tether-cli 0.1.0"
    pub client_version: String,
    /// e.g. "cli/linux", "chrome/linux"
    pub platform: String,
    /// e.g. "Chrome on Linux"
    pub name: String,
}

/// The connection, as typed states.
enum Conn {
    Closed,
    /// Sent `e`; waiting for the server's key and hello.
    Handshake(ExpectServerHello),
    Open(Transport),
}

/// What a sent request was for.
#[derive(Debug)]
pub(crate) enum Pending {
    Register { handle: String, seed: [u8; 32], list: f::SignedDeviceList },
    List { handle: String },
    Claim { handle: String, device_id: u32 },
    Send { entry: String },
    SendHistory,
    Prekeys,
    Ack,
    Ping,
    Devices,
    LinkRefs,
    Approve { device_id: u32, list: f::SignedDeviceList, link_key: [u8; 32] },
    PairingPublish,
    PairingFetch { key: [u8; 32] },
    RemoveDevice { device_id: u32, list: Option<f::SignedDeviceList> },
    PublishList { list: f::SignedDeviceList },
}

pub struct Engine {
    pub(crate) store: Box<dyn KvStore>,
    pub(crate) rng: Box<dyn Random>,
    pub(crate) info: ClientInfo,
    pub(crate) me: SelfState,
    pub(crate) olm: Olm,
    pub(crate) contacts: BTreeMap<String, Contact>,
    pub(crate) chats: BTreeMap<String, Chat>,
    /// Per chat, ordered by time.
    pub(crate) messages: BTreeMap<String, Vec<ChatMessage>>,
    pub(crate) outbox: BTreeMap<String, OutboxEntry>,
    /// "sender/message id" of every envelope already applied.
    pub(crate) seen: HashSet<String>,
    /// Notifications owed to the user, by message id (persisted).
    pub(crate) notify: BTreeMap<String, Notification>,

    conn: Conn,
    transmit: VecDeque<Vec<u8>>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) close: Option<String>,
    next_id: u64,
    pub(crate) pending: HashMap<u64, Pending>,
    pub(crate) in_flight: HashSet<String>,
    pub(crate) lists_in_flight: HashSet<String>,
    pub(crate) claims_in_flight: HashSet<(String, u32)>,
    /// Envelopes waiting for their sender's device list.
    pub(crate) parked: Vec<f::Envelope>,
    /// Changes to persist at the end of the current input.
    pub(crate) ops: Vec<Op>,
    pub(crate) last_io_ms: u64,
    pub(crate) retry_at: Option<u64>,
    /// Registration waiting for the connection.
    pub(crate) registering: Option<(String, [u8; 32])>,
    /// Companion linking flow (link.rs).
    pub(crate) link: crate::link::LinkFlow,
    /// Primary: a link request awaiting the user's confirmation.
    pub(crate) link_request: Option<tether_proto::link::LinkPayload>,
    /// Sends that failed with `device_list_changed` and the lists they got,
    /// to spot a server that demands devices no signed list contains.
    pub(crate) stale_lists: HashMap<String, Vec<u8>>,
    /// Registration token for servers that need one.
    pub(crate) token: Option<String>,
}

fn decode_json<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn put<T: serde::Serialize>(ns: &'static str, key: &str, value: &T) -> Op {
    Op::Put { ns, key: key.to_string(), value: serde_json::to_vec(value).expect("records encode") }
}

impl Engine {
    /// Opens the engine over a store: loads this device (or creates a fresh,
    /// unlinked one with new keys).
    pub fn open(mut store: Box<dyn KvStore>, mut rng: Box<dyn Random>, info: ClientInfo) -> Result<Self, Error> {
        let s = |e: String| Error::Store(e);
        let me_rec = store.scan(NS_SELF).map_err(s)?;
        let (me, olm) = match me_rec.first() {
            Some((_, bytes)) => {
                let me: SelfState = decode_json("device", bytes)?;
                let account = store.scan(crate::olm::NS_OLM).map_err(s)?;
                let sessions = store.scan(crate::olm::NS_SESSIONS).map_err(s)?;
                let olm = match account.first() {
                    Some((_, a)) => Olm::load(a, sessions).map_err(Error::Corrupt)?,
                    None => return Err(Error::Corrupt("the device's keys are missing".into())),
                };
                (me, olm)
            }
            None => {
                let (me, olm) = fresh_device(&mut *rng, &info, None);
                store
                    .apply(&[put(NS_SELF, "me", &me), olm.save_account()])
                    .map_err(s)?;
                (me, olm)
            }
        };
        let mut engine = Self {
            me,
            olm,
            contacts: BTreeMap::new(),
            chats: BTreeMap::new(),
            messages: BTreeMap::new(),
            outbox: BTreeMap::new(),
            seen: HashSet::new(),
            notify: BTreeMap::new(),
            conn: Conn::Closed,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            close: None,
            next_id: 1,
            pending: HashMap::new(),
            in_flight: HashSet::new(),
            lists_in_flight: HashSet::new(),
            claims_in_flight: HashSet::new(),
            parked: Vec::new(),
            ops: Vec::new(),
            last_io_ms: 0,
            retry_at: None,
            registering: None,
            link: crate::link::LinkFlow::Idle,
            link_request: None,
            stale_lists: HashMap::new(),
            token: None,
            store,
            rng,
            info,
        };
        engine.load()?;
        Ok(engine)
    }

    fn load(&mut self) -> Result<(), Error> {
        let s = |e: String| Error::Store(e);
        for (_, v) in self.store.scan(NS_CONTACTS).map_err(s)? {
            let c: Contact = decode_json("contact", &v)?;
            self.contacts.insert(c.handle.clone(), c);
        }
        for (_, v) in self.store.scan(NS_CHATS).map_err(s)? {
            let c: Chat = decode_json("chat", &v)?;
            self.chats.insert(c.handle.clone(), c);
        }
        for (_, v) in self.store.scan(NS_MESSAGES).map_err(s)? {
            let m: ChatMessage = decode_json("message", &v)?;
            self.messages.entry(m.chat.clone()).or_default().push(m);
        }
        for list in self.messages.values_mut() {
            list.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
        }
        for (_, v) in self.store.scan(NS_OUTBOX).map_err(s)? {
            let o: OutboxEntry = decode_json("outbox", &v)?;
            self.outbox.insert(o.id.clone(), o);
        }
        for (_, v) in self.store.scan(NS_NOTIFY).map_err(s)? {
            let n: Notification = decode_json("notification", &v)?;
            self.notify.insert(n.id.clone(), n);
        }
        for (k, _) in self.store.scan(NS_SEEN).map_err(s)? {
            self.seen.insert(k);
        }
        Ok(())
    }

    // ------------------------------------------------------------ queries

    /// This device's role.
    pub fn role(&self) -> &Role {
        &self.me.role
    }

    /// The account handle, once registered or linked.
    pub fn handle(&self) -> Option<&str> {
        match &self.me.role {
            Role::Primary { handle, .. } | Role::Companion { handle, .. } => Some(handle),
            Role::Unlinked { .. } => None,
        }
    }

    pub fn device_id(&self) -> Option<u32> {
        match &self.me.role {
            Role::Primary { .. } => Some(PRIMARY_DEVICE),
            Role::Companion { device_id, .. } => Some(*device_id),
            Role::Unlinked { .. } => None,
        }
    }

    pub fn server_url(&self) -> &str {
        &self.me.server_url
    }

    /// The pinned server fingerprint, once known.
    pub fn server_fingerprint(&self) -> Option<Fingerprint> {
        self.me.pin.as_deref().and_then(Fingerprint::parse)
    }

    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values()
    }

    pub fn contact(&self, handle: &str) -> Option<&Contact> {
        self.contacts.get(handle)
    }

    /// Chats, pinned first, then newest first.
    pub fn chats(&self) -> Vec<&Chat> {
        let mut v: Vec<&Chat> = self.chats.values().collect();
        v.sort_by(|a, b| b.pinned.cmp(&a.pinned).then(b.last_ms.cmp(&a.last_ms)).then(a.handle.cmp(&b.handle)));
        v
    }

    pub fn chat(&self, handle: &str) -> Option<&Chat> {
        self.chats.get(handle)
    }

    /// A chat's messages, oldest first.
    pub fn messages(&self, chat: &str) -> &[ChatMessage] {
        self.messages.get(chat).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A contact's display name: what the user (or their profile) calls
    /// them, else the handle.
    pub fn display_name(&self, handle: &str) -> String {
        self.contacts.get(handle).map(|c| c.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| handle.to_string())
    }

    /// The chat list as a UI shows it: pinned first, then newest first.
    pub fn chat_list(&self) -> Vec<crate::view::ChatSummary> {
        self.chats()
            .into_iter()
            .map(|c| crate::view::ChatSummary {
                handle: c.handle.clone(),
                name: self.display_name(&c.handle),
                unread: c.unread,
                last_ms: c.last_ms,
                last_preview: c.last_preview.clone(),
                muted: c.muted,
                archived: c.archived,
                pinned: c.pinned,
            })
            .collect()
    }

    /// Contacts sorted by display name (case-insensitive), then handle.
    pub fn contact_list(&self) -> Vec<crate::view::ContactSummary> {
        let mut v: Vec<_> = self
            .contacts
            .values()
            .map(|c| crate::view::ContactSummary { handle: c.handle.clone(), name: self.display_name(&c.handle), warning: c.warning.clone() })
            .collect();
        v.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.handle.cmp(&b.handle)));
        v
    }

    /// Notifications not yet reported shown, oldest first (show them on
    /// every wake; each has the message's id, so showing twice replaces).
    pub fn notifications_owed(&self) -> Vec<Notification> {
        let mut v: Vec<Notification> = self.notify.values().cloned().collect();
        v.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
        v
    }

    /// The adapter showed (or deliberately skipped) a notification.
    pub fn notification_shown(&mut self, id: &str) {
        if self.notify.remove(id).is_some() {
            self.ops.push(Op::Delete { ns: NS_NOTIFY, key: id.to_string() });
        }
        self.finish();
    }

    /// Unread messages over all chats that are not muted.
    pub fn unread_unmuted(&self) -> u32 {
        self.chats.values().filter(|c| !c.muted).map(|c| c.unread).sum()
    }

    /// Messages not yet accepted by the server.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Whether the connection is up (handshake done).
    pub fn is_open(&self) -> bool {
        matches!(self.conn, Conn::Open(_))
    }

    /// Requests in flight (an adapter that runs one command waits for 0).
    pub fn busy(&self) -> bool {
        !self.pending.is_empty() || !self.outbox.is_empty() || !self.parked.is_empty()
    }

    // ------------------------------------------------------------ outputs

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The engine wants the socket closed (and says why).
    pub fn poll_close(&mut self) -> Option<String> {
        self.close.take()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t: Option<u64> = None;
        let mut min = |v: u64| t = Some(t.map_or(v, |x| x.min(v)));
        if self.is_open() {
            min(self.last_io_ms + KEEPALIVE_MS);
        }
        if let Some(r) = self.retry_at {
            min(r);
        }
        if let Some(e) = self.link.next_deadline() {
            min(e);
        }
        t
    }

    // ------------------------------------------------------------- inputs

    /// The socket is open: start the Noise handshake.
    pub fn handle_connected(&mut self, now: u64) {
        let key = match StaticKey::from_private(&self.me.noise_private) {
            Ok(k) => k,
            Err(e) => return self.fatal(format!("this device's key is unreadable: {e}")),
        };
        let pin = self.server_fingerprint();
        match ClientHandshake::start(&key, pin) {
            Ok((state, m1)) => {
                self.transmit.push_back(m1);
                self.conn = Conn::Handshake(state);
                self.last_io_ms = now;
            }
            Err(e) => self.fatal(e.to_string()),
        }
    }

    /// The socket closed.
    pub fn handle_disconnected(&mut self, now: u64, reason: &str) {
        let _ = now;
        self.conn = Conn::Closed;
        self.pending.clear();
        self.in_flight.clear();
        self.lists_in_flight.clear();
        self.claims_in_flight.clear();
        self.parked.clear();
        self.events.push_back(Event::Disconnected { reason: reason.to_string() });
    }

    /// One WebSocket binary message from the server.
    pub fn handle_message(&mut self, bytes: &[u8], now: u64) {
        self.last_io_ms = self.last_io_ms.max(now);
        match std::mem::replace(&mut self.conn, Conn::Closed) {
            Conn::Closed => {}
            Conn::Handshake(state) => match state.handle(bytes) {
                Ok(verified) => {
                    let first_contact = self.me.pin.is_none();
                    if first_contact {
                        self.me.pin = Some(verified.server.to_hex());
                        self.save_me();
                    }
                    let hello = ClientHello { client_version: self.info.client_version.clone() };
                    match verified.finish(&hello) {
                        Ok((transport, m3)) => {
                            self.transmit.push_back(m3);
                            self.conn = Conn::Open(transport);
                            self.events.push_back(Event::Connected { fingerprint: self.me.pin.clone().unwrap_or_default() });
                            self.on_open(now);
                        }
                        Err(e) => self.fatal(e.to_string()),
                    }
                }
                Err(e) => self.fatal(e.to_string()),
            },
            Conn::Open(mut transport) => {
                let plain = transport.decrypt(bytes);
                self.conn = Conn::Open(transport);
                match plain.map_err(Error::from).and_then(|p| decode_server_frame(&p)) {
                    Ok(ServerBody::Response(r)) => self.on_response(r, now),
                    Ok(ServerBody::Event(e)) => {
                        if let Some(body) = e.body {
                            self.on_event(body, now);
                        }
                    }
                    Err(e) => self.fatal(format!("the server sent an unreadable frame: {e}")),
                }
            }
        }
        self.finish();
    }

    /// Time passed: keepalive, link code rotation, retries.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.is_open() && now >= self.last_io_ms + KEEPALIVE_MS {
            self.request(Request::Ping(f::Ping {}), Pending::Ping, now);
        }
        if self.retry_at.is_some_and(|r| now >= r) {
            self.retry_at = None;
            self.pump(now);
        }
        self.link_timeout(now);
        self.finish();
    }

    // ---------------------------------------------------------- internals

    /// Persists the input's changes (before any of its frames leave).
    pub(crate) fn finish(&mut self) {
        if self.ops.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.ops);
        if let Err(e) = self.store.apply(&ops) {
            // Nothing may leave that the store did not take.
            self.transmit.clear();
            self.fatal(format!("local storage failed: {e}"));
        }
    }

    pub(crate) fn fatal(&mut self, message: String) {
        self.conn = Conn::Closed;
        self.close = Some(message.clone());
        self.events.push_back(Event::Error { code: None, message });
    }

    pub(crate) fn online(&self) -> Result<(), Error> {
        if self.is_open() { Ok(()) } else { Err(Error::Offline) }
    }

    pub(crate) fn save_me(&mut self) {
        self.ops.push(put(NS_SELF, "me", &self.me));
    }

    pub(crate) fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.rng.fill(&mut b);
        b
    }

    /// Sends a request (if the connection is open) and remembers why.
    pub(crate) fn request(&mut self, req: Request, why: Pending, now: u64) -> bool {
        let Conn::Open(transport) = &mut self.conn else { return false };
        let id = self.next_id;
        self.next_id += 1;
        let frame = f::ClientFrame { id, request: Some(req) }.encode_to_vec();
        match transport.encrypt(&frame) {
            Ok(msg) => {
                self.transmit.push_back(msg);
                self.pending.insert(id, why);
                self.last_io_ms = now;
                true
            }
            Err(e) => {
                self.events.push_back(Event::Error { code: None, message: format!("a request was too large to send: {e}") });
                false
            }
        }
    }

    fn on_open(&mut self, now: u64) {
        if let Some((handle, seed)) = self.registering.clone() {
            self.send_register(&handle, seed, now);
            return;
        }
        if self.link.wants_refs() {
            self.request(Request::RequestLinkRefs(f::RequestLinkRefs {}), Pending::LinkRefs, now);
            return;
        }
        if self.handle().is_some() {
            // Refresh the own list (devices may have come or gone), and
            // fetch the lists of contacts added while offline.
            if let Some(h) = self.handle().map(str::to_string) {
                self.need_list(&h, now);
            }
            let missing: Vec<String> =
                self.contacts.values().filter(|c| c.list.is_empty() && c.warning.is_none()).map(|c| c.handle.clone()).collect();
            for h in missing {
                self.need_list(&h, now);
            }
            self.pump(now);
        }
    }

    fn on_response(&mut self, r: f::Response, now: u64) {
        let Some(why) = self.pending.remove(&r.id) else { return };
        match (why, r.error, r.body) {
            (why, Some(err), _) => self.on_failure(why, err, now),
            (why, None, Some(body)) => self.on_success(why, body, now),
            (_, None, None) => {}
        }
    }

    fn on_failure(&mut self, why: Pending, err: f::ErrorInfo, now: u64) {
        let code = ErrorCode::parse(&err.code);
        match why {
            Pending::Send { entry } => {
                self.in_flight.remove(&entry);
                if code == Some(ErrorCode::DeviceListChanged) {
                    for reply in err.device_lists {
                        let handle = reply.handle.clone();
                        let before = self.stale_lists.insert(handle.clone(), reply.encode_to_vec());
                        if before.as_deref() == Some(reply.encode_to_vec().as_slice()) {
                            // The same list twice: the server wants devices
                            // the signed list does not give us. Refuse.
                            let warning = "the server asks to encrypt to devices that this account's signed list does not contain; messages to it are held back";
                            self.warn(&handle, warning.into());
                            if Some(handle.as_str()) == self.handle() {
                                // Our own list: nothing to hold back for; give up on this one.
                                self.fail_entry(&entry);
                                return;
                            }
                        } else {
                            self.apply_list_reply(&handle, reply, now);
                        }
                    }
                    self.pump(now);
                } else if matches!(
                    code,
                    Some(ErrorCode::Internal | ErrorCode::GoingAway | ErrorCode::RateLimited | ErrorCode::ServerBusy) | None
                ) {
                    // Not the message's fault: it stays in the outbox and goes again.
                    self.retry_at = Some(now + RETRY_MS);
                } else {
                    self.events.push_back(Event::Error { code, message: err.message.clone() });
                    self.fail_entry(&entry);
                }
            }
            Pending::Claim { handle, device_id } => {
                self.claims_in_flight.remove(&(handle.clone(), device_id));
                self.retry_at = Some(now + RETRY_MS);
                self.events.push_back(Event::Error {
                    code,
                    message: format!("{handle} (device {device_id}) cannot be reached yet: {}", err.message),
                });
            }
            Pending::List { handle } => {
                self.lists_in_flight.remove(&handle);
                if code == Some(ErrorCode::UnknownAccount) {
                    if let Some(c) = self.contacts.get_mut(&handle) {
                        c.warning = Some("no account has this handle on the server".into());
                        let c = c.clone();
                        self.ops.push(put(NS_CONTACTS, &c.handle, &c));
                        self.events.push_back(Event::ContactChanged { contact: c });
                    }
                    let stuck: Vec<String> = self.outbox.values().filter(|o| o.to.contains(&handle)).map(|o| o.id.clone()).collect();
                    for id in stuck {
                        self.fail_entry(&id);
                    }
                }
                self.events.push_back(Event::Error { code, message: format!("{handle}: {}", err.message) });
            }
            Pending::Register { .. } => {
                self.registering = None;
                self.events.push_back(Event::Error { code, message: err.message });
                self.close = Some("registration failed".into());
            }
            Pending::Approve { .. } | Pending::PairingFetch { .. } | Pending::RemoveDevice { .. } | Pending::PublishList { .. } => {
                self.events.push_back(Event::Error { code, message: err.message });
            }
            Pending::LinkRefs | Pending::PairingPublish => {
                self.events.push_back(Event::Error { code, message: err.message });
                self.close = Some("linking failed".into());
            }
            Pending::Ack | Pending::Ping | Pending::Prekeys | Pending::Devices | Pending::SendHistory => {
                self.events.push_back(Event::Error { code, message: err.message });
            }
        }
    }

    fn on_success(&mut self, why: Pending, body: ResponseBody, now: u64) {
        match (why, body) {
            (Pending::Register { handle, seed, list }, ResponseBody::Registered(_)) => {
                self.registering = None;
                self.me.role = Role::Primary { handle: handle.clone(), account_seed: seed.to_vec() };
                self.me.own_list = list.encode_to_vec();
                self.me.next_device = 1;
                self.save_me();
                self.upload_prekeys(now);
                self.events.push_back(Event::Registered { handle, fingerprint: self.me.pin.clone().unwrap_or_default() });
            }
            (Pending::List { handle }, ResponseBody::DeviceList(reply)) => {
                self.lists_in_flight.remove(&handle);
                self.apply_list_reply(&handle, reply, now);
                self.unpark(now);
                self.pump(now);
            }
            (Pending::Claim { handle, device_id }, ResponseBody::Prekey(bundle)) => {
                self.claims_in_flight.remove(&(handle.clone(), device_id));
                if let (Some(identity), Some(key)) = (self.identity_of(&handle, device_id), bundle.key) {
                    let mut ops = Vec::new();
                    if let Err(e) = self.olm.start_session(&identity, &key.key, &mut ops) {
                        self.events.push_back(Event::Error { code: None, message: e.0 });
                    }
                    self.ops.extend(ops);
                    self.ops.push(self.olm.save_account());
                }
                self.pump(now);
            }
            (Pending::Send { entry }, ResponseBody::Sent(_)) => {
                self.in_flight.remove(&entry);
                self.stale_lists.clear();
                if let Some(o) = self.outbox.remove(&entry) {
                    self.ops.push(Op::Delete { ns: NS_OUTBOX, key: o.id.clone() });
                    self.set_status(&o.id, Status::Sent);
                    self.events.push_back(Event::Sent { id: o.id });
                }
            }
            (Pending::Devices, ResponseBody::Devices(list)) => {
                let devices = list
                    .devices
                    .into_iter()
                    .map(|d| DeviceSummary {
                        device_id: d.device_id,
                        platform: d.platform,
                        name: d.name,
                        linked_at_ms: d.linked_at_ms,
                        last_active_ms: d.last_active_ms,
                        current: d.current,
                    })
                    .collect();
                self.events.push_back(Event::Devices { devices });
            }
            (why, body) => self.link_success(why, body, now),
        }
    }

    fn on_event(&mut self, body: f::EventBody, now: u64) {
        match body {
            f::EventBody::Envelope(e) => self.on_envelope(e, now),
            f::EventBody::PrekeysLow(_) => self.upload_prekeys(now),
            f::EventBody::DeviceListUpdated(u) => {
                if Some(u.handle.as_str()) == self.handle() {
                    self.need_list(&u.handle, now);
                }
            }
            f::EventBody::Closing(info) => {
                if ErrorCode::parse(&info.code) == Some(ErrorCode::DeviceRemoved) {
                    let reason = match &self.me.role {
                        Role::Companion { .. } => "This device was logged out from your primary device (or logged itself out).",
                        _ => "This device was removed from its account.",
                    };
                    self.wipe(reason.to_string());
                } else {
                    self.close = Some(info.message);
                }
            }
            other => self.link_event(other, now),
        }
    }

    /// Forgets everything: a new unlinked device with fresh keys.
    pub(crate) fn wipe(&mut self, reason: String) {
        let (me, olm) = fresh_device(&mut *self.rng, &self.info, Some(reason.clone()));
        self.me = me;
        self.olm = olm;
        self.contacts.clear();
        self.chats.clear();
        self.messages.clear();
        self.outbox.clear();
        self.seen.clear();
        self.notify.clear();
        self.pending.clear();
        self.parked.clear();
        self.link = crate::link::LinkFlow::Idle;
        self.ops.clear();
        self.ops.push(Op::Clear);
        self.ops.push(put(NS_SELF, "me", &self.me));
        self.ops.push(self.olm.save_account());
        self.conn = Conn::Closed;
        self.close = Some(reason.clone());
        self.events.push_back(Event::Unlinked { reason });
    }

    // ------------------------------------------------------------ commands

    /// Registers this device as the primary of a new account. Connect (or
    /// reconnect) afterwards; `Event::Registered` follows.
    pub fn register(&mut self, handle: &str, server_url: &str, now: u64) -> Result<(), Error> {
        if let Some(h) = self.handle() {
            return Err(Error::AlreadyRegistered(h.to_string()));
        }
        let handle = normalize_handle(handle)?;
        self.me.server_url = server_url.to_string();
        self.save_me();
        let seed = self.random::<32>();
        self.registering = Some((handle.clone(), seed));
        if self.is_open() {
            self.send_register(&handle, seed, now);
        }
        self.finish();
        Ok(())
    }

    fn send_register(&mut self, handle: &str, seed: [u8; 32], now: u64) {
        let key = AccountKey::from_seed(&seed);
        let list = f::DeviceList {
            handle: handle.to_string(),
            version: 1,
            devices: vec![self.own_entry(PRIMARY_DEVICE, now)],
            issued_at_ms: now,
        };
        let signed = key.sign(&list);
        let req = Request::Register(f::Register {
            handle: handle.to_string(),
            account_key: key.public().to_vec(),
            device_list: Some(signed.clone()),
            token: self.token.clone().unwrap_or_default(),
        });
        self.request(req, Pending::Register { handle: handle.to_string(), seed, list: signed }, now);
    }

    /// Registers with a registration token (servers with `--registration token`).
    pub fn register_with_token(&mut self, handle: &str, server_url: &str, token: &str, now: u64) -> Result<(), Error> {
        self.token = Some(token.to_string());
        self.register(handle, server_url, now)
    }

    pub(crate) fn own_entry(&self, device_id: u32, now: u64) -> f::DeviceEntry {
        let key = StaticKey::from_private(&self.me.noise_private).expect("own key");
        f::DeviceEntry {
            device_id,
            noise_key: key.public().to_vec(),
            identity_key: self.olm.identity_key().to_vec(),
            signing_key: self.olm.signing_key().to_vec(),
            platform: self.info.platform.clone(),
            name: self.info.name.clone(),
            linked_at_ms: now,
        }
    }

    pub(crate) fn upload_prekeys(&mut self, now: u64) {
        let (otks, fallback) = self.olm.new_prekeys(PREKEY_BATCH);
        let base = now; // key ids only need to be unique per device
        let req = Request::UploadPrekeys(f::UploadPrekeys {
            one_time_keys: otks.iter().enumerate().map(|(i, k)| f::OneTimeKey { key_id: base + i as u64, key: k.to_vec() }).collect(),
            fallback: fallback.map(|k| f::OneTimeKey { key_id: base + PREKEY_BATCH as u64, key: k.to_vec() }),
        });
        self.ops.push(self.olm.save_account());
        self.request(req, Pending::Prekeys, now);
    }

    /// Adds (or renames) a contact; its device list is fetched and its
    /// account key pinned.
    pub fn add_contact(&mut self, handle: &str, name: &str, now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        let handle = normalize_handle(handle)?;
        let c = self.contacts.entry(handle.clone()).or_insert_with(|| Contact { handle: handle.clone(), ..Default::default() });
        if !name.is_empty() {
            c.name = name.to_string();
        }
        let c = c.clone();
        self.ops.push(put(NS_CONTACTS, &handle, &c));
        self.events.push_back(Event::ContactChanged { contact: c });
        self.need_list(&handle, now);
        self.finish();
        Ok(())
    }

    /// Accepts a contact's new account key after the user checked it.
    pub fn trust_contact(&mut self, handle: &str, now: u64) -> Result<(), Error> {
        let c = self.contacts.get_mut(handle).ok_or_else(|| Error::UnknownContact(handle.into()))?;
        c.account_key.clear();
        c.list.clear();
        c.warning = None;
        let c = c.clone();
        self.ops.push(put(NS_CONTACTS, handle, &c));
        self.need_list(handle, now);
        self.finish();
        Ok(())
    }

    /// Asks the server for this account's devices; `Event::Devices` follows.
    pub fn request_devices(&mut self, now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        self.online()?;
        self.request(Request::ListDevices(f::ListDevices {}), Pending::Devices, now);
        self.finish();
        Ok(())
    }
}

/// A brand-new unlinked device: fresh Noise, Olm and link keys.
fn fresh_device(rng: &mut dyn Random, info: &ClientInfo, reason: Option<String>) -> (SelfState, Olm) {
    let mut noise = [0u8; 32];
    rng.fill(&mut noise);
    let mut link = [0u8; 32];
    rng.fill(&mut link);
    let me = SelfState {
        role: Role::Unlinked { reason },
        server_url: String::new(),
        pin: None,
        noise_private: noise.to_vec(),
        link_secret_key: link.to_vec(),
        platform: info.platform.clone(),
        name: info.name.clone(),
        own_list: Vec::new(),
        own_removed: Vec::new(),
        next_device: 1,
        display_name: String::new(),
    };
    (me, Olm::new())
}

/// The body of a decrypted server frame.
fn decode_server_frame(plain: &[u8]) -> Result<ServerBody, Error> {
    f::ServerFrame::decode(plain)
        .map_err(|e| Error::Proto(e.into()))?
        .body
        .ok_or_else(|| Error::Invalid("empty server frame".into()))
}

pub(crate) fn days_ago(now: u64, days: u64) -> u64 {
    now.saturating_sub(days * DAY_MS)
}
