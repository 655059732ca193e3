//! tether-server: the relay every Tether client talks to.
//!
//! ```text
//! main.rs ─ Server::open(config, clock) ─ Server::serve(listener, shutdown)
//!             │                              ├ GET /v1/ws    → conn::run (one task per connection)
//!             │                              ├ GET /healthz, GET /metrics
//!             │                              ├ HEAD/PATCH/GET/OPTIONS /v1/blobs/{id} → blobs::http
//!             │                              └ sweeper (inactivity rules, expiry)
//!             ├ store (trait; SQLite or PG)  conn → handlers (one function per request)
//!             ├ router (device → connection) writer (queue quotas, group commit, then push)
//!             ├ links (refs, pairing slots, held approvals: bounded.rs tables)
//!             ├ limits (per-account prekey claims and lookups)
//!             └ blobs (blob files, tokens; records in the store)
//! Server::serve_tls(listener, tls, shutdown): the same routes over TLS
//!             (tls: certificate files reloaded on SIGHUP, or ACME via rustls-acme)
//! serve_redirect(listener, port): plain HTTP answered with 308 to HTTPS (redirect.rs)
//! ```
//!
//! The server sees public keys, signed lists and ciphertext only. Logs name
//! handles and device ids at most, never keys or content.
#![forbid(unsafe_code)]

mod activity;
#[cfg(feature = "adversary")]
pub mod adversary;
mod app;
pub mod blobs;
mod bounded;
mod clock;
mod cluster;
mod config;
mod conn;
mod error;
mod handlers;
mod keys;
mod limits;
mod links;
mod metrics;
mod redirect;
mod router;
pub mod store;
mod tls;
mod writer;

pub use clock::{Clock, DAY_MS, ManualClock, SystemClock};
pub use config::{Backend, BlobOptions, Config, DatabaseUrl, Registration};
pub use error::Error;
pub use links::Footprint;
pub use redirect::serve_redirect;
pub use store::{PostgresStore, SqliteStore, Store};
pub use tls::{AcmeSettings, LETS_ENCRYPT, Tls, TlsSource};

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router as HttpRouter, routing::get};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tether_proto::{ErrorCode, Fingerprint, noise::StaticKey};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use websocket::tungstenite::handshake::derive_accept_key;
use websocket::tungstenite::protocol::WebSocketConfig;

/// Server version, reported by `/healthz` and the handshake.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// WebSocket read buffer per connection, allocated for the connection's
/// whole life: small, so idle connections cost little (axum's default is
/// 128 KiB). Larger frames are still read whole (the buffer grows to fit
/// a frame's announced length), only in more reads.
const WS_READ_BUFFER: usize = 512;
/// Outgoing frames are collected up to this much before a write to the
/// socket (and written at the end of every step anyway). Grows only when
/// used.
const WS_WRITE_BUFFER: usize = 8 * 1024;

/// What every connection and task shares.
pub(crate) struct Shared {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn Store>,
    /// The server's Noise static key.
    pub key: StaticKey,
    pub router: router::Router,
    pub links: links::Links,
    /// Per-account limits: prekey claims, device-list lookups.
    pub limits: limits::Limits,
    /// Stored envelopes per device, for the queue quotas (see writer.rs).
    pub usage: writer::Usage,
    /// When devices were last seen, written once a second (activity.rs).
    pub activity: activity::Activity,
    pub metrics: metrics::Metrics,
    /// Group-commit queue (see writer.rs).
    pub writer: mpsc::Sender<writer::WriteRequest>,
    /// The blob directory, the token key, uploads in progress (blobs/).
    pub blobs: blobs::Blobs,
    /// Caps simultaneous connections.
    pub conn_limit: Arc<Semaphore>,
    /// Cancelled on shutdown: connections say "going away" and close.
    pub shutdown: CancellationToken,
    /// Connection tasks, awaited on shutdown.
    pub tasks: TaskTracker,
    /// Active device ids per account, so sends need not read the store.
    active: Mutex<HashMap<String, Arc<BTreeSet<u32>>>>,
    /// The other nodes, if any (cluster.rs).
    pub cluster: cluster::Cluster,
    /// Attack tests' hooks (see adversary.rs).
    #[cfg(feature = "adversary")]
    adversary: std::sync::RwLock<Option<Arc<dyn adversary::Adversary>>>,
}

impl Shared {
    /// The active (not removed) device ids of an account; `None` if no
    /// such account.
    pub async fn active_devices(&self, handle: &str) -> Result<Option<Arc<BTreeSet<u32>>>, store::StoreError> {
        if let Some(set) = self.active.lock().expect("cache lock").get(handle) {
            return Ok(Some(set.clone()));
        }
        if self.store.account(handle).await?.is_none() {
            return Ok(None);
        }
        let set: BTreeSet<u32> = self
            .store
            .devices(handle)
            .await?
            .into_iter()
            .filter(|d| d.removed_ms.is_none())
            .map(|d| d.device_id)
            .collect();
        let set = Arc::new(set);
        self.active.lock().expect("cache lock").insert(handle.to_string(), set.clone());
        Ok(Some(set))
    }

    /// Forgets the cached device set after a change, here and on the
    /// other nodes.
    pub fn devices_changed(&self, handle: &str) {
        self.forget_devices(handle);
        self.cluster.tell(cluster::Notice::DevicesChanged(cluster::AccountRef { handle: handle.to_string() }));
    }

    /// Forgets this node's cached device set of an account.
    pub fn forget_devices(&self, handle: &str) {
        self.active.lock().expect("cache lock").remove(handle);
    }

    /// Pushes an event to a device, wherever it is connected (nowhere: the
    /// event is dropped, as events are for online devices only).
    pub fn push_event(&self, handle: &str, device_id: u32, event: tether_proto::frames::Event) {
        match self.router.device(handle, device_id) {
            Some(conn) => conn.push(router::Outbound::Event(Box::new(event))),
            None => self.cluster.tell(cluster::Notice::Event(cluster::DeviceEvent {
                device: cluster::DeviceRef::new(handle, device_id),
                event,
            })),
        }
    }

    /// Closes a device's connection with `code`, wherever it is connected;
    /// taken out of the router first, so a new connection for the same
    /// device id (a restored primary) replaces no one.
    pub fn close_device(&self, handle: &str, device_id: u32, code: ErrorCode) {
        match self.router.take_device(handle, device_id) {
            Some(conn) => conn.close(code),
            None => self.cluster.tell(cluster::Notice::Close(cluster::DeviceClose {
                device: cluster::DeviceRef::new(handle, device_id),
                code: code.as_str().into(),
            })),
        }
    }

    /// Removes a device without a new list (a companion logging itself
    /// out, the inactivity rules): store, cache, socket; the account's other
    /// devices hear of it, so the primary signs a new list.
    pub async fn remove_device(&self, handle: &str, device_id: u32) -> Result<(), store::StoreError> {
        let before = self.active_devices(handle).await?.unwrap_or_default();
        self.store.remove_device(handle, device_id, self.clock.now_ms()).await?;
        self.devices_changed(handle);
        self.close_device(handle, device_id, ErrorCode::DeviceRemoved);
        handlers::announce_list(self, handle, &before, device_id);
        tracing::info!(handle, device_id, "device removed");
        self.drop_unread_blobs().await;
        Ok(())
    }

    /// After devices were removed (and with them their reader rows):
    /// deletes the sent blobs no device is left to fetch.
    pub async fn drop_unread_blobs(&self) {
        match self.store.drop_unread_blobs().await {
            Ok(ids) => {
                self.blobs.delete_all(&ids).await;
                if !ids.is_empty() {
                    tracing::info!(blobs = ids.len(), "deleted blobs left without readers");
                }
            }
            Err(e) => tracing::error!("deleting blobs without readers failed: {e}"),
        }
    }
}

/// A running relay.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

/// What one run of the inactivity and expiry rules did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Companions logged out because their primary was inactive too long.
    pub primary_inactive: Vec<(String, u32)>,
    /// Companions removed because they were inactive too long.
    pub companion_inactive: Vec<(String, u32)>,
    /// Message copies deleted because they were older than the TTL.
    pub expired: u64,
    /// Blobs deleted because they expired (unfinished or never sent: 24 h
    /// after the upload started; sent: 30 days after the last send), or
    /// because no reader was left.
    pub blobs_deleted: u64,
}

impl Server {
    /// Opens the store (SQLite in the data directory, or PostgreSQL at
    /// `database_url`) and the data directory (server key, blobs), and
    /// starts the writer. Time comes from `clock`.
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let store: Arc<dyn Store> = match config.backend()? {
            Backend::Sqlite(dir) => Arc::new(SqliteStore::open(dir).await?),
            Backend::Postgres(url) => Arc::new(PostgresStore::connect(url).await?),
        };
        let key = keys::load_or_create(&config.data)?;
        let files: Arc<dyn blobs::files::BlobFiles> = match &config.blob_url {
            Some(url) => {
                Arc::new(blobs::files::ObjectFiles::open(url, &config.blob_options.0).map_err(Error::BlobStore)?)
            }
            None => {
                let dir = config.blob_dir();
                Arc::new(
                    blobs::files::DirFiles::open(dir.clone()).map_err(|source| Error::DataDir { path: dir, source })?,
                )
            }
        };
        tracing::info!(files = %files.describe(), "where uploaded files are kept");
        let blobs = blobs::Blobs::open(files, key.private_bytes());
        blobs.tidy(store.as_ref()).await?;
        // With other nodes: NATS carries their wake-ups. Whenever it
        // (re)connects, every device here drains its queue from the store,
        // and every cached device set and queue size is read again, in
        // case a notice was lost while it was away.
        let (cluster, reconnected) = match &config.nats_url {
            Some(url) => {
                let slot: Arc<std::sync::OnceLock<std::sync::Weak<Shared>>> = Arc::default();
                let on_reconnect = slot.clone();
                let cluster = cluster::Cluster::connect(url, move || {
                    if let Some(s) = on_reconnect.get().and_then(std::sync::Weak::upgrade) {
                        s.active.lock().expect("cache lock").clear();
                        s.usage.clear();
                        s.router.lag_all();
                    }
                })
                .await?;
                tracing::info!(nats = %cluster::redact(url), "several nodes: other nodes are told through NATS");
                (cluster, Some(slot))
            }
            None => (cluster::Cluster::alone(), None),
        };
        let server = Self::with_store(config, clock, store, key, blobs, cluster);
        if let Some(slot) = reconnected {
            let _ = slot.set(Arc::downgrade(&server.shared));
        }
        server.shared.cluster.listen(Arc::downgrade(&server.shared)).await?;
        Ok(server)
    }

    fn with_store(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn Store>,
        key: StaticKey,
        blobs: blobs::Blobs,
        cluster: cluster::Cluster,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        let links = links::Links::new(links::Caps {
            ref_batches: config.max_ref_batches,
            pairings: config.max_pairing_slots,
            approvals: config.max_held_approvals,
            per_source: config.rendezvous_per_source,
        });
        let limits = limits::Limits::new(&config);
        let shared = Arc::new(Shared {
            conn_limit: Arc::new(Semaphore::new(config.max_connections)),
            config,
            clock,
            store,
            key,
            router: router::Router::default(),
            links,
            limits,
            usage: writer::Usage::default(),
            activity: activity::Activity::default(),
            metrics: metrics::Metrics::default(),
            writer: tx,
            blobs,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            active: Mutex::default(),
            cluster,
            #[cfg(feature = "adversary")]
            adversary: std::sync::RwLock::default(),
        });
        // The writer is a task of the server's runtime: a send's push then
        // wakes its recipient's connection on the same worker, with no
        // thread switch between them (on one core, a writer thread of its
        // own cost two context switches per message before it was
        // delivered). Its commits no longer hold deliveries up (they are
        // pipelined, writer.rs), so that they wait their turn behind
        // connection tasks only lengthens the senders' answers, and makes
        // the groups larger under load. It holds the shared state weakly
        // and ends when the last sender (in `Shared`) is gone.
        tokio::spawn(writer::run(Arc::downgrade(&shared), rx));
        Self { shared }
    }

    /// The fingerprint clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.shared.key.public())
    }

    /// The store (for operator commands such as `token create`).
    pub fn store(&self) -> &dyn Store {
        self.shared.store.as_ref()
    }

    /// What the in-memory rendezvous tables (link refs, pairing slots, held
    /// approvals) hold now, and their estimated memory: for monitoring
    /// (also in `/metrics`) and for tests that try to fill them.
    pub fn rendezvous_footprint(&self) -> Footprint {
        self.shared.links.footprint(self.shared.clock.now_ms())
    }

    /// Makes a single-use registration token.
    pub async fn create_token(&self) -> Result<String, Error> {
        let mut raw = [0u8; 15];
        getrandom::fill(&mut raw).expect("OS randomness");
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        self.shared.store.add_token(&token, self.shared.clock.now_ms()).await?;
        Ok(token)
    }

    /// Serves plain HTTP on `listener` until `shutdown` resolves; then
    /// stops accepting, tells every connection "going away", lets in-flight
    /// writes finish and returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        self.serve_on(NoDelay(listener), addr, "http", shutdown).await
    }

    /// Serves the same routes as [`Server::serve`] over TLS (HTTPS, WSS).
    /// `tls` comes from [`Tls::start`].
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        tls: &Tls,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let listener = tls.listener(listener).map_err(|source| Error::Listen { addr: addr.clone(), source })?;
        self.serve_on(listener, addr, "https", shutdown).await
    }

    async fn serve_on<L>(
        &self,
        listener: L,
        addr: String,
        scheme: &'static str,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error>
    where
        L: axum::serve::Listener<Addr = std::net::SocketAddr>,
        for<'a> Peer: Connected<axum::serve::IncomingStream<'a, L>>,
    {
        let app = HttpRouter::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics_text))
            .route("/v1/ws", get(ws_upgrade))
            .with_state(self.shared.clone())
            .merge(blobs::http::router(self.shared.clone()))
            .merge(app::router());
        let sweeper = tokio::spawn(sweep_loop(self.clone()));
        let recorder = tokio::spawn(activity_loop(self.shared.clone()));
        tracing::info!(%addr, %scheme, version = VERSION, fingerprint = %self.fingerprint(), "tether-server listening");
        let token = self.shared.shutdown.clone();
        let app = app.into_make_service_with_connect_info::<Peer>();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    () = shutdown => token.cancel(),
                    () = token.cancelled() => {}
                }
            })
            .await;
        sweeper.abort();
        recorder.abort();
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        if tokio::time::timeout(std::time::Duration::from_secs(10), self.shared.tasks.wait()).await.is_err() {
            tracing::warn!("some connections did not close within 10 s");
        }
        self.shared.activity.flush(self.shared.store.as_ref()).await;
        result.map_err(|source| Error::Listen { addr, source })
    }

    /// Stops a running `serve` as if the shutdown future resolved.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Runs the inactivity rules and expiry once, at the clock's now.
    pub async fn sweep(&self) -> Result<SweepReport, Error> {
        let s = &self.shared;
        let now = s.clock.now_ms();
        let primary_limit = s.config.primary_inactive_days * DAY_MS;
        let companion_limit = s.config.companion_inactive_days * DAY_MS;
        let mut report = SweepReport::default();
        // The inactivity rules read when devices were last seen.
        s.activity.flush(s.store.as_ref()).await;
        for handle in s.store.handles().await? {
            let devices = s.store.devices(&handle).await?;
            let active: Vec<_> = devices.iter().filter(|d| d.removed_ms.is_none()).collect();
            let Some(primary) = active.iter().find(|d| d.device_id == 0) else {
                continue;
            };
            let primary_gone = now.saturating_sub(primary.active_ms) > primary_limit;
            for d in active.iter().filter(|d| d.device_id != 0) {
                // A connected device is active now, whatever the store says.
                let online = s.router.device(&handle, d.device_id).is_some();
                if primary_gone {
                    report.primary_inactive.push((handle.clone(), d.device_id));
                } else if !online && now.saturating_sub(d.active_ms) > companion_limit {
                    report.companion_inactive.push((handle.clone(), d.device_id));
                } else {
                    continue;
                }
                s.remove_device(&handle, d.device_id).await?;
            }
        }
        // Expiry deleted copies: the queue sizes are read from the store again.
        s.usage.clear();
        report.expired = s.store.expire(now.saturating_sub(s.config.envelope_ttl_days * DAY_MS)).await?;
        // Records first, then files: a crash in between leaves files
        // without records, which the next start deletes.
        let mut gone = s.store.expire_blobs(now).await?;
        gone.extend(s.store.drop_unread_blobs().await?);
        s.blobs.delete_all(&gone).await;
        report.blobs_deleted = gone.len() as u64;
        if report != SweepReport::default() {
            tracing::info!(
                primary_inactive = report.primary_inactive.len(),
                companion_inactive = report.companion_inactive.len(),
                expired = report.expired,
                blobs_deleted = report.blobs_deleted,
                "sweep"
            );
        }
        Ok(report)
    }
}

async fn activity_loop(s: Arc<Shared>) {
    let mut tick = tokio::time::interval(activity::FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        s.activity.flush(s.store.as_ref()).await;
    }
}

async fn sweep_loop(server: Server) {
    let mut tick = tokio::time::interval(server.shared.config.sweep_interval);
    loop {
        tick.tick().await;
        if let Err(e) = server.sweep().await {
            tracing::error!("sweep failed: {e}");
        }
    }
}

/// Body of `GET /healthz`.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    protocol: u16,
    /// The server key's fingerprint, as clients pin it.
    fingerprint: String,
}

/// `GET /healthz`: 200 when the store answers, 503 otherwise. Readable from
/// any origin (a browser extension checks the server before linking); it
/// holds nothing secret.
async fn healthz(State(s): State<Arc<Shared>>) -> (StatusCode, [(&'static str, &'static str); 1], Json<Health>) {
    let ok = s.store.ping().await.is_ok();
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if ok { "ok" } else { "store unavailable" };
    let fingerprint = Fingerprint::of(&s.key.public()).to_hex();
    let cors = [("access-control-allow-origin", "*")];
    (code, cors, Json(Health { status, version: VERSION, protocol: tether_proto::PROTOCOL_VERSION, fingerprint }))
}

/// `GET /metrics`: Prometheus text format.
async fn metrics_text(State(s): State<Arc<Shared>>) -> Response {
    if let Ok(depth) = s.store.queue_depth().await {
        s.metrics.queue_depth.set(depth as i64);
    }
    let f = s.links.footprint(s.clock.now_ms());
    s.metrics.rendezvous_entries.set(f.entries() as i64);
    s.metrics.rendezvous_bytes.set(f.bytes as i64);
    if let Ok((n, bytes)) = s.store.blob_totals().await {
        s.metrics.blobs_stored.set(n as i64);
        s.metrics.blob_bytes_stored.set(bytes as i64);
    }
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
        .into_response()
}

/// A plain TCP listener whose connections have no Nagle delay: frames are
/// small and already batched per flush (conn.rs); waiting for the peer's
/// delayed ACK would add up to 40 ms.
struct NoDelay(TcpListener);

impl axum::serve::Listener for NoDelay {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's accept, which waits out errors such as too many open files.
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        (tcp, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The TCP peer's address, for plain and TLS listeners alike.
#[derive(Debug, Clone, Copy)]
struct Peer(std::net::SocketAddr);

impl Connected<axum::serve::IncomingStream<'_, NoDelay>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, NoDelay>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<axum::serve::IncomingStream<'_, tls::TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// The client's address as the reverse proxy reports it, if the operator
/// named the header (`client_ip_header`): the last address of the header's
/// last line (a proxy appends the address it saw; what the client sent
/// comes before it).
fn client_ip(config: &Config, headers: &axum::http::HeaderMap) -> Option<std::net::IpAddr> {
    let name = config.client_ip_header.as_deref()?;
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    value.rsplit(',').next()?.trim().parse().ok()
}

/// `GET /v1/ws`: one WebSocket per device; Noise inside.
///
/// The opening handshake (RFC 6455 §4.2) is answered here rather than by
/// axum's `WebSocketUpgrade`, whose task wraps each connection's for its
/// whole life (some 700 bytes an idle device): the upgraded socket goes
/// straight to a task of our own (conn.rs), tracked for shutdown.
async fn ws_upgrade(
    State(s): State<Arc<Shared>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    mut req: Request,
) -> Response {
    use axum::http::{HeaderValue, Method, header};
    let headers = req.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
    };
    if req.method() != Method::GET || !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return (StatusCode::BAD_REQUEST, "a WebSocket upgrade is expected here").into_response();
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        let mut r = (StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 is expected").into_response();
        r.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return r;
    }
    let Some(accept) = headers.get(header::SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes())) else {
        return (StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing").into_response();
    };
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return (StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key").into_response();
    };
    let source = links::Source::of(client_ip(&s.config, headers).unwrap_or(peer.ip()));
    let Ok(permit) = s.conn_limit.clone().try_acquire_owned() else {
        s.metrics.error(ErrorCode::ServerBusy);
        return (StatusCode::SERVICE_UNAVAILABLE, "server_busy").into_response();
    };
    if s.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "going_away").into_response();
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_write_buffer_size(4 * tether_proto::noise::MAX_NOISE_MESSAGE)
        // Larger than any Noise message, so an oversize frame reaches us and
        // gets a `frame_too_large` answer rather than a bare close.
        .max_message_size(Some(s.config.max_frame_bytes.max(tether_proto::noise::MAX_NOISE_MESSAGE) * 2));
    let upgrade = conn::Upgrade { on: hyper::upgrade::on(&mut req), config };
    s.tasks.spawn(conn::run(s.clone(), upgrade, source, permit));
    let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    r
}
