use crate::common::*;

fn get(url: String) -> (u16, String) {
    let mut resp = ureq::get(&url).config().http_status_as_error(false).build().call().unwrap();
    (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_version_and_fingerprint_and_the_database_exists() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let (status, body) = tokio::task::spawn_blocking(move || get(format!("http://{addr}/healthz"))).await.unwrap();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["protocol"], 1);
    assert_eq!(health["fingerprint"], server.pin().to_hex());
    assert!(server.dir.path().join("tether.db").is_file());
    assert!(server.dir.path().join("server.key").is_file());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_frames_envelopes_and_errors() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, mut b) = register(&server, "bob").await;
    a.ok(send_req(1, vec![("bob", 0, b"sealed".to_vec())])).await;
    let e = b.envelope().await;
    b.ok(tether_proto::frames::Request::Ack(tether_proto::frames::Ack { envelope_ids: vec![e.envelope_id] })).await;
    a.fails(send_req(2, vec![("bob", 7, b"x".to_vec())]), tether_proto::ErrorCode::DeviceListChanged).await;
    let addr = server.addr;
    let (status, text) = tokio::task::spawn_blocking(move || get(format!("http://{addr}/metrics"))).await.unwrap();
    assert_eq!(status, 200);
    for needle in [
        "tether_connections_total 2",
        "tether_connections_open 2",
        "tether_envelopes_stored_total 1",
        "tether_envelopes_delivered_total 1",
        "tether_envelopes_acked_total 1",
        "tether_errors_total{code=\"device_list_changed\"} 1",
        "tether_queue_depth 0",
        "tether_handshake_failures_total 0",
    ] {
        assert!(text.contains(needle), "metrics lack `{needle}`:\n{text}");
    }
    assert!(text.contains("tether_frames_in_total"), "{text}");
    server.stop().await;
}

/// `/v1/ws` answers the WebSocket opening handshake itself: a plain GET
/// is refused, a version other than 13 is told which one to use, and a
/// proper upgrade gets `101` with the accept key RFC 6455 derives from the
/// client's key (a real client's handshake is every other test here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_endpoint_answers_only_a_proper_upgrade() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let ask = |extra: String| {
        let addr = server.addr;
        async move {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = format!("GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n");
            tcp.write_all(req.as_bytes()).await.unwrap();
            let mut head = vec![0; 1024];
            let n = tcp.read(&mut head).await.unwrap();
            String::from_utf8_lossy(&head[..n]).to_string()
        }
    };
    let plain = ask(String::new()).await;
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let old = ask(format!("{upgrade}Sec-WebSocket-Version: 8\r\n")).await;
    assert!(old.starts_with("HTTP/1.1 426"), "{old}");
    assert!(old.to_ascii_lowercase().contains("sec-websocket-version: 13"), "{old}");
    let ok = ask(format!("{upgrade}Sec-WebSocket-Version: 13\r\n")).await;
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
    // RFC 6455 §1.3's own example key and answer.
    assert!(ok.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{ok}");
    server.stop().await;
}
