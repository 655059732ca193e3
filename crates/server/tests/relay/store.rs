//! Every store backend passes the same conformance suite.

use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = tether_server::SqliteStore::open(dir.path()).await.unwrap();
    tether_server::store::conformance::run(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    // Started on the test's own thread, which outlives the test: the
    // server dies with the thread that started it.
    let pg = tether_services::Postgres::start().unwrap();
    let url = pg.create_database("conformance").unwrap();
    let store = tether_server::PostgresStore::connect(&url).await.unwrap();
    let start = Instant::now();
    tether_server::store::conformance::run(&store).await;
    eprintln!("PostgreSQL conformance suite: {:.1} s", start.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_opens_again_without_migrating_twice() {
    let pg = tether_services::Postgres::start().unwrap();
    let url = pg.create_database("reopen").unwrap();
    use tether_server::Store;
    let store = tether_server::PostgresStore::connect(&url).await.unwrap();
    store.set_meta("k", b"v").await.unwrap();
    drop(store);
    let again = tether_server::PostgresStore::connect(&url).await.unwrap();
    assert_eq!(again.meta("k").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_is_a_startup_error_that_shows_no_password() {
    let port = tether_services::free_port();
    let url = format!("postgres://tether:hunter2@127.0.0.1:{port}/tether");
    let start = Instant::now();
    let e = tether_server::PostgresStore::connect(&url).await.unwrap_err().to_string();
    assert!(start.elapsed() < std::time::Duration::from_secs(15), "an error, not a hang");
    assert!(e.contains(&format!("127.0.0.1:{port}/tether")), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

/// SQLite gives envelope ids before their commit (the writer pushes those
/// copies while the commit runs): a commit stores them under those ids,
/// and ids given before a crash that lost their commit are never given
/// again, since a device may have seen them (docs/protocol.md,
/// "Durability"). PostgreSQL gives ids at commit only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ids_given_before_a_commit_are_never_given_again() {
    use tether_server::Store;
    let copy = |n: u8| tether_server::store::conformance::envelope("bob", 0, n, 1);
    let dir = tempfile::tempdir().unwrap();
    let store = tether_server::SqliteStore::open(dir.path()).await.unwrap();
    let first = store.commit_batch(&[copy(1)], &[], &[], &[]).await.unwrap().ids;
    let ids = store.reserve_ids(3).unwrap();
    assert!(ids[0] > first[0] && ids.windows(2).all(|w| w[1] == w[0] + 1), "{first:?} then {ids:?}");
    let copies = [copy(2), copy(3), copy(4)];
    let done = store.commit_batch_as(&copies, Some(&ids), &[], &[], &[]).await.unwrap();
    assert_eq!(done.ids, ids, "stored under the ids given");
    let stored: Vec<(u64, u8)> = store
        .pending("bob", 0, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.id, e.envelope.message_id[0]))
        .collect();
    assert_eq!(stored, vec![(first[0], 1), (ids[0], 2), (ids[1], 3), (ids[2], 4)]);
    // Ids that do not fit are refused, and nothing is stored: one too few,
    // or one already stored.
    assert!(store.commit_batch_as(&[copy(5), copy(5)], Some(&[ids[2] + 100]), &[], &[], &[]).await.is_err());
    assert!(store.commit_batch_as(&[copy(5)], Some(&[ids[2]]), &[], &[], &[]).await.is_err());

    // Given, pushed, and then the server dies before their commit.
    let lost = store.reserve_ids(2).unwrap();
    drop(store);
    let store = tether_server::SqliteStore::open(dir.path()).await.unwrap();
    let after = store.commit_batch(&[copy(6)], &[], &[], &[]).await.unwrap().ids;
    assert!(after[0] > lost[1], "{after:?} after the lost {lost:?}");
    assert!(store.reserve_ids(1).unwrap()[0] > after[0]);
    assert_eq!(store.pending("bob", 0, 0, 10).await.unwrap().len(), 5, "the lost ids stored nothing");

    // A copy pushed before its commit and acknowledged before it too: the
    // ack joins the same group commit, and deletes it there.
    let early = store.reserve_ids(1).unwrap();
    let ack = tether_server::store::AckedCopies { handle: "bob".into(), device_id: 0, ids: early.clone() };
    let done = store.commit_batch_as(&[copy(7)], Some(&early), &[ack], &[], &[]).await.unwrap();
    assert_eq!(done.acked, 1);
    assert_eq!(store.pending("bob", 0, early[0] - 1, 10).await.unwrap().len(), 0, "not stored for a redelivery");

    // PostgreSQL: none before the commit.
    let pg = tether_services::Postgres::start().unwrap();
    let url = pg.create_database("ids").unwrap();
    let store = tether_server::PostgresStore::connect(&url).await.unwrap();
    assert_eq!(store.reserve_ids(1), None);
    assert!(store.commit_batch_as(&[copy(1)], Some(&[1]), &[], &[], &[]).await.is_err());
}
