//! The native adapter: drives the sans-IO engine over a WebSocket
//! (tokio-tungstenite), with the system clock and OS randomness.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tether_client::{ClientInfo, Engine, Event, Random};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct OsRandom;
impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the OS random generator failed");
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

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

/// What the loop should do after an event.
pub enum Flow {
    Continue,
    Stop,
}

pub struct Session {
    pub engine: Engine,
    ws: Option<Ws>,
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

impl Session {
    pub fn new(engine: Engine) -> Self {
        Self { engine, ws: None }
    }

    pub async fn connect(&mut self) -> Result<(), String> {
        let server = self.engine.server_url().to_string();
        if server.is_empty() {
            return Err("no server is set: run `tether register <handle> --server URL` first".into());
        }
        let url = ws_url(&server);
        let ws = match tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(&url)).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return Err(format!("cannot reach the Tether server at {server} ({e}): is it running, and is the address right?")),
            Err(_) => return Err(format!("the Tether server at {server} did not answer within 10 s")),
        };
        self.ws = Some(ws);
        self.engine.handle_connected(now());
        self.flush().await?;
        // Wait for the handshake (and registration, if that is what runs).
        self.drive(Duration::from_secs(10), |engine, _| if engine.is_open() { Flow::Stop } else { Flow::Continue }).await
    }


    async fn flush(&mut self) -> Result<(), String> {
        while let Some(t) = self.engine.poll_transmit() {
            if let Some(ws) = &mut self.ws {
                ws.send(Message::Binary(t.into())).await.map_err(|e| format!("the connection failed: {e}"))?;
            }
        }
        Ok(())
    }

    /// Runs until `on_event` says stop (after each event, and once with
    /// `None` after every input), the engine closes, or `limit` passes.
    pub async fn drive(&mut self, limit: Duration, mut on_event: impl FnMut(&mut Engine, Option<Event>) -> Flow) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.flush().await?;
            while let Some(e) = self.engine.poll_event() {
                if let Flow::Stop = on_event(&mut self.engine, Some(e)) {
                    self.flush().await?;
                    return Ok(());
                }
            }
            if let Flow::Stop = on_event(&mut self.engine, None) {
                self.flush().await?;
                return Ok(());
            }
            if let Some(reason) = self.engine.poll_close() {
                self.ws = None;
                return Err(reason);
            }
            let Some(ws) = &mut self.ws else { return Err("not connected".into()) };
            // Wake at least every 100 ms, so callers can stop on quiet.
            let due = self.engine.poll_timeout();
            let wake = due.map(|t| t.saturating_sub(now())).unwrap_or(100);
            let sleep = tokio::time::sleep(Duration::from_millis(wake.min(100)));
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Binary(b))) => self.engine.handle_message(&b, now()),
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        self.engine.handle_disconnected(now(), &reason);
                        self.drain(&mut on_event);
                        self.ws = None;
                        return Err(close_message(&reason));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        self.engine.handle_disconnected(now(), &e.to_string());
                        self.ws = None;
                        return Err(format!("the connection to the server broke: {e}"));
                    }
                    None => {
                        self.engine.handle_disconnected(now(), "closed");
                        self.ws = None;
                        return Err("the server closed the connection".into());
                    }
                },
                () = sleep => {
                    if due.is_some_and(|t| now() >= t) {
                        self.engine.handle_timeout(now());
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Err("timed out waiting for the server".into()),
            }
        }
    }

    fn drain(&mut self, on_event: &mut impl FnMut(&mut Engine, Option<Event>) -> Flow) {
        while let Some(e) = self.engine.poll_event() {
            let _ = on_event(&mut self.engine, Some(e));
        }
    }

    /// Runs until nothing is in flight (the outbox is empty, every request
    /// answered, every queued envelope handled).
    pub async fn settle(&mut self, limit: Duration, mut on_event: impl FnMut(&Event)) -> Result<(), String> {
        // Give the server a moment to push what it holds for us.
        let mut quiet_since: Option<tokio::time::Instant> = None;
        self.drive(limit, |engine, e| {
            if let Some(e) = &e {
                on_event(e);
                quiet_since = None;
                return Flow::Continue;
            }
            if engine.busy() {
                quiet_since = None;
                return Flow::Continue;
            }
            let since = *quiet_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= Duration::from_millis(300) { Flow::Stop } else { Flow::Continue }
        })
        .await
    }

    pub async fn close(mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = ws.close(None).await;
        }
    }
}

fn close_message(reason: &str) -> String {
    match reason {
        "device_removed" => "this device was removed from its account".into(),
        "going_away" => "the server is restarting or this device connected elsewhere; try again".into(),
        "" => "the server closed the connection".into(),
        other => format!("the server closed the connection ({other})"),
    }
}
