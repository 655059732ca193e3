use crate::common::*;
use tether_proto::ErrorCode;
use tether_proto::frames::*;
use tether_proto::noise::StaticKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_reconnect_as_the_device_with_the_pinned_key() {
    let server = TestServer::start().await;
    // First contact: no pin yet; the client learns the fingerprint…
    let key = StaticKey::generate();
    let mut first = Client::connect(&server.url(), key.clone(), None).await.unwrap();
    let account = TestAccount::new("+4915112345678", &first.key);
    first.ok(account.register_request()).await;
    // … and pins it from then on.
    let mut again = reconnect(&server, &key).await;
    match again.ok(Request::ListDevices(ListDevices {})).await {
        ResponseBody::Devices(d) => {
            assert_eq!(d.devices.len(), 1);
            assert!(d.devices[0].current);
            assert_eq!(d.devices[0].platform, "cli/linux");
        }
        other => panic!("{other:?}"),
    }
    // The connection it replaced is told to go away.
    assert_eq!(first.until_closed().await.1, "going_away");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_server_key_makes_the_client_refuse_to_talk() {
    let server = TestServer::start().await;
    let other = tether_proto::Fingerprint::of(&StaticKey::generate().public());
    match Client::connect(&server.url(), StaticKey::generate(), Some(other)).await {
        Err(ConnectError::Proto(tether_proto::Error::ServerKeyMismatch { .. })) => {}
        Err(e) => panic!("expected a key mismatch, got {e:?}"),
        Ok(_) => panic!("the client talked to a server with the wrong key"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_rules() {
    let server = TestServer::start().await;
    let (_alice, _a) = register(&server, "alice").await;

    // Taken handle, invalid handle, forged list, a list for someone else.
    let mut g = server.guest().await;
    let acc = TestAccount::new("alice", &g.key);
    g.fails(acc.register_request(), ErrorCode::HandleTaken).await;
    let acc = TestAccount::new("x", &g.key);
    g.fails(acc.register_request(), ErrorCode::InvalidHandle).await;
    let acc = TestAccount::new("carol", &g.key);
    let mut forged = acc.signed();
    forged.signature[0] ^= 1;
    let req = Request::Register(Register {
        handle: "carol".into(),
        account_key: acc.key.public().to_vec(),
        device_list: Some(forged),
        token: String::new(),
    });
    g.fails(req, ErrorCode::BadSignature).await;
    let stranger = StaticKey::generate();
    let acc = TestAccount::new("carol", &stranger);
    g.fails(acc.register_request(), ErrorCode::InvalidDeviceList).await;

    // A guest cannot use device requests.
    g.fails(Request::ListDevices(ListDevices {}), ErrorCode::NotRegistered).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_registration_needs_a_fresh_token() {
    let server = TestServer::start_with(|c| c.registration = Some(tether_server::Registration::Token)).await;
    let token = server.server.create_token().await.unwrap();
    let mut g = server.guest().await;
    let acc = TestAccount::new("dave", &g.key);
    g.fails(acc.register_request(), ErrorCode::RegistrationClosed).await;
    let with_token = |acc: &TestAccount, token: &str| {
        Request::Register(Register {
            handle: acc.handle.clone(),
            account_key: acc.key.public().to_vec(),
            device_list: Some(acc.signed()),
            token: token.into(),
        })
    };
    g.ok(with_token(&acc, &token)).await;
    let mut h = server.guest().await;
    let acc2 = TestAccount::new("erin", &h.key);
    h.fails(with_token(&acc2, &token), ErrorCode::RegistrationClosed).await;
    server.stop().await;
}

/// Spec fix: a failed handshake ends with a WebSocket close frame (1008,
/// `handshake_failed`) and a clean TCP close, not a reset, even when the
/// client sent more than the server read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handshake_ends_with_a_close_frame_not_a_reset() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let server = TestServer::start().await;
    for round in 0..5 {
        let (mut ws, _) = tokio_tungstenite::connect_async(server.url()).await.unwrap();
        // Not a Noise `e` (32 bytes), and more behind it that the server
        // never reads as a handshake message.
        ws.send(Message::Binary(vec![0u8; 10].into())).await.unwrap();
        ws.send(Message::Binary(vec![1u8; 4000].into())).await.unwrap();
        ws.send(Message::Binary(vec![2u8; 4000].into())).await.unwrap();
        // Let the server refuse and (before the fix) drop the socket.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.expect("an answer");
        match got {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(
                    (frame.code, frame.reason.as_str()),
                    (CloseCode::Policy, "handshake_failed"),
                    "round {round}"
                );
            }
            other => panic!("round {round}: expected a close frame, got {other:?}"),
        }
        // The closing handshake completes: our close echo is sent and the
        // socket ends cleanly.
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.expect("the socket ends") {
                None => break,
                Some(Ok(_)) => continue,
                Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => break,
                Some(Err(e)) => panic!("round {round}: the connection ended with {e}, not a clean close"),
            }
        }
    }
    server.stop().await;
}
