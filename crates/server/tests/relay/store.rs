//! Every store backend passes the same conformance suite.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = tether_server::SqliteStore::open(dir.path()).await.unwrap();
    tether_server::store::conformance::run(&store).await;
}
