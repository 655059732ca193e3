//! The server answers /healthz from an in-process instance on 127.0.0.1:0,
//! with its SQLite store in a fresh data directory.

use tether_server::SqliteStore;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_ok_with_version_and_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tether_server::serve(listener, store, async {
        let _ = stopped.await;
    }));

    let body = tokio::task::spawn_blocking(move || {
        let mut resp = ureq::get(&format!("http://{addr}/healthz")).call().unwrap();
        assert_eq!(resp.status(), 200);
        resp.body_mut().read_to_string().unwrap()
    })
    .await
    .unwrap();
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["protocol"], u64::from(tether_proto::PROTOCOL_VERSION));
    assert!(dir.path().join("tether.db").is_file(), "the embedded SQLite database is created");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
