//! The server's frame decoding and request handling, through the real
//! server: one `tether-server` per process (SQLite in a temporary
//! directory), started once, and driven over a real WebSocket and Noise
//! session per input, as any client would.
//!
//! Every record's bytes (see `tether_fuzz::records`) are decoded as a
//! `ClientFrame` right here too, then encrypted as one transport frame and
//! sent. After the last, a `Ping` with id `u64::MAX` is sent and the target
//! waits for its answer (or the close), so each input runs to its end.
//!
//! The first record's `op` picks who connects: even, a guest (a Noise key
//! derived from the input); odd, the registered primary of `fuzzer`, whose
//! contact `peer` is registered too. A panic anywhere in the server aborts
//! the process under libFuzzer (its panic hook), and fails `run` natively
//! (`crate::background_panics`), so a crash in a connection task is found
//! even though the task runs on the server's runtime.
use crate::records;
use futures_util::{SinkExt, StreamExt};
use prost::Message;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tether_proto::Fingerprint;
use tether_proto::device_list::{AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, ClientFrame, Request};
use tether_proto::noise::{ClientHandshake, StaticKey, Transport};
use tether_server::{Config, Server, SystemClock};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message as Ws;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The server, its address and the keys of the two registered devices.
struct Fixture {
    rt: Runtime,
    addr: SocketAddr,
    pin: Fingerprint,
    fuzzer: StaticKey,
    _dir: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    crate::count_background_panics();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    // In memory where possible: the fuzzer writes a lot.
    let dir = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm"),
        false => tempfile::tempdir(),
    }
    .unwrap();
    let config = Config {
        data: dir.path().to_path_buf(),
        // One connection per input, all from one address: no rate limit
        // should be what stops an input.
        rate_per_sec: 1_000_000,
        rate_burst: 1_000_000,
        handshake_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let (server, addr) = rt.block_on(async {
        let server = Server::open(config, Arc::new(SystemClock)).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = server.clone();
        tokio::spawn(async move { s.serve(listener, std::future::pending()).await });
        (server, addr)
    });
    let pin = server.fingerprint();
    let fuzzer = StaticKey::from_private(&[0xf0; 32]).unwrap();
    let peer = StaticKey::from_private(&[0xe0; 32]).unwrap();
    rt.block_on(async {
        for (handle, key, seed) in [("fuzzer", &fuzzer, 0xf1), ("peer", &peer, 0xe1)] {
            let frames = [register(handle, key, seed), prekeys()];
            let answers = session(addr, pin, key, &frames).await;
            assert!(answers >= 2, "{handle} registered and uploaded prekeys");
        }
    });
    std::mem::forget(server);
    Fixture { rt, addr, pin, fuzzer, _dir: dir }
});

/// A `Register` frame for `handle`, device 0 with `key`.
fn register(handle: &str, key: &StaticKey, seed: u8) -> Vec<u8> {
    let account = AccountKey::from_seed(&[seed; 32]);
    let list = f::DeviceList {
        handle: handle.into(),
        version: 1,
        devices: vec![f::DeviceEntry {
            device_id: PRIMARY_DEVICE,
            noise_key: key.public().to_vec(),
            identity_key: vec![seed; 32],
            signing_key: vec![seed ^ 1; 32],
            platform: "cli/linux".into(),
            name: String::new(),
            linked_at_ms: 1,
            self_signature: vec![],
        }],
        issued_at_ms: 1,
    };
    let req = Request::Register(f::Register {
        handle: handle.into(),
        account_key: account.public().to_vec(),
        device_list: Some(account.sign(&list)),
        token: String::new(),
    });
    ClientFrame { id: 1, request: Some(req) }.encode_to_vec()
}

fn prekeys() -> Vec<u8> {
    let keys = (1..=20).map(|i| f::OneTimeKey { key_id: i, key: vec![i as u8; 32], signature: vec![] }).collect();
    let req = Request::UploadPrekeys(f::UploadPrekeys {
        one_time_keys: keys,
        fallback: Some(f::OneTimeKey { key_id: 99, key: vec![99; 32], signature: vec![] }),
    });
    ClientFrame { id: 2, request: Some(req) }.encode_to_vec()
}

async fn recv_binary(ws: &mut Socket) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.ok()?? {
            Ok(Ws::Binary(b)) => return Some(b.to_vec()),
            Ok(Ws::Ping(_) | Ws::Pong(_) | Ws::Frame(_)) => continue,
            _ => return None,
        }
    }
}

/// Connects with `key`, sends `frames` and a final ping, and reads until
/// that ping's answer or the close. Returns how many responses came.
async fn session(addr: SocketAddr, pin: Fingerprint, key: &StaticKey, frames: &[Vec<u8>]) -> usize {
    // No Nagle: an input is several small writes, and waiting for delayed
    // ACKs would make every input take 40 ms.
    let url = format!("ws://{addr}/v1/ws");
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(url, None, true).await else {
        panic!("the server refused a WebSocket connection");
    };
    let (expect, m1) = ClientHandshake::start(key, Some(pin)).unwrap();
    ws.send(Ws::Binary(m1.into())).await.unwrap();
    let m2 = recv_binary(&mut ws).await.expect("handshake message 2");
    let (mut transport, m3) = expect
        .handle(&m2)
        .expect("the server's key is the pinned one")
        .finish(&f::ClientHello { client_version: "fuzz".into() })
        .unwrap();
    ws.send(Ws::Binary(m3.into())).await.unwrap();
    let ping = ClientFrame { id: u64::MAX, request: Some(Request::Ping(f::Ping {})) }.encode_to_vec();
    for frame in frames.iter().chain([&ping]) {
        let Ok(msg) = transport.encrypt(frame) else { continue };
        if ws.send(Ws::Binary(msg.into())).await.is_err() {
            break;
        }
    }
    read_answers(&mut ws, &mut transport).await
}

async fn read_answers(ws: &mut Socket, transport: &mut Transport) -> usize {
    let mut answers = 0;
    while let Some(msg) = recv_binary(ws).await {
        let frame = transport.decrypt(&msg).expect("the server's frames decrypt");
        let frame = f::ServerFrame::decode(frame.as_slice()).expect("the server's frames decode");
        if let Some(f::ServerBody::Response(r)) = frame.body {
            answers += 1;
            if r.id == u64::MAX {
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    answers
}

/// Runs one input (the fuzz target's body).
pub fn run(data: &[u8]) {
    crate::runs_inputs();
    let fx = &*FIXTURE;
    let panics = crate::background_panics();
    let recs = records(data);
    let frames: Vec<Vec<u8>> = recs
        .iter()
        .map(|(_, bytes)| {
            // The decoder alone, on every record.
            let _ = ClientFrame::decode(*bytes);
            bytes.to_vec()
        })
        .collect();
    let key = match recs.first() {
        Some((op, _)) if op % 2 == 1 => fx.fuzzer.clone(),
        _ => {
            let seed: [u8; 32] = Sha256::digest(data).into();
            StaticKey::from_private(&seed).unwrap()
        }
    };
    fx.rt.block_on(session(fx.addr, fx.pin, &key, &frames));
    assert_eq!(crate::background_panics(), panics, "a server thread panicked on this input (its message is above)");
}
