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
