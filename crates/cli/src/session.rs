//! The native adapter: drives the sans-IO engine over a WebSocket
//! (tokio-tungstenite; `wss://` with rustls, see tls.rs), with the system
//! clock and OS randomness.
//!
//! Every command that talks to the server opens a [`Session`], connects,
//! and then waits with [`Session::wait`], the one loop that feeds the
//! engine: it sends what the engine queued, hands each event to the
//! command, and feeds socket messages and timeouts back in.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tether_client::{ClientInfo, Engine, Event, Random};
use tether_proto::ErrorCode;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long connecting (TCP, WebSocket upgrade, Noise handshake) may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How often the loop wakes without input, so a command can stop on quiet.
const TICK: Duration = Duration::from_millis(100);

/// How long the engine must be idle before [`Session::settle`] returns.
const QUIET: Duration = Duration::from_millis(300);

/// The engine's randomness: the operating system's generator.
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the OS random generator failed");
    }
}

/// The engine's clock: milliseconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// How this device introduces itself to the server and to the user's other
/// devices (`tether devices`).
pub fn client_info() -> ClientInfo {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "macOS",
        "windows" => "Windows",
        other => other,
    };
    ClientInfo {
        client_version: format!("tether-cli {}", tether_client::VERSION),
        platform: format!("cli/{}", std::env::consts::OS),
        name: format!("tether CLI on {os}"),
    }
}

/// The WebSocket URL of a server given as http(s)://host:port.
pub fn ws_url(server: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_string()
    } else {
        format!("ws://{base}")
    };
    format!("{base}/v1/ws")
}

/// The engine and, while connected, its WebSocket.
pub struct Session {
    /// The engine; commands call it directly between waits.
    pub engine: Engine,
    /// The socket, `None` before `connect` and after the connection ended.
    ws: Option<Ws>,
}

impl Session {
    /// A session that is not connected yet.
    pub fn new(engine: Engine) -> Self {
        Self { engine, ws: None }
    }

    /// Opens the socket and waits for the handshake (and registration, if
    /// that is what runs).
    pub async fn connect(&mut self) -> Result<(), String> {
        let server = self.engine.server_url().to_string();
        if server.is_empty() {
            return Err("no server is set: run `tether register <handle> --server URL` first".into());
        }
        let url = ws_url(&server);
        let connector =
            if url.starts_with("wss://") { Connector::Rustls(crate::tls::client_config()?) } else { Connector::Plain };
        let connecting = tokio_tungstenite::connect_async_tls_with_config(&url, None, false, Some(connector));
        let ws = match tokio::time::timeout(CONNECT_LIMIT, connecting).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                if let Some(problem) = crate::tls::explain(&e) {
                    return Err(format!("cannot connect to the Tether server at {server}: {problem}"));
                }
                return Err(format!(
                    "cannot reach the Tether server at {server} ({e}): is it running, and is the address right?"
                ));
            }
            Err(_) => return Err(format!("the Tether server at {server} did not answer within 10 s")),
        };
        self.ws = Some(ws);
        self.engine.handle_connected(now());
        self.wait(CONNECT_LIMIT, |engine, _| engine.is_open().then_some(())).await
    }

    /// The one event loop. Runs until `step` returns `Some` (its value is
    /// returned), the connection ends, or `limit` passes.
    ///
    /// `step` sees each event the engine emits, then `None` once every
    /// input is handled and the queued events are drained (a quiet point,
    /// where a command can look at the engine's state). Before an error
    /// for a closed connection is returned, the events the engine emitted
    /// while closing are handed to `step` too.
    pub async fn wait<T>(
        &mut self,
        limit: Duration,
        mut step: impl FnMut(&Engine, Option<Event>) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.flush().await?;
            if let Some(done) = self.offer_events(&mut step) {
                self.flush().await?;
                return Ok(done);
            }
            if let Some(reason) = self.engine.poll_close() {
                self.ws = None;
                return Err(reason);
            }
            let input = self.next_input(deadline).await?;
            self.feed(input, &mut step)?;
        }
    }

    /// Hands `step` the engine's queued events, then the quiet point;
    /// what it returns first.
    fn offer_events<T>(&mut self, step: &mut impl FnMut(&Engine, Option<Event>) -> Option<T>) -> Option<T> {
        while let Some(e) = self.engine.poll_event() {
            if let Some(done) = step(&self.engine, Some(e)) {
                return Some(done);
            }
        }
        step(&self.engine, None)
    }

    /// Sleeps until a socket message, a tick or the engine's timeout, or
    /// `deadline`.
    async fn next_input(&mut self, deadline: tokio::time::Instant) -> Result<Input, String> {
        let Some(ws) = &mut self.ws else { return Err("not connected to the server".into()) };
        let due = self.engine.poll_timeout();
        let wake = due.map_or(TICK, |t| Duration::from_millis(t.saturating_sub(now())).min(TICK));
        Ok(tokio::select! {
            msg = ws.next() => Input::Socket(msg),
            () = tokio::time::sleep(wake) => Input::Tick { due },
            () = tokio::time::sleep_until(deadline) => Input::Deadline,
        })
    }

    /// Feeds one input to the engine; an error when it ended the wait.
    fn feed<T>(
        &mut self,
        input: Input,
        step: &mut impl FnMut(&Engine, Option<Event>) -> Option<T>,
    ) -> Result<(), String> {
        match input {
            Input::Socket(Some(Ok(Message::Binary(b)))) => self.engine.handle_message(&b, now()),
            Input::Socket(Some(Ok(Message::Close(frame)))) => {
                let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return Err(self.ended(&reason, close_message(&reason), step));
            }
            Input::Socket(Some(Ok(_))) => {}
            Input::Socket(Some(Err(e))) => {
                let reason = e.to_string();
                return Err(self.ended(&reason, format!("the connection to the server broke: {reason}"), step));
            }
            Input::Socket(None) => return Err(self.ended("closed", "the server closed the connection".into(), step)),
            Input::Tick { due } => {
                if due.is_some_and(|t| now() >= t) {
                    self.engine.handle_timeout(now());
                }
            }
            Input::Deadline => return Err("timed out waiting for the server".into()),
        }
        Ok(())
    }

    /// Waits until nothing is in flight (the outbox is empty, every request
    /// answered, every queued envelope handled) and the server has been
    /// quiet for a moment, so what it holds for this device has arrived.
    pub async fn settle(&mut self, limit: Duration, mut on_event: impl FnMut(&Event)) -> Result<(), String> {
        let mut quiet_since: Option<tokio::time::Instant> = None;
        self.wait(limit, |engine, e| {
            if let Some(e) = &e {
                on_event(e);
            }
            if e.is_some() || engine.busy() {
                quiet_since = None;
                return None;
            }
            (quiet_since.get_or_insert_with(tokio::time::Instant::now).elapsed() >= QUIET).then_some(())
        })
        .await
    }

    /// Closes the socket politely.
    pub async fn close(mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = ws.close(None).await;
        }
    }

    /// Sends what the engine queued.
    async fn flush(&mut self) -> Result<(), String> {
        while let Some(t) = self.engine.poll_transmit() {
            if let Some(ws) = &mut self.ws {
                ws.send(Message::Binary(t.into())).await.map_err(|e| format!("the connection failed: {e}"))?;
            }
        }
        Ok(())
    }

    /// The connection ended: tells the engine, hands `step` what it said,
    /// and returns `message` for the user.
    fn ended<T>(
        &mut self,
        reason: &str,
        message: String,
        step: &mut impl FnMut(&Engine, Option<Event>) -> Option<T>,
    ) -> String {
        self.ws = None;
        self.engine.handle_disconnected(now(), reason);
        while let Some(e) = self.engine.poll_event() {
            let _ = step(&self.engine, Some(e));
        }
        message
    }
}

/// What woke the loop.
enum Input {
    /// A WebSocket message, an error, or the end of the stream.
    Socket(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    /// A tick, or the engine's timeout (`due`, when it was asked) came due.
    Tick {
        /// What `poll_timeout` said before the sleep.
        due: Option<u64>,
    },
    /// The command's limit passed.
    Deadline,
}

/// What to tell the user when the server closes the socket. The close
/// frame's reason is one of the protocol's error codes.
fn close_message(reason: &str) -> String {
    match ErrorCode::parse(reason) {
        Some(ErrorCode::DeviceRemoved) => "this device was removed from its account".into(),
        Some(ErrorCode::GoingAway) => "the server is restarting or this device connected elsewhere; try again".into(),
        Some(ErrorCode::ServerBusy) => "the server is at its connection limit; try again in a minute".into(),
        Some(ErrorCode::IdleTimeout) => "the server closed the idle connection; try again".into(),
        Some(code) => format!("the server closed the connection ({code})"),
        None if reason.is_empty() => "the server closed the connection".into(),
        None => format!("the server closed the connection ({reason})"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn close_reasons_are_read_as_error_codes() {
        assert_eq!(super::close_message("device_removed"), "this device was removed from its account");
        assert!(super::close_message("going_away").contains("try again"));
        assert_eq!(super::close_message("bad_signature"), "the server closed the connection (bad_signature)");
        assert_eq!(super::close_message(""), "the server closed the connection");
        assert_eq!(super::close_message("from_the_future"), "the server closed the connection (from_the_future)");
    }

    #[test]
    fn server_addresses_become_websocket_urls() {
        assert_eq!(super::ws_url("http://127.0.0.1:7780/"), "ws://127.0.0.1:7780/v1/ws");
        assert_eq!(super::ws_url("https://chat.example.org"), "wss://chat.example.org/v1/ws");
        assert_eq!(super::ws_url("chat.example.org:7780"), "ws://chat.example.org:7780/v1/ws");
    }
}
