//! The core's driver: the engine, the socket, timers and the host, run as
//! one serial queue of inputs.
//!
//! Every input (a socket event, a timer, a command from the worker) waits
//! its turn in [`Shared::queue`]; one task takes them one at a time. After
//! each input the pump runs, in this order:
//!
//! 1. take the store's writes and await the host's `persist(writes)`;
//!    then read the history chats the engine asked for (`poll_want`) and
//!    hand them over (`load_chat`), and go back to 1: what loading them
//!    wrote is persisted before anything leaves;
//! 2. only then hand the frames the engine produced to the socket;
//! 3. react to the engine's events ([`State::react`], an exhaustive match:
//!    a new event cannot be left unhandled), then show owed notifications
//!    and report them shown, and clear the ones of chats read elsewhere
//!    (their writes go round again from 1);
//! 4. close the socket if the engine asks, arm the engine's timer, and
//!    publish an [`Update`] when something changed.
//!
//! So a frame never leaves for state a worker stop could forget, and an
//! envelope is acknowledged only after its message is stored.

use crate::backoff::Backoff;
use crate::host::Host;
use crate::media::{self, Transfer};
use crate::primary::{LinkAsk, LinkProgress, PrimaryView};
use crate::settings::{DEVICE_NAME_MAX, Settings, clean_server, ws_url};
use crate::snapshot::{self, Connection, LinkView, Local, RequestAction, Snapshot, Update};
use crate::socket::{Socket, SocketEvent};
use crate::store::{MirrorStore, Writes};
use crate::timer::Timer;
use js_sys::{Function, Promise};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use tether_client::sorted::{Map, Set};
use std::rc::{Rc, Weak};
use tether_client::{ChatFlag, ClientInfo, Engine, Event, LinkPreview, Notification, Random, Role};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// A command from the worker: runs against the state in its turn.
pub type Command = Box<dyn FnOnce(&Rc<Shared>, &mut State, u64) -> Result<JsValue, String>>;

/// One input, queued.
pub enum Input {
    /// From the socket of that generation (older sockets' events are stale).
    Socket(u32, SocketEvent),
    /// The engine's timer fired.
    Timeout,
    /// The backoff delay passed.
    Reconnect,
    /// A command about this chat follows: have its messages loaded first
    /// (the pump reads them; see `chat_command`).
    Load(String),
    Command(Command),
}

struct Job {
    input: Input,
    /// The promise of a command (resolve, reject).
    done: Option<(Function, Function)>,
}

/// What the pump still has to do with the host after the engine's events.
#[derive(Default)]
struct Effects {
    /// Chats whose shown notifications go (`None`: all).
    clear: Vec<Option<String>>,
    /// Owed notifications to show, by id (so one shows once per pump).
    notify: Map<String, Notification>,
    /// File transfers for the worker to start or stop, in order.
    transfers: Vec<Transfer>,
    /// Files to fetch as they arrive (chat, message id): asked for once
    /// their chat is loaded.
    fetch: Vec<(String, String)>,
    /// Upload orders whose message's chat must be loaded first (chat, id, key, ticket).
    uploads: Vec<(String, String, String, tether_client::Ticket)>,
}

impl Effects {
    fn is_empty(&self) -> bool {
        self.clear.is_empty() && self.notify.is_empty() && self.transfers.is_empty() && self.fetch.is_empty() && self.uploads.is_empty()
    }
}

/// Everything the core holds; only the queue's task mutates it.
pub struct State {
    pub engine: Engine,
    pub store: MirrorStore,
    pub settings: Settings,
    /// Settings changed and are not persisted yet.
    pub(crate) settings_dirty: bool,
    /// The platform id this device reports (`chrome/linux`).
    platform: String,
    /// The link code on show, or asked for (companion linking).
    pub link: Option<LinkView>,
    /// A primary's link requests, progress and devices (the web app).
    pub primary: PrimaryView,
    pub connection: Connection,
    pub error: Option<String>,
    socket: Option<Socket>,
    /// Counts sockets, so events of a replaced one are ignored.
    generation: u32,
    backoff: Backoff,
    reconnect: Option<Timer>,
    /// The engine's timer and when it fires.
    timer: Option<(u64, Timer)>,
    effects: Effects,
    /// Chats whose messages changed since the last update.
    changed: Set<String>,
    /// Something the snapshot shows changed since the last update.
    dirty: bool,
    /// Frames handed to the socket (tests check them against persists).
    pub frames_sent: u64,
    /// The chat of each file message seen being sent or fetched (message id
    /// → chat): commands on a file load its chat first (lazy history).
    pub file_chats: Map<String, String>,
}

/// The state and its queue, shared by the exported `Core`, the socket's
/// callbacks and the timers.
pub struct Shared {
    pub state: RefCell<State>,
    queue: RefCell<VecDeque<Job>>,
    /// The queue's task is running.
    running: Cell<bool>,
    pub host: Box<dyn Host>,
}

struct BrowserRandom;
impl Random for BrowserRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        crate::fill_random(buf);
    }
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

impl Shared {
    /// Opens the engine over a loaded store.
    pub fn open(host: Box<dyn Host>, store: MirrorStore, platform: &str, settings: Settings) -> Result<Rc<Shared>, String> {
        let engine = open_engine(&store, platform, &settings.device_name)?;
        let state = State {
            engine,
            store,
            settings,
            settings_dirty: false,
            platform: platform.to_string(),
            link: None,
            primary: PrimaryView::default(),
            connection: Connection::Offline,
            error: None,
            socket: None,
            generation: 0,
            backoff: Backoff::default(),
            reconnect: None,
            timer: None,
            effects: Effects::default(),
            changed: Set::new(),
            dirty: true,
            frames_sent: 0,
            file_chats: Map::new(),
        };
        Ok(Rc::new(Shared { state: RefCell::new(state), queue: RefCell::new(VecDeque::new()), running: Cell::new(false), host }))
    }
}

fn open_engine(store: &MirrorStore, platform: &str, name: &str) -> Result<Engine, String> {
    let info = ClientInfo {
        client_version: format!("tether-extension {}", tether_client::VERSION),
        platform: platform.to_string(),
        name: name.to_string(),
    };
    Engine::open(Box::new(store.clone()), Box::new(BrowserRandom), info).map_err(|e| e.to_string())
}

/// Queues an input; starts the queue's task if it is idle.
pub fn enqueue(shared: &Rc<Shared>, input: Input, done: Option<(Function, Function)>) {
    shared.queue.borrow_mut().push_back(Job { input, done });
    if !shared.running.replace(true) {
        wasm_bindgen_futures::spawn_local(drive(shared.clone()));
    }
}

/// Queues a command; the promise settles once its writes are persisted and
/// its frames sent.
pub fn command(shared: &Rc<Shared>, f: impl FnOnce(&Rc<Shared>, &mut State, u64) -> Result<JsValue, String> + 'static) -> Promise {
    queue_command(shared, Box::new(f))
}

fn queue_command(shared: &Rc<Shared>, f: Command) -> Promise {
    let mut f = Some(f);
    Promise::new(&mut |resolve, reject| {
        if let Some(f) = f.take() {
            enqueue(shared, Input::Command(f), Some((resolve, reject)));
        }
    })
}

/// The queue's task: one input at a time, each followed by the pump.
async fn drive(shared: Rc<Shared>) {
    loop {
        let job = shared.queue.borrow_mut().pop_front();
        let Some(job) = job else {
            shared.running.set(false);
            return;
        };
        let result = {
            let mut s = shared.state.borrow_mut();
            s.apply(&shared, job.input)
        };
        let pumped = pump(&shared).await;
        if let Some((resolve, reject)) = job.done {
            let _ = match result.and_then(|v| pumped.map(|()| v)) {
                Ok(v) => resolve.call1(&JsValue::NULL, &v),
                Err(e) => reject.call1(&JsValue::NULL, &JsError::new(&e).into()),
            };
        }
    }
}

/// Queues a command about `chat` after an input that has its messages
/// loaded (lazy history): the command finds them in memory.
pub fn chat_command(shared: &Rc<Shared>, chat: &str, f: impl FnOnce(&Rc<Shared>, &mut State, u64) -> Result<JsValue, String> + 'static) -> Promise {
    enqueue(shared, Input::Load(chat.to_string()), None);
    command(shared, f)
}

/// Queues a command about the file of message `id`, after an input that
/// has its chat loaded when the chat is known (see `chat_command`).
pub fn file_command(shared: &Rc<Shared>, id: &str, f: impl FnOnce(&Rc<Shared>, &mut State, u64) -> Result<JsValue, String> + 'static) -> Promise {
    let chat = shared.state.borrow().chat_of_file(id);
    match chat {
        Some(chat) => chat_command(shared, &chat, f),
        None => command(shared, f),
    }
}

/// Reads the chats the engine asked for and hands them over; whether
/// there were any.
async fn load_wanted(shared: &Rc<Shared>) -> Result<bool, String> {
    let mut any = false;
    loop {
        let want = shared.state.borrow_mut().engine.poll_want();
        let Some(chat) = want else { return Ok(any) };
        let rows = read_rows(shared.host.read_history("messages", &format!("{chat}/"))).await?;
        shared.state.borrow_mut().engine.load_chat(&chat, rows, now());
        any = true;
    }
}

/// Search through the history's word index (see `Engine::search_word`):
/// the index entries of the query's longest word, the newest messages
/// they name, then the engine's match of every word.
pub async fn search(shared: &Rc<Shared>, query: &str, chat: Option<&str>, limit: usize) -> Result<Vec<tether_client::SearchHit>, String> {
    let limit = limit.min(tether_client::SEARCH_LIMIT);
    let Some(word) = Engine::search_word(query) else { return Ok(vec![]) };
    let failed = |_| "could not read the history from browser storage".to_string();
    let keys = JsFuture::from(shared.host.history_keys("words", &word, tether_client::SEARCH_CANDIDATES as u32)).await.map_err(failed)?;
    let keys: Vec<String> = crate::host::from_js(&keys)?;
    let wanted: Vec<String> = Engine::search_keys(&keys, chat).into_iter().take(limit * 4).collect();
    let values = JsFuture::from(shared.host.get_history("messages", wanted)).await.map_err(failed)?;
    let values: Vec<Option<String>> = crate::host::from_js(&values)?;
    let records: Vec<Vec<u8>> = values.into_iter().flatten().map(String::into_bytes).collect();
    Ok(shared.state.borrow().engine.search_results(query, &records, limit))
}

/// `[key, value][]` from the host, as the engine takes records.
async fn read_rows(p: Promise) -> Result<Vec<(String, Vec<u8>)>, String> {
    let v = JsFuture::from(p).await.map_err(|_| "could not read the history from browser storage".to_string())?;
    let rows: Vec<(String, String)> =
        crate::host::from_js(&v).map_err(|e| format!("the history read is malformed: {e}"))?;
    Ok(rows.into_iter().map(|(k, v)| (k, v.into_bytes())).collect())
}

/// Persist, then send, then react (see the module docs); repeated until the
/// host has nothing left to do.
async fn pump(shared: &Rc<Shared>) -> Result<(), String> {
    let mut failed = None;
    loop {
        let writes = shared.state.borrow_mut().take_writes();
        if !writes.is_empty() {
            if JsFuture::from(shared.host.persist(&writes)).await.is_err() {
                shared.state.borrow_mut().persist_failed(shared);
                failed = Some("could not save to browser storage; nothing was sent".to_string());
                break;
            }
        }
        // After the writes: the reads see them. What loading wrote is
        // persisted (round again) before anything leaves.
        match load_wanted(shared).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                shared.state.borrow_mut().error = Some(e.clone());
                failed = Some(e);
            }
        }
        let (had_events, effects) = {
            let mut s = shared.state.borrow_mut();
            s.transmit();
            let had_events = s.drain_events();
            (had_events, std::mem::take(&mut s.effects))
        };
        // Reacting may have written or produced frames: round again.
        if !had_events && effects.is_empty() {
            break;
        }
        // The writes that led to these (an upload record's ticket) are
        // persisted above; the worker starts or stops moving bytes.
        for t in &effects.transfers {
            shared.host.transfer(t);
        }
        // After this input: the chat is loaded first (lazy history).
        for (chat, id, key, ticket) in effects.uploads {
            let _ = chat_command(shared, &chat, move |_, s, _| {
                let size = s.engine.file(&id).map_or(0, |f| f.size);
                s.effects.transfers.push(Transfer::upload(&s.server(), id, key, ticket, size));
                Ok(JsValue::UNDEFINED)
            });
        }
        for (chat, id) in effects.fetch {
            let _ = chat_command(shared, &chat, move |_, s, now| {
                if s.engine.download_file(&id, now).is_err() {
                    crate::log("could not ask for a file (offline)");
                }
                Ok(JsValue::UNDEFINED)
            });
        }
        for chat in &effects.clear {
            // A notification that stays is a nuisance, not a loss: go on.
            let _ = JsFuture::from(shared.host.clear_notifications(chat.as_deref())).await;
        }
        for (_, n) in effects.notify {
            let show = shared.state.borrow().settings.notifications;
            if show && JsFuture::from(shared.host.show_notification(&n)).await.is_err() {
                continue; // stays owed: shown on the next wake
            }
            shared.state.borrow_mut().engine.notification_shown(&n.id);
        }
    }
    let update = shared.state.borrow_mut().settle(shared);
    if let Some(update) = update {
        shared.host.publish(&update);
    }
    failed.map_or(Ok(()), Err)
}

impl State {
    /// The chat of a file message (an upload's, or one seen arriving), to
    /// load before a command on it.
    pub fn chat_of_file(&self, id: &str) -> Option<String> {
        self.engine.uploads().into_iter().find(|u| u.id == id).map(|u| u.chat).or_else(|| self.file_chats.get(id).cloned())
    }

    fn apply(&mut self, shared: &Rc<Shared>, input: Input) -> Result<JsValue, String> {
        let now = now();
        match input {
            Input::Socket(generation, _) if generation != self.generation => {}
            Input::Socket(_, SocketEvent::Open) => self.engine.handle_connected(now),
            Input::Socket(_, SocketEvent::Message(bytes)) => self.engine.handle_message(&bytes, now),
            Input::Socket(_, SocketEvent::Closed(reason)) => {
                self.socket = None;
                self.connection = Connection::Offline;
                self.dirty = true;
                self.engine.handle_disconnected(now, &reason);
                self.schedule_reconnect(shared);
            }
            Input::Load(chat) => {
                self.engine.chat_loaded(&chat);
            }
            Input::Timeout => {
                self.timer = None;
                self.engine.handle_timeout(now);
            }
            Input::Reconnect => {
                self.reconnect = None;
                self.connect(shared);
            }
            Input::Command(f) => {
                self.dirty = true;
                return f(shared, self, now).inspect_err(|e| self.error = Some(e.clone()));
            }
        }
        Ok(JsValue::UNDEFINED)
    }

    fn take_writes(&mut self) -> Writes {
        let mut w = self.store.take_writes();
        if std::mem::take(&mut self.settings_dirty) {
            w.settings = Some(self.settings.clone());
        }
        w
    }

    /// The host could not persist: nothing produced since may leave. Drop
    /// the frames and the connection (the engine resends what was in flight
    /// when it reconnects).
    fn persist_failed(&mut self, shared: &Rc<Shared>) {
        while self.engine.poll_transmit().is_some() {}
        self.error = Some("could not save to browser storage".into());
        if self.socket.take().is_some() {
            self.generation += 1;
            self.connection = Connection::Offline;
            self.engine.handle_disconnected(now(), "storage failed");
            self.schedule_reconnect(shared);
        }
        self.dirty = true;
    }

    fn transmit(&mut self) {
        while let Some(frame) = self.engine.poll_transmit() {
            if let Some(socket) = &self.socket {
                if socket.send(&frame) {
                    self.frames_sent += 1;
                }
            }
        }
    }

    /// Reacts to every pending event; whether there was any.
    fn drain_events(&mut self) -> bool {
        let mut any = false;
        while let Some(e) = self.engine.poll_event() {
            any = true;
            self.dirty = true;
            self.react(e);
        }
        any
    }

    /// What the core does with each engine event. Exhaustive on purpose: a
    /// new `Event` variant does not compile until it is handled here.
    fn react(&mut self, e: Event) {
        match e {
            Event::Connected { .. } => {
                self.connection = Connection::Connected;
                self.backoff.reset();
                self.error = None;
            }
            Event::Disconnected { .. } => self.connection = Connection::Offline,
            Event::LinkCode { uri, expires_ms, index, total } => {
                let (pairing_code, confirmation) = self.link.take().map(|l| (l.pairing_code, l.confirmation)).unwrap_or_default();
                let qr_svg = crate::qr_svg(&uri);
                self.link = Some(LinkView { uri, qr_svg, expires_ms, index, total, pairing_code, confirmation, exhausted: false });
            }
            Event::PairingCode { code } => {
                let link = self.link.get_or_insert_with(LinkView::default);
                link.pairing_code = Some(code);
                link.confirmation = None;
            }
            Event::PairingMatched { confirmation } => self.link.get_or_insert_with(LinkView::default).confirmation = Some(confirmation),
            Event::LinkCodesExhausted => self.link.get_or_insert_with(LinkView::default).exhausted = true,
            Event::Linked { .. } | Event::ConfirmAccount { .. } => self.link = None,
            Event::Unlinked { .. } => {
                // All local data is gone: clear what is on show, and go back
                // to a fresh QR (the reason stays in the snapshot). The
                // engine closes this socket; the next one asks for codes.
                self.effects.clear.push(None);
                self.effects.notify.clear();
                // The web app (a primary) goes back to its welcome screen instead.
                #[cfg(not(feature = "app"))]
                {
                    let server = self.settings.server.clone();
                    self.begin_link(&server, false, now());
                }
            }
            Event::Message { message } => {
                // Small images are fetched as they arrive (shown inline).
                // Not one this device sent: it has the file already (and the
                // engine tells the blob id while the upload is still going).
                let sent_here = message.from_me && Some(message.sender_device) == self.engine.device_id();
                if let tether_client::MessageBody::File { file, .. } = &message.body {
                    self.file_chats.insert(message.id.clone(), message.chat.clone());
                    if !sent_here && media::auto_download(file) {
                        self.effects.fetch.push((message.chat.clone(), message.id.clone()));
                    }
                }
                self.changed.insert(message.chat);
            }
            Event::UploadTicket { id, chat, key, ticket } => {
                self.file_chats.insert(id.clone(), chat.clone());
                match self.engine.file(&id) {
                    Some(f) => self.effects.transfers.push(Transfer::upload(&self.server(), id, key, ticket, f.size)),
                    // Its chat is not in memory (a wake): the order goes
                    // once it is loaded, with the file's size.
                    None => self.effects.uploads.push((chat.clone(), id, key, ticket)),
                }
                self.changed.insert(chat);
            }
            Event::UploadStopped { id, reason } => {
                if let Some(m) = self.engine.uploads().into_iter().find(|u| u.id == id) {
                    self.changed.insert(m.chat);
                }
                self.effects.transfers.push(Transfer::UploadStopped { id, reason });
            }
            Event::DownloadTicket { id, chat, file, ticket } => {
                self.file_chats.insert(id.clone(), chat.clone());
                self.effects.transfers.push(Transfer::download(&self.server(), id, file, ticket));
                self.changed.insert(chat);
            }
            Event::DownloadFailed { id, reason, .. } => self.effects.transfers.push(Transfer::DownloadFailed { id, reason }),
            Event::MessageStatus { chat, .. } | Event::MessageRemoved { chat, .. } => {
                self.changed.insert(chat);
            }
            Event::MessageChanged { message, .. } => {
                self.changed.insert(message.chat);
            }
            Event::ChatChanged { chat } => {
                if chat.unread == 0 {
                    self.effects.clear.push(Some(chat.handle.clone()));
                }
                self.changed.insert(chat.handle);
            }
            Event::Notify { notification } => {
                self.effects.notify.insert(notification.id.clone(), notification);
            }
            Event::SafetyWarning { warning, .. } => self.error = Some(warning),
            Event::Error { code, message } => {
                self.primary.failed(code, &message);
                self.error = Some(message);
            }
            // What a primary sees (the web app).
            Event::LinkRequest { platform, name, confirmation } => {
                self.primary.request = Some(LinkAsk { platform, name, confirmation });
                self.primary.progress = None;
                self.primary.error = None;
            }
            Event::LinkApproved { device_id } => self.primary.progress = Some(LinkProgress::SendingHistory { device_id }),
            Event::HistorySent { device_id, messages, .. } => {
                self.primary.progress = Some(LinkProgress::Done { device_id, messages });
                // The list changed: the devices screen asks again.
                self.primary.devices = None;
            }
            Event::DeviceRemoved { device_id } => {
                if let Some(devices) = &mut self.primary.devices {
                    devices.retain(|d| d.device_id != device_id);
                }
            }
            Event::Devices { devices } => self.primary.devices = Some(devices),
            // Bookkeeping the snapshot already reflects.
            Event::Registered { .. }
            | Event::HistoryImported { .. }
            | Event::Sent { .. }
            | Event::ContactChanged { .. }
            // A message request: in the snapshot's `requests`; never a
            // notification or an unread count.
            | Event::Request { .. } => {}
        }
    }

    /// After the pump: close if asked, arm the timer, the update to publish.
    fn settle(&mut self, shared: &Rc<Shared>) -> Option<Update> {
        if let Some(reason) = self.engine.poll_close() {
            if let Some(socket) = &self.socket {
                socket.close(&reason);
            }
        }
        self.arm_timer(shared);
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(Update {
            snapshot: self.snapshot(),
            recent_chats: snapshot::recent_chats(&self.engine, crate::RECENT_CHATS),
            changed_chats: std::mem::take(&mut self.changed).into_iter().collect(),
        })
    }

    fn arm_timer(&mut self, shared: &Rc<Shared>) {
        let Some(at) = self.engine.poll_timeout() else {
            self.timer = None;
            return;
        };
        if self.timer.as_ref().is_some_and(|(armed, _)| *armed == at) {
            return;
        }
        let weak = Rc::downgrade(shared);
        let delay = at.saturating_sub(now()) as f64;
        self.timer = Some((at, Timer::after(delay, move || queue_weak(&weak, Input::Timeout))));
    }

    // -------------------------------------------------------- connection

    /// Whether the core wants a connection: linked, or linking.
    pub fn wants_connection(&self) -> bool {
        !matches!(self.engine.role(), Role::Unlinked { .. }) || self.link.as_ref().is_some_and(|l| !l.exhausted) || self.engine.registering()
    }

    /// Opens the socket now if the core wants one and has none.
    pub fn connect(&mut self, shared: &Rc<Shared>) {
        if self.socket.is_some() || !self.wants_connection() {
            return;
        }
        self.reconnect = None;
        self.generation += 1;
        let generation = self.generation;
        let server = self.server();
        let weak = Rc::downgrade(shared);
        match Socket::open(&ws_url(&server), move |ev| queue_weak(&weak, Input::Socket(generation, ev))) {
            Ok(socket) => {
                self.socket = Some(socket);
                self.connection = Connection::Connecting;
            }
            Err(_) => {
                self.error = Some(format!("the server address is not valid: {server}"));
                self.connection = Connection::Offline;
            }
        }
        self.dirty = true;
    }

    /// The server this device talks to (the engine's once linked).
    fn server(&self) -> String {
        if self.engine.server_url().is_empty() { self.settings.server.clone() } else { self.engine.server_url().to_string() }
    }

    fn schedule_reconnect(&mut self, shared: &Rc<Shared>) {
        if !self.wants_connection() {
            self.reconnect = None;
            return;
        }
        let delay = self.backoff.next_delay(js_sys::Math::random());
        let weak = Rc::downgrade(shared);
        self.reconnect = Some(Timer::after(delay, move || queue_weak(&weak, Input::Reconnect)));
    }

    /// Closes the socket as a network failure would (tests).
    #[cfg(test)]
    pub fn drop_connection_for_test(&self) {
        if let Some(socket) = &self.socket {
            socket.close("dropped by the test");
        }
    }

    /// Whether a socket is open or opening (tests).
    #[cfg(test)]
    pub fn has_socket(&self) -> bool {
        self.socket.is_some()
    }

    /// Reconnect attempts since the last handshake (tests).
    #[cfg(test)]
    pub fn backoff_attempts(&self) -> u32 {
        self.backoff.attempts()
    }

    /// When the engine's timer is armed for (tests).
    #[cfg(test)]
    pub fn timer_at(&self) -> Option<u64> {
        self.timer.as_ref().map(|(at, _)| *at)
    }

    // ---------------------------------------------------------- commands

    pub fn snapshot(&self) -> Snapshot {
        snapshot::snapshot(
            &self.engine,
            Local {
                settings: &self.settings,
                link: self.link.as_ref(),
                primary: &self.primary,
                connection: self.connection,
                error: self.error.as_deref(),
            },
        )
    }

    /// On every wake (worker start, alarm, popup): show what is owed and
    /// connect if the core wants a connection.
    pub fn wake(&mut self, shared: &Rc<Shared>) {
        for n in self.engine.notifications_owed() {
            self.effects.notify.insert(n.id.clone(), n);
        }
        self.connect(shared);
    }

    /// An open popup of an unlinked, set-up browser shows a QR: start
    /// linking unless a code is on show or on its way.
    pub fn ensure_link_code(&mut self, shared: &Rc<Shared>, now: u64) {
        let linked = !matches!(self.engine.role(), Role::Unlinked { .. });
        let busy = self.link.as_ref().is_some_and(|l| !l.shown() || !l.exhausted);
        if !self.settings.configured || linked || busy {
            return;
        }
        let server = self.settings.server.clone();
        self.begin_link(&server, false, now);
        self.connect(shared);
    }

    fn begin_link(&mut self, server: &str, with_code: bool, now: u64) {
        self.link = Some(LinkView::default());
        if let Err(e) = self.engine.start_link(server, with_code, now) {
            self.link = None;
            self.error = Some(e.to_string());
        }
    }

    pub fn start_link(&mut self, shared: &Rc<Shared>, with_code: bool, now: u64) -> Result<(), String> {
        let server = self.settings.server.clone();
        self.link = Some(LinkView::default());
        self.engine.start_link(&server, with_code, now).map_err(|e| {
            self.link = None;
            e.to_string()
        })?;
        self.connect(shared);
        Ok(())
    }

    pub fn set_server(&mut self, shared: &Rc<Shared>, url: &str, now: u64) {
        self.settings.server = clean_server(url);
        self.settings.configured = true;
        self.settings_dirty = true;
        self.ensure_link_code(shared, now);
    }

    pub fn set_notifications(&mut self, on: bool) {
        self.settings.notifications = on;
        self.settings_dirty = true;
    }

    /// Renames this browser before it links: the engine reopens with the
    /// new name (the link code carries it), inside the queue, and a link in
    /// progress starts again with a fresh code.
    pub fn set_device_name(&mut self, shared: &Rc<Shared>, name: &str, now: u64) -> Result<(), String> {
        if !matches!(self.engine.role(), Role::Unlinked { .. }) {
            return Err("the name can only change before this browser is linked".into());
        }
        let name: String = name.trim().chars().take(DEVICE_NAME_MAX).collect();
        if name.is_empty() {
            return Err("the device name is empty".into());
        }
        self.settings.device_name = name;
        self.settings_dirty = true;
        self.engine = open_engine(&self.store, &self.platform, &self.settings.device_name)?;
        self.timer = None;
        self.socket = None;
        self.connection = Connection::Offline;
        if let Some(link) = self.link.take().filter(|l| !l.exhausted) {
            self.start_link(shared, link.pairing_code.is_some(), now)?;
        }
        Ok(())
    }

    pub fn send_text(&mut self, chat: &str, text: &str, now: u64) -> Result<String, String> {
        let chat = self.ensure_contact(chat, now)?;
        self.engine.send_text(&chat, text, now).map_err(|e| e.to_string())
    }

    pub fn send_link(&mut self, chat: &str, url: &str, title: &str, selection: &str, preview: Option<LinkPreview>, now: u64) -> Result<String, String> {
        let chat = self.ensure_contact(chat, now)?;
        self.engine.send_link(&chat, url, title, selection, preview, now).map_err(|e| e.to_string())
    }

    /// Sends a file the worker keeps (IndexedDB): the message shows at
    /// once, pending; the engine asks for a ticket. Returns (id, key hex).
    pub fn send_file(&mut self, chat: &str, info: tether_client::FileInfo, caption: &str, now: u64) -> Result<(String, String), String> {
        let chat = self.ensure_contact(chat, now)?;
        self.engine.send_file(&chat, info, caption, now).map_err(|e| e.to_string())
    }

    pub fn mark_read(&mut self, chat: &str, now: u64) -> Result<(), String> {
        self.engine.mark_read(chat, now).map_err(|e| e.to_string())
    }

    pub fn set_flag(&mut self, chat: &str, flag: ChatFlag, on: bool, now: u64) -> Result<(), String> {
        self.engine.set_chat_flag(chat, flag, on, now).map_err(|e| e.to_string())
    }

    pub fn add_contact(&mut self, handle: &str, name: &str, now: u64) -> Result<(), String> {
        self.engine.add_contact(handle, name, now).map_err(|e| e.to_string())?;
        self.share_profile(handle, now);
        Ok(())
    }

    /// Tells a new contact the name the person gave at registration (the
    /// web app; a companion has none and sends nothing).
    fn share_profile(&mut self, handle: &str, now: u64) {
        if self.settings.display_name.is_empty() {
            return;
        }
        if let Err(e) = self.engine.send_profile(handle, &self.settings.display_name, now) {
            self.error = Some(e.to_string());
        }
    }

    pub fn confirm_account(&mut self, yes: bool, now: u64) -> Result<(), String> {
        self.engine.confirm_account(yes, now).map_err(|e| e.to_string())
    }

    /// Answers a message request (or unblocks a sender).
    pub fn answer_request(&mut self, handle: &str, action: RequestAction, now: u64) -> Result<(), String> {
        let e = &mut self.engine;
        let done = match action {
            RequestAction::Accept => e.accept_request(handle, now).inspect(|()| self.share_profile(handle, now)),
            RequestAction::Delete => e.delete_request(handle, now),
            RequestAction::Block => e.block(handle, now),
            RequestAction::Unblock => e.unblock(handle, now),
            RequestAction::Report => e.report_spam(handle, now),
        };
        done.map_err(|e| e.to_string())
    }

    pub fn logout(&mut self, now: u64) -> Result<(), String> {
        self.engine.logout(now).map_err(|e| e.to_string())
    }

    /// Sending to a handle that is not a contact yet adds it first; a
    /// group's chat (`g:…`) and the note to self (this account's handle)
    /// are taken as they are.
    fn ensure_contact(&mut self, chat: &str, now: u64) -> Result<String, String> {
        if tether_client::groups::group_of(chat).is_some() {
            return Ok(chat.to_string());
        }
        let handle = tether_proto::normalize_handle(chat).map_err(|e| e.to_string())?;
        if Some(handle.as_str()) != self.engine.note_to_self() && self.engine.contact(&handle).is_none() {
            self.engine.add_contact(&handle, "", now).map_err(|e| e.to_string())?;
            self.share_profile(&handle, now);
        }
        Ok(handle)
    }
}

/// Queues an input from a callback, if the core still exists.
fn queue_weak(weak: &Weak<Shared>, input: Input) {
    if let Some(shared) = weak.upgrade() {
        enqueue(&shared, input, None);
    }
}
