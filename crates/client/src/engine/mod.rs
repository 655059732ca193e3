//! The engine: this device's state in parts that own their data, and the
//! protocol that moves between them. Sans-IO, in the style of quinn-proto.
//!
//! # Call order
//!
//! Inputs: `handle_connected` (the socket opened), `handle_message` (one
//! WebSocket binary message), `handle_disconnected`, `handle_timeout`, and
//! commands (`register`, `send_text`, `mark_read`, `start_link`,
//! `confirm_link`, …). After every input an adapter:
//!
//! 1. drains `poll_transmit` and sends each message, in order;
//! 2. drains `poll_event`;
//! 3. closes the socket if `poll_close` says so;
//! 4. arms a timer for `poll_timeout` and calls `handle_timeout` then.
//!
//! Every input persists its changes to the store before it returns, so no
//! frame is handed out for state that could be forgotten. An adapter whose
//! store writes are asynchronous (the extension) takes the writes first and
//! sends the frames only once they are durable.
//!
//! Time (`now`, ms since the Unix epoch) and randomness (the `Random` given
//! at open) come from outside. vodozemac and snow draw their own key
//! material from the OS generator (crypto.getRandomValues in the browser).
//!
//! # Parts
//!
//! [`Directory`] (contacts, pinned keys, verified device lists, the own
//! signed list), [`Chats`] (chats, messages in one order, read state,
//! owed notifications), [`Outbox`] (what the server has not accepted, in
//! send order), `Linking` (typed link states, registration), `Inbox`
//! (dedup, parked envelopes), `Requests` (what is in flight) and `Olm`
//! (sessions). The submodules here hold the protocol between them:
//! `connection` (handshake, frames, responses), `send`, `receive`,
//! `link`, `devices`, `recovery` (the phrase, restore) and `media` (files:
//! upload records in `Uploads`, tickets, the `File` message).

mod connection;
mod devices;
mod groups;
mod link;
mod media;
mod message_requests;
mod history;
mod messaging;
mod receive;
mod recovery;
mod send;
mod verify;

use crate::chats::Chats;
use crate::directory::{Account, Directory};
use crate::effects::Effects;
use crate::error::Error;
use crate::event::Event;
use crate::groups::Groups;
use crate::inbox::Inbox;
use crate::megolm::Megolm;
use crate::linking::Linking;
use crate::message_requests::MessageRequests;
use crate::model::{Chat, ChatMessage, Contact, Notification, Role, SelfState};
use crate::olm::{self, Olm};
use crate::outbox::Outbox;
use crate::uploads::Uploads;
use crate::requests::Requests;
use crate::store::{KvStore, Op, decode};
use crate::view::{ChatSummary, ContactSummary};
use std::collections::VecDeque;
use tether_proto::Fingerprint;
use tether_proto::device_list::PRIMARY_DEVICE;
use tether_proto::noise::{ExpectServerHello, Transport};

const NS_SELF: &str = "self";

/// One-time keys uploaded at a time.
const PREKEY_BATCH: usize = 50;
/// A socket message at least this often keeps the connection (and an MV3
/// service worker) alive.
pub const KEEPALIVE_MS: u64 = 20_000;
/// Blocked sends (no prekeys, no list, a server hiccup) are retried this often.
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

/// The socket's side of the engine.
struct Link {
    state: Conn,
    /// WebSocket messages to send, in order.
    transmit: VecDeque<Vec<u8>>,
    /// The engine wants the socket closed, and why.
    close: Option<String>,
    /// Last time anything was sent or received (for the keepalive).
    last_io_ms: u64,
    /// When to pump the outbox again after a transient failure.
    retry_at: Option<u64>,
    requests: Requests,
}

pub use groups::{GroupInfo, GroupMemberView};
pub use media::{FileInfo, Ticket};
pub use history::SEARCH_CANDIDATES;
pub use messaging::{NOTE_TO_SELF, SEARCH_LIMIT, timer_words};
pub(crate) use send::hex_to_bytes;
pub use recovery::RESTORED_ELSEWHERE;

pub struct Engine {
    store: Box<dyn KvStore>,
    rng: Box<dyn Random>,
    info: ClientInfo,
    me: SelfState,
    olm: Olm,
    directory: Directory,
    chats: Chats,
    /// Non-contacts' messages waiting for the user; blocked senders.
    msg_requests: MessageRequests,
    outbox: Outbox,
    /// Files being sent: blobs not wholly on the server yet.
    uploads: Uploads,
    /// Group states and this device's Megolm sessions.
    groups: Groups,
    megolm: Megolm,
    /// Group changes refused as `group_epoch_taken`: group → (the epoch
    /// this device held, the server's epoch, when to try again anyway).
    group_blocked: crate::sorted::Map<String, (u64, u64, u64)>,
    inbox: Inbox,
    linking: Linking,
    link: Link,
    /// Lazy history: what waits for a chat's messages, and chats to ask the host for.
    parked: history::ParkedQueue,
    wants: VecDeque<String>,
    /// Lazy history: history for a new companion, waiting for its chats to
    /// load (device id, link key, binding).
    history_job: Option<(u32, [u8; 32], Vec<u8>)>,
    /// Writes and events of the current input.
    fx: Effects,
}

impl Engine {
    /// Opens the engine over a store: loads this device (or creates a fresh,
    /// unlinked one with new keys).
    pub fn open(mut store: Box<dyn KvStore>, mut rng: Box<dyn Random>, info: ClientInfo) -> Result<Self, Error> {
        let me_rec = store.scan(NS_SELF).map_err(Error::Store)?;
        let (me, olm) = match me_rec.iter().find(|(k, _)| k == "me") {
            Some((_, bytes)) => {
                let me: SelfState = decode("device", bytes)?;
                let account = store.scan(olm::NS_OLM).map_err(Error::Store)?;
                let sessions = store.scan(olm::NS_SESSIONS).map_err(Error::Store)?;
                let olm = match account.first() {
                    Some((_, a)) => Olm::load(a, sessions).map_err(Error::Corrupt)?,
                    None => return Err(Error::Corrupt("the device's keys are missing".into())),
                };
                (me, olm)
            }
            None => {
                let (me, olm) = fresh_device(&mut *rng, None);
                let mut fx = Effects::default();
                fx.put(NS_SELF, "me", &me);
                fx.ops.push(olm.save_account());
                store.apply(&fx.ops).map_err(Error::Store)?;
                (me, olm)
            }
        };
        let mut engine = Self {
            directory: Directory::load(&*store)?,
            chats: Chats::load(&*store)?,
            msg_requests: MessageRequests::load(&*store)?,
            outbox: Outbox::load(&*store)?,
            uploads: Uploads::load(&*store)?,
            groups: Groups::load(&*store)?,
            megolm: Megolm::load(&*store)?,
            group_blocked: Default::default(),
            inbox: Inbox::load(&*store)?,
            parked: history::load_parked(&*store)?,
            wants: VecDeque::new(),
            history_job: None,
            linking: Linking::default(),
            link: Link { state: Conn::Closed, transmit: VecDeque::new(), close: None, last_io_ms: 0, retry_at: None, requests: Requests::default() },
            fx: Effects::default(),
            me,
            olm,
            store,
            rng,
            info,
        };
        engine.adopt_legacy_sessions()?;
        // Lazy history: the chats of files still being sent are asked for
        // at once (their uploads go on as soon as the socket is back).
        let uploading: Vec<String> = engine.uploads.all().map(|u| u.chat.clone()).collect();
        for chat in uploading {
            engine.resident(&chat);
        }
        let moved = engine.chats.migrate(&*engine.store, &mut engine.fx)?;
        if moved > 0 {
            let ops = std::mem::take(&mut engine.fx.ops);
            engine.store.apply(&ops).map_err(Error::Store)?;
        }
        engine.upgrade_standings()?;
        Ok(engine)
    }

    /// Sessions an older version kept by identity key alone go to the one
    /// verified device with that key (dropped if none or several list it).
    fn adopt_legacy_sessions(&mut self) -> Result<(), Error> {
        if !self.olm.has_legacy() {
            return Ok(());
        }
        let account = self.account();
        let mut handles: Vec<String> = self.directory.contacts().map(|c| c.handle.clone()).collect();
        handles.extend(account.as_ref().map(|a| a.handle.clone()));
        let mut owners: crate::sorted::Map<Vec<u8>, Vec<olm::Peer>> = crate::sorted::Map::new();
        for h in handles {
            for d in self.directory.devices(account.as_ref(), &h).unwrap_or_default() {
                owners.entry(d.identity_key.clone()).or_default().push(olm::Peer::new(&h, d.device_id, &d.identity_key));
            }
        }
        let mut ops = Vec::new();
        self.olm.adopt_legacy(|id| owners.get(id).filter(|v| v.len() == 1).map(|v| v[0].clone()), &mut ops);
        self.store.apply(&ops).map_err(Error::Store)
    }

    // ------------------------------------------------------------ parts

    /// Contacts, their keys and device lists.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Chats and messages.
    pub fn conversations(&self) -> &Chats {
        &self.chats
    }

    /// What the server has not accepted yet.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    // ------------------------------------------------------------ queries

    /// This device's role.
    pub fn role(&self) -> &Role {
        &self.me.role
    }

    /// The account handle, once registered or linked.
    pub fn handle(&self) -> Option<&str> {
        self.me.role.handle()
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
        self.directory.contacts()
    }

    pub fn contact(&self, handle: &str) -> Option<&Contact> {
        self.directory.contact(handle)
    }

    /// What the user (or their profile) calls a contact, else the handle.
    pub fn display_name(&self, handle: &str) -> String {
        self.group_name(handle).unwrap_or_else(|| self.directory.display_name(handle))
    }

    /// Chats, pinned first, then newest first.
    pub fn chats(&self) -> Vec<&Chat> {
        self.chats.ordered()
    }

    pub fn chat(&self, handle: &str) -> Option<&Chat> {
        self.chats.get(handle)
    }

    /// A chat's messages, oldest first.
    pub fn messages(&self, chat: &str) -> &[ChatMessage] {
        self.chats.messages(chat)
    }

    /// The chat list as a UI shows it: pinned first, then newest first.
    pub fn chat_list(&self) -> Vec<ChatSummary> {
        self.chats.ordered().into_iter().map(|c| self.summary(c)).collect()
    }

    fn summary(&self, c: &Chat) -> ChatSummary {
        ChatSummary {
            handle: c.handle.clone(),
            name: self.chat_name(&c.handle),
            unread: c.unread,
            last_ms: c.last_ms,
            last_preview: c.last_preview.clone(),
            muted: c.muted,
            archived: c.archived,
            pinned: c.pinned,
            group: crate::groups::group_of(&c.handle).is_some(),
            note_to_self: Some(c.handle.as_str()) == self.handle(),
            marked_unread: c.marked_unread,
            draft: c.draft.clone(),
            disappear_secs: c.disappear_secs,
            read_up_to_ms: c.read_up_to_ms,
        }
    }

    /// The chats this account last sent to, latest send first, up to `n`
    /// (not archived): what one-click sends offer (the context menu's
    /// chats; the first is "the last chat"). Receiving never changes it.
    pub fn recent_chats(&self, n: usize) -> Vec<ChatSummary> {
        self.chats.recent(n).into_iter().map(|c| self.summary(c)).collect()
    }

    /// Contacts sorted by display name (ignoring ASCII case; other letters
    /// by code point: Unicode case tables cost the wasm core ~7 KB), then
    /// handle.
    pub fn contact_list(&self) -> Vec<ContactSummary> {
        let mut v: Vec<_> = self
            .directory
            .contacts()
            .map(|c| ContactSummary { handle: c.handle.clone(), name: self.display_name(&c.handle), warning: c.warning.clone(), verified: c.verified })
            .collect();
        v.sort_by(|a, b| a.name.to_ascii_lowercase().cmp(&b.name.to_ascii_lowercase()).then(a.handle.cmp(&b.handle)));
        v
    }

    /// Unread messages over all chats that are not muted.
    pub fn unread_unmuted(&self) -> u32 {
        self.chats.unread_unmuted()
    }

    /// Notifications not yet reported shown, oldest first (show them on
    /// every wake; each has the message's id, so showing twice replaces).
    pub fn notifications_owed(&self) -> Vec<Notification> {
        self.chats.owed()
    }

    /// The adapter showed (or deliberately skipped) a notification.
    pub fn notification_shown(&mut self, id: &str) {
        self.chats.notification_shown(id, &mut self.fx);
        self.finish();
    }

    /// Messages not yet accepted by the server.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Whether the connection is up (handshake done).
    pub fn is_open(&self) -> bool {
        matches!(self.link.state, Conn::Open(_))
    }

    /// Work in flight or able to go on (an adapter that runs one command
    /// waits for none): a handshake under way, requests, parked envelopes,
    /// and outbox entries not held back by a safety warning (those wait for
    /// the user, not the server).
    pub fn busy(&self) -> bool {
        let movable = |o: &crate::model::OutboxEntry| {
            let mut to = o.to.iter().map(String::as_str).chain(self.groups.get(&o.group).into_iter().flat_map(|g| g.handles()));
            to.all(|h| self.directory.warning(h).is_none())
        };
        matches!(self.link.state, Conn::Handshake(_))
            || !self.link.requests.is_empty()
            || self.inbox.has_parked()
            || self.outbox.entries().any(movable)
    }

    // ------------------------------------------------------------ outputs

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.link.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.fx.events.pop_front()
    }

    /// The engine wants the socket closed (and says why).
    pub fn poll_close(&mut self) -> Option<String> {
        self.link.close.take()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        let keepalive = self.is_open().then_some(self.link.last_io_ms + KEEPALIVE_MS);
        [keepalive, self.link.retry_at, self.linking.flow.next_deadline(), self.chats.next_expiry()].into_iter().flatten().min()
    }

    // ---------------------------------------------------------- internals

    /// Persists the input's changes (before any of its frames leave).
    fn finish(&mut self) {
        self.evict();
        if self.fx.ops.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.fx.ops);
        if let Err(e) = self.store.apply(&ops) {
            // Nothing may leave that the store did not take.
            self.link.transmit.clear();
            self.fatal(format!("local storage failed: {e}"));
        }
    }

    fn fatal(&mut self, message: String) {
        self.link.state = Conn::Closed;
        self.link.close = Some(message.clone());
        self.fx.error(message);
    }

    fn online(&self) -> Result<(), Error> {
        if self.is_open() { Ok(()) } else { Err(Error::Offline) }
    }

    fn save_me(&mut self) {
        self.fx.put(NS_SELF, "me", &self.me);
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.rng.fill(&mut b);
        b
    }

    /// This account as the directory needs it.
    fn account(&self) -> Option<Account> {
        Some(Account { handle: self.handle()?.to_string(), key: self.me.role.account_public()? })
    }

    /// Forgets everything: a new unlinked device with fresh keys.
    fn wipe(&mut self, reason: String) {
        let (me, olm) = fresh_device(&mut *self.rng, Some(reason.clone()));
        self.me = me;
        self.olm = olm;
        self.directory.clear();
        self.chats.clear();
        self.parked.clear();
        self.wants.clear();
        self.history_job = None;
        self.msg_requests.clear();
        self.outbox = Outbox::default();
        self.uploads.clear();
        self.groups.clear();
        self.megolm.clear();
        self.group_blocked.clear();
        self.inbox.clear();
        self.linking = Linking::default();
        self.link.requests.clear();
        self.link.state = Conn::Closed;
        self.link.close = Some(reason.clone());
        self.fx.ops.clear();
        self.fx.ops.push(Op::Clear);
        self.save_me();
        self.standings_current();
        self.fx.ops.push(self.olm.save_account());
        self.fx.emit(Event::Unlinked { reason });
    }
}

/// A brand-new unlinked device: fresh Noise, Olm and link keys.
fn fresh_device(rng: &mut dyn Random, reason: Option<String>) -> (SelfState, Olm) {
    let mut noise = [0u8; 32];
    rng.fill(&mut noise);
    let mut link = [0u8; 32];
    rng.fill(&mut link);
    let me = SelfState { role: Role::Unlinked { reason }, server_url: String::new(), pin: None, noise_private: noise.to_vec(), link_secret_key: link.to_vec(), unconfirmed: false, entry_signed: false, history: None, device_names: Default::default() };
    (me, Olm::new())
}

fn days_ago(now: u64, days: u64) -> u64 {
    now.saturating_sub(days * DAY_MS)
}
