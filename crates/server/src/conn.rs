//! One task per connection: the Noise handshake, then a loop that reads
//! frames, runs requests (handlers.rs), and sends pushes and events.
//!
//! Requests that write durably (`Send`, `Ack`) are handed to the writer
//! (writer.rs) and answered when their group commit is done, while the loop
//! goes on reading: responses may come out of request order (each carries
//! its request's id). At most [`MAX_IN_FLIGHT`] such requests wait per
//! connection; beyond that the connection stops reading until some finish.
//! Frames are written to the socket in batches: everything one step of the
//! loop produced goes out in one flush.
//!
//! Peer input never panics the server: a bad frame gets an error response;
//! a frame that breaks the Noise stream (or the handshake) ends only this
//! connection, with a `Closing` event (when the transport is up) and a
//! WebSocket close whose reason is the error code.

use crate::Shared;
use crate::handlers::{self, Answer, Failure};
use crate::links::Source;
use crate::router::{ConnHandle, Done, Next, Outbound, Outcome, Written};
use crate::writer::{Op, WriteRequest};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use prost::Message as _;
use std::sync::Arc;
use std::time::Instant;
use tether_proto::ErrorCode;
use tether_proto::frames::{
    ClientFrame, Done as Done_, ErrorInfo, Event, EventBody, Response, ResponseBody, SendAccepted, ServerBody,
    ServerFrame, ServerHello,
};
use tether_proto::noise::{ClientAuthenticated, ServerHandshake, Transport};
use tokio::sync::OwnedSemaphorePermit;
use websocket::WebSocketStream;
use websocket::tungstenite::protocol::frame::CloseFrame;
use websocket::tungstenite::protocol::{Role, WebSocketConfig};
use websocket::tungstenite::{Message, Utf8Bytes};

/// Envelopes read from the store per catch-up query.
const CATCH_UP_BATCH: u32 = 256;
/// Activity is written to the store at most this often per device.
const TOUCH_EVERY_MS: u64 = 60_000;
/// A client refused this many frames without calming down is closed.
const MAX_LIMITED_IN_A_ROW: u32 = 1000;
/// Most durable writes (sends, acks) waiting for their commit per
/// connection; beyond this the connection stops reading frames.
pub const MAX_IN_FLIGHT: usize = 256;
/// Most mailbox items handled in one step before frames are flushed.
const MAILBOX_STEP: usize = 256;
/// How long a closing connection reads on after its close frame.
const CLOSE_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a closing connection waits for its writes in flight, to answer them.
const FINISH_IN_FLIGHT: std::time::Duration = std::time::Duration::from_secs(5);

/// Who is on the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// Not (yet) a device: may register, ask for link refs, offer pairing.
    Guest,
    Device {
        handle: String,
        device_id: u32,
    },
}

/// A token bucket: `rate` frames per second, bursts of `burst`.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct Conn {
    pub s: Arc<Shared>,
    ws: WebSocket,
    transport: Transport,
    /// The peer's Noise static key.
    pub key: [u8; 32],
    pub session: Session,
    pub handle: ConnHandle,
    /// Where the connection comes from, for per-source caps.
    pub source: Source,
    /// Durable writes handed to the writer and not answered yet.
    in_flight: usize,
    /// Frames written to the socket's buffer but not flushed yet.
    unflushed: bool,
    /// Highest envelope id sent; pushes at or below it are duplicates.
    last_sent: u64,
    bucket: Bucket,
    limited_in_a_row: u32,
    last_touch_ms: u64,
    /// Close after answering the current request (a device removed itself).
    pub close_after: Option<ErrorCode>,
    /// The account whose restore logged out this device's key, when it
    /// connects again after the restore.
    restored_from: Option<String>,
}

/// A device's WebSocket (the socket upgraded by `GET /v1/ws`).
type WebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// A `/v1/ws` request answered `101 Switching Protocols`: its socket, once
/// the upgrade completes, and the WebSocket's settings.
pub struct Upgrade {
    pub on: hyper::upgrade::OnUpgrade,
    pub config: WebSocketConfig,
}

/// Why the loop ended.
pub(crate) enum End {
    /// The peer closed or the socket failed: nothing more to send.
    Gone,
    /// Tell the peer why, then close.
    Close(ErrorCode),
}

pub fn run(
    s: Arc<Shared>,
    ws: Upgrade,
    source: Source,
    permit: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send + 'static {
    s.metrics.connections_total.inc();
    s.metrics.connections_open.inc();
    // Each stage boxed: the task's own future, which every connection holds
    // for its whole life, stays a few pointers; the handshake's state (and
    // the socket) lives in `accept` until it is done, the connection's in
    // `serve` from then on.
    let accept = Box::pin(accept(s.clone(), ws, source));
    async move {
        if let Some(mut conn) = accept.await {
            Box::pin(conn.serve()).await;
        }
        s.metrics.connections_open.dec();
        drop(permit);
    }
}

/// The upgrade, then the Noise handshake, within its timeout; the
/// connection it opens, or `None` (the socket closed) if it failed.
async fn accept(s: Arc<Shared>, upgrade: Upgrade, source: Source) -> Option<Box<Conn>> {
    let Upgrade { on, config } = upgrade;
    let Ok(upgraded) = on.await else {
        tracing::debug!("the WebSocket upgrade did not complete");
        return None;
    };
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    match tokio::time::timeout(s.config.handshake_timeout, handshake(&s, &mut ws)).await {
        Ok(Some(ClientAuthenticated { transport, client_key, .. })) => {
            let bucket = Bucket {
                tokens: f64::from(s.config.rate_burst),
                rate: f64::from(s.config.rate_per_sec),
                burst: f64::from(s.config.rate_burst),
                at: Instant::now(),
            };
            Some(Box::new(Conn {
                s,
                ws,
                transport,
                key: client_key,
                session: Session::Guest,
                handle: ConnHandle::new(),
                source,
                in_flight: 0,
                unflushed: false,
                last_sent: 0,
                bucket,
                limited_in_a_row: 0,
                last_touch_ms: 0,
                close_after: None,
                restored_from: None,
            }))
        }
        _ => {
            s.metrics.handshake_failures.inc();
            s.metrics.error(ErrorCode::HandshakeFailed);
            tracing::debug!("handshake failed or timed out");
            close_socket(&mut ws, ErrorCode::HandshakeFailed).await;
            drain(&mut ws).await;
            None
        }
    }
}

/// Reads the client's `e`, answers `e, ee, s, es`, reads `s, se`.
async fn handshake(s: &Shared, ws: &mut WebSocket) -> Option<ClientAuthenticated> {
    let m1 = next_binary(ws).await?;
    let hello = ServerHello {
        server_version: crate::VERSION.into(),
        protocol: u32::from(tether_proto::PROTOCOL_VERSION),
        time_ms: s.clock.now_ms(),
    };
    let (expect, m2) = ServerHandshake::handle(&s.key, &m1, &hello).ok()?;
    ws.send(Message::Binary(m2.into())).await.ok()?;
    let m3 = next_binary(ws).await?;
    expect.handle(&m3).ok()
}

/// The next binary message; `None` on anything else (text, close, error).
async fn next_binary(ws: &mut WebSocket) -> Option<Vec<u8>> {
    loop {
        match ws.next().await? {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

async fn close_socket(ws: &mut WebSocket, code: ErrorCode) {
    let ws_code = match code {
        ErrorCode::GoingAway => 1001,
        ErrorCode::Internal => 1011,
        ErrorCode::ServerBusy => 1013,
        _ => 1008,
    };
    let reason = Utf8Bytes::from_static(code.as_str());
    let _ = ws.send(Message::Close(Some(CloseFrame { code: ws_code.into(), reason }))).await;
}

/// Finishes the closing handshake after our close frame: reads (and drops)
/// what the peer still sends until its close, the end of the socket, or
/// [`CLOSE_DRAIN`]. Dropping a socket with unread input makes the kernel
/// reset the connection, and a reset can destroy our close frame in the
/// peer's receive buffer before the peer reads it.
async fn drain(ws: &mut WebSocket) {
    let read_all = async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_DRAIN, read_all).await;
}

impl Conn {
    async fn serve(&mut self) {
        let end = match Box::pin(self.start()).await {
            Ok(()) => self.main_loop().await,
            Err(end) => end,
        };
        if let End::Close(code) = end {
            Box::pin(self.close(code)).await;
        }
        // A guest's pairing slot dies with its connection.
        self.s.links.drop_pairing_of(self.handle.id);
        match &self.session {
            Session::Device { handle, device_id } => self.s.router.remove_device(handle, *device_id, self.handle.id),
            Session::Guest => self.s.router.remove_guest(&self.key, self.handle.id),
        }
    }

    /// Tells the peer why the connection ends, then closes it.
    async fn close(&mut self, code: ErrorCode) {
        if code != ErrorCode::GoingAway || self.s.shutdown.is_cancelled() {
            tracing::debug!(code = code.as_str(), "closing connection");
        }
        // Answer the writes still in flight first (the peer is still
        // listening), within a bound.
        let _ = tokio::time::timeout(FINISH_IN_FLIGHT, self.finish_in_flight()).await;
        // A device logged out by a restore gets the new signed list, so
        // it can check with the account key that the restore is real.
        let device_lists = match (code, self.restored_handle()) {
            (ErrorCode::AccountRestored, Some(handle)) => {
                let s = self.s.clone();
                handlers::list_reply(&s, &handle).await.map(|l| vec![l]).unwrap_or_default()
            }
            _ => vec![],
        };
        let closing = ErrorInfo {
            code: code.as_str().into(),
            message: closing_message(code).into(),
            device_lists,
            group_epoch: 0,
        };
        let _ = self.send_event(EventBody::Closing(closing)).await;
        let _ = self.flush().await;
        close_socket(&mut self.ws, code).await;
        drain(&mut self.ws).await;
    }

    /// The account this device belonged to before a restore logged it out.
    fn restored_handle(&self) -> Option<String> {
        match (&self.restored_from, &self.session) {
            (Some(h), _) | (None, Session::Device { handle: h, .. }) => Some(h.clone()),
            (None, Session::Guest) => None,
        }
    }

    /// Who is this? A device, a removed device or one an account restore
    /// logged out (refused), or a guest.
    async fn start(&mut self) -> Result<(), End> {
        let restored = self.s.store.restored_key(&self.key).await.map_err(|_| End::Close(ErrorCode::Internal))?;
        if let Some(handle) = restored {
            self.restored_from = Some(handle);
            return Err(End::Close(ErrorCode::AccountRestored));
        }
        let device = self.s.store.device_by_key(&self.key).await.map_err(|_| End::Close(ErrorCode::Internal))?;
        match device {
            Some(d) if d.removed_ms.is_some() => Err(End::Close(ErrorCode::DeviceRemoved)),
            Some(d) => {
                let now = self.s.clock.now_ms();
                let mut approval = self.s.links.take_approval(&self.key, now);
                // Linked moments ago through another node, and never
                // connected since: that node may hold its approval.
                if approval.is_none()
                    && self.s.cluster.is_shared()
                    && d.active_ms <= d.linked_ms
                    && now.saturating_sub(d.linked_ms) < crate::links::APPROVAL_TTL_MS
                {
                    approval = self.s.cluster.take_approval(&self.key).await;
                }
                self.become_device(d.handle, d.device_id, approval.map(EventBody::LinkApproved)).await
            }
            None => {
                self.s.router.add_guest(self.key, self.handle.clone());
                Ok(())
            }
        }
    }

    /// Registers this connection as the device's, then sends `first` (a
    /// companion's link approval), then its queue. The approval goes first:
    /// the queue may already hold the history its primary sealed to it, and
    /// a device that has not seen its approval cannot take it.
    pub async fn become_device(&mut self, handle: String, device_id: u32, first: Option<EventBody>) -> Result<(), End> {
        if self.session == Session::Guest {
            self.s.router.remove_guest(&self.key, self.handle.id);
            self.s.links.drop_pairing_of(self.handle.id);
        }
        self.s.router.add_device(&handle, device_id, self.handle.clone());
        tracing::debug!(%handle, device_id, "device connected");
        self.session = Session::Device { handle, device_id };
        self.touch(true);
        if let Some(body) = first {
            self.send_event(body).await?;
        }
        self.catch_up().await
    }

    /// Sends every stored copy newer than `last_sent`, oldest first.
    async fn catch_up(&mut self) -> Result<(), End> {
        let Session::Device { handle, device_id } = self.session.clone() else {
            return Ok(());
        };
        loop {
            let batch = self
                .s
                .store
                .pending(&handle, device_id, self.last_sent, CATCH_UP_BATCH)
                .await
                .map_err(|_| End::Close(ErrorCode::Internal))?;
            let full = batch.len() as u32 == CATCH_UP_BATCH;
            for e in batch {
                self.send_envelope(&e).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn main_loop(&mut self) -> End {
        let idle = self.s.config.idle_timeout;
        // The idle timer is set once and only moved when it fires early, not
        // on every frame.
        let mut last_frame = tokio::time::Instant::now();
        let sleep = tokio::time::sleep_until(last_frame + idle);
        tokio::pin!(sleep);
        let wake = self.handle.clone();
        let shutdown = self.s.shutdown.clone();
        loop {
            if let Err(end) = self.flush().await {
                return end;
            }
            let step = tokio::select! {
                biased;
                () = shutdown.cancelled() => Err(End::Close(ErrorCode::GoingAway)),
                () = wake.woken() => Box::pin(self.on_mailbox()).await,
                msg = self.ws.next(), if self.in_flight < MAX_IN_FLIGHT => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        last_frame = tokio::time::Instant::now();
                        // Boxed, as is every step below: the loop's own
                        // future, which an idle connection holds, stays small.
                        Box::pin(self.on_frame(&b)).await
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
                    Some(Ok(Message::Text(_))) => Err(End::Close(ErrorCode::MalformedFrame)),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Err(End::Gone),
                },
                () = &mut sleep => {
                    if tokio::time::Instant::now() >= last_frame + idle {
                        Err(End::Close(ErrorCode::IdleTimeout))
                    } else {
                        sleep.as_mut().reset(last_frame + idle);
                        Ok(())
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
            if let Some(code) = self.close_after.take() {
                return End::Close(code);
            }
        }
    }

    /// Handles what the mailbox holds: a close, finished writes, pushes.
    async fn on_mailbox(&mut self) -> Result<(), End> {
        for _ in 0..MAILBOX_STEP {
            match self.handle.next() {
                Next::Close(code) => return Err(End::Close(code)),
                Next::Done(done) => self.on_done(done).await?,
                // Pushes were dropped: read them from the store first, so
                // the order holds.
                Next::Lagged => self.catch_up().await?,
                Next::Push(out) => self.on_outbound(out).await?,
                Next::Empty => return Ok(()),
            }
        }
        // More is waiting: flush what we have, then come back.
        self.handle.rewake();
        Ok(())
    }

    /// Answers a request whose write finished.
    async fn on_done(&mut self, done: Done) -> Result<(), End> {
        self.in_flight = self.in_flight.saturating_sub(1);
        let result = match (done.written, done.outcome) {
            (Written::Ok, Outcome::Sent { server_time_ms }) => Ok(ResponseBody::Sent(SendAccepted { server_time_ms })),
            (Written::Ok, Outcome::Acked) => Ok(ResponseBody::Done(Done_ {})),
            (Written::QueueFull, _) => Err(Failure::new(
                ErrorCode::RecipientQueueFull,
                "a recipient device has too many undelivered messages; nothing was sent, try again later",
            )),
            (Written::BlobGone, _) => Err(Failure::new(
                ErrorCode::BlobNotFound,
                "a file this message names is gone (expired or fetched by all); nothing was sent: upload it again",
            )),
            (Written::EpochTaken, _) => Err(Failure {
                group_epoch: done.group_epoch,
                ..Failure::new(
                    ErrorCode::GroupEpochTaken,
                    "another change of this group came first; nothing was sent: apply it, then send your change again",
                )
            }),
            (Written::Failed, Outcome::Sent { .. }) => {
                Err(Failure::new(ErrorCode::Internal, "the message could not be stored; send it again"))
            }
            (Written::Failed, Outcome::Acked) => {
                Err(Failure::new(ErrorCode::Internal, "the server's store failed; try again"))
            }
            (Written::Unavailable, _) => Err(crate::handlers::unavailable()),
        };
        self.respond(done.request_id, result).await
    }

    /// Waits for the writes in flight and answers them (when closing).
    async fn finish_in_flight(&mut self) {
        let wake = self.handle.clone();
        while self.in_flight > 0 {
            match self.handle.next_done() {
                Some(done) => {
                    if self.on_done(done).await.is_err() {
                        return;
                    }
                }
                None => {
                    if self.flush().await.is_err() {
                        return;
                    }
                    wake.woken().await;
                }
            }
        }
    }

    /// Hands a durable write to the writer; `outcome` answers request `id`
    /// once it is committed.
    pub async fn submit(&mut self, id: u64, op: Op, outcome: Outcome) -> Result<(), Failure> {
        let request = WriteRequest { op, reply: (self.handle.clone(), id, outcome) };
        self.s
            .writer
            .send(request)
            .await
            .map_err(|_| Failure::new(ErrorCode::GoingAway, "the server is shutting down"))?;
        self.in_flight += 1;
        Ok(())
    }

    async fn on_outbound(&mut self, out: Outbound) -> Result<(), End> {
        match out {
            Outbound::Envelope(e) => self.send_envelope(&e).await,
            Outbound::Event(ev) => match ev.body {
                Some(body) => self.send_event(body).await,
                None => Ok(()),
            },
            Outbound::Promote(p) => {
                let crate::router::Promotion { handle, device_id, event } = *p;
                self.become_device(handle, device_id, event.body).await
            }
        }
    }

    async fn on_frame(&mut self, bytes: &[u8]) -> Result<(), End> {
        self.s.metrics.frames_in.inc();
        if bytes.len() > self.s.config.max_frame_bytes || bytes.len() > tether_proto::noise::MAX_NOISE_MESSAGE {
            // Undecryptable by definition: the stream is out of step now.
            self.s.metrics.error(ErrorCode::FrameTooLarge);
            return Err(End::Close(ErrorCode::FrameTooLarge));
        }
        let Ok(plain) = self.transport.decrypt(bytes) else {
            self.s.metrics.error(ErrorCode::MalformedFrame);
            return Err(End::Close(ErrorCode::MalformedFrame));
        };
        // Every decrypted frame counts against the rate limit, readable or not.
        let limited = !self.bucket.take();
        let frame = match ClientFrame::decode(plain.as_slice()) {
            Ok(f) => f,
            Err(_) if limited => ClientFrame { id: 0, request: None },
            Err(_) => {
                let failure = Failure::new(ErrorCode::MalformedFrame, "not a ClientFrame");
                return self.respond(0, Err(failure)).await;
            }
        };
        #[cfg(feature = "adversary")]
        let Some(frame) = self.tamper_request(frame) else { return Ok(()) };
        if limited {
            // Every frame read is answered, the last one too; after more
            // than MAX_LIMITED_IN_A_ROW refusals in a row the connection
            // closes, reading nothing more.
            self.limited_in_a_row += 1;
            let failure = Failure::new(ErrorCode::RateLimited, "too many frames; slow down");
            self.respond(frame.id, Err(failure)).await?;
            if self.limited_in_a_row > MAX_LIMITED_IN_A_ROW {
                return Err(End::Close(ErrorCode::RateLimited));
            }
            return Ok(());
        }
        // Forgive only a client that has calmed down (half a burst saved up),
        // not one that squeezes a frame through now and then.
        if self.bucket.tokens >= self.bucket.burst / 2.0 {
            self.limited_in_a_row = 0;
        }
        self.touch(false);
        let result = match frame.request {
            // Boxed: requests are many and varied, and their futures large;
            // the connection's own future stays small while it waits.
            Some(req) => Box::pin(handlers::handle(self, frame.id, req)).await,
            None => Err(Failure::new(ErrorCode::UnknownFrame, "this server does not know that request")),
        };
        match result {
            Ok(Answer::Now(body)) => self.respond(frame.id, Ok(body)).await,
            // The writer answers when the commit is done.
            Ok(Answer::Later) => Ok(()),
            Err(f) => self.respond(frame.id, Err(f)).await,
        }
    }

    async fn respond(&mut self, id: u64, result: Result<ResponseBody, Failure>) -> Result<(), End> {
        let response = match result {
            Ok(body) => Response { id, error: None, body: Some(body) },
            Err(f) => {
                self.s.metrics.error(f.code);
                Response {
                    id,
                    error: Some(ErrorInfo {
                        code: f.code.as_str().into(),
                        message: f.message,
                        device_lists: f.lists,
                        group_epoch: f.group_epoch,
                    }),
                    body: None,
                }
            }
        };
        self.send(ServerBody::Response(response)).await
    }

    async fn send_envelope(&mut self, e: &crate::store::StoredEnvelope) -> Result<(), End> {
        if e.id <= self.last_sent {
            return Ok(());
        }
        self.last_sent = e.id;
        self.s.metrics.envelopes_delivered.inc();
        let env = tether_proto::frames::Envelope {
            envelope_id: e.id,
            message_id: e.envelope.message_id.clone(),
            sender_handle: e.envelope.sender_handle.clone(),
            sender_device: e.envelope.sender_device,
            ciphertext: e.envelope.ciphertext.to_vec(),
            server_time_ms: e.envelope.created_ms,
        };
        self.send_event(EventBody::Envelope(env)).await
    }

    async fn send_event(&mut self, body: EventBody) -> Result<(), End> {
        self.send(ServerBody::Event(Event { body: Some(body) })).await
    }

    /// Encrypts a frame into the socket's write buffer; [`Self::flush`]
    /// sends it (the buffer is written out by itself when it fills up).
    async fn send(&mut self, body: ServerBody) -> Result<(), End> {
        let frame = ServerFrame { body: Some(body) };
        #[cfg(feature = "adversary")]
        let Some(frame) = self.tamper_send(frame) else { return Ok(()) };
        let plain = frame.encode_to_vec();
        let Ok(msg) = self.transport.encrypt(&plain) else {
            tracing::error!("a server frame was too large to send");
            return Err(End::Close(ErrorCode::Internal));
        };
        self.s.metrics.frames_out.inc();
        self.unflushed = true;
        self.ws.feed(Message::Binary(msg.into())).await.map_err(|_| End::Gone)
    }

    /// Sends whatever frames are buffered.
    async fn flush(&mut self) -> Result<(), End> {
        if self.unflushed {
            self.unflushed = false;
            self.ws.flush().await.map_err(|_| End::Gone)?;
        }
        Ok(())
    }

    /// Records activity (at most once a minute unless `now`).
    fn touch(&mut self, force: bool) {
        let Session::Device { handle, device_id } = &self.session else {
            return;
        };
        let now = self.s.clock.now_ms();
        if force || now.saturating_sub(self.last_touch_ms) >= TOUCH_EVERY_MS {
            self.last_touch_ms = now;
            self.s.activity.record(handle, *device_id, now);
        }
    }
}

#[cfg(feature = "adversary")]
impl Conn {
    fn peer(&self) -> crate::adversary::Peer {
        match &self.session {
            Session::Guest => crate::adversary::Peer::Guest { noise_key: self.key },
            Session::Device { handle, device_id } => {
                crate::adversary::Peer::Device { handle: handle.clone(), device_id: *device_id }
            }
        }
    }

    fn tamper_request(&self, frame: ClientFrame) -> Option<ClientFrame> {
        match self.s.adversary() {
            Some(a) => a.request(&self.peer(), frame),
            None => Some(frame),
        }
    }

    fn tamper_send(&self, frame: ServerFrame) -> Option<ServerFrame> {
        match self.s.adversary() {
            Some(a) => a.send(&self.peer(), frame),
            None => Some(frame),
        }
    }
}

fn closing_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::DeviceRemoved => "this device was removed from its account: link it again",
        ErrorCode::AccountRestored => "this account was restored on another device",
        ErrorCode::GoingAway => "the server is going away or this device connected elsewhere: reconnect",
        ErrorCode::IdleTimeout => "nothing was sent for too long",
        ErrorCode::FrameTooLarge => "a frame was larger than the server accepts",
        ErrorCode::MalformedFrame => "a frame could not be decrypted",
        ErrorCode::RateLimited => "too many frames for too long",
        _ => "the connection ends",
    }
}
