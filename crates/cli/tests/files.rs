//! Files on the command line (issue 11): `tether send-file`, `tether
//! download`, `tether uploads`, with the real binaries: byte-for-byte
//! round trips, resume across a server kill, refusals in words, and no
//! plaintext on the server's disk or in its log.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MARKER: &[u8] = b"TETHER-FILE-PLAINTEXT-MARKER-7d1c";

/// `len` bytes that do not compress, with the marker every 64 KiB.
fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ len as u64;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    for at in (0..len.saturating_sub(MARKER.len())).step_by(64 * 1024) {
        bytes[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn blob_dir(dir: &Path) -> PathBuf {
    dir.join("server").join("blobs")
}

fn blob_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(blob_dir(dir)).map(|r| r.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default()
}

/// The file id `tether read` prints for the last file from `from`.
fn file_id(home: &Path, from: &str) -> String {
    let out = ok(home, &["read", from]);
    out.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("id ").map(|r| r.split_whitespace().next().unwrap().to_string()))
        .unwrap_or_else(|| panic!("no file id in:\n{out}"))
}

fn contacts(alice: &Path, bob: &Path) {
    ok(alice, &["contacts", "add", "bob"]);
    ok(bob, &["contacts", "add", "alice"]);
}

#[test]
fn a_file_goes_byte_for_byte_the_server_never_holds_its_plaintext_and_deletes_it_once_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    contacts(&alice, &bob);
    let src = dir.path().join("März report.pdf");
    let bytes = random_file(&src, 3 * 1024 * 1024 + 77);
    let out = ok(&alice, &["send-file", "bob", src.to_str().unwrap(), "--caption", "numbers for Q1"]);
    assert!(out.contains("Sent März report.pdf to bob."), "{out}");

    // On the server: one blob, ciphertext only; nothing in its log.
    let files = blob_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(!contains(&std::fs::read(&files[0]).unwrap(), MARKER), "the blob holds plaintext");
    let log = std::fs::read(&server.log).unwrap();
    assert!(!contains(&log, MARKER) && !contains(&log, b"numbers for Q1") && !contains(&log, "März".as_bytes()));

    // Bob sees what it is before fetching it, and its id.
    let read = ok(&bob, &["read", "alice"]);
    assert!(read.contains("📄 März report.pdf (3 MB)") && read.contains("numbers for Q1"), "{read}");
    let id = file_id(&bob, "alice");
    let saved = dir.path().join("downloads");
    std::fs::create_dir(&saved).unwrap();
    let out = ok(&bob, &["download", &id[..8], "--out", saved.to_str().unwrap()]);
    assert!(out.contains("Saved") && out.contains("checked"), "{out}");
    assert_eq!(std::fs::read(saved.join("März report.pdf")).unwrap(), bytes, "byte for byte");
    // Its one reader fetched it: gone from the server.
    assert!(blob_files(dir.path()).is_empty(), "{:?}", blob_files(dir.path()));
    let (success, _, err) = tether(&bob, &["download", &id, "--out", dir.path().join("again").to_str().unwrap()]);
    assert!(!success && err.contains("no longer on the server"), "{err}");

    // Scripts see it too, with its id and what it is, never its key.
    let mut listen = KillOnDrop(
        std::process::Command::new(TETHER)
            .arg("--data")
            .arg(&bob)
            .args(["listen", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(listen.0.stdout.take().unwrap()));
    ok(&alice, &["send-file", "bob", src.to_str().unwrap()]);
    let line = lines.find(|l| l.as_ref().is_ok_and(|l| l.contains("\"kind\":\"file\""))).expect("listen printed the file").unwrap();
    drop(listen);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!((v["from"].as_str(), v["file"]["name"].as_str(), v["file"]["size"].as_u64()), (Some("alice"), Some("März report.pdf"), Some(bytes.len() as u64)), "{line}");
    assert_eq!(v["id"].as_str().map(str::len), Some(32));
    assert!(!line.contains("\"key\"") && !line.contains("\"digest\""), "never the key: {line}");
}

#[test]
fn an_upload_cut_by_a_server_kill_goes_on_where_it_stopped_and_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let addr = server.addr().to_string();
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    contacts(&alice, &bob);
    let src = dir.path().join("big.bin");
    let bytes = random_file(&src, 40 * 1024 * 1024);
    let send = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("--data")
        .arg(&alice)
        .args(["send-file", "bob", src.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server once some of the blob is on its disk.
    let deadline = Instant::now() + Duration::from_secs(60);
    let part = loop {
        let part = blob_files(dir.path()).into_iter().find(|p| p.extension().is_some_and(|e| e == "part"));
        if let Some(p) = part.filter(|p| std::fs::metadata(p).map(|m| m.len() > 1024 * 1024).unwrap_or(false)) {
            break p;
        }
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    let blob_id = part.file_stem().unwrap().to_string_lossy().into_owned();
    server.kill();
    let server = Server::start_at(dir.path(), &addr);
    server.wait_healthy();
    let out = send.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        // The retries ran out before the server was back: the upload waits
        // on this computer, and `tether uploads --resume` sends it.
        assert!(stderr.contains("tether uploads --resume"), "{stdout}\n{stderr}");
        let out = ok(&alice, &["uploads", "--resume"]);
        assert!(out.contains("Sent"), "{out}");
    } else {
        assert!(stderr.contains("going on where the server left off"), "it resumed: {stderr}");
    }
    assert_eq!(ok(&alice, &["uploads"]).trim(), "No unfinished uploads.");
    // The same blob, finished, not a second upload from zero.
    let files = blob_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].file_name().unwrap().to_string_lossy(), blob_id);
    let id = file_id(&bob, "alice");
    let saved = dir.path().join("big-received.bin");
    ok(&bob, &["download", &id, "--out", saved.to_str().unwrap()]);
    assert!(std::fs::read(&saved).unwrap() == bytes, "the file arrived whole");
}

#[test]
fn refusals_say_what_happened_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--blob-quota", "1000000"]);
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    contacts(&alice, &bob);
    // Over 64 MB: refused before anything is written or sent.
    let huge = dir.path().join("huge.bin");
    std::fs::File::create(&huge).unwrap().set_len(65 * 1024 * 1024).unwrap();
    let (success, _, err) = tether(&alice, &["send-file", "bob", huge.to_str().unwrap()]);
    assert!(!success && err.contains("is 65 MB: files can be at most 64 MB"), "{err}");
    assert_eq!(ok(&alice, &["uploads"]).trim(), "No unfinished uploads.");
    // Over the account's quota on this server.
    let two = dir.path().join("two.bin");
    random_file(&two, 2 * 1024 * 1024);
    let (success, _, err) = tether(&alice, &["send-file", "bob", two.to_str().unwrap()]);
    assert!(!success && err.contains("storage on the server is full"), "{err}");
    let listed = ok(&alice, &["uploads"]);
    assert!(listed.contains("two.bin") && listed.contains("storage on the server is full"), "{listed}");
    // Not a file, no such contact.
    let (success, _, err) = tether(&alice, &["send-file", "bob", dir.path().to_str().unwrap()]);
    assert!(!success && err.contains("is not a file"), "{err}");
    let (success, _, err) = tether(&alice, &["send-file", "carol", two.to_str().unwrap()]);
    assert!(!success && err.contains("unknown contact carol"), "{err}");
    // A download id that is not there.
    let (success, _, err) = tether(&bob, &["download", "deadbeef00"]);
    assert!(!success && err.contains("no file message with id deadbeef00"), "{err}");
}
