//! The blob store (docs/protocol.md §14.3): tickets over the real socket,
//! bytes over real HTTP (tus-style PATCH, Range GET), readers recorded by
//! sends, deletion by fetch, by the owner (`BlobDelete`), device removal
//! and expiry.

use crate::common::*;
use std::time::Duration;
use tether_proto::ErrorCode;
use tether_proto::frames::*;
use tether_proto::media;
use tokio::io::AsyncWriteExt;

const OCTETS: &str = "application/offset+octet-stream";

/// An HTTP answer, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: ureq::http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(crate) fn offset(&self) -> u64 {
        self.header("upload-offset").expect("an Upload-Offset header").parse().unwrap()
    }

    /// The `code` of a JSON refusal.
    pub(crate) fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("a JSON body, got {:?}", String::from_utf8_lossy(&self.body)));
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "a message for humans: {v}");
        v["code"].as_str().unwrap().to_string()
    }
}

/// A request body: bytes with a Content-Length, or a stream without one
/// (chunked).
pub(crate) enum Body {
    None,
    Bytes(Vec<u8>),
    Chunked(Vec<u8>),
}

/// One HTTP request with ureq (blocking, on the blocking pool).
pub(crate) async fn http(method: &'static str, url: String, headers: Vec<(&'static str, String)>, body: Body) -> Reply {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        macro_rules! with_headers {
            ($r:expr) => {{
                let mut r = $r;
                for (k, v) in &headers {
                    r = r.header(*k, v);
                }
                r
            }};
        }
        let resp = match (method, body) {
            ("HEAD", Body::None) => with_headers!(agent.head(&url)).call(),
            ("GET", Body::None) => with_headers!(agent.get(&url)).call(),
            ("OPTIONS", Body::None) => with_headers!(agent.options(&url)).call(),
            ("PATCH", Body::Bytes(b)) => with_headers!(agent.patch(&url)).send(&b[..]),
            ("PATCH", Body::Chunked(b)) => {
                with_headers!(agent.patch(&url)).send(ureq::SendBody::from_owned_reader(std::io::Cursor::new(b)))
            }
            _ => unreachable!(),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = if method == "HEAD" {
            vec![]
        } else {
            resp.into_body().with_config().limit(1 << 30).read_to_vec().unwrap()
        };
        Reply { status, headers, body }
    })
    .await
    .unwrap()
}

pub(crate) fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

pub(crate) async fn head(server: &TestServer, t: &BlobTicket) -> Reply {
    http("HEAD", server.http_url(&t.path), vec![bearer(&t.token)], Body::None).await
}

pub(crate) async fn patch(server: &TestServer, t: &BlobTicket, offset: u64, bytes: &[u8]) -> Reply {
    let headers = vec![bearer(&t.token), ("content-type", OCTETS.into()), ("upload-offset", offset.to_string())];
    http("PATCH", server.http_url(&t.path), headers, Body::Bytes(bytes.to_vec())).await
}

pub(crate) async fn get(server: &TestServer, t: &BlobTicket, range: Option<&str>) -> Reply {
    let mut headers = vec![bearer(&t.token)];
    if let Some(r) = range {
        headers.push(("range", r.into()));
    }
    http("GET", server.http_url(&t.path), headers, Body::None).await
}

/// A file of `size` bytes holding `marker`, encrypted under a fresh key:
/// (key, plaintext, blob).
pub(crate) fn file(size: usize, marker: &[u8]) -> ([u8; 32], Vec<u8>, Vec<u8>) {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    let mut plain: Vec<u8> = (0..size).map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26]).collect();
    for at in [0, size / 2, size - marker.len()] {
        plain[at..at + marker.len()].copy_from_slice(marker);
    }
    let (blob, info) = media::encrypt_all(&key, &plain);
    assert_eq!(info.ciphertext_len, blob.len() as u64);
    (key, plain, blob)
}

pub(crate) fn ticket(body: ResponseBody) -> BlobTicket {
    match body {
        ResponseBody::BlobTicket(t) => t,
        other => panic!("expected a ticket, got {other:?}"),
    }
}

pub(crate) async fn upload_ticket(c: &mut Client, length: u64) -> BlobTicket {
    ticket(c.ok(Request::BlobUpload(BlobUpload { length, resume: vec![] })).await)
}

pub(crate) async fn resume_ticket(c: &mut Client, t: &BlobTicket) -> BlobTicket {
    ticket(c.ok(Request::BlobUpload(BlobUpload { length: t.length, resume: t.blob_id.clone() })).await)
}

pub(crate) async fn download_ticket(c: &mut Client, blob_id: &[u8]) -> BlobTicket {
    ticket(c.ok(Request::BlobDownload(BlobDownload { blob_id: blob_id.to_vec() })).await)
}

/// Uploads `blob` whole in one PATCH; returns its ticket.
pub(crate) async fn upload(server: &TestServer, c: &mut Client, blob: &[u8]) -> BlobTicket {
    let t = upload_ticket(c, blob.len() as u64).await;
    let r = patch(server, &t, 0, blob).await;
    assert_eq!((r.status, r.offset()), (204, blob.len() as u64));
    t
}

/// A send of one message to `copies`, naming `blobs`.
pub(crate) fn send_with(message_id: u8, copies: Vec<(&str, u32)>, blobs: Vec<Vec<u8>>) -> Request {
    let Request::Send(mut m) =
        send_req(message_id, copies.into_iter().map(|(h, d)| (h, d, b"sealed".to_vec())).collect())
    else {
        unreachable!()
    };
    m.blob_ids = blobs;
    Request::Send(m)
}

fn blob_file(server: &TestServer, t: &BlobTicket) -> std::path::PathBuf {
    server.dir.path().join("blobs").join(hex(&t.blob_id))
}

fn part_file(server: &TestServer, t: &BlobTicket) -> std::path::PathBuf {
    server.dir.path().join("blobs").join(format!("{}.part", hex(&t.blob_id)))
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends a PATCH announcing `declared` bytes, writes only `bytes`, and
/// drops the connection.
pub(crate) async fn patch_and_drop(server: &TestServer, t: &BlobTicket, offset: u64, declared: usize, bytes: &[u8]) {
    drop(patch_and_stall(server, t, offset, declared, bytes).await);
}

/// Sends a PATCH announcing `declared` bytes, writes only `bytes`, and
/// goes quiet with the connection open (a network that dropped without a
/// word); the caller holds the connection.
async fn patch_and_stall(
    server: &TestServer,
    t: &BlobTicket,
    offset: u64,
    declared: usize,
    bytes: &[u8],
) -> tokio::net::TcpStream {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "PATCH {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: {OCTETS}\r\n\
         Upload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n",
        t.path, server.addr, t.token
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    tcp.flush().await.unwrap();
    tcp
}

/// HEAD until the server reports `want` (it finishes the dropped PATCH in
/// its own time), 10 s at most.
pub(crate) async fn offset_becomes(server: &TestServer, t: &BlobTicket, want: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = head(server, t).await;
        assert_eq!(r.status, 200);
        if r.offset() == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "offset stayed {} (want {want})", r.offset());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_in_several_patches_survives_a_dropped_connection_and_a_restart() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (key, plain, blob) = file(700_000, b"MARKER");
    let len = blob.len() as u64;
    assert_eq!(len, media::ciphertext_len(700_000).unwrap());

    let t = upload_ticket(&mut a, len).await;
    assert_eq!((t.blob_id.len(), t.length, t.offset), (16, len, 0));
    assert_eq!(t.path, format!("/v1/blobs/{}", hex(&t.blob_id)));
    assert_eq!(t.expires_ms, T0 + 3_600_000, "tokens live an hour");
    let r = head(&server, &t).await;
    assert_eq!((r.status, r.offset(), r.header("upload-length")), (200, 0, Some(len.to_string().as_str())));
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));

    // First PATCH: 100 000 bytes.
    let r = patch(&server, &t, 0, &blob[..100_000]).await;
    assert_eq!((r.status, r.offset()), (204, 100_000));
    assert_eq!(std::fs::metadata(part_file(&server, &t)).unwrap().len(), 100_000, "on disk as .part");

    // Second PATCH announces 200 000 bytes, sends 50 000, and the
    // connection drops: the 50 000 are kept.
    patch_and_drop(&server, &t, 100_000, 200_000, &blob[100_000..150_000]).await;
    offset_becomes(&server, &t, 150_000).await;
    // A client that did not notice goes on from the old offset: 409 with the server's.
    let r = patch(&server, &t, 100_000, &blob[100_000..120_000]).await;
    assert_eq!((r.status, r.offset(), r.code().as_str()), (409, 150_000, "bad_request"));

    // A restart: the token still holds (stateless, same server key), and a
    // new connection asks for a new ticket by resuming.
    let server = server.restart().await;
    let r = head(&server, &t).await;
    assert_eq!((r.status, r.offset()), (200, 150_000), "the old token survives the restart");
    let mut a = reconnect(&server, &a.key).await;
    let t2 = resume_ticket(&mut a, &t).await;
    assert_eq!(
        (t2.blob_id.as_slice(), t2.offset, t2.length, t2.path.as_str()),
        (t.blob_id.as_slice(), 150_000, len, t.path.as_str())
    );

    // The rest in two PATCHes with the new token.
    let r = patch(&server, &t2, 150_000, &blob[150_000..400_000]).await;
    assert_eq!((r.status, r.offset()), (204, 400_000));
    assert!(!blob_file(&server, &t).exists(), "not whole yet");
    let r = patch(&server, &t2, 400_000, &blob[400_000..]).await;
    assert_eq!((r.status, r.offset()), (204, len));
    assert!(!part_file(&server, &t).exists(), "renamed once whole");
    assert_eq!(std::fs::read(blob_file(&server, &t)).unwrap(), blob, "the file is the blob, byte for byte");
    let r = patch(&server, &t2, len, b"more").await;
    assert_eq!((r.status, r.offset()), (409, len), "a whole blob is final");
    let r = head(&server, &t2).await;
    assert_eq!((r.status, r.offset()), (200, len));
    let t3 = resume_ticket(&mut a, &t).await;
    assert_eq!(t3.offset, len, "a resume of a whole upload says so");

    // The owner's account may download it; whole and by range.
    let d = download_ticket(&mut a, &t.blob_id).await;
    assert_eq!((d.offset, d.length, d.path.as_str()), (0, len, t.path.as_str()));
    let r = get(&server, &d, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, blob);
    assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(media::decrypt_all(&key, &r.body).unwrap(), plain);
    let r = get(&server, &d, Some("bytes=1000-1999")).await;
    assert_eq!((r.status, r.header("content-range")), (206, Some(format!("bytes 1000-1999/{len}").as_str())));
    assert_eq!(r.body, blob[1000..2000]);
    let r = get(&server, &d, Some("bytes=600000-")).await;
    assert_eq!((r.status, r.header("content-range")), (206, Some(format!("bytes 600000-{}/{len}", len - 1).as_str())));
    assert_eq!(r.body, blob[600_000..]);
    let r = get(&server, &d, Some(&format!("bytes={len}-"))).await;
    assert_eq!((r.status, r.header("content-range")), (416, Some(format!("bytes */{len}").as_str())));
    assert_eq!(r.code(), "bad_request");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uploaders_next_patch_takes_over_from_one_whose_connection_went_quiet() {
    use tokio::io::AsyncReadExt;
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_, _, blob) = file(300_000, b"MARKER");
    let len = blob.len() as u64;
    let t = upload_ticket(&mut a, len).await;
    // A PATCH announces 200 000 bytes, sends 50 000 and goes quiet; the
    // server would wait 60 s for more.
    let mut quiet = patch_and_stall(&server, &t, 0, 200_000, &blob[..50_000]).await;
    let part = part_file(&server, &t);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 50_000 {
        assert!(tokio::time::Instant::now() < deadline, "the first 50 000 bytes never reached the file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The uploader, on a new connection, resumes: a new ticket says 50 000
    // and its PATCH goes through (before, it waited 10 s for the quiet one
    // and got 409).
    let t2 = resume_ticket(&mut a, &t).await;
    assert_eq!(t2.offset, 50_000);
    let r = patch(&server, &t2, 50_000, &blob[50_000..]).await;
    assert_eq!((r.status, r.offset()), (204, len), "the newer PATCH took over");
    assert_eq!(std::fs::read(blob_file(&server, &t)).unwrap(), blob, "whole, byte for byte");
    // The quiet one was told so, with what it had kept.
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), quiet.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 409"), "{answer}");
    assert!(answer.contains("upload-offset: 50000"), "{answer}");
    assert!(answer.contains("took over"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_makes_its_targets_readers_and_the_last_fetch_deletes_the_file() {
    send_makes_readers_and_last_fetch_deletes(TestServer::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_send_makes_its_targets_readers_and_the_last_fetch_deletes_the_file() {
    send_makes_readers_and_last_fetch_deletes(TestServer::start_on_postgres().await).await;
}

async fn send_makes_readers_and_last_fetch_deletes(server: TestServer) {
    let (mut alice, mut a0) = register(&server, "alice").await;
    let mut a1 = link(&server, &mut alice, &mut a0, 1).await;
    let (mut bob, mut b0) = register(&server, "bob").await;
    let mut b1 = link(&server, &mut bob, &mut b0, 1).await;
    let (_carol, mut c0) = register(&server, "carol").await;
    let (_, _, blob) = file(5_000, b"MARKER");
    let t = upload(&server, &mut a0, &blob).await;
    let id = t.blob_id.clone();
    assert!(blob_file(&server, &t).exists());

    // Before a send: the uploading account only.
    download_ticket(&mut a1, &id).await;
    b0.fails(Request::BlobDownload(BlobDownload { blob_id: id.clone() }), ErrorCode::BlobNotFound).await;

    // Alice sends it to bob's devices and her own other one.
    a0.ok(send_with(1, vec![("bob", 0), ("bob", 1), ("alice", 1)], vec![id.clone()])).await;
    for c in [&mut b0, &mut b1, &mut a1] {
        c.envelope().await;
    }
    let d = download_ticket(&mut b0, &id).await;
    let r = get(&server, &d, None).await;
    assert_eq!((r.status, r.body == blob), (200, true));
    // Strangers are told it does not exist, and cannot forward it.
    c0.fails(Request::BlobDownload(BlobDownload { blob_id: id.clone() }), ErrorCode::BlobNotFound).await;
    c0.fails(send_with(2, vec![("alice", 0), ("alice", 1)], vec![id.clone()]), ErrorCode::BlobNotFound).await;
    // A companion linked later fetches media of its account's history.
    let mut b2 = link(&server, &mut bob, &mut b0, 2).await;
    download_ticket(&mut b2, &id).await;
    // Bob forwards it to carol: her device becomes a reader.
    b0.ok(send_with(3, vec![("carol", 0)], vec![id.clone()])).await;
    c0.envelope().await;
    download_ticket(&mut c0, &id).await;

    // Every reader says it fetched the blob; the last one deletes it.
    let fetched = || Request::BlobFetched(BlobFetched { blob_ids: vec![id.clone(), vec![1, 2, 3]] });
    for c in [&mut b0, &mut b1, &mut a1] {
        c.ok(fetched()).await;
        assert!(blob_file(&server, &t).exists(), "readers are left");
    }
    // Bob's device 2 joined after the send: it may download, but was never
    // a reader, so its fetch does not count.
    b2.ok(fetched()).await;
    assert!(blob_file(&server, &t).exists(), "carol's device is still a reader");
    c0.ok(fetched()).await;
    assert!(!blob_file(&server, &t).exists(), "fetched by every reader: the file is gone");
    a0.fails(Request::BlobDownload(BlobDownload { blob_id: id.clone() }), ErrorCode::BlobNotFound).await;
    let r = get(&server, &d, None).await;
    assert_eq!((r.status, r.code().as_str()), (404, "blob_not_found"), "an old token finds nothing");
    a0.fails(send_with(4, vec![("bob", 0), ("bob", 1), ("bob", 2)], vec![id.clone()]), ErrorCode::BlobNotFound).await;

    assert_eq!(server.metric("tether_blob_uploads_total").await, 1.0);
    assert_eq!(server.metric("tether_blob_downloads_total").await, 1.0);
    assert_eq!(server.metric("tether_blob_bytes_received_total").await, blob.len() as f64);
    assert_eq!(server.metric("tether_blob_bytes_sent_total").await, blob.len() as f64);
    assert_eq!(server.metric("tether_blob_bytes").await, 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_naming_an_unfinished_unknown_or_foreign_blob_is_refused_whole() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, mut b) = register(&server, "bob").await;
    let (_carol, mut c) = register(&server, "carol").await;
    let (_, _, blob) = file(3_000, b"MARKER");
    let unfinished = upload_ticket(&mut a, blob.len() as u64).await;
    assert_eq!(patch(&server, &unfinished, 0, &blob[..1000]).await.status, 204);
    let whole = upload(&server, &mut a, &blob).await;
    let carols = upload(&server, &mut c, &blob).await;

    for (n, ids) in [
        (1, vec![unfinished.blob_id.clone()]),
        (2, vec![whole.blob_id.clone(), unfinished.blob_id.clone()]),
        (3, vec![vec![7; 16]]),
        (4, vec![vec![7; 3]]),
        (5, vec![carols.blob_id.clone()]),
    ] {
        a.fails(send_with(n, vec![("bob", 0)], ids), ErrorCode::BlobNotFound).await;
    }
    // Nothing of those sends was stored: no copy, no reader.
    b.ping().await;
    assert!(b.events.iter().all(|e| !matches!(e, EventBody::Envelope(_))), "no copy arrived");
    assert_eq!(server.metric("tether_envelopes_stored_total").await, 0.0);
    b.fails(Request::BlobDownload(BlobDownload { blob_id: whole.blob_id.clone() }), ErrorCode::BlobNotFound).await;
    assert!(!server.server.store().blob_readable_by(&id_of(&whole), "bob").await.unwrap());
    assert!(!server.server.store().blob(&id_of(&whole)).await.unwrap().unwrap().sent);

    // The whole one alone goes through.
    a.ok(send_with(6, vec![("bob", 0)], vec![whole.blob_id.clone(), whole.blob_id.clone()])).await;
    assert_eq!(b.envelope().await.message_id, vec![6; 16]);
    download_ticket(&mut b, &whole.blob_id).await;
    server.stop().await;
}

fn id_of(t: &BlobTicket) -> tether_server::store::BlobId {
    tether_server::store::BlobId::from_slice(&t.blob_id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_above_the_size_limit_and_the_quota() {
    let server = TestServer::start_with(|c| c.blob_quota = 1_000_000).await;
    let (_alice, mut a) = register(&server, "alice").await;
    let mb = 1024 * 1024;
    let upload = |length: u64| Request::BlobUpload(BlobUpload { length, resume: vec![] });
    a.fails(upload(media::ciphertext_len(65 * mb).unwrap()), ErrorCode::BlobTooLarge).await;
    a.fails(upload(media::ciphertext_len(64 * mb).unwrap() + 1), ErrorCode::BlobTooLarge).await;
    a.fails(upload(u64::MAX), ErrorCode::BlobTooLarge).await;
    // 64 MiB is within the size limit, not within this account's quota.
    a.fails(upload(media::ciphertext_len(64 * mb).unwrap()), ErrorCode::BlobQuota).await;
    for no_file in [0, 15, media::CIPHER_CHUNK_SIZE as u64 + 5] {
        a.fails(upload(no_file), ErrorCode::BadRequest).await;
    }
    // Unfinished uploads count against the quota.
    let first = upload_ticket(&mut a, media::ciphertext_len(600_000).unwrap()).await;
    a.fails(upload(media::ciphertext_len(600_000).unwrap()), ErrorCode::BlobQuota).await;
    upload_ticket(&mut a, media::ciphertext_len(300_000).unwrap()).await;

    // At most 16 unfinished uploads per account.
    let (_bob, mut b) = register(&server, "bob").await;
    for _ in 0..16 {
        upload_ticket(&mut b, 16).await;
    }
    b.fails(upload(16), ErrorCode::BlobQuota).await;

    // Resuming: only the account's own upload, with its length.
    let resume = |t: &BlobTicket, length| Request::BlobUpload(BlobUpload { length, resume: t.blob_id.clone() });
    b.fails(resume(&first, first.length), ErrorCode::BlobNotFound).await;
    a.fails(resume(&first, first.length - 1), ErrorCode::BadRequest).await;
    a.fails(Request::BlobUpload(BlobUpload { length: 16, resume: vec![1; 16] }), ErrorCode::BlobNotFound).await;
    // Guests get nothing.
    let mut g = server.guest().await;
    g.fails(upload(16), ErrorCode::NotRegistered).await;
    g.fails(Request::BlobDownload(BlobDownload { blob_id: first.blob_id.clone() }), ErrorCode::NotRegistered).await;
    g.fails(Request::BlobFetched(BlobFetched { blob_ids: vec![] }), ErrorCode::NotRegistered).await;
    server.stop().await;

    // --max-file-size lowers the limit.
    let server = TestServer::start_with(|c| c.max_file_size = 1000).await;
    let (_alice, mut a) = register(&server, "alice").await;
    upload_ticket(&mut a, media::ciphertext_len(1000).unwrap()).await;
    a.fails(upload(media::ciphertext_len(1001).unwrap()), ErrorCode::BlobTooLarge).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refusals_tokens_offsets_and_lengths() {
    let server = TestServer::start().await;
    let (mut alice, mut a0) = register(&server, "alice").await;
    let mut a1 = link(&server, &mut alice, &mut a0, 1).await;
    let (_, _, blob) = file(2_000, b"MARKER");
    let len = blob.len() as u64;
    let t = upload_ticket(&mut a0, len).await;
    let url = server.http_url(&t.path);
    let octets = ("content-type", OCTETS.to_string());
    let at = |n: u64| ("upload-offset", n.to_string());

    // Missing, malformed and altered tokens.
    let r = http("HEAD", url.clone(), vec![], Body::None).await;
    assert_eq!((r.status, r.header("www-authenticate")), (401, Some("Bearer")));
    let r = http("PATCH", url.clone(), vec![octets.clone(), at(0)], Body::Bytes(blob.clone())).await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"));
    let r = http(
        "PATCH",
        url.clone(),
        vec![("authorization", t.token.clone()), octets.clone(), at(0)],
        Body::Bytes(blob.clone()),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"), "no Bearer scheme");
    let mut altered = t.token.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let r = http("PATCH", url.clone(), vec![bearer(&altered), octets.clone(), at(0)], Body::Bytes(blob.clone())).await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"));

    // Another blob's token, and the wrong direction.
    let other = upload_ticket(&mut a0, len).await;
    let r =
        http("PATCH", url.clone(), vec![bearer(&other.token), octets.clone(), at(0)], Body::Bytes(blob.clone())).await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"), "a token for another blob");
    let r = patch(&server, &other, 0, &blob).await;
    assert_eq!(r.status, 204);
    let down = download_ticket(&mut a0, &other.blob_id).await;
    let r = http(
        "PATCH",
        server.http_url(&other.path),
        vec![bearer(&down.token), octets.clone(), at(0)],
        Body::Bytes(blob.clone()),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"), "a download token cannot upload");
    let r = http("GET", server.http_url(&other.path), vec![bearer(&other.token)], Body::None).await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"), "an upload token cannot download");
    assert_eq!(get(&server, &down, None).await.body, blob);
    // A path that is no blob id.
    let r = http("GET", server.http_url("/v1/blobs/xyz"), vec![bearer(&down.token)], Body::None).await;
    assert_eq!((r.status, r.code().as_str()), (404, "blob_not_found"));

    // Content type and offset header.
    let r = http("PATCH", url.clone(), vec![bearer(&t.token), at(0)], Body::Bytes(blob.clone())).await;
    assert_eq!((r.status, r.code().as_str()), (415, "bad_request"));
    let r = http("PATCH", url.clone(), vec![bearer(&t.token), octets.clone()], Body::Bytes(blob.clone())).await;
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));

    // Offsets: only the server's; bytes past the end are refused and not kept.
    assert_eq!(patch(&server, &t, 0, &blob[..500]).await.offset(), 500);
    let r = patch(&server, &t, 400, &blob[400..600]).await;
    assert_eq!((r.status, r.offset()), (409, 500));
    let mut too_long = blob[500..].to_vec();
    too_long.push(0);
    let r = patch(&server, &t, 500, &too_long).await;
    assert_eq!((r.status, r.offset(), r.code().as_str()), (413, 500, "blob_too_large"));
    let chunked = vec![bearer(&t.token), octets.clone(), at(500)];
    let r = http("PATCH", url.clone(), chunked, Body::Chunked(too_long.clone())).await;
    assert_eq!((r.status, r.code().as_str()), (413, "blob_too_large"), "a chunked body past the end");
    assert_eq!(head(&server, &t).await.offset(), 500, "nothing of a PATCH past the end is kept");
    assert_eq!(std::fs::metadata(part_file(&server, &t)).unwrap().len(), 500);

    // Expired tokens: an hour later, 401; a new ticket goes on.
    server.clock.advance(3_600_000);
    let r = patch(&server, &t, 500, &blob[500..]).await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"), "expired");
    let r = get(&server, &down, None).await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"), "expired");
    let t2 = resume_ticket(&mut a0, &t).await;
    assert_eq!(t2.offset, 500);
    assert_eq!(patch(&server, &t2, 500, &blob[500..]).await.offset(), len);

    // A removed device's tokens stop working at once.
    let d1 = download_ticket(&mut a1, &t.blob_id).await;
    assert_eq!(get(&server, &d1, None).await.status, 200);
    a1.ok(Request::RemoveDevice(RemoveDevice { device_id: 1, new_list: None })).await;
    let r = get(&server, &d1, None).await;
    assert_eq!((r.status, r.code().as_str()), (401, "bad_token"), "its device was removed");

    // CORS: any origin, a preflight that allows the tus headers.
    let origin = ("origin", "https://example.org".to_string());
    let r = http("GET", url.clone(), vec![bearer(&t2.token), origin.clone()], Body::None).await;
    assert_eq!((r.status, r.header("access-control-allow-origin")), (401, Some("*")));
    let preflight = vec![
        origin,
        ("access-control-request-method", "PATCH".into()),
        ("access-control-request-headers", "authorization, upload-offset, content-type".into()),
    ];
    let r = http("OPTIONS", url.clone(), preflight, Body::None).await;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let allowed = r.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    for h in ["authorization", "upload-offset", "content-type", "range"] {
        assert!(allowed.contains(h), "{h} allowed: {allowed}");
    }
    assert!(r.header("access-control-allow-methods").unwrap().contains("PATCH"));
    let r =
        http("HEAD", url.clone(), vec![bearer(&t2.token), ("origin", "https://example.org".into())], Body::None).await;
    let exposed = r.header("access-control-expose-headers").unwrap().to_ascii_lowercase();
    for h in ["upload-offset", "upload-length", "content-range"] {
        assert!(exposed.contains(h), "{h} exposed: {exposed}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_deletes_expired_blobs_and_a_start_deletes_stray_files() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, mut b) = register(&server, "bob").await;
    let (_, _, blob) = file(3_000, b"MARKER");
    let unfinished = upload_ticket(&mut a, blob.len() as u64).await;
    assert_eq!(patch(&server, &unfinished, 0, &blob[..100]).await.status, 204);
    let never_sent = upload(&server, &mut a, &blob).await;
    let sent = upload(&server, &mut a, &blob).await;
    server.clock.advance(60_000);
    a.ok(send_with(1, vec![("bob", 0)], vec![sent.blob_id.clone()])).await;
    assert!(part_file(&server, &unfinished).exists() && blob_file(&server, &never_sent).exists());

    // Just before 24 h nothing goes; just after, the unsent ones.
    server.clock.advance(tether_server::DAY_MS - 60_000);
    assert_eq!(server.server.sweep().await.unwrap().blobs_deleted, 0);
    server.clock.advance(1);
    assert_eq!(server.server.sweep().await.unwrap().blobs_deleted, 2);
    assert!(!part_file(&server, &unfinished).exists(), "the unfinished upload's file is gone");
    assert!(!blob_file(&server, &never_sent).exists(), "the never-sent blob's file is gone");
    let resume = Request::BlobUpload(BlobUpload { length: unfinished.length, resume: unfinished.blob_id.clone() });
    a.fails(resume, ErrorCode::BlobNotFound).await;
    assert!(blob_file(&server, &sent).exists(), "a sent blob lives 30 days after the send");
    download_ticket(&mut b, &sent.blob_id).await;

    // 30 days after the send, the sent one.
    server.clock.advance(29 * tether_server::DAY_MS + 60_000);
    assert_eq!(server.server.sweep().await.unwrap().blobs_deleted, 1);
    assert!(!blob_file(&server, &sent).exists());
    b.fails(Request::BlobDownload(BlobDownload { blob_id: sent.blob_id.clone() }), ErrorCode::BlobNotFound).await;
    assert_eq!(std::fs::read_dir(server.dir.path().join("blobs")).unwrap().count(), 0, "no file left");

    // Files without a record (a crash between a record's deletion and its
    // file's) are deleted at the next start; other files are left alone.
    let dir = server.dir.path().join("blobs");
    let kept = upload(&server, &mut a, &blob).await;
    std::fs::write(dir.join("00112233445566778899aabbccddeeff"), b"stray").unwrap();
    std::fs::write(dir.join("00112233445566778899aabbccddee00.part"), b"stray").unwrap();
    std::fs::write(dir.join("README"), b"an operator's note").unwrap();
    drop(a);
    let server = server.restart().await;
    let mut left: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    let mut want = vec![hex(&kept.blob_id), "README".to_string()];
    want.sort();
    assert_eq!(left, want);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_device_drops_its_readers_and_a_blob_left_without_one() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (mut bob, mut b0) = register(&server, "bob").await;
    let mut b1 = link(&server, &mut bob, &mut b0, 1).await;
    let (_, _, blob) = file(3_000, b"MARKER");
    let t = upload(&server, &mut a, &blob).await;
    a.ok(send_with(1, vec![("bob", 0), ("bob", 1)], vec![t.blob_id.clone()])).await;
    b1.envelope().await;
    b0.ok(Request::BlobFetched(BlobFetched { blob_ids: vec![t.blob_id.clone()] })).await;
    assert!(blob_file(&server, &t).exists(), "device 1 is still a reader");

    let list = bob.without_device(1);
    b0.ok(Request::RemoveDevice(RemoveDevice { device_id: 1, new_list: Some(list) })).await;
    assert!(!blob_file(&server, &t).exists(), "its only reader was removed: the blob is gone");
    a.fails(Request::BlobDownload(BlobDownload { blob_id: t.blob_id.clone() }), ErrorCode::BlobNotFound).await;
    server.stop().await;
}

fn delete(ids: Vec<Vec<u8>>) -> Request {
    Request::BlobDelete(BlobDelete { blob_ids: ids })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_other_device_deletes_a_sent_blob_and_earlier_tokens_find_nothing() {
    let server = TestServer::start().await;
    let (mut alice, mut a0) = register(&server, "alice").await;
    let mut a1 = link(&server, &mut alice, &mut a0, 1).await;
    let (_bob, mut b0) = register(&server, "bob").await;
    let (_, _, blob) = file(3_000, b"MARKER");
    let t = upload(&server, &mut a0, &blob).await;
    let kept = upload(&server, &mut a0, &blob).await;
    a0.ok(send_with(1, vec![("bob", 0), ("alice", 1)], vec![t.blob_id.clone(), kept.blob_id.clone()])).await;
    b0.envelope().await;
    a1.envelope().await;
    // Bob holds a download token from before the deletion.
    let d = download_ticket(&mut b0, &t.blob_id).await;
    assert_eq!(get(&server, &d, None).await.status, 200);

    // Alice deletes the message for everyone from her other device (not
    // the uploading one): the blob goes, the other one of the send stays.
    let body = a1.ok(delete(vec![t.blob_id.clone(), t.blob_id.clone(), vec![5; 16]])).await;
    assert!(matches!(body, ResponseBody::Done(_)), "{body:?}");
    assert!(!blob_file(&server, &t).exists(), "the file is gone from the blob directory");
    assert!(server.server.store().blob(&id_of(&t)).await.unwrap().is_none(), "the record is gone");
    assert!(!server.server.store().blob_readable_by(&id_of(&t), "bob").await.unwrap(), "so are its readers");
    b0.fails(Request::BlobDownload(BlobDownload { blob_id: t.blob_id.clone() }), ErrorCode::BlobNotFound).await;
    a0.fails(Request::BlobDownload(BlobDownload { blob_id: t.blob_id.clone() }), ErrorCode::BlobNotFound).await;
    let r = get(&server, &d, None).await;
    assert_eq!((r.status, r.code().as_str()), (404, "blob_not_found"), "an earlier token finds nothing");
    // It cannot be sent again; a late fetch or a second delete is harmless.
    a0.fails(send_with(2, vec![("bob", 0)], vec![t.blob_id.clone()]), ErrorCode::BlobNotFound).await;
    b0.ok(Request::BlobFetched(BlobFetched { blob_ids: vec![t.blob_id.clone()] })).await;
    a0.ok(delete(vec![t.blob_id.clone()])).await;
    assert!(blob_file(&server, &kept).exists());
    assert_eq!(get(&server, &download_ticket(&mut b0, &kept.blob_id).await, None).await.body, blob);

    // The uploading device may delete too, an unfinished upload as well.
    let unfinished = upload_ticket(&mut a0, blob.len() as u64).await;
    assert_eq!(patch(&server, &unfinished, 0, &blob[..100]).await.status, 204);
    a0.ok(delete(vec![kept.blob_id.clone(), unfinished.blob_id.clone()])).await;
    assert!(!blob_file(&server, &kept).exists() && !part_file(&server, &unfinished).exists());
    let r = head(&server, &unfinished).await;
    assert_eq!(r.status, 404, "the upload is gone");
    assert_eq!(std::fs::read_dir(server.dir.path().join("blobs")).unwrap().count(), 0, "no file left");
    assert_eq!(server.metric("tether_blob_deletes_total").await, 3.0);
    assert_eq!(server.metric("tether_blobs").await, 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_blob_delete_is_answered_done_and_deletes_nothing() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, mut b) = register(&server, "bob").await;
    let (_carol, mut c) = register(&server, "carol").await;
    let (_, _, blob) = file(3_000, b"MARKER");
    let t = upload(&server, &mut a, &blob).await;
    a.ok(send_with(1, vec![("bob", 0)], vec![t.blob_id.clone()])).await;
    b.envelope().await;

    // A reader's account and a stranger get the answer an unknown id gets.
    for x in [&mut b, &mut c] {
        let body = x.ok(delete(vec![t.blob_id.clone()])).await;
        assert!(matches!(body, ResponseBody::Done(_)), "{body:?}");
        x.ok(delete(vec![vec![9; 16]])).await;
    }
    assert!(blob_file(&server, &t).exists(), "the file stays");
    let d = download_ticket(&mut b, &t.blob_id).await;
    let r = get(&server, &d, None).await;
    assert_eq!((r.status, r.body == blob), (200, true), "still downloadable by its reader");
    download_ticket(&mut a, &t.blob_id).await;
    assert_eq!(server.metric("tether_blob_deletes_total").await, 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_delete_with_a_malformed_id_is_a_bad_request_and_the_connection_goes_on() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_, _, blob) = file(3_000, b"MARKER");
    let t = upload(&server, &mut a, &blob).await;

    // A 17-byte id refuses the whole request: nothing is deleted, not
    // even the well-formed id before it.
    let mut long = t.blob_id.clone();
    long.push(0);
    a.fails(delete(vec![t.blob_id.clone(), long]), ErrorCode::BadRequest).await;
    a.fails(delete(vec![vec![1; 15]]), ErrorCode::BadRequest).await;
    a.fails(delete(vec![t.blob_id.clone(); 257]), ErrorCode::BadRequest).await;
    assert!(blob_file(&server, &t).exists(), "nothing of a refused request is deleted");
    // The connection goes on.
    a.ping().await;
    download_ticket(&mut a, &t.blob_id).await;
    a.ok(delete(vec![])).await;
    a.ok(delete(vec![t.blob_id.clone(); 256])).await;
    assert!(!blob_file(&server, &t).exists());
    // Guests are not registered.
    let mut g = server.guest().await;
    g.fails(delete(vec![t.blob_id.clone()]), ErrorCode::NotRegistered).await;
    g.fails(delete(vec![vec![1; 17]]), ErrorCode::NotRegistered).await;
    server.stop().await;
}

/// The real `tether-server` process with its log in a file; killed when
/// dropped (a failed assertion must not leave it running).
struct Proc {
    child: std::process::Child,
    addr: String,
    pin: tether_proto::Fingerprint,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_process(data: &std::path::Path, blob_dir: &std::path::Path, log: &std::path::Path) -> Proc {
    use std::process::{Command, Stdio};
    let child = Command::new(env!("CARGO_BIN_EXE_tether-server"))
        .args(["--listen", "127.0.0.1:0", "--max-file-size", "2000000", "--data"])
        .arg(data)
        .arg("--blob-dir")
        .arg(blob_dir)
        .env("TETHER_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let text = std::fs::read_to_string(log).unwrap();
        if let Some(rest) = text.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "the server logs its address:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let health: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("http://{addr}/healthz")).call().unwrap().body_mut().read_to_string().unwrap(),
    )
    .unwrap();
    let pin = tether_proto::Fingerprint::parse(health["fingerprint"].as_str().unwrap()).unwrap();
    Proc { child, addr, pin }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_files_plaintext_never_reaches_the_servers_disk_or_log_nor_do_tokens() {
    let data = tempfile::tempdir().unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("server.log");
    let (d, bd, l) = (data.path().to_path_buf(), blobs.path().to_path_buf(), log.clone());
    let proc = tokio::task::spawn_blocking(move || start_process(&d, &bd, &l)).await.unwrap();
    let url = format!("ws://{}/v1/ws", proc.addr);
    let connect = |key: tether_proto::noise::StaticKey| Client::connect(&url, key, Some(proc.pin));
    let (ak, bk) = (tether_proto::noise::StaticKey::generate(), tether_proto::noise::StaticKey::generate());
    let mut a = connect(ak.clone()).await.unwrap();
    a.ok(TestAccount::new("alice", &ak).register_request()).await;
    let mut b = connect(bk.clone()).await.unwrap();
    b.ok(TestAccount::new("bob", &bk).register_request()).await;

    let marker = b"PLAINTEXT-MARKER-5f1c";
    let (key, plain, blob) = file(600_000, marker);
    // --max-file-size reached the process.
    a.fails(
        Request::BlobUpload(BlobUpload { length: media::ciphertext_len(2_000_001).unwrap(), resume: vec![] }),
        ErrorCode::BlobTooLarge,
    )
    .await;
    let t = upload_ticket(&mut a, blob.len() as u64).await;
    let base = format!("http://{}", proc.addr);
    let headers =
        |offset: u64| vec![bearer(&t.token), ("content-type", OCTETS.into()), ("upload-offset", offset.to_string())];
    let r = http("PATCH", format!("{base}{}", t.path), headers(0), Body::Bytes(blob[..300_000].to_vec())).await;
    assert_eq!(r.status, 204);
    let r = http("PATCH", format!("{base}{}", t.path), headers(300_000), Body::Bytes(blob[300_000..].to_vec())).await;
    assert_eq!(r.status, 204);
    a.ok(send_with(1, vec![("bob", 0)], vec![t.blob_id.clone()])).await;
    b.envelope().await;
    let d = download_ticket(&mut b, &t.blob_id).await;
    let r = http("GET", format!("{base}{}", d.path), vec![bearer(&d.token)], Body::None).await;
    assert_eq!(media::decrypt_all(&key, &r.body).unwrap(), plain, "the marker is in the file itself");

    // The blob lives in --blob-dir, encrypted.
    let stored = std::fs::read(blobs.path().join(hex(&t.blob_id))).unwrap();
    assert_eq!(stored, blob);
    assert!(!data.path().join("blobs").exists(), "--blob-dir replaces <data>/blobs");
    drop(proc);

    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let mut files = vec![log.clone()];
    for dir in [data.path(), blobs.path()] {
        files.extend(std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()));
    }
    assert!(files.len() >= 4, "the log, the database, the key and the blob: {files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(!contains(&bytes, marker), "{} holds the plaintext marker", f.display());
        assert!(!contains(&bytes, &plain[1000..1064]), "{} holds plaintext", f.display());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&hex(&t.blob_id)), "the log names the blob by id:\n{text}");
    for token in [&t.token, &d.token] {
        assert!(!text.contains(token.as_str()), "the log holds a token");
    }
}
