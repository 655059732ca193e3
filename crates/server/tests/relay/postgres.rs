//! The relay on PostgreSQL when PostgreSQL crashes: requests fail within
//! the pool's acquire timeout (an error, not a hang), `/healthz` says so,
//! and once PostgreSQL is back the same relay serves again and every
//! acknowledged message is delivered.

use crate::common::*;
use std::time::{Duration, Instant};
use tether_proto::ErrorCode;
use tether_proto::frames::*;

/// The status of `GET /healthz`.
async fn health(server: &TestServer) -> u16 {
    let url = server.http_url("/healthz");
    tokio::task::spawn_blocking(move || match ureq::get(&url).call() {
        Ok(r) => r.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(e) => panic!("GET /healthz: {e}"),
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_fails_requests_promptly_and_loses_no_acknowledged_message() {
    let mut server = TestServer::start_on_postgres().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, b) = register(&server, "bob").await;
    let bob_key = b.key.clone();
    drop(b);
    for n in 1..=20u8 {
        a.ok(send_req(n, vec![("bob", 0, vec![n; 10])])).await;
    }
    assert_eq!(health(&server).await, 200);

    server.postgres.as_mut().unwrap().kill();
    let start = Instant::now();
    let e = a.fails(send_req(21, vec![("bob", 0, vec![21; 10])]), ErrorCode::StoreUnavailable).await;
    assert!(e.message.contains("try again"), "says what to do: {}", e.message);
    assert!(start.elapsed() < Duration::from_secs(9), "failed after {:?}", start.elapsed());
    assert_eq!(health(&server).await, 503, "the store is unavailable");

    server.postgres.as_mut().unwrap().start_again().unwrap();
    // The pool drops its dead connections and opens new ones.
    a.ok(send_req(22, vec![("bob", 0, vec![22; 10])])).await;
    assert_eq!(health(&server).await, 200);
    let mut b = reconnect(&server, &bob_key).await;
    let mut got = Vec::new();
    for _ in 0..21 {
        got.push(b.envelope().await.ciphertext[0]);
    }
    assert_eq!(got, (1..=20).chain([22]).collect::<Vec<u8>>(), "every acknowledged send, in order; not the failed one");
    b.ping().await;
    assert!(b.events.iter().all(|e| !matches!(e, EventBody::Envelope(_))));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_traffic_senders_get_a_transient_error_and_service_resumes_by_itself() {
    let mut server = TestServer::start_on_postgres().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, mut b) = register(&server, "bob").await;
    // Alice pipelines windows of 8 sends to bob (online, acknowledging);
    // PostgreSQL is restarted (fast shutdown, then started again) in the
    // middle of the third window: half its sends go out before the
    // shutdown, half after it (so some must be refused, however fast the
    // first half went through). Each send is accepted or refused with
    // store_unavailable; a refused one is sent again, as the engine does,
    // until the same connection gets it through.
    let mut acked: Vec<u16> = Vec::new();
    let mut refused = 0;
    let mut queue: std::collections::VecDeque<u16> = (0..80).collect();
    let mut window = 0;
    while !queue.is_empty() {
        let mut pending = Vec::new();
        while pending.len() < 8 {
            if window == 2 && pending.len() == 4 {
                server.postgres.as_mut().unwrap().stop();
            }
            let Some(n) = queue.pop_front() else { break };
            let Request::Send(mut m) = send_req(0, vec![("bob", 0, n.to_le_bytes().to_vec())]) else { unreachable!() };
            m.message_id = [n.to_le_bytes().as_slice(), &[0; 14]].concat();
            pending.push((n, a.send_request(Request::Send(m)).await));
        }
        window += 1;
        let mut again = Vec::new();
        for (n, id) in pending {
            let r = a.response(id).await;
            match r.error {
                None => acked.push(n),
                Some(e) if e.code == "store_unavailable" => {
                    refused += 1;
                    again.push(n);
                }
                Some(e) => panic!("send {n} refused with {} ({}), not store_unavailable", e.code, e.message),
            }
        }
        if window == 3 {
            server.postgres.as_mut().unwrap().start_again().unwrap();
        }
        if !again.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for n in again.into_iter().rev() {
            queue.push_front(n);
        }
        assert!(window < 200, "service did not resume by itself");
    }
    assert!(refused > 0, "the restart was felt: some sends were refused for a while");
    // Bob's connection also came through: everything reaches him, once.
    let mut got: Vec<u16> = Vec::new();
    while got.len() < 80 {
        let e = b.envelope().await;
        got.push(u16::from_le_bytes(e.ciphertext[..2].try_into().unwrap()));
        let r = b.request(Request::Ack(Ack { envelope_ids: vec![e.envelope_id] })).await;
        assert!(r.error.as_ref().is_none_or(|e| e.code == "store_unavailable"), "{:?}", r.error);
    }
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 80, "every message once: {got:?}");
    acked.sort();
    assert_eq!(acked, (0..80).collect::<Vec<u16>>());
    server.stop().await;
}
