//! A native test client and an in-process server on 127.0.0.1:0.

use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tether_proto::device_list::AccountKey;
use tether_proto::frames::*;
use tether_proto::noise::{ClientHandshake, StaticKey, Transport};
use tether_proto::{ErrorCode, Fingerprint};
use tether_server::{Config, ManualClock, Server};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server on 127.0.0.1:0 with its data in a temporary directory and a
/// clock the test moves.
pub struct TestServer {
    pub server: Server,
    pub addr: std::net::SocketAddr,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    pub config: Config,
    /// The PostgreSQL the server keeps its state in
    /// ([`TestServer::start_on_postgres`]); `None`: SQLite in `dir`.
    pub postgres: Option<tether_services::Postgres>,
    task: tokio::task::JoinHandle<Result<(), tether_server::Error>>,
}

/// 2026-11-01, in ms: tests start here.
pub const T0: u64 = 1_793_491_200_000;

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data: dir.path().to_path_buf(), ..Config::default() };
        tune(&mut config);
        Self::open(dir, config, ManualClock::new(T0), None).await
    }

    /// One node of several: a server with `config` as given (its data
    /// directory, database and NATS are the caller's), on a port of its
    /// own, with `clock`. Its own temporary directory stays empty.
    pub async fn node(config: Config, clock: ManualClock) -> Self {
        Self::open(tempfile::tempdir().unwrap(), config, clock, None).await
    }

    /// A server whose state is in a throwaway PostgreSQL (its blobs and key
    /// still in a temporary directory). Call it from the test's own task:
    /// PostgreSQL dies with the thread that started it.
    pub async fn start_on_postgres() -> Self {
        Self::start_on_postgres_with(|_| {}).await
    }

    pub async fn start_on_postgres_with(tune: impl FnOnce(&mut Config)) -> Self {
        let postgres = tether_services::Postgres::start().unwrap();
        let url = postgres.create_database("relay").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data: dir.path().to_path_buf(),
            database_url: Some(tether_server::DatabaseUrl(url)),
            ..Config::default()
        };
        tune(&mut config);
        Self::open(dir, config, ManualClock::new(T0), Some(postgres)).await
    }

    async fn open(
        dir: tempfile::TempDir,
        config: Config,
        clock: ManualClock,
        postgres: Option<tether_services::Postgres>,
    ) -> Self {
        let server = Server::open(config.clone(), Arc::new(clock.clone())).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = server.clone();
        let task = tokio::spawn(async move { s.serve(listener, std::future::pending()).await });
        Self { server, addr, clock, dir, config, postgres, task }
    }

    /// Stops the server and starts a new one (on another port) with the
    /// same data directory (and PostgreSQL database), settings and clock.
    pub async fn restart(self) -> Self {
        let TestServer { server, clock, dir, config, postgres, task, .. } = self;
        server.shutdown();
        task.await.unwrap().unwrap();
        drop(server);
        Self::open(dir, config, clock, postgres).await
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    pub fn pin(&self) -> Fingerprint {
        self.server.fingerprint()
    }

    /// A new device key connected as a guest.
    pub async fn guest(&self) -> Client {
        Client::connect(&self.url(), StaticKey::generate(), Some(self.pin())).await.unwrap()
    }

    /// The value of a metric without labels from `GET /metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let url = format!("http://{}/metrics", self.addr);
        let text =
            tokio::task::spawn_blocking(move || ureq::get(&url).call().unwrap().body_mut().read_to_string().unwrap())
                .await
                .unwrap();
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    pub async fn stop(self) {
        self.server.shutdown();
        self.task.await.unwrap().unwrap();
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    Proto(tether_proto::Error),
    Closed(#[allow(dead_code)] Option<String>),
}

/// A device's connection: Noise over WebSocket, request/response by id,
/// events buffered in arrival order. Responses may come out of request
/// order (a `Send` is answered when its commit is done, later requests may
/// be answered before): one read while waiting for another is kept.
pub struct Client {
    pub ws: Ws,
    transport: Transport,
    pub key: StaticKey,
    next_id: u64,
    pub events: VecDeque<EventBody>,
    /// Responses read while waiting for another one, by request id.
    responses: HashMap<u64, Response>,
    /// Set when the server closed the socket: the close reason.
    pub closed: Option<String>,
}

impl Client {
    pub async fn connect(url: &str, key: StaticKey, pin: Option<Fingerprint>) -> Result<Client, ConnectError> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
        Self::handshake(ws, key, pin).await
    }

    /// Connects with an `X-Forwarded-For` header, as through a reverse proxy.
    pub async fn connect_forwarded(
        url: &str,
        key: StaticKey,
        pin: Option<Fingerprint>,
        forwarded_for: &str,
    ) -> Result<Client, ConnectError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("x-forwarded-for", forwarded_for.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
        Self::handshake(ws, key, pin).await
    }

    /// Connects from the local address `from` (any of 127.0.0.0/8 works on
    /// Linux): the server sees another source.
    pub async fn connect_from(
        url: &str,
        key: StaticKey,
        pin: Option<Fingerprint>,
        from: std::net::IpAddr,
    ) -> Result<Client, ConnectError> {
        let ws = ws_from(url, from).await;
        Self::handshake(ws, key, pin).await
    }

    async fn handshake(mut ws: Ws, key: StaticKey, pin: Option<Fingerprint>) -> Result<Client, ConnectError> {
        let (expect, m1) = ClientHandshake::start(&key, pin).map_err(ConnectError::Proto)?;
        ws.send(Message::Binary(m1.into())).await.unwrap();
        let m2 = match next_binary(&mut ws).await {
            Ok(m) => m,
            Err(reason) => return Err(ConnectError::Closed(reason)),
        };
        let verified = expect.handle(&m2).map_err(ConnectError::Proto)?;
        let (transport, m3) =
            verified.finish(&ClientHello { client_version: "relay-test".into() }).map_err(ConnectError::Proto)?;
        ws.send(Message::Binary(m3.into())).await.unwrap();
        Ok(Client { ws, transport, key, next_id: 1, events: VecDeque::new(), responses: HashMap::new(), closed: None })
    }

    /// Sends raw bytes as one WebSocket binary message (no encryption).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// Encrypts and sends one frame's bytes.
    pub async fn send_plain(&mut self, plain: &[u8]) {
        let msg = self.transport.encrypt(plain).unwrap();
        self.send_raw(msg).await;
    }

    pub async fn send_request(&mut self, req: Request) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let frame = prost::Message::encode_to_vec(&ClientFrame { id, request: Some(req) });
        self.send_plain(&frame).await;
        id
    }

    /// Reads one server frame (10 s at most); `None` once the socket closed.
    pub async fn read_frame(&mut self) -> Option<ServerBody> {
        if self.closed.is_some() {
            return None;
        }
        match tokio::time::timeout(Duration::from_secs(10), next_binary(&mut self.ws))
            .await
            .expect("server answers within 10 s")
        {
            Ok(bytes) => {
                let plain = self.transport.decrypt(&bytes).expect("server frames decrypt");
                let frame: ServerFrame = prost::Message::decode(plain.as_slice()).expect("server frames decode");
                frame.body
            }
            Err(reason) => {
                self.closed = Some(reason.unwrap_or_default());
                None
            }
        }
    }

    /// Sends a request and returns its response; events meanwhile are kept.
    pub async fn request(&mut self, req: Request) -> Response {
        let id = self.send_request(req).await;
        self.response(id).await
    }

    pub async fn response(&mut self, id: u64) -> Response {
        match self.try_response(id).await {
            Some(r) => r,
            None => panic!("connection closed ({:?}) while waiting for response {id}", self.closed),
        }
    }

    /// The response to request `id`, or `None` if the connection closes
    /// first. Exactly one response per request: a second one for the same
    /// id is a server bug.
    pub async fn try_response(&mut self, id: u64) -> Option<Response> {
        if let Some(r) = self.responses.remove(&id) {
            return Some(r);
        }
        loop {
            match self.read_frame().await {
                Some(ServerBody::Response(r)) if r.id == id => return Some(r),
                Some(ServerBody::Response(r)) => {
                    assert!(r.id < self.next_id, "response to {}, which was never sent", r.id);
                    if let Some(first) = self.responses.insert(r.id, r) {
                        panic!("two responses to request {}", first.id);
                    }
                }
                Some(ServerBody::Event(Event { body: Some(e) })) => self.events.push_back(e),
                Some(ServerBody::Event(_)) => {}
                None => return None,
            }
        }
    }

    /// A request that must succeed; returns its body.
    pub async fn ok(&mut self, req: Request) -> ResponseBody {
        let r = self.request(req).await;
        assert!(r.error.is_none(), "request failed: {:?}", r.error);
        r.body.expect("a body")
    }

    /// A request that must fail with `code`; returns the error.
    pub async fn fails(&mut self, req: Request, code: ErrorCode) -> ErrorInfo {
        let r = self.request(req).await;
        let e = r.error.unwrap_or_else(|| panic!("expected {code}, got {:?}", r.body));
        assert_eq!(e.code, code.as_str(), "{}", e.message);
        e
    }

    /// The next event (10 s at most).
    pub async fn event(&mut self) -> EventBody {
        loop {
            if let Some(e) = self.events.pop_front() {
                return e;
            }
            match self.read_frame().await {
                Some(ServerBody::Event(Event { body: Some(e) })) => return e,
                // A late answer to an earlier request: kept for `response`.
                Some(ServerBody::Response(r)) => {
                    assert!(r.id < self.next_id, "response to {}, which was never sent", r.id);
                    if let Some(first) = self.responses.insert(r.id, r) {
                        panic!("two responses to request {}", first.id);
                    }
                }
                Some(other) => panic!("unexpected frame {other:?}"),
                None => panic!("connection closed ({:?}) while waiting for an event", self.closed),
            }
        }
    }

    /// The next envelope (skipping other events).
    pub async fn envelope(&mut self) -> Envelope {
        loop {
            if let EventBody::Envelope(e) = self.event().await {
                return e;
            }
        }
    }

    /// Reads until the server closes; returns (the Closing event's code, the
    /// WebSocket close reason).
    pub async fn until_closed(&mut self) -> (Option<String>, String) {
        let mut closing = None;
        for e in self.events.drain(..) {
            if let EventBody::Closing(info) = e {
                closing = Some(info.code);
            }
        }
        while let Some(frame) = self.read_frame().await {
            if let ServerBody::Event(Event { body: Some(EventBody::Closing(info)) }) = frame {
                closing = Some(info.code);
            }
        }
        (closing, self.closed.clone().unwrap_or_default())
    }

    pub async fn ping(&mut self) {
        self.ok(Request::Ping(Ping {})).await;
    }
}

/// A WebSocket to `url` (ws://ip:port/…) from the local address `from`.
pub async fn ws_from(url: &str, from: std::net::IpAddr) -> Ws {
    let host = url.trim_start_matches("ws://").split('/').next().unwrap();
    let addr: std::net::SocketAddr = host.parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    // Small buffers, as the server's: many of these are open at once.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(tcp), Some(config))
        .await
        .expect("websocket connects");
    ws
}

/// The next binary message, or Err(close reason) when the socket ends.
pub async fn next_binary(ws: &mut Ws) -> Result<Vec<u8>, Option<String>> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(b.to_vec()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.reason.to_string())),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// An account as its primary holds it: the account key and the list.
pub struct TestAccount {
    pub handle: String,
    pub key: AccountKey,
    pub list: DeviceList,
}

pub fn entry(device_id: u32, key: &StaticKey, platform: &str) -> DeviceEntry {
    DeviceEntry {
        device_id,
        noise_key: key.public().to_vec(),
        // Olm keys are the engine's business; any 32 bytes do for the relay.
        identity_key: vec![device_id as u8 + 1; 32],
        signing_key: vec![device_id as u8 + 101; 32],
        platform: platform.into(),
        name: format!("{platform} #{device_id}"),
        linked_at_ms: T0,
        self_signature: vec![],
    }
}

impl TestAccount {
    pub fn new(handle: &str, primary: &StaticKey) -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        Self {
            handle: handle.into(),
            key: AccountKey::from_seed(&seed),
            list: DeviceList {
                handle: handle.into(),
                version: 1,
                devices: vec![entry(0, primary, "cli/linux")],
                issued_at_ms: T0,
            },
        }
    }

    pub fn signed(&self) -> SignedDeviceList {
        self.key.sign(&self.list)
    }

    pub fn register_request(&self) -> Request {
        Request::Register(Register {
            handle: self.handle.clone(),
            account_key: self.key.public().to_vec(),
            device_list: Some(self.signed()),
            token: String::new(),
        })
    }

    /// The next list with `device` added (not yet published).
    pub fn with_device(&mut self, device: DeviceEntry) -> SignedDeviceList {
        self.list.version += 1;
        self.list.devices.push(device);
        self.signed()
    }

    pub fn without_device(&mut self, device_id: u32) -> SignedDeviceList {
        self.list.version += 1;
        self.list.devices.retain(|d| d.device_id != device_id);
        self.signed()
    }
}

/// Registers a new account; returns it and its primary's connection.
pub async fn register(server: &TestServer, handle: &str) -> (TestAccount, Client) {
    let mut primary = server.guest().await;
    let account = TestAccount::new(handle, &primary.key);
    match primary.ok(account.register_request()).await {
        ResponseBody::Registered(r) => assert_eq!((r.handle.as_str(), r.device_id), (handle, 0)),
        other => panic!("unexpected {other:?}"),
    }
    (account, primary)
}

/// Links a new companion to `account` through the ref rendezvous; returns
/// its connection (now a device).
pub async fn link(server: &TestServer, account: &mut TestAccount, primary: &mut Client, device_id: u32) -> Client {
    let mut companion = server.guest().await;
    let refs = match companion.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
        ResponseBody::LinkRefs(r) => r.refs,
        other => panic!("unexpected {other:?}"),
    };
    let new_list = account.with_device(entry(device_id, &companion.key, "chrome/linux"));
    primary
        .ok(Request::ApproveLink(ApproveLink {
            link_ref: refs[0].link_ref.clone(),
            device_id,
            new_list: Some(new_list),
            approval: b"signed identity + hmac".to_vec(),
        }))
        .await;
    match companion.event().await {
        EventBody::LinkApproved(a) => {
            assert_eq!((a.handle.as_str(), a.device_id), (account.handle.as_str(), device_id))
        }
        other => panic!("unexpected {other:?}"),
    }
    companion
}

/// Reconnects with an existing device key.
pub async fn reconnect(server: &TestServer, key: &StaticKey) -> Client {
    Client::connect(&server.url(), key.clone(), Some(server.pin())).await.unwrap()
}

pub fn send_req(message_id: u8, copies: Vec<(&str, u32, Vec<u8>)>) -> Request {
    Request::Send(SendMessage {
        message_id: vec![message_id; 16],
        copies: copies.into_iter().map(|(h, d, c)| Copy { handle: h.into(), device_id: d, ciphertext: c, list_version: 0 }).collect(),
        blob_ids: vec![],
        ..Default::default()
    })
}
