//! `cargo xtask bench groups [N]`: one group of N accounts (default 1,024:
//! the sender and N−1 members, one device each) on loopback, against the
//! tether-server at `--server URL` (the xtask starts a release one with its
//! limits raised).
//!
//! The sender runs on a thread of its own; its CPU time is that thread's
//! (`/proc/thread-self/schedstat`), and its upload is every WebSocket
//! message it writes (Noise-encrypted frames), counted from the command
//! until the server accepted the entry. Members run on their own threads
//! and note when each has the message. Phases:
//!
//! 1. create: the group's creation — device lists are fetched when the
//!    members are added as contacts (setup), so this is the one-time keys
//!    claimed, the session key shared pairwise with every member device
//!    (batches of 32 accounts a send), and the creation sent once;
//! 2. send 1 and send 2: a text message each, one Megolm ciphertext the
//!    server fans out; then the members' delivered receipts, counted apart;
//! 3. a 1:1 message to one member, for the size of one pairwise copy.
//!
//! Prints a table and writes `target/bench/groups.json`.

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tether_client::store::MemoryStore;
use tether_client::{ClientInfo, Engine, Event, MessageBody, Random, Status};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Threads the members run on.
const MEMBER_THREADS: usize = 2;
/// Registrations in flight at once per member thread.
const REGISTERING: usize = 16;
/// How long any phase may take.
const LIMIT: Duration = Duration::from_secs(180);

struct OsRandom;
impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).unwrap();
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// This thread's CPU time: ns from schedstat, else clock ticks from stat.
fn thread_cpu() -> Duration {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(ns) = s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok())
    {
        return Duration::from_nanos(ns);
    }
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// One device: an engine and its socket, with what it wrote.
struct Dev {
    engine: Engine,
    ws: Ws,
    bytes: u64,
    frames: u64,
}

impl Dev {
    /// Registers `handle` on `url` and waits until that is done.
    async fn register(handle: &str, url: &str) -> Dev {
        let info =
            ClientInfo { client_version: "group-bench".into(), platform: "cli/linux".into(), name: "bench".into() };
        let mut engine = Engine::open(Box::new(MemoryStore::default()), Box::new(OsRandom), info).unwrap();
        let ws_url = format!("{}/v1/ws", url.replacen("http://", "ws://", 1));
        let (ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        engine.register(handle, url, now()).unwrap();
        engine.handle_connected(now());
        let mut d = Dev { engine, ws, bytes: 0, frames: 0 };
        d.until(|e, _| e.handle().is_some() && !e.busy()).await;
        d
    }

    /// Sends what the engine queued, counting it; hands each event to `on`.
    async fn flush(&mut self, on: &mut impl FnMut(&Engine, Event)) {
        while let Some(t) = self.engine.poll_transmit() {
            self.bytes += t.len() as u64;
            self.frames += 1;
            self.ws.send(Message::Binary(t.into())).await.expect("the server is up");
        }
        if let Some(why) = self.engine.poll_close() {
            panic!("{:?} closed: {why}", self.engine.handle());
        }
        while let Some(e) = self.engine.poll_event() {
            if let Event::Error { message, .. } = &e {
                eprintln!("{}: {message}", self.engine.handle().unwrap_or("?"));
            }
            on(&self.engine, e);
        }
    }

    /// Feeds one input (a message, or the engine's timeout) within `wait`.
    async fn step(&mut self, wait: Duration, on: &mut impl FnMut(&Engine, Event)) {
        self.flush(on).await;
        let due = self.engine.poll_timeout();
        let wake = due.map_or(wait, |t| Duration::from_millis(t.saturating_sub(now())).min(wait));
        match tokio::time::timeout(wake, self.ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => self.engine.handle_message(&b, now()),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("{:?}: the connection ended: {other:?}", self.engine.handle()),
            Err(_) => {
                if due.is_some_and(|t| now() >= t) {
                    self.engine.handle_timeout(now());
                }
            }
        }
        self.flush(on).await;
    }

    /// Runs until `done` holds at a quiet point (events seen by `done` too).
    async fn until(&mut self, mut done: impl FnMut(&Engine, Option<&Event>) -> bool) {
        let end = Instant::now() + LIMIT;
        let mut finished = false;
        loop {
            self.flush(&mut |e, ev| finished |= done(e, Some(&ev))).await;
            if finished || done(&self.engine, None) {
                return;
            }
            assert!(Instant::now() < end, "{:?}: timed out", self.engine.handle());
            self.step(Duration::from_millis(20), &mut |e, ev| finished |= done(e, Some(&ev))).await;
        }
    }
}

/// When each member got what: the creation, and each numbered message.
#[derive(Default)]
struct Arrivals {
    created: Vec<Instant>,
    texts: Vec<Vec<Instant>>,
}

/// Registers `handles` on a thread of their own, then keeps them
/// connected, noting arrivals, until the process ends.
fn members(handles: Vec<String>, url: String, ready: Arc<AtomicUsize>, got: Arc<Mutex<Arrivals>>) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let gate = Arc::new(tokio::sync::Semaphore::new(REGISTERING));
            for h in handles {
                let (url, ready, got, gate) = (url.clone(), ready.clone(), got.clone(), gate.clone());
                tokio::task::spawn_local(async move {
                    let permit = gate.acquire_owned().await.unwrap();
                    let mut d = Dev::register(&h, &url).await;
                    drop(permit);
                    ready.fetch_add(1, Ordering::SeqCst);
                    let mut on = |_: &Engine, e: Event| {
                        if let Event::Message { message: m } = e
                            && m.chat.starts_with("g:")
                        {
                            let mut a = got.lock().unwrap();
                            match &m.body {
                                MessageBody::GroupEvent { .. } => a.created.push(Instant::now()),
                                MessageBody::Text { body } => {
                                    if let Some(k) = body.strip_prefix("bench ").and_then(|k| k.parse::<usize>().ok()) {
                                        if a.texts.len() <= k {
                                            a.texts.resize(k + 1, Vec::new());
                                        }
                                        a.texts[k].push(Instant::now());
                                    }
                                }
                                _ => {}
                            }
                        }
                    };
                    loop {
                        d.step(Duration::from_secs(1), &mut on).await;
                    }
                });
            }
            std::future::pending::<()>().await;
        });
    });
}

/// What one phase cost the sender.
struct Cost {
    cpu: Duration,
    bytes: u64,
    frames: u64,
    /// Until the server accepted it.
    accepted: Duration,
    /// Until every member device had it.
    everyone: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits (driving the sender) until `count()` reaches `n`; when it did.
async fn until_members(sender: &mut Dev, n: usize, count: impl Fn() -> (usize, Option<Instant>)) -> Instant {
    let end = Instant::now() + LIMIT;
    loop {
        let (c, last) = count();
        if c >= n {
            return last.unwrap_or_else(Instant::now);
        }
        assert!(Instant::now() < end, "only {c} of {n} members got it");
        sender.step(Duration::from_millis(10), &mut |_, _| {}).await;
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut url = String::new();
    let mut n = 1024usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--server" => url = args.next().expect("--server URL"),
            "--accounts" => n = args.next().and_then(|v| v.parse().ok()).expect("--accounts N"),
            other => panic!("unknown argument {other} (--server URL --accounts N)"),
        }
    }
    assert!(!url.is_empty(), "--server URL");
    assert!((2..=tether_client::MAX_GROUP_MEMBERS).contains(&n), "2 to {} accounts", tether_client::MAX_GROUP_MEMBERS);
    let others: Vec<String> = (1..n).map(|i| format!("m{i:04}")).collect();

    let ready = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(Mutex::new(Arrivals::default()));
    let t = Instant::now();
    let per = others.len().div_ceil(MEMBER_THREADS);
    for chunk in others.chunks(per) {
        members(chunk.to_vec(), url.clone(), ready.clone(), got.clone());
    }
    // The sender: a thread of its own (this one), its own runtime.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = rt.block_on(async {
        let mut sender = Dev::register("sender", &url).await;
        while ready.load(Ordering::SeqCst) < others.len() {
            sender.step(Duration::from_millis(50), &mut |_, _| {}).await;
        }
        eprintln!("{} accounts registered in {:.1} s", n, t.elapsed().as_secs_f64());
        let t = Instant::now();
        for h in &others {
            sender.engine.add_contact(h, "", now()).unwrap();
        }
        let hs = others.clone();
        sender.until(|e, _| !e.busy() && hs.iter().all(|h| e.contact(h).is_some_and(|c| !c.list.is_empty()))).await;
        eprintln!("{} contacts added (device lists fetched) in {:.1} s", others.len(), t.elapsed().as_secs_f64());

        let mut costs = Vec::new();
        // 1. The group's creation.
        let (cpu0, bytes0, frames0, t0) = (thread_cpu(), sender.bytes, sender.frames, Instant::now());
        let chat = sender.engine.create_group("Bench", &others, now()).unwrap();
        let group = chat.trim_start_matches("g:").to_string();
        sender.until(|e, _| e.outbox().group_ids(&group).is_empty()).await;
        let accepted = t0.elapsed();
        let (cpu, bytes, frames) = (thread_cpu() - cpu0, sender.bytes - bytes0, sender.frames - frames0);
        let all = until_members(&mut sender, others.len(), || {
            let a = got.lock().unwrap();
            (a.created.len(), a.created.iter().max().copied())
        })
        .await;
        costs.push(("create", Cost { cpu, bytes, frames, accepted, everyone: all - t0 }, Duration::ZERO, 0));
        eprintln!("created: {:.0} ms to accepted, {:.0} ms to every member", ms(accepted), ms(all - t0));

        // 2. Two messages.
        for k in 1..=2usize {
            let (cpu0, bytes0, frames0, t0) = (thread_cpu(), sender.bytes, sender.frames, Instant::now());
            let id = sender.engine.send_text(&chat, &format!("bench {k}"), now()).unwrap();
            let sent = id.clone();
            sender.until(|_, e| matches!(e, Some(Event::Sent { id }) if *id == sent)).await;
            let accepted = t0.elapsed();
            let (cpu, bytes, frames) = (thread_cpu() - cpu0, sender.bytes - bytes0, sender.frames - frames0);
            let all = until_members(&mut sender, others.len(), || {
                let a = got.lock().unwrap();
                let v = a.texts.get(k).map(Vec::as_slice).unwrap_or(&[]);
                (v.len(), v.iter().max().copied())
            })
            .await;
            // The members' delivered receipts, on the sender's side.
            let cpu1 = thread_cpu();
            let receipts_t = Instant::now();
            // At most two minutes: what came by then is counted.
            let end = Instant::now() + Duration::from_secs(120);
            let delivered = |e: &Engine| e.messages(&chat).iter().any(|m| m.id == id && m.status >= Status::Delivered);
            while !delivered(&sender.engine) && Instant::now() < end {
                sender.step(Duration::from_millis(10), &mut |_, _| {}).await;
            }
            let receipts_cpu = thread_cpu() - cpu1;
            let receipts = sender.engine.messages(&chat).iter().find(|m| m.id == id).map_or(0, |m| m.receipts.len());
            eprintln!(
                "send {k}: {:.0} ms to accepted, {:.0} ms to every member; {receipts} receipts in {:.0} ms",
                ms(accepted),
                ms(all - t0),
                ms(receipts_t.elapsed())
            );
            let name = if k == 1 { "send 1" } else { "send 2" };
            costs.push((name, Cost { cpu, bytes, frames, accepted, everyone: all - t0 }, receipts_cpu, receipts));
        }

        // 3. One pairwise copy, for scale.
        let (bytes0, frames0) = (sender.bytes, sender.frames);
        let id = sender.engine.send_text(&others[0], "bench 1:1", now()).unwrap();
        sender.until(|_, e| matches!(e, Some(Event::Sent { id: i }) if *i == id)).await;
        let one_copy = sender.bytes - bytes0;
        let one_frames = sender.frames - frames0;
        (costs, one_copy, one_frames)
    });
    let (costs, one_copy, one_frames) = result;

    println!();
    println!("One group of {n} accounts (the sender and {} members, one device each) on loopback", n - 1);
    println!(
        "{:<8} {:>12} {:>12} {:>8} {:>14} {:>16} {:>14}",
        "phase", "sender CPU", "uploaded", "frames", "to accepted", "to every member", "receipts CPU"
    );
    for (name, c, rcpu, nr) in &costs {
        let receipts = if *nr > 0 { format!("{:.1} ms ({nr})", ms(*rcpu)) } else { "-".into() };
        println!(
            "{name:<8} {:>9.1} ms {:>9.1} KiB {:>8} {:>11.0} ms {:>13.0} ms {receipts:>14}",
            ms(c.cpu),
            c.bytes as f64 / 1024.0,
            c.frames,
            ms(c.accepted),
            ms(c.everyone)
        );
    }
    println!(
        "one 1:1 message (one pairwise copy, for scale): {one_copy} B in {one_frames} frame(s); \
         {} such copies would be {:.1} KiB",
        n - 1,
        (one_copy * (n as u64 - 1)) as f64 / 1024.0
    );
    let json = serde_json::json!({
        "accounts": n,
        "phases": costs.iter().map(|(name, c, rcpu, nr)| serde_json::json!({
            "phase": name, "sender_cpu_ms": ms(c.cpu), "uploaded_bytes": c.bytes, "frames": c.frames,
            "accepted_ms": ms(c.accepted), "every_member_ms": ms(c.everyone),
            "receipts_cpu_ms": ms(*rcpu), "receipts": nr,
        })).collect::<Vec<_>>(),
        "one_to_one_bytes": one_copy,
        "note": "sender CPU = the sender thread's CPU time from the command until the server accepted it; \
                 uploaded = WebSocket messages it wrote in that time; every member = until the last member's engine showed it",
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("groups.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    // Member threads run forever: end here.
    std::process::exit(0);
}
