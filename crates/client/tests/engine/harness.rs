//! Drives engines over WebSockets against an in-process server, with one
//! manual clock for the server and every engine.

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tether_client::store::MemoryStore;
use tether_client::{ClientInfo, Engine, Event, Random};
use tether_server::{Config, ManualClock, Server};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const T0: u64 = 1_793_491_200_000;

/// A memory store the test keeps a handle to, so an engine can be reopened
/// on the same data (a restart).
///
/// `lazy`: it keeps the message history "apart", as the browser does (its
/// `scan_prefix` answers None for it), so the engine loads chats on demand
/// and the test serves them (`Device::serve_history`).
#[derive(Clone, Default)]
pub struct SharedStore(pub Arc<std::sync::Mutex<MemoryStore>>, pub bool);

impl SharedStore {
    /// What the host reads for lazy history: `ns` records under `prefix`.
    pub fn read(&self, ns: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        use tether_client::store::KvStore as _;
        self.0.lock().unwrap().scan(ns).unwrap().into_iter().filter(|(k, _)| k.starts_with(prefix)).collect()
    }
}

impl tether_client::store::KvStore for SharedStore {
    fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        if self.1 && tether_client::store::HISTORY_NAMESPACES.contains(&ns) {
            return Ok(vec![]); // kept apart: nothing to migrate
        }
        self.0.lock().unwrap().scan(ns)
    }
    fn apply(&mut self, ops: &[tether_client::store::Op]) -> Result<(), String> {
        self.0.lock().unwrap().apply(ops)
    }
    fn scan_prefix(&self, ns: &str, prefix: &str) -> Result<Option<Vec<(String, Vec<u8>)>>, String> {
        if self.1 && tether_client::store::HISTORY_NAMESPACES.contains(&ns) {
            return Ok(None);
        }
        Ok(Some(self.read(ns, prefix)))
    }
}

pub struct OsRandom;
impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("OS randomness");
    }
}

pub struct TestServer {
    pub server: Server,
    pub addr: std::net::SocketAddr,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    config: Config,
    task: tokio::task::JoinHandle<Result<(), tether_server::Error>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose config `edit` changes first.
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data: dir.path().to_path_buf(), ..Config::default() };
        edit(&mut config);
        let clock = ManualClock::new(T0);
        let server = Server::open(config.clone(), Arc::new(clock.clone())).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = server.clone();
        let task = tokio::spawn(async move { s.serve(listener, std::future::pending()).await });
        Self { server, addr, clock, dir, config, task }
    }

    /// Stops the server (its connections close; writes still held by an
    /// adversary never commit: as if it died there) and starts a new one on
    /// the same data directory and port, so devices reconnect as to a
    /// restarted server.
    pub async fn restart(self) -> Self {
        let TestServer { server, addr, clock, dir, config, task } = self;
        server.shutdown();
        task.await.unwrap().unwrap();
        let server = Server::open(config.clone(), Arc::new(clock.clone())).await.unwrap();
        let listener = TcpListener::bind(addr).await.unwrap();
        let s = server.clone();
        let task = tokio::spawn(async move { s.serve(listener, std::future::pending()).await });
        Self { server, addr, clock, dir, config, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn now(&self) -> u64 {
        tether_server::Clock::now_ms(&self.clock)
    }
}

/// One device: an engine, its socket, and every event it produced.
pub struct Device {
    pub engine: Engine,
    ws: Option<Ws>,
    pub events: Vec<Event>,
    addr: std::net::SocketAddr,
    pub clock: ManualClock,
    pub store: SharedStore,
    info: ClientInfo,
    /// Lazy history: `flush` serves the chats the engine asks for.
    pub serve_history: bool,
}

impl Device {
    pub fn new(server: &TestServer, platform: &str, name: &str) -> Self {
        Self::with_store(server, platform, name, SharedStore::default())
    }

    /// A device whose store keeps history apart, as the browser's does.
    pub fn new_lazy(server: &TestServer, platform: &str, name: &str) -> Self {
        Self::with_store(server, platform, name, SharedStore(Default::default(), true))
    }

    fn with_store(server: &TestServer, platform: &str, name: &str, store: SharedStore) -> Self {
        let info = ClientInfo { client_version: "engine-test".into(), platform: platform.into(), name: name.into() };
        let engine = Engine::open(Box::new(store.clone()), Box::new(OsRandom), info.clone()).unwrap();
        Self { engine, ws: None, events: Vec::new(), addr: server.addr, clock: server.clock.clone(), store, info, serve_history: true }
    }

    /// Reads what the engine asked for (as a browser host reads IndexedDB).
    pub fn serve_wants(&mut self) -> usize {
        let mut served = 0;
        while let Some(chat) = self.engine.poll_want() {
            let rows = self.store.read("messages", &format!("{chat}/"));
            let now = self.now();
            self.engine.load_chat(&chat, rows, now);
            served += 1;
        }
        served
    }

    /// Drops the engine and opens a new one on the same store.
    pub fn restart(&mut self) {
        self.ws = None;
        self.engine = Engine::open(Box::new(self.store.clone()), Box::new(OsRandom), self.info.clone()).unwrap();
    }

    pub fn now(&self) -> u64 {
        tether_server::Clock::now_ms(&self.clock)
    }

    pub async fn connect(&mut self) {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", self.addr)).await.unwrap();
        self.ws = Some(ws);
        let now = self.now();
        self.engine.handle_connected(now);
        self.flush().await;
        // Until the handshake is done (`busy()` does not count it, so a
        // `settle` on a loaded machine could end before it).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.engine.is_open() && self.ws.is_some() && tokio::time::Instant::now() < deadline {
            self.step(Duration::from_millis(50)).await;
        }
    }

    pub fn disconnect(&mut self) {
        self.ws = None;
        let now = self.now();
        self.engine.handle_disconnected(now, "test disconnect");
        self.drain_events();
    }

    pub fn connected(&self) -> bool {
        self.ws.is_some()
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
    }

    /// Sends what the engine produced; closes if it asks.
    pub async fn flush(&mut self) {
        loop {
            while let Some(t) = self.engine.poll_transmit() {
                if let Some(ws) = &mut self.ws {
                    if ws.send(Message::Binary(t.into())).await.is_err() {
                        break;
                    }
                }
            }
            if !self.serve_history || self.serve_wants() == 0 {
                break;
            }
        }
        if self.engine.poll_close().is_some() {
            self.ws = None;
            let now = self.now();
            self.engine.handle_disconnected(now, "engine closed");
        }
        self.drain_events();
    }

    /// Feeds one message if one arrives within `wait`; false if none did.
    pub async fn step(&mut self, wait: Duration) -> bool {
        let Some(ws) = &mut self.ws else { return false };
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                let now = self.now();
                self.engine.handle_message(&b, now);
                self.flush().await;
                true
            }
            Ok(Some(Ok(_))) => true,
            Ok(Some(Err(_))) | Ok(None) => {
                self.ws = None;
                let now = self.now();
                self.engine.handle_disconnected(now, "server closed");
                self.drain_events();
                true
            }
            Err(_) => false,
        }
    }

    /// Adds a contact (its list is fetched on the next settle).
    pub async fn add_contact(&mut self, handle: &str, name: &str) {
        let now = self.now();
        self.engine.add_contact(handle, name, now).unwrap();
        self.flush().await;
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

/// Runs every connected device until none gets a message for a while and
/// none has work in flight (30 s at most: a loaded machine is slow).
pub async fn settle(devices: &mut [&mut Device]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut quiet_rounds = 0;
    while tokio::time::Instant::now() < deadline {
        let mut any = false;
        for d in devices.iter_mut() {
            while d.step(Duration::from_millis(20)).await {
                any = true;
            }
        }
        let busy = devices.iter().any(|d| d.connected() && d.engine.busy());
        if !any && !busy {
            quiet_rounds += 1;
            if quiet_rounds >= 3 {
                return;
            }
        } else {
            quiet_rounds = 0;
        }
    }
    let busy: Vec<_> = devices
        .iter()
        .map(|d| (d.engine.handle().map(str::to_string), d.engine.busy(), d.engine.outbox_len(), d.events.iter().rev().take(4).collect::<Vec<_>>()))
        .collect();
    panic!("devices did not settle within 30 s (handle, busy, outbox, last events): {busy:?}");
}

/// As [`settle`], but when every device is quiet and some still have work
/// waiting for a timer (a retry), the shared clock jumps to the earliest
/// one (10 s ahead at most, 20 times at most) and the devices' timeouts run.
pub async fn settle_in_time(devices: &mut [&mut Device]) {
    for _ in 0..20 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut quiet_rounds = 0;
        while tokio::time::Instant::now() < deadline && quiet_rounds < 3 {
            let mut any = false;
            for d in devices.iter_mut() {
                while d.step(Duration::from_millis(20)).await {
                    any = true;
                }
            }
            quiet_rounds = if any { 0 } else { quiet_rounds + 1 };
        }
        if !devices.iter().any(|d| d.connected() && d.engine.busy()) {
            return;
        }
        let now = devices[0].now();
        let Some(next) = devices.iter().filter(|d| d.engine.busy()).filter_map(|d| d.engine.poll_timeout()).min() else { break };
        if next > now + 10_000 {
            break;
        }
        devices[0].clock.advance(next.saturating_sub(now).max(1));
        for d in devices.iter_mut() {
            let now = d.now();
            d.engine.handle_timeout(now);
            d.flush().await;
        }
    }
    settle(devices).await;
}

/// Registers a new primary and leaves it connected.
pub async fn primary(server: &TestServer, handle: &str) -> Device {
    let mut d = Device::new(server, "cli/linux", "tether CLI on Linux");
    let now = d.now();
    d.engine.register(handle, &server.url(), now).unwrap();
    d.connect().await;
    // The handshake is not a request: on a loaded machine settle can see
    // quiet before the server answers, so wait for the registration itself.
    for _ in 0..50 {
        settle(&mut [&mut d]).await;
        if d.events.iter().any(|e| matches!(e, Event::Registered { .. })) {
            break;
        }
    }
    assert!(d.events.iter().any(|e| matches!(e, Event::Registered { .. })), "{:?}", d.events);
    d
}

/// Two connected primaries, alice and bob, each the other's contact under
/// the given names, with their lists fetched.
pub async fn alice_and_bob(server: &TestServer, bob_as: &str, alice_as: &str) -> (Device, Device) {
    let mut alice = primary(server, "alice").await;
    let mut bob = primary(server, "bob").await;
    alice.add_contact("bob", bob_as).await;
    bob.add_contact("alice", alice_as).await;
    settle(&mut [&mut alice, &mut bob]).await;
    (alice, bob)
}

pub fn texts(d: &Device, chat: &str) -> Vec<(bool, String)> {
    d.engine
        .messages(chat)
        .iter()
        .map(|m| match &m.body {
            tether_client::MessageBody::Text { body } => (m.from_me, body.clone()),
            tether_client::MessageBody::Link { url, .. } => (m.from_me, url.clone()),
            tether_client::MessageBody::File { file, .. } => (m.from_me, format!("file: {}", file.file_name)),
            tether_client::MessageBody::Undecryptable { reason } => (m.from_me, format!("undecryptable: {reason}")),
            tether_client::MessageBody::GroupEvent { text } => (m.from_me, format!("event: {text}")),
            tether_client::MessageBody::Deleted => (m.from_me, "deleted".to_string()),
        })
        .collect()
}
