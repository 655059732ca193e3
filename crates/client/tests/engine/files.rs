//! Files (issue 11): the engine's side of sending and fetching a blob
//! against the real server's blob store, with the bytes moved over real
//! HTTP the way a host does it (here with `tether_proto::media`).

use crate::harness::*;
use tether_client::{Event, FileInfo, FileRef, MessageBody, Status, Ticket, UploadState};
use tether_proto::media;

fn http() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

/// PATCHes `bytes` of the blob at the ticket's offset; the server's new offset.
fn patch(server: &TestServer, t: &Ticket, bytes: &[u8]) -> u64 {
    let resp = http()
        .patch(&format!("{}{}", server.url(), t.path))
        .header("Authorization", &format!("Bearer {}", t.token))
        .header("Upload-Offset", &t.offset.to_string())
        .content_type("application/offset+octet-stream")
        .send(bytes)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "{:?}", resp);
    resp.headers()["Upload-Offset"].to_str().unwrap().parse().unwrap()
}

fn get(server: &TestServer, t: &Ticket) -> (u16, Vec<u8>) {
    let resp = http()
        .get(&format!("{}{}", server.url(), t.path))
        .header("Authorization", &format!("Bearer {}", t.token))
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().read_to_vec().unwrap())
}

fn info(name: &str, mime: &str, size: usize) -> FileInfo {
    FileInfo { file_name: name.into(), mime_type: mime.into(), size: size as u64, ..Default::default() }
}

fn upload_ticket(d: &Device, id: &str) -> Option<(String, Ticket)> {
    d.events.iter().rev().find_map(|e| match e {
        Event::UploadTicket { id: i, key, ticket, .. } if i == id => Some((key.clone(), ticket.clone())),
        _ => None,
    })
}

fn download_ticket(d: &Device, id: &str) -> Option<(FileRef, Ticket)> {
    d.events.iter().rev().find_map(|e| match e {
        Event::DownloadTicket { id: i, file, ticket, .. } if i == id => Some((file.clone(), ticket.clone())),
        _ => None,
    })
}

fn blob_files(server: &TestServer) -> Vec<String> {
    let dir = server.dir.path().join("blobs");
    std::fs::read_dir(&dir)
        .map(|r| r.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key_bytes(k: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&k[2 * i..2 * i + 2], 16).unwrap()).collect();
    v.try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_goes_up_in_two_parts_across_a_restart_and_comes_down_whole_then_the_blob_is_deleted() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let plain: Vec<u8> = (0..(media::CHUNK_SIZE * 2 + 123)).map(|i| (i * 7 % 256) as u8).collect();

    let now = alice.now();
    let (id, key) =
        alice.engine.send_file("bob", info("report.pdf", "application/pdf", plain.len()), "the numbers", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let (k, t) = upload_ticket(&alice, &id).expect("a ticket");
    assert_eq!(k, key);
    assert_eq!((t.offset, t.length), (0, media::ciphertext_len(plain.len() as u64).unwrap()));
    let (blob, enc) = media::encrypt_all(&key_bytes(&key), &plain);
    // Half, then the device restarts (the worker stopped): the upload
    // record survived and a new ticket says where to go on.
    let half = blob.len() / 2;
    assert_eq!(patch(&server, &t, &blob[..half]), half as u64);
    assert_eq!(alice.engine.messages("bob").last().unwrap().status, Status::Pending);
    alice.restart();
    assert_eq!(alice.engine.uploads().len(), 1);
    assert_eq!(alice.engine.uploads()[0].state, UploadState::Waiting);
    alice.events.clear();
    alice.connect().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let (_, t2) = upload_ticket(&alice, &id).expect("a ticket after the restart");
    assert_eq!((t2.blob_id.as_str(), t2.offset), (t.blob_id.as_str(), half as u64));
    assert_eq!(patch(&server, &t2, &blob[half..]), blob.len() as u64);
    let now = alice.now();
    alice.engine.upload_finished(&id, &hex(&enc.digest), now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert!(alice.engine.uploads().is_empty());
    assert_eq!(alice.engine.messages("bob").last().unwrap().status, Status::Delivered);

    // Bob sees the file with its caption before fetching anything.
    let m = bob.engine.messages("alice").last().unwrap().clone();
    let MessageBody::File { file, caption } = &m.body else { panic!("{:?}", m.body) };
    assert_eq!(
        (file.file_name.as_str(), file.size, caption.as_str()),
        ("report.pdf", plain.len() as u64, "the numbers")
    );
    assert_eq!(bob.engine.chat_list()[0].last_preview, "📄 report.pdf: the numbers");
    let notified = bob
        .events
        .iter()
        .any(|e| matches!(e, Event::Notify { notification } if notification.body == "📄 report.pdf: the numbers"));
    assert!(notified, "the notification says what it is");

    let now = bob.now();
    bob.engine.download_file(&m.id, now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let (f, t) = download_ticket(&bob, &m.id).expect("a download ticket");
    let (status, got) = get(&server, &t);
    assert_eq!(status, 200);
    assert_eq!(media::decrypt_all(&key_bytes(&f.key), &got).unwrap(), plain);
    assert_eq!(blob_files(&server).len(), 1, "kept until every reader fetched it");
    let now = bob.now();
    bob.engine.download_finished(&m.id, now);
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert!(blob_files(&server).is_empty(), "fetched by its one reader: deleted ({:?})", blob_files(&server));

    // Gone now: asking again says so in words.
    bob.events.clear();
    let now = bob.now();
    bob.engine.download_file(&m.id, now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let failed = bob.events.iter().find_map(|e| match e {
        Event::DownloadFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(failed.as_deref().is_some_and(|r| r.contains("no longer on the server")), "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_of_the_recipient_gets_the_file_and_it_stays_until_all_fetched_it_even_one_linked_later() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut laptop = crate::linking::link_companion(&server, &mut bob, false).await;
    settle(&mut [&mut alice, &mut bob, &mut laptop]).await;
    let plain = b"%PDF-1.7 for bob's eyes".to_vec();
    let now = alice.now();
    let (id, key) = alice.engine.send_file("bob", info("note.pdf", "application/pdf", plain.len()), "", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut laptop]).await;
    let (_, t) = upload_ticket(&alice, &id).unwrap();
    let (blob, enc) = media::encrypt_all(&key_bytes(&key), &plain);
    patch(&server, &t, &blob);
    let now = alice.now();
    alice.engine.upload_finished(&id, &hex(&enc.digest), now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut laptop]).await;

    // Both of bob's devices fetch it; the blob goes only after the second.
    for (n, d) in [&mut bob, &mut laptop].into_iter().enumerate() {
        let mid = d.engine.messages("alice").last().expect("the file arrived").id.clone();
        let now = d.now();
        d.engine.download_file(&mid, now).unwrap();
        d.flush().await;
        settle(&mut [&mut *d]).await;
        let (f, t) = download_ticket(d, &mid).expect("a ticket");
        let (_, got) = get(&server, &t);
        assert_eq!(media::decrypt_all(&key_bytes(&f.key), &got).unwrap(), plain);
        if n == 0 {
            // A companion linked now (after the send) finds the file in its
            // history and may fetch it while it lives.
            d.events.clear(); // the first link's request is not the second's
            let mut tablet = crate::linking::link_companion(&server, d, true).await;
            settle(&mut [&mut *d, &mut tablet]).await;
            let hm = tablet
                .engine
                .messages("alice")
                .iter()
                .find(|m| matches!(m.body, MessageBody::File { .. }))
                .expect("the file is in the history")
                .id
                .clone();
            let now = tablet.now();
            tablet.engine.download_file(&hm, now).unwrap();
            tablet.flush().await;
            settle(&mut [&mut tablet]).await;
            let (_, t) = download_ticket(&tablet, &hm).expect("the later companion may fetch it");
            assert_eq!(get(&server, &t).1, blob);
        }
        let now = d.now();
        d.engine.download_finished(&mid, now);
        d.flush().await;
        settle(&mut [&mut *d]).await;
        assert_eq!(blob_files(&server).is_empty(), n == 1, "after {} of 2 readers: {:?}", n + 1, blob_files(&server));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_servers_limit_stops_with_a_reason_and_can_be_retried_as_not_sent() {
    let server = TestServer::start_with(|c| c.max_file_size = 1000).await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    // Over the engine's own limit: refused at once, nothing queued.
    let now = alice.now();
    let err = alice
        .engine
        .send_file("bob", info("big.bin", "", (media::DEFAULT_MAX_SIZE + 1) as usize), "", now)
        .unwrap_err();
    assert!(err.to_string().contains("files can be at most 64 MiB"), "{err}");
    assert!(alice.engine.uploads().is_empty());
    // Over the server's (smaller) limit: the server refuses the ticket.
    let (id, _) = alice.engine.send_file("bob", info("mid.bin", "", 5000), "", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let stopped = alice.events.iter().find_map(|e| match e {
        Event::UploadStopped { id: i, reason } if *i == id => Some(reason.clone()),
        _ => None,
    });
    assert!(stopped.as_deref().is_some_and(|r| r.contains("larger than the server accepts")), "{stopped:?}");
    assert_eq!(alice.engine.messages("bob").last().unwrap().status, Status::Failed);
    assert_eq!(alice.engine.uploads()[0].state, UploadState::Stopped);
    assert!(bob.engine.messages("alice").is_empty(), "nothing reached bob");
    // Discarding forgets the upload; the message stays as not sent.
    alice.engine.discard_upload(&id);
    assert!(alice.engine.uploads().is_empty());
    assert_eq!(alice.engine.messages("bob").last().unwrap().status, Status::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_and_a_new_ticket_goes_on_from_the_servers_offset() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let plain = vec![5u8; media::CHUNK_SIZE + 10];
    let now = alice.now();
    let (id, key) = alice.engine.send_file("bob", info("slow.bin", "", plain.len()), "", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let (_, t) = upload_ticket(&alice, &id).unwrap();
    let (blob, enc) = media::encrypt_all(&key_bytes(&key), &plain);
    assert_eq!(patch(&server, &t, &blob[..1000]), 1000);
    // A slow link: the hour the token was good for passes.
    server.clock.advance(61 * 60 * 1000);
    let resp = http()
        .patch(&format!("{}{}", server.url(), t.path))
        .header("Authorization", &format!("Bearer {}", t.token))
        .header("Upload-Offset", "1000")
        .content_type("application/offset+octet-stream")
        // A few bytes: the server answers before reading a body, and a big
        // one would meet a closed socket (the hosts treat that as a break
        // too, and ask for a new ticket all the same).
        .send(&blob[1000..1010])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.into_body().read_to_string().unwrap().contains("bad_token"));
    // The host says so; the engine asks again and the new ticket knows the offset.
    alice.events.clear();
    let now = alice.now();
    alice.engine.upload_interrupted(&id, now);
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let (_, t2) = upload_ticket(&alice, &id).expect("a new ticket");
    assert_eq!((t2.blob_id.as_str(), t2.offset), (t.blob_id.as_str(), 1000));
    assert_ne!(t2.token, t.token);
    assert_eq!(patch(&server, &t2, &blob[1000..]), blob.len() as u64);
    let now = alice.now();
    alice.engine.upload_finished(&id, &hex(&enc.digest), now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert!(matches!(bob.engine.messages("alice").last().map(|m| &m.body), Some(MessageBody::File { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_file_message_for_everyone_deletes_its_blob_from_the_server() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let plain: Vec<u8> = (0..5_000).map(|i| (i * 3 % 256) as u8).collect();
    let now = alice.now();
    let (id, key) = alice.engine.send_file("bob", info("photo.jpg", "image/jpeg", plain.len()), "", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let (_, t) = upload_ticket(&alice, &id).expect("a ticket");
    let (blob, enc) = media::encrypt_all(&key_bytes(&key), &plain);
    assert_eq!(patch(&server, &t, &blob), blob.len() as u64);
    let now = alice.now();
    alice.engine.upload_finished(&id, &hex(&enc.digest), now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let m = bob.engine.messages("alice").last().unwrap().clone();
    assert!(matches!(m.body, MessageBody::File { .. }), "{:?}", m.body);
    assert_eq!(blob_files(&server).len(), 1, "bob has not fetched it");

    // The sender deletes the message for everyone: its blob goes from the
    // server (BlobDelete), though its reader never fetched it.
    alice.events.clear();
    let now = alice.now();
    alice.engine.delete_for_everyone("bob", &id, now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert!(blob_files(&server).is_empty(), "deleted by its sender ({:?})", blob_files(&server));
    assert!(!alice.events.iter().any(|e| matches!(e, Event::Error { .. })), "{:?}", alice.events);
}
