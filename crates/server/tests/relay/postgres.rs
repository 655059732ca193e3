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
    a.fails(send_req(21, vec![("bob", 0, vec![21; 10])]), ErrorCode::Internal).await;
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
