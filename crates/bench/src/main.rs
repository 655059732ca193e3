//! `tether-bench`: a load generator for `tether-server`, normally run by
//! `cargo xtask bench server` (which builds and starts the server, pins the
//! two processes to their own CPU and prints the table). Loopback only.
//!
//! In order:
//! 1. registers `--pairs` sender/receiver accounts and sends a little
//!    warm-up traffic;
//! 2. registers `--idle` accounts, one device each, and disconnects them;
//!    then connects those devices again (a full Noise handshake each, the
//!    server knowing each by its key), keeps them open (each pings every
//!    `--idle-ping-secs`, as real clients do) and reads the server's RSS
//!    before and after: what an idle, authenticated device costs it;
//! 3. fixed rate: `--rate` messages/s in total for `--seconds`, open loop:
//!    every send has an intended time on a timer, and latency is measured
//!    from that intended time to the receiver reading the envelope, so a
//!    stall is charged to every message it delays (no coordinated omission);
//! 4. max throughput: every sender keeps `--window` sends outstanding for
//!    `--seconds`; deliveries are counted at the receivers;
//!
//! then writes every number as JSON (`--out`, else stdout).

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use prost::Message as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tether_proto::Fingerprint;
use tether_proto::device_list::AccountKey;
use tether_proto::frames::{
    self, Ack, ClientFrame, ClientHello, DeviceEntry, DeviceList, Event, EventBody, Ping, Register, Request, Response,
    SendMessage, ServerBody, ServerFrame,
};
use tether_proto::noise::{ClientHandshake, StaticKey, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Load generator for tether-server (loopback only).
#[derive(Debug, Clone, Parser)]
#[command(name = "tether-bench", version, about)]
struct Args {
    /// The server's address, HOST:PORT on a loopback interface.
    #[arg(long)]
    addr: String,
    /// Another node of the same cluster (HOST:PORT on loopback): receivers
    /// connect there, senders to `--addr`, so every message crosses nodes.
    #[arg(long)]
    receiver_addr: Option<String>,
    /// The server's process id: its RSS and CPU time are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Idle connections to open and hold.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Sender/receiver account pairs.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Total messages per second in the fixed-rate phase.
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// Length of each message phase, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Ciphertext bytes per message.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Sends outstanding per sender in the max-throughput phase.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Idle connections ping this often (the server closes connections
    /// silent for its idle_timeout, 90 s by default).
    #[arg(long, default_value_t = 20)]
    idle_ping_secs: u64,
    /// Loopback source addresses the idle connections are spread over
    /// (127.0.0.1, 127.0.0.2, ...): each has its own range of ephemeral
    /// ports, about 28,000 on Linux by default.
    #[arg(long, default_value_t = 1)]
    source_ips: usize,
    /// Handshakes in flight while opening the idle connections.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Diagnostic: receivers never acknowledge (copies stay stored), to see
    /// what the acks' own transactions cost.
    #[arg(long)]
    no_ack: bool,
    /// Write the JSON report here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The server at --addr is tether-floor (a bare WebSocket forwarder: no
    /// Noise, no store), measured the same way as the floor tether-server
    /// is compared to.
    #[arg(long)]
    floor: bool,
    /// Also a fixed-rate phase at this rate (messages/s in total), before
    /// the one at --rate.
    #[arg(long)]
    low_rate: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn log(msg: impl AsRef<str>) {
    eprintln!("tether-bench: {}", msg.as_ref());
}

// ------------------------------------------------------------------ phases

const PHASE_WARMUP: u8 = 0;
const PHASE_FIXED: u8 = 1;
const PHASE_MAX: u8 = 2;
const PHASE_LOW: u8 = 3;
const PHASES: usize = 4;

/// Intended send time (ns since EPOCH), sequence number, phase, pair.
const HEADER: usize = 21;

/// Most time any phase may take beyond its nominal length.
const GRACE: Duration = Duration::from_secs(15);

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "p50": h.value_at_quantile(0.50),
        "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "max": h.max(),
        "mean": (h.mean() * 10.0).round() / 10.0,
    })
}

/// The latency distribution as (percentile, µs) points, for the bench's
/// picture: from the median to the last one in a million.
fn curve(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!([]);
    }
    let points: Vec<Value> = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1.0]
        .iter()
        .map(|&q| json!([q * 100.0, h.value_at_quantile(q)]))
        .collect();
    json!(points)
}

fn payload(size: usize, intended: Instant, seq: u64, phase: u8, pair: u32) -> Vec<u8> {
    let mut p = vec![0xA5u8; size.max(HEADER)];
    let ns = intended.saturating_duration_since(epoch()).as_nanos() as u64;
    p[0..8].copy_from_slice(&ns.to_le_bytes());
    p[8..16].copy_from_slice(&seq.to_le_bytes());
    p[16] = phase;
    p[17..21].copy_from_slice(&pair.to_le_bytes());
    p
}

/// (intended send time, sequence number, phase) of a bench ciphertext.
fn parse_payload(p: &[u8]) -> Option<(Instant, u64, usize)> {
    if p.len() < HEADER || usize::from(p[16]) >= PHASES {
        return None;
    }
    let ns = u64::from_le_bytes(p[0..8].try_into().ok()?);
    let seq = u64::from_le_bytes(p[8..16].try_into().ok()?);
    Some((epoch() + Duration::from_nanos(ns), seq, usize::from(p[16])))
}

fn send_request(to: &str, pair: u32, phase: u8, seq: u64, size: usize, intended: Instant) -> Request {
    let mut message_id = [0u8; 16];
    message_id[0..4].copy_from_slice(&pair.to_le_bytes());
    message_id[4] = phase;
    message_id[5..13].copy_from_slice(&seq.to_le_bytes());
    Request::Send(SendMessage {
        message_id: message_id.to_vec(),
        copies: vec![frames::Copy {
            handle: to.to_string(),
            device_id: 0,
            ciphertext: payload(size, intended, seq, phase, pair),
            list_version: 0,
        }],
        blob_ids: vec![],
        ..Default::default()
    })
}

// ---------------------------------------------------------------- a client

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type WsItem = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

/// One connection: Noise over WebSocket (to tether-floor: frames in the
/// clear, `transport` None).
struct Conn {
    ws: Ws,
    transport: Option<Transport>,
    next_id: u64,
}

/// Opens the WebSocket; `small` keeps the client's buffers small (for the
/// idle connections); `from`, the local address to connect from (each
/// loopback source address has its own range of ephemeral ports).
async fn ws_connect(url: &str, small: bool, from: Option<IpAddr>) -> Result<Ws, String> {
    let config = if small {
        WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(4096)
    } else {
        WebSocketConfig::default()
    };
    let Some(from) = from else {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .map_err(|e| format!("websocket connect: {e}"))?;
        return Ok(ws);
    };
    let to: SocketAddr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|host| host.parse().ok())
        .ok_or_else(|| format!("{url}: not ws://IP:PORT/..."))?;
    let socket =
        if to.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|e| format!("socket: {e}"))?;
    socket.bind(SocketAddr::new(from, 0)).map_err(|e| format!("bind {from}: {e}"))?;
    let tcp = socket.connect(to).await.map_err(|e| format!("connect from {from}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(tcp), Some(config))
        .await
        .map_err(|e| format!("websocket connect: {e}"))?;
    Ok(ws)
}

impl Conn {
    /// Connects and completes the Noise handshake against the pinned key.
    /// `small` keeps the client's buffers small (for the idle connections).
    async fn connect(
        url: &str,
        key: &StaticKey,
        pin: Fingerprint,
        small: bool,
        from: Option<IpAddr>,
    ) -> Result<Conn, String> {
        let mut ws = ws_connect(url, small, from).await?;
        let (expect, m1) = ClientHandshake::start(key, Some(pin)).map_err(|e| e.to_string())?;
        ws.send(Message::Binary(m1.into())).await.map_err(|e| format!("handshake send: {e}"))?;
        let m2 = loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => break b,
                Some(Ok(Message::Close(f))) => {
                    return Err(format!(
                        "closed during the handshake: {}",
                        f.map(|f| f.reason.to_string()).unwrap_or_default()
                    ));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("handshake read: {e}")),
                None => return Err("closed during the handshake".into()),
            }
        };
        let verified = expect.handle(&m2).map_err(|e| e.to_string())?;
        let (transport, m3) = verified
            .finish(&ClientHello { client_version: format!("tether-bench {}", env!("CARGO_PKG_VERSION")) })
            .map_err(|e| e.to_string())?;
        ws.send(Message::Binary(m3.into())).await.map_err(|e| format!("handshake send: {e}"))?;
        Ok(Conn { ws, transport: Some(transport), next_id: 1 })
    }

    /// Connects to tether-floor as `name` (no handshake: a text hello).
    async fn connect_floor(url: &str, name: &str, small: bool, from: Option<IpAddr>) -> Result<Conn, String> {
        let mut ws = ws_connect(url, small, from).await?;
        ws.send(Message::Text(name.into())).await.map_err(|e| format!("hello: {e}"))?;
        Ok(Conn { ws, transport: None, next_id: 1 })
    }

    /// Closes the WebSocket (a close frame, then the end of the socket).
    async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Queues one request; `flush` sends what is queued.
    async fn feed(&mut self, req: Request) -> Result<u64, String> {
        let id = self.next_id;
        self.next_id += 1;
        let plain = ClientFrame { id, request: Some(req) }.encode_to_vec();
        let msg = match &mut self.transport {
            Some(t) => t.encrypt(&plain).map_err(|e| e.to_string())?,
            None => plain,
        };
        self.ws.feed(Message::Binary(msg.into())).await.map_err(|e| format!("send: {e}"))?;
        Ok(id)
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.ws.flush().await.map_err(|e| format!("send: {e}"))
    }

    async fn request(&mut self, req: Request) -> Result<u64, String> {
        let id = self.feed(req).await?;
        self.flush().await?;
        Ok(id)
    }

    /// Decrypts one WebSocket message; `Ok(None)` for control messages.
    fn open(&mut self, item: WsItem) -> Result<Option<ServerBody>, String> {
        match item {
            Some(Ok(Message::Binary(b))) => {
                let frame = match &mut self.transport {
                    Some(t) => {
                        let plain = t.decrypt(&b).map_err(|e| format!("decrypt: {e}"))?;
                        ServerFrame::decode(plain.as_slice())
                    }
                    None => ServerFrame::decode(b.as_ref()),
                }
                .map_err(|e| format!("decode: {e}"))?;
                Ok(frame.body)
            }
            Some(Ok(Message::Close(f))) => {
                Err(format!("server closed the connection: {}", f.map(|f| f.reason.to_string()).unwrap_or_default()))
            }
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => Err(format!("socket: {e}")),
            None => Err("socket closed".into()),
        }
    }

    /// The response to `id` (10 s at most); events meanwhile are dropped.
    async fn response(&mut self, id: u64) -> Result<Response, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let item = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| format!("no response to request {id} within 10 s"))?;
            if let Some(ServerBody::Response(r)) = self.open(item)?
                && r.id == id
            {
                return Ok(r);
            }
        }
    }
}

/// Connects with the device key `key` and registers `handle` with it
/// (device 0).
async fn register(
    url: &str,
    pin: Fingerprint,
    handle: String,
    key: &StaticKey,
    small: bool,
    from: Option<IpAddr>,
) -> Result<Conn, String> {
    let mut c = Conn::connect(url, key, pin, small, from).await?;
    let account = AccountKey::from_seed(StaticKey::generate().private_bytes());
    let now = unix_ms();
    let list = DeviceList {
        handle: handle.clone(),
        version: 1,
        devices: vec![DeviceEntry {
            device_id: 0,
            noise_key: key.public().to_vec(),
            // Olm keys are the clients' business: any 32 bytes do here.
            identity_key: vec![1; 32],
            signing_key: vec![2; 32],
            platform: "bench/linux".into(),
            name: "tether-bench".into(),
            linked_at_ms: now,
            self_signature: vec![],
        }],
        issued_at_ms: now,
    };
    let id = c
        .request(Request::Register(Register {
            handle: handle.clone(),
            account_key: account.public().to_vec(),
            device_list: Some(account.sign(&list)),
            token: String::new(),
        }))
        .await?;
    let r = c.response(id).await?;
    match r.error {
        Some(e) => Err(format!("register {handle}: {} ({})", e.code, e.message)),
        None => Ok(c),
    }
}

// ---------------------------------------------------------------- senders

/// What one sender saw in one phase.
struct SendStats {
    sent: u64,
    accepted: u64,
    accepted_in_window: u64,
    errors: BTreeMap<String, u64>,
    /// Intended send time (fixed rate) or send time (max) to the `Sent`
    /// response, which the server gives once the copy is durable.
    ack_hist: Histogram<u64>,
    failure: Option<String>,
}

impl SendStats {
    fn new() -> Self {
        Self {
            sent: 0,
            accepted: 0,
            accepted_in_window: 0,
            errors: BTreeMap::new(),
            ack_hist: histogram(),
            failure: None,
        }
    }

    fn on_response(
        &mut self,
        r: Response,
        at: Instant,
        window_end: Option<Instant>,
        inflight: &mut VecDeque<(u64, Instant)>,
    ) {
        let Some(pos) = inflight.iter().position(|(id, _)| *id == r.id) else {
            return;
        };
        let (_, from) = inflight.remove(pos).expect("position is valid");
        match r.error {
            Some(e) => *self.errors.entry(e.code).or_default() += 1,
            None => {
                self.accepted += 1;
                if window_end.is_none_or(|end| at <= end) {
                    self.accepted_in_window += 1;
                }
                self.ack_hist.saturating_record(micros(at.saturating_duration_since(from)).max(1));
            }
        }
    }
}

/// Resolves at `at` to within a few µs. tokio's timer wakes on whole
/// milliseconds, after the deadline: sleeping on it alone would make every
/// send up to a millisecond late, and that lateness, charged to the
/// message (latency is counted from the intended time), would hide the
/// server's own. So it sleeps to a millisecond before, then yields to the
/// other tasks until the time comes.
async fn on_time(at: Instant) {
    let early = Duration::from_micros(1500);
    if let Some(t) = at.checked_sub(early).filter(|&t| t > Instant::now()) {
        tokio::time::sleep_until(t.into()).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}

/// Open loop: send number k at `first + k * interval`, whatever happened to
/// the sends before it.
#[allow(clippy::too_many_arguments)]
async fn fixed_sender(
    mut c: Conn,
    to: String,
    pair: u32,
    phase: u8,
    first: Instant,
    interval: Duration,
    count: u64,
    size: usize,
) -> (Conn, SendStats) {
    let mut st = SendStats::new();
    let mut inflight: VecDeque<(u64, Instant)> = VecDeque::new();
    let give_up = first + interval * count.min(u64::from(u32::MAX)) as u32 + GRACE;
    let mut k = 0u64;
    while k < count || !inflight.is_empty() {
        let next = first + Duration::from_nanos(interval.as_nanos() as u64 * k);
        tokio::select! {
            biased;
            () = on_time(next), if k < count => {
                match c.request(send_request(&to, pair, phase, k, size, next)).await {
                    Ok(id) => {
                        inflight.push_back((id, next));
                        st.sent += 1;
                    }
                    Err(e) => {
                        st.failure = Some(e);
                        break;
                    }
                }
                k += 1;
            }
            item = c.ws.next() => {
                let at = Instant::now();
                match c.open(item) {
                    Ok(Some(ServerBody::Response(r))) => st.on_response(r, at, None, &mut inflight),
                    Ok(_) => {}
                    Err(e) => {
                        st.failure = Some(e);
                        break;
                    }
                }
            }
            () = tokio::time::sleep_until(give_up.into()) => {
                st.failure = Some(format!("{} sends unanswered at the end", inflight.len()));
                break;
            }
        }
    }
    (c, st)
}

/// Closed loop: keep `window` sends outstanding from `start` until `end`.
#[allow(clippy::too_many_arguments)]
async fn max_sender(
    mut c: Conn,
    to: String,
    pair: u32,
    phase: u8,
    start: Instant,
    end: Instant,
    window: usize,
    size: usize,
) -> (Conn, SendStats) {
    let mut st = SendStats::new();
    let mut inflight: VecDeque<(u64, Instant)> = VecDeque::new();
    let give_up = end + GRACE;
    let mut seq = 0u64;
    tokio::time::sleep_until(start.into()).await;
    loop {
        let now = Instant::now();
        if now < end && inflight.len() < window {
            while inflight.len() < window {
                match c.feed(send_request(&to, pair, phase, seq, size, now)).await {
                    Ok(id) => inflight.push_back((id, now)),
                    Err(e) => {
                        st.failure = Some(e);
                        return (c, st);
                    }
                }
                seq += 1;
                st.sent += 1;
            }
            if let Err(e) = c.flush().await {
                st.failure = Some(e);
                return (c, st);
            }
        }
        if now >= end && inflight.is_empty() {
            break;
        }
        tokio::select! {
            item = c.ws.next() => {
                let mut items = vec![(Instant::now(), item)];
                while items.len() < window {
                    match c.ws.next().now_or_never() {
                        Some(item) => items.push((Instant::now(), item)),
                        None => break,
                    }
                }
                for (at, item) in items {
                    match c.open(item) {
                        Ok(Some(ServerBody::Response(r))) => {
                            st.on_response(r, at, Some(end), &mut inflight)
                        }
                        Ok(_) => {}
                        Err(e) => {
                            st.failure = Some(e);
                            return (c, st);
                        }
                    }
                }
            }
            () = tokio::time::sleep_until(end.into()), if now < end => {}
            () = tokio::time::sleep_until(give_up.into()) => {
                st.failure = Some(format!("{} sends unanswered at the end", inflight.len()));
                break;
            }
        }
    }
    (c, st)
}

// -------------------------------------------------------------- receivers

struct PhaseRecv {
    /// Intended send time to reception, µs.
    hist: Histogram<u64>,
    received: u64,
    /// Received before the phase's window ended (max throughput).
    in_window: u64,
    /// Envelopes that arrived with a sequence number not above the last.
    out_of_order: u64,
    /// Ack requests sent (each is its own SQLite transaction on the server).
    acks: u64,
}

/// What all receivers saw (one lock: the runtime has one thread).
struct Recv {
    phases: Vec<PhaseRecv>,
    window_end: [Option<Instant>; PHASES],
    errors: BTreeMap<String, u64>,
    failures: Vec<String>,
}

impl Recv {
    fn new() -> Self {
        Self {
            phases: (0..PHASES)
                .map(|_| PhaseRecv { hist: histogram(), received: 0, in_window: 0, out_of_order: 0, acks: 0 })
                .collect(),
            window_end: [None; PHASES],
            errors: BTreeMap::new(),
            failures: Vec::new(),
        }
    }
}

/// Reads envelopes until told to stop; acknowledges whatever arrived
/// together in one Ack.
async fn receiver(mut c: Conn, shared: Arc<Mutex<Recv>>, mut stop: watch::Receiver<bool>, ack: bool) {
    let mut last: [Option<u64>; PHASES] = [None; PHASES];
    loop {
        let first = tokio::select! {
            _ = stop.changed() => return,
            item = c.ws.next() => item,
        };
        let mut items = vec![(Instant::now(), first)];
        while items.len() < 512 {
            match c.ws.next().now_or_never() {
                Some(item) => items.push((Instant::now(), item)),
                None => break,
            }
        }
        let mut acks = Vec::new();
        let mut ack_phase = usize::from(PHASE_WARMUP);
        {
            let mut s = shared.lock().expect("stats lock");
            for (at, item) in items {
                match c.open(item) {
                    Ok(Some(ServerBody::Event(Event { body: Some(EventBody::Envelope(e)) }))) => {
                        acks.push(e.envelope_id);
                        let Some((intended, seq, phase)) = parse_payload(&e.ciphertext) else {
                            continue;
                        };
                        ack_phase = phase;
                        let end = s.window_end[phase];
                        let p = &mut s.phases[phase];
                        p.received += 1;
                        if end.is_none_or(|end| at <= end) {
                            p.in_window += 1;
                        }
                        p.hist.saturating_record(micros(at.saturating_duration_since(intended)).max(1));
                        if last[phase].is_some_and(|l| seq <= l) {
                            p.out_of_order += 1;
                        }
                        last[phase] = Some(seq);
                    }
                    Ok(Some(ServerBody::Response(r))) => {
                        if let Some(e) = r.error {
                            *s.errors.entry(e.code).or_default() += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        s.failures.push(e);
                        return;
                    }
                }
            }
        }
        if ack && !acks.is_empty() {
            if let Err(e) = c.request(Request::Ack(Ack { envelope_ids: acks })).await {
                shared.lock().expect("stats lock").failures.push(e);
                return;
            }
            shared.lock().expect("stats lock").phases[ack_phase].acks += 1;
        }
    }
}

// ----------------------------------------------------------- idle clients

/// Holds one idle connection: answers nothing, pings every `every`.
async fn idle_conn(
    mut c: Conn,
    first_ping: Instant,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    alive: Arc<AtomicUsize>,
    pings: Arc<AtomicU64>,
    lost: Arc<Mutex<Vec<String>>>,
) {
    let mut next = first_ping;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep_until(next.into()) => {
                next += every;
                if let Err(e) = c.request(Request::Ping(Ping {})).await {
                    lost.lock().expect("lost lock").push(e);
                    break;
                }
                pings.fetch_add(1, Ordering::Relaxed);
            }
            item = c.ws.next() => {
                if let Err(e) = c.open(item) {
                    lost.lock().expect("lost lock").push(e);
                    break;
                }
            }
        }
    }
    alive.fetch_sub(1, Ordering::Relaxed);
}

// -------------------------------------------------------------- /proc, HTTP

/// The VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

fn threads(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:"))?.trim().parse().ok()
}

/// utime + stime of a process (all threads), in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// CPU time of the server and of this process over a stretch of wall time.
struct CpuMark {
    at: Instant,
    server: Option<u64>,
    me: Option<u64>,
}

impl CpuMark {
    fn now(pid: Option<u32>) -> Self {
        Self { at: Instant::now(), server: pid.and_then(|p| cpu_ticks(&p.to_string())), me: cpu_ticks("self") }
    }

    /// (server %, bench %) of one core between `self` and `later`.
    fn share(&self, later: &CpuMark, tck: u64) -> (Option<f64>, Option<f64>, f64) {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        let pct = |a: Option<u64>, b: Option<u64>| Some(((b? - a?) as f64 / tck as f64 / wall * 1000.0).round() / 10.0);
        (pct(self.server, later.server), pct(self.me, later.me), wall)
    }
}

/// A plain HTTP/1.1 GET; returns (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let work = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .map_err(|_| format!("GET {path}: no answer within 30 s"))?
        .map_err(|e| format!("GET {path}: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("GET {path}: not an HTTP response"))?;
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("GET {path}: no status"))?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Every sample of a Prometheus text page: "name{labels}" -> value.
async fn scrape(addr: SocketAddr) -> Result<BTreeMap<String, f64>, String> {
    let (status, body) = http_get(addr, "/metrics").await?;
    if status != 200 {
        return Err(format!("GET /metrics: status {status}"));
    }
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect())
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, name: &str) -> u64 {
    let get = |m: &BTreeMap<String, f64>| m.get(name).copied().unwrap_or(0.0);
    (get(after) - get(before)).max(0.0) as u64
}

/// Error responses counted by the server between two scrapes, by code.
fn error_deltas(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, u64> {
    after
        .keys()
        .filter(|k| k.starts_with("tether_errors_total{"))
        .filter_map(|k| {
            let n = delta(before, after, k);
            let code = k.split('"').nth(1).unwrap_or(k).to_string();
            (n > 0).then_some((code, n))
        })
        .collect()
}

fn store_summary(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> Value {
    let batches = delta(before, after, "tether_store_batches_total");
    let stored = delta(before, after, "tether_envelopes_stored_total");
    json!({
        "store_batches": batches,
        "envelopes_stored": stored,
        "envelopes_delivered": delta(before, after, "tether_envelopes_delivered_total"),
        "envelopes_acked": delta(before, after, "tether_envelopes_acked_total"),
        "acked_before_commit": delta(before, after, "tether_acked_before_commit_total"),
        "msgs_per_batch": if batches > 0 { ((stored as f64 / batches as f64) * 10.0).round() / 10.0 } else { 0.0 },
        "server_errors": error_deltas(before, after),
    })
}

// -------------------------------------------------------------------- run

async fn run(a: Args) -> Result<(), String> {
    let addr: SocketAddr = a.addr.parse().map_err(|e| format!("--addr {}: {e}", a.addr))?;
    if !addr.ip().is_loopback() {
        return Err(format!("--addr must be a loopback address, not {addr}"));
    }
    if !(1..=1000).contains(&a.pairs) {
        return Err("--pairs must be 1 to 1000".into());
    }
    if !(1..=300).contains(&a.seconds) {
        return Err("--seconds must be 1 to 300".into());
    }
    if !(HEADER + 11..=60_000).contains(&a.size) {
        return Err(format!("--size must be {} to 60000 bytes", HEADER + 11));
    }
    if a.rate == 0 || a.rate > 10_000_000 || a.low_rate.is_some_and(|r| r == 0 || r > 10_000_000) {
        return Err("--rate and --low-rate must be 1 to 10000000".into());
    }
    if a.floor && a.receiver_addr.is_some() {
        return Err("--floor measures one forwarder: no --receiver-addr".into());
    }
    if a.idle > 1_000_000 || a.window == 0 || a.window > 10_000 || a.connect_concurrency == 0 {
        return Err("--idle at most 1000000; --window 1 to 10000; --connect-concurrency at least 1".into());
    }
    if a.source_ips == 0 || a.source_ips > 254 || (a.source_ips > 1 && !addr.ip().is_ipv4()) {
        return Err("--source-ips is 1 to 254 (127.0.0.1 up), and more than 1 needs an IPv4 --addr".into());
    }
    epoch();
    let tck = clock_ticks_per_sec();
    let pid = a.server_pid;
    let url = format!("ws://{addr}/v1/ws");

    // The server's key, as /healthz reports it (the floor has neither).
    let floor = a.floor;
    let (health, pin) = if floor {
        (Value::Null, Fingerprint([0; 32]))
    } else {
        let (status, body) = http_get(addr, "/healthz").await?;
        let health: Value = serde_json::from_str(&body).map_err(|e| format!("/healthz: {e}"))?;
        if status != 200 {
            return Err(format!("/healthz answered {status}: {body}"));
        }
        let pin =
            health["fingerprint"].as_str().and_then(Fingerprint::parse).ok_or("/healthz has no 64-hex fingerprint")?;
        (health, pin)
    };
    // The floor has no metrics.
    let scrape = |addr: SocketAddr| async move { if floor { Ok(BTreeMap::new()) } else { scrape(addr).await } };
    // Receivers on another node, if given: the same server key there.
    let receiver_url = match &a.receiver_addr {
        Some(other) => {
            let other: SocketAddr = other.parse().map_err(|e| format!("--receiver-addr {other}: {e}"))?;
            if !other.ip().is_loopback() {
                return Err(format!("--receiver-addr must be a loopback address, not {other}"));
            }
            let (status, body) = http_get(other, "/healthz").await?;
            let h: Value = serde_json::from_str(&body).map_err(|e| format!("/healthz of {other}: {e}"))?;
            if status != 200 || h["fingerprint"] != health["fingerprint"] {
                return Err(format!(
                    "{other} is not a healthy node of the same server (its /healthz: {status} {body})"
                ));
            }
            format!("ws://{other}/v1/ws")
        }
        None => url.clone(),
    };
    let metrics_start = scrape(addr).await?;

    // ---- accounts
    let tag: String = StaticKey::generate().public()[..3].iter().map(|b| format!("{b:02x}")).collect();
    log(format!("registering {} sender/receiver pairs", a.pairs));
    let t = Instant::now();
    let handles: Vec<(String, String)> =
        (0..a.pairs).map(|i| (format!("bench{tag}s{i}"), format!("bench{tag}r{i}"))).collect();
    let registered: Vec<Result<(Conn, Conn), String>> = futures_util::stream::iter(handles.clone())
        .map(|(s, r)| {
            let (url, receiver_url) = (url.clone(), receiver_url.clone());
            async move {
                if floor {
                    return Ok((
                        Conn::connect_floor(&url, &s, false, None).await?,
                        Conn::connect_floor(&url, &r, false, None).await?,
                    ));
                }
                let sender = register(&url, pin, s, &StaticKey::generate(), false, None).await?;
                let receiver = register(&receiver_url, pin, r, &StaticKey::generate(), false, None).await?;
                Ok((sender, receiver))
            }
        })
        .buffered(8)
        .collect()
        .await;
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for r in registered {
        let (s, r) = r?;
        senders.push(s);
        receivers.push(r);
    }
    log(format!("registered {} accounts in {:.1} s", 2 * a.pairs, t.elapsed().as_secs_f64()));

    let recv = Arc::new(Mutex::new(Recv::new()));
    let (stop_recv, stop_rx) = watch::channel(false);
    let receiver_tasks: Vec<_> =
        receivers.into_iter().map(|c| tokio::spawn(receiver(c, recv.clone(), stop_rx.clone(), !a.no_ack))).collect();

    // Sends `phase` traffic with every sender at once; returns the stats.
    async fn all_senders<F, Fut>(senders: &mut Vec<Conn>, f: F) -> Vec<SendStats>
    where
        F: Fn(Conn, usize) -> Fut,
        Fut: std::future::Future<Output = (Conn, SendStats)> + Send + 'static,
    {
        let tasks: Vec<_> = senders.drain(..).enumerate().map(|(i, c)| tokio::spawn(f(c, i))).collect();
        let mut out = Vec::new();
        for t in tasks {
            let (c, st) = t.await.expect("sender task");
            senders.push(c);
            out.push(st);
        }
        out
    }

    // Waits until the receivers got `expected` copies of `phase` (or GRACE).
    async fn drain(recv: &Arc<Mutex<Recv>>, phase: u8, expected: u64) -> u64 {
        let give_up = Instant::now() + GRACE;
        loop {
            let got = recv.lock().expect("stats lock").phases[usize::from(phase)].received;
            if got >= expected || Instant::now() >= give_up {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn totals(stats: &[SendStats]) -> (u64, u64, u64, Histogram<u64>, BTreeMap<String, u64>, Vec<String>) {
        let mut h = histogram();
        let mut errors = BTreeMap::new();
        let mut failures = Vec::new();
        let (mut sent, mut accepted, mut in_window) = (0, 0, 0);
        for s in stats {
            sent += s.sent;
            accepted += s.accepted;
            in_window += s.accepted_in_window;
            h.add(&s.ack_hist).expect("same bounds");
            for (k, v) in &s.errors {
                *errors.entry(k.clone()).or_default() += v;
            }
            failures.extend(s.failure.clone());
        }
        (sent, accepted, in_window, h, errors, failures)
    }

    // ---- warm-up: one second of windowed traffic (not reported)
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs(1);
    let size = a.size;
    let stats = all_senders(&mut senders, |c, i| {
        let to = handles[i].1.clone();
        max_sender(c, to, i as u32, PHASE_WARMUP, start, end, 4, size)
    })
    .await;
    let (_, accepted, _, _, _, failures) = totals(&stats);
    if let Some(f) = failures.first() {
        return Err(format!("warm-up: {f}"));
    }
    drain(&recv, PHASE_WARMUP, accepted).await;
    log(format!("warm-up: {accepted} messages"));

    // ---- idle connections: devices of their own accounts, registered
    // first (and disconnected), so that what is measured is what an idle,
    // authenticated device's connection costs the server.
    let from = |i: usize| (a.source_ips > 1).then(|| IpAddr::from([127, 0, 0, 1 + (i % a.source_ips) as u8]));
    let idle_keys: Vec<StaticKey> = (0..a.idle).map(|_| StaticKey::generate()).collect();
    let idle_handles: Vec<String> = (0..a.idle).map(|i| format!("idle{tag}_{i}")).collect();
    let mut register_secs = None;
    if !floor && a.idle > 0 {
        log(format!("registering {} idle devices' accounts", a.idle));
        let t = Instant::now();
        let done: Vec<Result<(), String>> = futures_util::stream::iter(0..a.idle)
            .map(|i| {
                let (url, key, handle) = (url.clone(), &idle_keys[i], idle_handles[i].clone());
                async move {
                    let c = register(&url, pin, handle, key, true, from(i)).await?;
                    c.close().await;
                    Ok(())
                }
            })
            .buffer_unordered(a.connect_concurrency)
            .collect()
            .await;
        if let Some(Err(e)) = done.into_iter().find(Result::is_err) {
            return Err(format!("registering idle devices: {e}"));
        }
        register_secs = Some(t.elapsed().as_secs_f64());
        // Let the closed connections' tasks end before the baseline.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let rss_before = pid.and_then(rss_kib);
    log(format!(
        "opening {} idle connections (server RSS before: {} KiB)",
        a.idle,
        rss_before.map(|r| r.to_string()).unwrap_or("?".into())
    ));
    // In two halves, the server's RSS read between them: the second half's
    // growth per connection is the marginal cost, free of what the server
    // holds once whatever the number (caches, the handshakes' high-water
    // mark of transient memory).
    let open = |range: std::ops::Range<usize>| {
        futures_util::stream::iter(range)
            .map(|i| {
                let (url, key, name) = (url.clone(), &idle_keys[i], &idle_handles[i]);
                async move {
                    let connect = async {
                        if floor {
                            Conn::connect_floor(&url, name, true, from(i)).await
                        } else {
                            Conn::connect(&url, key, pin, true, from(i)).await
                        }
                    };
                    tokio::time::timeout(Duration::from_secs(30), connect)
                        .await
                        .unwrap_or_else(|_| Err("handshake timed out (30 s)".into()))
                }
            })
            .buffer_unordered(a.connect_concurrency)
            .collect::<Vec<Result<Conn, String>>>()
    };
    let half = a.idle / 2;
    let t = Instant::now();
    let mut opened = open(0..half).await;
    let mut connect_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_half = pid.and_then(rss_kib);
    let opened_half = opened.iter().filter(|c| c.is_ok()).count();
    let t = Instant::now();
    opened.extend(open(half..a.idle).await);
    connect_secs += t.elapsed().as_secs_f64();
    let mut idle_failures: BTreeMap<String, u64> = BTreeMap::new();
    let alive = Arc::new(AtomicUsize::new(0));
    let pings = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(Mutex::new(Vec::new()));
    let (stop_idle, stop_idle_rx) = watch::channel(false);
    let every = Duration::from_secs(a.idle_ping_secs.max(1));
    let idle_start = Instant::now();
    let mut idle_tasks = Vec::new();
    for (i, c) in opened.into_iter().enumerate() {
        match c {
            Ok(c) => {
                alive.fetch_add(1, Ordering::Relaxed);
                // Spread the pings over the period.
                let first = idle_start + every / 2 + every.mul_f64((i % 1000) as f64 / 2000.0);
                idle_tasks.push(tokio::spawn(idle_conn(
                    c,
                    first,
                    every,
                    stop_idle_rx.clone(),
                    alive.clone(),
                    pings.clone(),
                    lost.clone(),
                )));
            }
            Err(e) => *idle_failures.entry(e).or_default() += 1,
        }
    }
    let idle_open = alive.load(Ordering::Relaxed);
    log(format!(
        "{idle_open} idle connections open in {connect_secs:.1} s ({:.0} handshakes/s){}",
        idle_open as f64 / connect_secs.max(1e-9),
        if idle_failures.is_empty() { String::new() } else { format!(", failures: {idle_failures:?}") }
    ));
    // Let the server settle (buffers freed, tasks parked), then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = pid.and_then(rss_kib);
    let metrics_idle = scrape(addr).await?;
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if idle_open > 0 => Some(((a as f64 - b as f64) / idle_open as f64 * 100.0).round() / 100.0),
        _ => None,
    };
    let marginal = match (rss_half, rss_after) {
        (Some(h), Some(a)) if idle_open > opened_half => {
            Some(((a as f64 - h as f64) / (idle_open - opened_half) as f64 * 100.0).round() / 100.0)
        }
        _ => None,
    };
    log(format!(
        "server RSS {} -> {} -> {} KiB: {} KiB per idle connection on average, {} KiB each of the second half",
        rss_before.map(|r| r.to_string()).unwrap_or("?".into()),
        rss_half.map(|r| r.to_string()).unwrap_or("?".into()),
        rss_after.map(|r| r.to_string()).unwrap_or("?".into()),
        per_conn.map(|r| r.to_string()).unwrap_or("?".into()),
        marginal.map(|r| r.to_string()).unwrap_or("?".into())
    ));
    let idle_json = json!({
        "requested": a.idle,
        "opened": idle_open,
        "failures": idle_failures,
        "connect_secs": (connect_secs * 100.0).round() / 100.0,
        "what": if floor { "bare WebSocket connections" } else { "registered devices' connections, authenticated by their Noise keys" },
        "register_secs": register_secs.map(|s| (s * 100.0).round() / 100.0),
        "source_ips": a.source_ips,
        "handshakes_per_sec": (idle_open as f64 / connect_secs.max(1e-9)).round(),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_per_conn_kib": per_conn,
        "rss_half_kib": rss_half,
        "rss_marginal_kib": marginal,
        "server_connections_open": metrics_idle.get("tether_connections_open").copied(),
        "server_threads": pid.and_then(threads),
        "ping_every_secs": every.as_secs(),
    });

    // ---- fixed rate, open loop: at --low-rate (if given), then at --rate
    let mut fixed_jsons = Vec::new();
    for (phase, rate) in [(PHASE_LOW, a.low_rate), (PHASE_FIXED, Some(a.rate))] {
        let Some(rate) = rate else { continue };
        let interval_ns = (a.pairs as u128 * 1_000_000_000 / u128::from(rate)).max(1) as u64;
        let interval = Duration::from_nanos(interval_ns);
        let per_sender = (a.seconds as u128 * 1_000_000_000 / u128::from(interval_ns)).max(1) as u64;
        let planned = per_sender * a.pairs as u64;
        log(format!(
            "fixed rate: {} msgs/s for {} s ({} senders, one every {:.2} ms each)",
            rate,
            a.seconds,
            a.pairs,
            interval_ns as f64 / 1e6
        ));
        let before = scrape(addr).await?;
        let start = Instant::now() + Duration::from_millis(200);
        let stats = {
            let handles = &handles;
            let fut = all_senders(&mut senders, |c, i| {
                let to = handles[i].1.clone();
                // Stagger the senders over one interval.
                let first = start + Duration::from_nanos(interval_ns * i as u64 / a.pairs as u64);
                fixed_sender(c, to, i as u32, phase, first, interval, per_sender, size)
            });
            let cpu = async {
                tokio::time::sleep_until(start.into()).await;
                let m0 = CpuMark::now(pid);
                tokio::time::sleep_until((start + Duration::from_secs(a.seconds)).into()).await;
                (m0, CpuMark::now(pid))
            };
            let (stats, (m0, m1)) = tokio::join!(fut, cpu);
            (stats, m0.share(&m1, tck))
        };
        let (stats, (server_cpu, bench_cpu, _)) = stats;
        let (sent, accepted, _, ack_hist, send_errors, send_failures) = totals(&stats);
        let got = drain(&recv, phase, accepted).await;
        let after = scrape(addr).await?;
        let r = recv.lock().expect("stats lock");
        let p = &r.phases[usize::from(phase)];
        log(format!(
            "fixed rate: {got}/{accepted} delivered; latency p50 {} µs, p99 {} µs, max {} µs",
            p.hist.value_at_quantile(0.5),
            p.hist.value_at_quantile(0.99),
            p.hist.max()
        ));
        fixed_jsons.push(json!({
            "target_rate": rate,
            "offered_rate": (planned as f64 / a.seconds as f64).round(),
            "seconds": a.seconds,
            "planned": planned,
            "sent": sent,
            "accepted": accepted,
            "delivered": got,
            "lost": accepted.saturating_sub(got),
            "out_of_order": p.out_of_order,
            "latency_us": summary(&p.hist),
            "latency_curve_us": curve(&p.hist),
            "durable_ack_us": summary(&ack_hist),
            "server_cpu_pct": server_cpu,
            "bench_cpu_pct": bench_cpu,
            "ack_requests": p.acks,
            "send_errors": send_errors,
            "sender_failures": send_failures,
            "store": store_summary(&before, &after),
        }));
    }
    let fixed_json = fixed_jsons.pop().expect("the phase at --rate");
    let fixed_low_json = fixed_jsons.pop().unwrap_or(Value::Null);

    // ---- max throughput, windowed
    log(format!("max throughput: {} senders, {} outstanding each, {} s", a.pairs, a.window, a.seconds));
    let before = scrape(addr).await?;
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(a.seconds);
    recv.lock().expect("stats lock").window_end[usize::from(PHASE_MAX)] = Some(end);
    let window = a.window;
    let (stats, (m0, m1)) = {
        let handles = &handles;
        let fut = all_senders(&mut senders, |c, i| {
            let to = handles[i].1.clone();
            max_sender(c, to, i as u32, PHASE_MAX, start, end, window, size)
        });
        let cpu = async {
            tokio::time::sleep_until(start.into()).await;
            let m0 = CpuMark::now(pid);
            tokio::time::sleep_until(end.into()).await;
            (m0, CpuMark::now(pid))
        };
        tokio::join!(fut, cpu)
    };
    let (server_cpu, bench_cpu, wall) = m0.share(&m1, tck);
    let (sent, accepted, accepted_in_window, ack_hist, send_errors, send_failures) = totals(&stats);
    let got = drain(&recv, PHASE_MAX, accepted).await;
    let after = scrape(addr).await?;
    let max_json = {
        let r = recv.lock().expect("stats lock");
        let p = &r.phases[usize::from(PHASE_MAX)];
        let secs = a.seconds as f64;
        let delivered_per_sec = (p.in_window as f64 / secs).round();
        log(format!(
            "max throughput: {delivered_per_sec} msgs/s delivered, server CPU {}%",
            server_cpu.map(|c| c.to_string()).unwrap_or("?".into())
        ));
        json!({
            "window": a.window,
            "seconds": a.seconds,
            "sent": sent,
            "accepted": accepted,
            "accepted_in_window": accepted_in_window,
            "accepted_per_sec": (accepted_in_window as f64 / secs).round(),
            "delivered_in_window": p.in_window,
            "delivered_per_sec": delivered_per_sec,
            "delivered_total": got,
            "lost": accepted.saturating_sub(got),
            "out_of_order": p.out_of_order,
            "latency_us": summary(&p.hist),
            "durable_ack_us": summary(&ack_hist),
            "server_cpu_pct": server_cpu,
            "bench_cpu_pct": bench_cpu,
            "cpu_wall_secs": (wall * 1000.0).round() / 1000.0,
            "ack_requests": p.acks,
            "send_errors": send_errors,
            "sender_failures": send_failures,
            "store": store_summary(&before, &after),
        })
    };

    // ---- wind down
    let idle_still_open = alive.load(Ordering::Relaxed);
    let idle_lost: Vec<String> = lost.lock().expect("lost lock").clone();
    let metrics_end = scrape(addr).await?;
    let _ = stop_idle.send(true);
    let _ = stop_recv.send(true);
    for t in receiver_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    for t in idle_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    drop(senders);
    let r = recv.lock().expect("stats lock");
    let mut idle_json = idle_json;
    idle_json["still_open_at_end"] = json!(idle_still_open);
    idle_json["pings_sent"] = json!(pings.load(Ordering::Relaxed));
    idle_json["lost"] = json!(idle_lost.iter().take(10).collect::<Vec<_>>());
    let report = json!({
        "config": {
            "addr": addr.to_string(),
            "receiver_addr": a.receiver_addr,
            "idle": a.idle,
            "pairs": a.pairs,
            "rate": a.rate,
            "seconds": a.seconds,
            "size": a.size,
            "window": a.window,
            "idle_ping_secs": a.idle_ping_secs,
            "no_ack": a.no_ack,
        },
        "server": {
            "pid": pid,
            "version": health["version"],
            "fingerprint": health["fingerprint"],
            "rss_end_kib": pid.and_then(rss_kib),
            "threads": pid.and_then(threads),
        },
        "idle": idle_json,
        "floor": floor,
        "fixed_rate_low": fixed_low_json,
        "fixed_rate": fixed_json,
        "max_throughput": max_json,
        "receiver_errors": r.errors,
        "receiver_failures": r.failures.iter().take(10).collect::<Vec<_>>(),
        "server_errors_total": error_deltas(&metrics_start, &metrics_end),
    });
    let text = serde_json::to_string_pretty(&report).expect("JSON");
    match &a.out {
        Some(path) => std::fs::write(path, text + "\n").map_err(|e| format!("write {}: {e}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}
