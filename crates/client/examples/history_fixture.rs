//! Writes a big history for `cargo xtask bench history`: N messages in C
//! chats (contacts c0001…), made and stored by the real engine as the
//! browser stores them (lazy history: messages and their word index apart).
//!
//! `cargo run --release -p tether-client --example history_fixture -- <chats> <messages> <big> <out.json>`:
//! one chat (`c0001`) gets `big` of the messages, the others share the
//! rest. The JSON is `{"local": {"kv/<ns>/<key>": base64}, "history":
//! {"<ns>/<key>": text}}`: what chrome.storage.local and IndexedDB hold.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tether_client::store::{HISTORY_NAMESPACES, KvStore, MemoryStore, Op};
use tether_client::{Chat, ChatMessage, ClientInfo, Contact, Engine, MessageBody, Random, Status};

/// Records every write; keeps history apart as the browser does.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<MemoryStore>>);

impl KvStore for Recording {
    fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        if HISTORY_NAMESPACES.contains(&ns) { Ok(vec![]) } else { self.0.lock().unwrap().scan(ns) }
    }
    fn apply(&mut self, ops: &[Op]) -> Result<(), String> {
        self.0.lock().unwrap().apply(ops)
    }
    fn scan_prefix(&self, ns: &str, prefix: &str) -> Result<Option<Vec<(String, Vec<u8>)>>, String> {
        if HISTORY_NAMESPACES.contains(&ns) { Ok(None) } else { self.0.lock().unwrap().scan_prefix(ns, prefix) }
    }
}

/// Deterministic: the same fixture every run.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
impl Random for XorShift {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

const WORDS: &[&str] = &[
    "the", "a", "meeting", "tomorrow", "lunch", "coffee", "project", "deadline", "photo", "link", "article", "review", "budget", "train",
    "weekend", "dinner", "call", "later", "thanks", "great", "idea", "draft", "report", "friday", "monday", "office", "home", "music",
    "concert", "ticket", "flight", "hotel", "recipe", "garden", "bike", "run", "doctor", "school", "birthday", "gift", "movie", "book",
    "chapter", "release", "bug", "fix", "deploy", "server", "browser", "extension", "phone", "battery", "charger", "weather", "rain",
    "sunny", "snow", "holiday", "beach", "mountain", "hike", "river", "coffee", "tea", "pizza", "pasta", "salad", "market", "price",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (chats_n, total, big) = (num(0, 500), num(1, 100_000), num(2, 5_000));
    let out = args.get(3).cloned().unwrap_or_else(|| "target/bench/history-fixture.json".into());
    let store = Recording::default();
    let info = ClientInfo { client_version: "fixture".into(), platform: "chrome/linux".into(), name: "fixture".into() };
    let mut engine = Engine::open(Box::new(store.clone()), Box::new(XorShift(0x9e37_79b9_7f4a_7c15)), info).expect("opens");
    let mut rng = XorShift(42);
    let start_ms: u64 = 1_780_000_000_000;
    let handles: Vec<String> = (1..=chats_n).map(|i| format!("c{i:04}")).collect();
    let contacts = handles.iter().map(|h| Contact { handle: h.clone(), name: format!("Contact {h}"), ..Default::default() }).collect();
    let mut messages = Vec::with_capacity(total);
    for i in 0..total {
        let chat = if i < big { 0 } else { 1 + (i - big) % (chats_n - 1).max(1) };
        let words = 4 + (rng.next() % 12) as usize;
        let text: Vec<&str> = (0..words).map(|_| WORDS[(rng.next() % WORDS.len() as u64) as usize]).collect();
        let from_me = rng.next() % 2 == 0;
        let id: String = (0..16).map(|_| format!("{:02x}", rng.next() as u8)).collect();
        messages.push(ChatMessage {
            id,
            chat: handles[chat].clone(),
            from_me,
            sender_handle: if from_me { "alice".into() } else { handles[chat].clone() },
            time_ms: start_ms + (i as u64) * 7_000,
            body: MessageBody::Text { body: format!("{} #{i}", text.join(" ")) },
            status: if from_me { Status::Read } else { Status::Delivered },
            ..Default::default()
        });
    }
    let mut chats: Vec<Chat> = handles.iter().map(|h| Chat { handle: h.clone(), ..Default::default() }).collect();
    for m in &messages {
        let c = &mut chats[handles.iter().position(|h| *h == m.chat).unwrap()];
        c.last_ms = m.time_ms;
        c.last_preview = match &m.body {
            MessageBody::Text { body } => body.chars().take(80).collect(),
            _ => String::new(),
        };
        c.read_up_to_ms = m.time_ms;
    }
    // A few unread, so the badge has something to count.
    for c in chats.iter_mut().take(7) {
        c.unread = 3;
        c.read_up_to_ms -= 3 * 7_000;
    }
    let started = std::time::Instant::now();
    engine.danger_import_history(contacts, chats, messages);
    let took = started.elapsed();
    let data = store.0.lock().unwrap();
    let mut local = BTreeMap::new();
    let mut history = BTreeMap::new();
    for ns in ["contacts", "chats", "chatmeta"] {
        for (k, v) in data.scan(ns).unwrap() {
            local.insert(format!("kv/{ns}/{k}"), B64.encode(v));
        }
    }
    for ns in HISTORY_NAMESPACES {
        for (k, v) in data.scan(ns).unwrap() {
            history.insert(format!("{ns}/{k}"), String::from_utf8(v).expect("history is text"));
        }
    }
    let json = serde_json::json!({ "local": local, "history": history });
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out, serde_json::to_vec(&json).unwrap()).unwrap();
    eprintln!(
        "history fixture: {total} messages in {chats_n} chats ({big} in c0001), {} history records, {} local records, engine import {:.1} s -> {out}",
        history.len(),
        local.len(),
        took.as_secs_f64()
    );
}
