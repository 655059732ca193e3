//! A server outage in the middle of a conversation, with the real binaries:
//! alice sends 50 numbered messages to bob one `tether send` at a time; the
//! server is killed with SIGKILL after the 10th, the other 40 are queued
//! while it is down (each `tether send` says so and fails), the server
//! comes back on the same data and port, and alice's queue drains. Bob
//! gets all 50, each once, in the order alice wrote them: live in
//! `tether listen --json`, and in `tether read`.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOTAL: usize = 50;
const KILL_AFTER: usize = 10;

fn text(n: usize) -> String {
    format!("outage message {n:02} of {TOTAL}")
}

/// The message number in `line`, if it is one of ours.
fn number(line: &str) -> Option<usize> {
    let rest = line.split("outage message ").nth(1)?;
    rest.get(..2)?.parse().ok()
}

/// `tether listen --json` in `home`: its JSON lines on a channel.
fn listen(home: &std::path::Path, stderr_log: &std::path::Path) -> (KillOnDrop, mpsc::Receiver<serde_json::Value>) {
    let mut child = Command::new(TETHER)
        .arg("--data")
        .arg(home)
        .args(["listen", "--json"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_log).unwrap())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object a line");
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (KillOnDrop(child), rx)
}

/// The numbers of our messages from `listen`, until `want` arrived (or
/// `limit` passed), then whatever else comes within a second (duplicates).
fn numbers_received(rx: &mpsc::Receiver<serde_json::Value>, got: &mut Vec<usize>, want: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut quiet_until = None;
    loop {
        let until = quiet_until.unwrap_or(deadline);
        let Some(left) = until.checked_duration_since(Instant::now()) else { return };
        match rx.recv_timeout(left) {
            Ok(v) if v["event"] == "message" && v["from"] == "alice" => {
                if let Some(n) = v["text"].as_str().and_then(number) {
                    got.push(n);
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
        if got.len() >= want && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(1));
        }
    }
}

#[test]
fn fifty_messages_through_a_sigkilled_server_arrive_once_and_in_send_order() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    ok(&alice, &["contacts", "add", "bob"]);
    ok(&bob, &["contacts", "add", "alice"]);
    // Bob has alice's keys and an Olm session with her before the outage.
    ok(&alice, &["send", "bob", "hello before the outage"]);
    assert!(ok(&bob, &["read", "alice"]).contains("hello before the outage"));

    let listen_log = dir.path().join("bob-listen.log");
    let (_listener, rx) = listen(&bob, &listen_log);
    let mut live = Vec::new();

    for n in 1..=KILL_AFTER {
        let out = ok(&alice, &["send", "bob", &text(n)]);
        assert!(out.contains("Sent to bob"), "{out}");
    }
    numbers_received(&rx, &mut live, KILL_AFTER, Duration::from_secs(30));
    assert_eq!(live, (1..=KILL_AFTER).collect::<Vec<_>>(), "before the outage, live");

    let addr = server.addr().to_string();
    server.kill();
    for n in KILL_AFTER + 1..=TOTAL {
        let (success, out, err) = tether(&alice, &["send", "bob", &text(n)]);
        assert!(!success, "message {n} cannot have been sent: {out}");
        assert!(err.contains("cannot reach the Tether server"), "{err}");
        let waiting = n - KILL_AFTER;
        assert!(err.contains(&format!("queued on this computer ({waiting} waiting)")), "{err}");
        assert!(err.contains("Do not send it again"), "{err}");
        assert!(!err.contains(&text(n)), "the error does not repeat the message: {err}");
    }
    let status = ok(&alice, &["status"]);
    assert!(status.contains(&format!("outbox: {}", TOTAL - KILL_AFTER)), "{status}");

    let server = Server::start_at(dir.path(), &addr);
    server.wait_healthy();
    // A command that connects sends the queue.
    ok(&alice, &["chats"]);
    let status = ok(&alice, &["status"]);
    assert!(status.contains("outbox: 0"), "{status}");

    numbers_received(&rx, &mut live, TOTAL, Duration::from_secs(60));
    let log = std::fs::read_to_string(&listen_log).unwrap_or_default();
    assert_eq!(
        live,
        (1..=TOTAL).collect::<Vec<_>>(),
        "bob's live stream: each once, in send order\nlisten stderr:\n{log}"
    );
    drop(_listener);

    let read = ok(&bob, &["read", "alice", "-n", "100"]);
    let history: Vec<usize> = read.lines().filter_map(number).collect();
    assert_eq!(history, (1..=TOTAL).collect::<Vec<_>>(), "bob's chat: each once, in send order\n{read}");
    let mine = ok(&alice, &["read", "bob", "-n", "100"]);
    let history: Vec<usize> = mine.lines().filter_map(number).collect();
    assert_eq!(history, (1..=TOTAL).collect::<Vec<_>>(), "alice's own chat\n{mine}");
    assert!(!mine.contains("(queued)"), "every message left alice's outbox: {mine}");
    eprintln!("outage test took {:.1} s", started.elapsed().as_secs_f64());
}
