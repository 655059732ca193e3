//! Several nodes (docs/architecture.md, "Several nodes"): two in-process
//! servers on one PostgreSQL database and one data directory (the server
//! key, the blobs), telling each other through a real nats-server
//! (tether-services starts throwaway ones). A device on one node and its
//! contact on the other chat both ways; a device removed through one node
//! loses its socket on the other at once.

use crate::common::*;
use tether_proto::frames::*;
use tether_server::{Config, DatabaseUrl, ManualClock};

/// Two nodes on one database, and the NATS between them. Start it from
/// the test's own task: PostgreSQL and NATS die with the thread that
/// started them.
struct TwoNodes {
    a: TestServer,
    b: TestServer,
    _nats: tether_services::Nats,
    _postgres: tether_services::Postgres,
    _data: tempfile::TempDir,
}

impl TwoNodes {
    async fn start() -> Self {
        let postgres = tether_services::Postgres::start().unwrap();
        let url = postgres.create_database("cluster").unwrap();
        let nats = tether_services::Nats::start().unwrap();
        let data = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let config = Config {
            data: data.path().to_path_buf(),
            database_url: Some(DatabaseUrl(url)),
            nats_url: Some(nats.url()),
            ..Config::default()
        };
        let a = TestServer::node(config.clone(), clock.clone()).await;
        let b = TestServer::node(config, clock).await;
        assert_eq!(a.pin(), b.pin(), "every node answers with the same server key");
        Self { a, b, _nats: nats, _postgres: postgres, _data: data }
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

fn ack(ids: Vec<u64>) -> Request {
    Request::Ack(Ack { envelope_ids: ids })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_on_one_node_and_its_contact_on_the_other_chat_both_ways() {
    let nodes = TwoNodes::start().await;
    let (_alice, mut alice) = register(&nodes.a, "alice").await;
    let (_bob, mut bob) = register(&nodes.b, "bob").await;
    for n in 1..=20u8 {
        alice.ok(send_req(n, vec![("bob", 0, vec![n; 8])])).await;
        let e = bob.envelope().await;
        assert_eq!((e.sender_handle.as_str(), e.ciphertext[0]), ("alice", n), "pushed across nodes, in order");
        bob.ok(ack(vec![e.envelope_id])).await;
        bob.ok(send_req(100 + n, vec![("alice", 0, vec![100 + n; 8])])).await;
        let e = alice.envelope().await;
        assert_eq!((e.sender_handle.as_str(), e.ciphertext[0]), ("bob", 100 + n));
        alice.ok(ack(vec![e.envelope_id])).await;
    }
    // Nothing twice: a ping answered with no envelope left behind.
    alice.ping().await;
    bob.ping().await;
    assert!(alice.events.iter().chain(bob.events.iter()).all(|e| !matches!(e, EventBody::Envelope(_))));
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_removed_through_one_node_loses_its_socket_on_the_other_at_once() {
    let nodes = TwoNodes::start().await;
    let (mut alice, mut primary) = register(&nodes.a, "alice").await;
    let companion = link(&nodes.a, &mut alice, &mut primary, 1).await;
    // The companion comes back through node B.
    let key = companion.key.clone();
    drop(companion);
    let mut companion = reconnect(&nodes.b, &key).await;
    companion.ping().await;
    let list = alice.without_device(1);
    primary.ok(Request::RemoveDevice(RemoveDevice { device_id: 1, new_list: Some(list) })).await;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), companion.until_closed()).await;
    assert_eq!(
        closed.expect("closed within 5 s"),
        (Some("device_removed".into()), "device_removed".into())
    );
    nodes.stop().await;
}
