//! `cargo xtask bench client`: native numbers for the engine.
//!
//! 1. Olm (vodozemac) encrypt + decrypt throughput for 256-byte messages
//!    over one pairwise session.
//! 2. Linking a companion to a primary holding 1,000 messages (all within
//!    90 days): from `confirm_link` to the companion having imported the
//!    whole history, through a real in-process tether-server over loopback.

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_client::store::MemoryStore;
use tether_client::{ClientInfo, Engine, Event, Random};
use tokio_tungstenite::tungstenite::Message;
use vodozemac::olm::{Account, OlmMessage, SessionConfig};

struct OsRandom;
impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).unwrap();
    }
}

fn olm_throughput() -> (f64, f64) {
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    let mut a = alice.create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk).unwrap();
    let first = a.encrypt(b"hello").unwrap();
    let OlmMessage::PreKey(pre) = first else { unreachable!() };
    let mut b = bob.create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &pre).unwrap().session;
    // Make the session bidirectional (normal messages from now on).
    let reply = b.encrypt(b"hi").unwrap();
    a.decrypt(&reply).unwrap();
    let payload = [7u8; 256];
    let n = 20_000;
    let t = Instant::now();
    let mut msgs = Vec::with_capacity(n);
    for _ in 0..n {
        msgs.push(a.encrypt(payload).unwrap());
    }
    let enc = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for m in &msgs {
        b.decrypt(m).unwrap();
    }
    let dec = n as f64 / t.elapsed().as_secs_f64();
    (enc, dec)
}

struct Device {
    engine: Engine,
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    events: Vec<Event>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

impl Device {
    async fn new(addr: std::net::SocketAddr, platform: &str) -> Self {
        let info = ClientInfo { client_version: "bench".into(), platform: platform.into(), name: format!("bench {platform}") };
        let engine = Engine::open(Box::new(MemoryStore::default()), Box::new(OsRandom), info).unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws")).await.unwrap();
        Self { engine, ws, events: Vec::new() }
    }

    async fn flush(&mut self) {
        while let Some(t) = self.engine.poll_transmit() {
            self.ws.send(Message::Binary(t.into())).await.unwrap();
        }
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
    }

    /// Runs until `done` or 60 s.
    async fn run_until(&mut self, mut done: impl FnMut(&Engine, &[Event]) -> bool) {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            self.flush().await;
            if done(&self.engine, &self.events) {
                return;
            }
            assert!(Instant::now() < end, "timed out");
            if let Ok(Some(Ok(Message::Binary(b)))) = tokio::time::timeout(Duration::from_millis(50), self.ws.next()).await {
                self.engine.handle_message(&b, now());
            }
        }
    }
}

async fn link_with_history(messages: usize) -> (Duration, usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = tether_server::Config { data: dir.path().to_path_buf(), rate_per_sec: 100_000, rate_burst: 100_000, ..Default::default() };
    let server = tether_server::Server::open(config, Arc::new(tether_server::SystemClock)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, std::future::pending()).await });
    let url = format!("http://{addr}");

    let mut bob = Device::new(addr, "cli/linux").await;
    bob.engine.register("bob", &url, now()).unwrap();
    bob.engine.handle_connected(now());
    bob.run_until(|e, _| e.handle().is_some()).await;
    let mut alice = Device::new(addr, "cli/linux").await;
    alice.engine.register("alice", &url, now()).unwrap();
    alice.engine.handle_connected(now());
    alice.run_until(|e, _| e.handle().is_some()).await;
    alice.engine.add_contact("bob", "Bob", now()).unwrap();
    alice.run_until(|e, _| e.contact("bob").is_some_and(|c| !c.list.is_empty())).await;
    for i in 0..messages {
        alice.engine.send_text("bob", &format!("history message {i} with some ordinary length to it"), now()).unwrap();
        if i % 50 == 49 {
            alice.run_until(|e, _| e.outbox_len() == 0).await;
        }
    }
    alice.run_until(|e, _| e.outbox_len() == 0).await;

    let mut companion = Device::new(addr, "chrome/linux").await;
    companion.engine.start_link(&url, false, now()).unwrap();
    companion.engine.handle_connected(now());
    companion.run_until(|_, ev| ev.iter().any(|e| matches!(e, Event::LinkCode { .. }))).await;
    let uri = companion.events.iter().find_map(|e| if let Event::LinkCode { uri, .. } = e { Some(uri.clone()) } else { None }).unwrap();
    alice.engine.link_from_uri(&uri).unwrap();
    let t = Instant::now();
    alice.engine.confirm_link(now()).unwrap();
    alice.flush().await;
    let want = messages;
    // Drive both until the companion holds the history.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        alice.flush().await;
        companion.flush().await;
        if companion.engine.messages("bob").len() >= want {
            break;
        }
        assert!(Instant::now() < end, "history did not arrive");
        tokio::select! {
            m = alice.ws.next() => if let Some(Ok(Message::Binary(b))) = m { alice.engine.handle_message(&b, now()) },
            m = companion.ws.next() => if let Some(Ok(Message::Binary(b))) = m { companion.engine.handle_message(&b, now()) },
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    (t.elapsed(), companion.engine.messages("bob").len())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (enc, dec) = olm_throughput();
    println!("olm encrypt (256 B, one session):        {enc:>10.0} msgs/s");
    println!("olm decrypt (256 B, one session):        {dec:>10.0} msgs/s");
    let (took, n) = link_with_history(1000).await;
    println!("link a companion with {n} messages of history: {:>6.0} ms (confirm → history imported)", took.as_secs_f64() * 1000.0);
    let json = serde_json::json!({
        "olm_encrypt_per_s": enc, "olm_decrypt_per_s": dec,
        "link_history_messages": n, "link_history_ms": took.as_secs_f64() * 1000.0,
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("client.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
}
