//! Bad input: each gets its error, only that connection suffers, and the
//! server keeps serving everyone else.

use crate::common::*;
use futures_util::SinkExt;
use tether_proto::ErrorCode;
use tether_proto::frames::*;
use tether_proto::noise::{ClientHandshake, StaticKey};
use tokio_tungstenite::tungstenite::Message;

/// Alice and bob, registered and talking, to prove the server still serves.
async fn bystanders(server: &TestServer) -> (Client, Client) {
    let (_a, a) = register(server, "alice").await;
    let (_b, b) = register(server, "bob").await;
    (a, b)
}

async fn still_serving(a: &mut Client, b: &mut Client, n: u8) {
    a.ok(send_req(n, vec![("bob", 0, vec![n])])).await;
    assert_eq!(b.envelope().await.ciphertext, vec![n]);
}

async fn raw(server: &TestServer) -> Ws {
    tokio_tungstenite::connect_async(server.url()).await.unwrap().0
}

async fn closed_with(ws: &mut Ws) -> Option<String> {
    loop {
        match next_binary(ws).await {
            Ok(_) => continue,
            Err(reason) => return reason,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_handshakes_are_refused_with_handshake_failed() {
    let server = TestServer::start_with(|c| c.handshake_timeout = std::time::Duration::from_millis(500)).await;
    let (mut a, mut b) = bystanders(&server).await;

    // Random bytes instead of a handshake.
    let mut ws = raw(&server).await;
    ws.send(Message::Binary(vec![0xAB; 100].into())).await.unwrap();
    assert_eq!(closed_with(&mut ws).await.as_deref(), Some("handshake_failed"));
    still_serving(&mut a, &mut b, 1).await;

    // A truncated first message.
    let mut ws = raw(&server).await;
    ws.send(Message::Binary(vec![1; 20].into())).await.unwrap();
    assert_eq!(closed_with(&mut ws).await.as_deref(), Some("handshake_failed"));

    // A handshake that stops half way (times out).
    let mut ws = raw(&server).await;
    let (_expect, m1) = ClientHandshake::start(&StaticKey::generate(), None).unwrap();
    ws.send(Message::Binary(m1.into())).await.unwrap();
    assert_eq!(closed_with(&mut ws).await.as_deref(), Some("handshake_failed"));

    // A wrong Noise pattern (ChaChaPoly instead of AESGCM): message 3 fails.
    let mut ws = raw(&server).await;
    let params: snow::params::NoiseParams = "Noise_XX_25519_ChaChaPoly_SHA256".parse().unwrap();
    let kp = snow::Builder::new(params.clone()).generate_keypair().unwrap();
    let mut hs = snow::Builder::new(params)
        .local_private_key(&kp.private)
        .unwrap()
        .prologue(b"tether/1")
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let n = hs.write_message(&[], &mut buf).unwrap();
    ws.send(Message::Binary(buf[..n].to_vec().into())).await.unwrap();
    let m2 = next_binary(&mut ws).await.unwrap();
    assert!(hs.read_message(&m2, &mut buf).is_err(), "the server's answer is not readable with the wrong cipher");
    ws.send(Message::Binary(vec![7; 64].into())).await.unwrap();
    assert_eq!(closed_with(&mut ws).await.as_deref(), Some("handshake_failed"));

    // A replayed handshake: record a real client's messages 1 and 3, replay them.
    let key = StaticKey::generate();
    let mut ws = raw(&server).await;
    let (expect, m1) = ClientHandshake::start(&key, Some(server.pin())).unwrap();
    ws.send(Message::Binary(m1.clone().into())).await.unwrap();
    let m2 = next_binary(&mut ws).await.unwrap();
    let (_t, m3) = expect.handle(&m2).unwrap().finish(&ClientHello { client_version: "x".into() }).unwrap();
    ws.send(Message::Binary(m3.clone().into())).await.unwrap();
    let mut replay = raw(&server).await;
    replay.send(Message::Binary(m1.into())).await.unwrap();
    let _ = next_binary(&mut replay).await.unwrap();
    replay.send(Message::Binary(m3.into())).await.unwrap();
    assert_eq!(closed_with(&mut replay).await.as_deref(), Some("handshake_failed"));

    // Text instead of binary before the handshake ends.
    let mut ws = raw(&server).await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(closed_with(&mut ws).await.as_deref(), Some("handshake_failed"));

    // An application frame where message 3 belongs.
    let mut ws = raw(&server).await;
    let (_expect, m1) = ClientHandshake::start(&StaticKey::generate(), None).unwrap();
    ws.send(Message::Binary(m1.into())).await.unwrap();
    let _ = next_binary(&mut ws).await.unwrap();
    let frame = prost::Message::encode_to_vec(&ClientFrame { id: 1, request: Some(Request::Ping(Ping {})) });
    ws.send(Message::Binary(frame.into())).await.unwrap();
    assert_eq!(closed_with(&mut ws).await.as_deref(), Some("handshake_failed"));

    still_serving(&mut a, &mut b, 2).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_their_error_codes() {
    let server = TestServer::start().await;
    let (mut a, mut b) = bystanders(&server).await;

    // An unknown frame type (a field number this server does not know): the
    // connection stays up.
    let mut g = server.guest().await;
    let mut unknown = prost::Message::encode_to_vec(&ClientFrame { id: 5, request: None });
    unknown.extend_from_slice(&[0xFA, 0x06, 0x00]); // field 111, length-delimited, empty
    g.send_plain(&unknown).await;
    let r = g.response(5).await;
    assert_eq!(r.error.unwrap().code, "unknown_frame");
    g.ping().await;

    // Not protobuf at all (but correctly encrypted): malformed, still up.
    g.send_plain(&[0xFF, 0xFF, 0xFF]).await;
    let r = g.response(0).await;
    assert_eq!(r.error.unwrap().code, "malformed_frame");
    g.ping().await;

    // A frame that does not decrypt (tampered): the stream is broken, close.
    g.send_raw(vec![0u8; 40]).await;
    assert_eq!(g.until_closed().await, (Some("malformed_frame".into()), "malformed_frame".into()));

    // An oversize frame.
    let mut big = server.guest().await;
    big.send_raw(vec![0u8; 70_000]).await;
    assert_eq!(big.until_closed().await, (Some("frame_too_large".into()), "frame_too_large".into()));

    // A ciphertext so large its envelope could not be delivered.
    a.fails(send_req(6, vec![("bob", 0, vec![1; 65_000])]), ErrorCode::BadRequest).await;

    // A send to a device of another account that is not in its list.
    a.fails(send_req(3, vec![("bob", 5, b"x".to_vec())]), ErrorCode::DeviceListChanged).await;

    still_serving(&mut a, &mut b, 4).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_the_rate_limit_is_refused_and_then_cut_off() {
    let server = TestServer::start_with(|c| {
        c.rate_per_sec = 10;
        c.rate_burst = 20;
    })
    .await;
    let (mut a, mut b) = bystanders(&server).await;
    let mut flood = server.guest().await;
    let mut limited = 0;
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(flood.send_request(Request::Ping(Ping {})).await);
    }
    for id in ids {
        if flood.response(id).await.error.is_some_and(|e| e.code == "rate_limited") {
            limited += 1;
        }
    }
    assert!((35..=40).contains(&limited), "about 40 of 60 pings over a burst of 20 are refused, got {limited}");
    // Keep flooding without pause: after more than 1000 refused frames in
    // a row, cut off. Every frame the server read is answered, exactly
    // once, the last one too; then `Closing` says why, and nothing after
    // it was read.
    let read_before = server.metric("tether_frames_in_total").await;
    let mut sent = Vec::new();
    for _ in 0..1100 {
        sent.push(flood.send_request(Request::Ping(Ping {})).await);
    }
    let mut answered = Vec::new();
    let mut closing = None;
    while let Some(frame) = flood.read_frame().await {
        match frame {
            ServerBody::Response(r) => {
                assert!(closing.is_none(), "a response after Closing");
                answered.push(r.id);
            }
            ServerBody::Event(Event { body: Some(EventBody::Closing(info)) }) => closing = Some(info.code),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(closing.as_deref(), Some("rate_limited"));
    let read = server.metric("tether_frames_in_total").await - read_before;
    assert_eq!(read as usize, answered.len(), "every frame the server read was answered, the last one too");
    assert_eq!(flood.closed.as_deref(), Some("rate_limited"));
    let last = *answered.last().expect("some answers");
    assert_eq!(answered, (sent[0]..=last).collect::<Vec<_>>(), "answered in order, each once, none skipped");
    // About 40 refusals in a row came from the first burst already.
    assert!(answered.len() > 900 && last < *sent.last().unwrap(), "cut off after the 1001st refusal in a row");
    still_serving(&mut a, &mut b, 5).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let server = TestServer::start_with(|c| c.idle_timeout = std::time::Duration::from_millis(300)).await;
    let mut g = server.guest().await;
    assert_eq!(g.until_closed().await, (Some("idle_timeout".into()), "idle_timeout".into()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_going_away() {
    let server = TestServer::start().await;
    let (_a, mut a) = register(&server, "alice").await;
    server.server.shutdown();
    assert_eq!(a.until_closed().await, (Some("going_away".into()), "going_away".into()));
    server.stop().await;
}
