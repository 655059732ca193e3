//! The engine's `handle_message` after a real Noise handshake: the target
//! plays the server (as `crates/client/tests/engine/relay.rs` does), then
//! feeds the engine frames built from the input, encrypted as transport
//! messages so they reach frame decoding and event handling.
//!
//! The input's first byte picks the engine's state:
//! - 0: registering (its `Register` request is waiting for an answer);
//! - 1: a companion showing link codes (`start_link`, a guest connection);
//! - 2, 3: a registered primary with one contact (`bob`, whose signed list
//!   it holds), restored from a snapshot made once per process.
//!
//! The rest is records (`tether_fuzz::records`); by `op % 8`:
//! - 0: the bytes are a `ServerFrame`, sent as they are;
//! - 1: the bytes are a `Response`; its id is replaced by the id of one of
//!   the engine's open requests (picked by `op / 8`), so answers match;
//! - 2: the bytes are an `Event`;
//! - 3: the bytes are handed to the engine unencrypted (a broken transport);
//! - 4: time passes (`u16` from the bytes, in 100 ms steps);
//! - 5: the socket drops and the engine reconnects (a new handshake);
//! - 6, 7: as 1, with no id patching when the bytes name one.
use crate::{Seeded, records};
use prost::Message;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::LazyLock;
use tether_client::store::{KvStore, MemoryStore, Op};
use tether_client::{ClientInfo, Engine};
use tether_proto::device_list::{AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, Request, ResponseBody};
use tether_proto::noise::{ServerHandshake, StaticKey, Transport};

const T0: u64 = 1_793_491_200_000;
const URL: &str = "http://relay";

/// The relay's Noise key: fixed, since the registered snapshot pins it.
static SERVER_KEY: LazyLock<StaticKey> = LazyLock::new(|| StaticKey::from_private(&[0x5e; 32]).unwrap());

/// A store the snapshot builder can read back after the engine wrote it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<MemoryStore>>);
impl KvStore for Shared {
    fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        self.0.borrow().scan(ns)
    }
    fn apply(&mut self, ops: &[Op]) -> Result<(), String> {
        self.0.borrow_mut().apply(ops)
    }
}

fn info() -> ClientInfo {
    ClientInfo { client_version: "fuzz".into(), platform: "cli/linux".into(), name: "Fuzz".into() }
}

/// The server side of one connection.
struct Relay {
    transport: Option<Transport>,
    /// Ids of the engine's requests, newest last.
    pending: Vec<u64>,
    requests: Vec<(u64, Request)>,
    now: u64,
}

impl Relay {
    fn new() -> Self {
        Self { transport: None, pending: Vec::new(), requests: Vec::new(), now: T0 }
    }

    /// The real handshake, if the engine wants to connect.
    fn connect(&mut self, e: &mut Engine) {
        self.transport = None;
        e.handle_connected(self.now);
        let Some(m1) = e.poll_transmit() else { return };
        let hello = f::ServerHello {
            server_version: "fuzz".into(),
            protocol: tether_proto::PROTOCOL_VERSION.into(),
            time_ms: self.now,
        };
        let Ok((expect, m2)) = ServerHandshake::handle(&SERVER_KEY, &m1, &hello) else { return };
        e.handle_message(&m2, self.now);
        let Some(m3) = e.poll_transmit() else { return };
        self.transport = expect.handle(&m3).ok().map(|a| a.transport);
        self.drain(e);
    }

    /// Reads everything the engine sent; drops its events.
    fn drain(&mut self, e: &mut Engine) {
        while let Some(m) = e.poll_transmit() {
            let Some(t) = self.transport.as_mut() else { continue };
            if let Some(frame) = t.decrypt(&m).ok().and_then(|p| f::ClientFrame::decode(p.as_slice()).ok()) {
                self.pending.push(frame.id);
                if let Some(r) = frame.request {
                    self.requests.push((frame.id, r));
                }
            }
        }
        while e.poll_event().is_some() {}
        if e.poll_close().is_some() {
            self.transport = None;
        }
    }

    fn send(&mut self, e: &mut Engine, frame: &[u8]) {
        if let Some(t) = self.transport.as_mut() {
            if let Ok(msg) = t.encrypt(frame) {
                e.handle_message(&msg, self.now);
            }
        }
        self.drain(e);
    }

    fn respond(&mut self, e: &mut Engine, id: u64, body: ResponseBody) {
        let frame =
            f::ServerFrame { body: Some(f::ServerBody::Response(f::Response { id, error: None, body: Some(body) })) };
        self.send(e, &frame.encode_to_vec());
    }

    fn pick(&self, k: u8) -> Option<u64> {
        (!self.pending.is_empty()).then(|| self.pending[self.pending.len() - 1 - usize::from(k) % self.pending.len()])
    }
}

fn bob_list() -> f::DeviceListReply {
    let bob = AccountKey::from_seed(&[0xb0; 32]);
    let device_key = AccountKey::from_seed(&[0xb3; 32]);
    let mut entry = f::DeviceEntry {
        device_id: PRIMARY_DEVICE,
        noise_key: vec![0xb1; 32],
        identity_key: tether_proto::seal::public_key(&[0xb2; 32]).to_vec(),
        signing_key: device_key.public().to_vec(),
        platform: "cli/linux".into(),
        name: String::new(),
        linked_at_ms: T0,
        self_signature: vec![],
    };
    // The device's own signature over its entry (the primary's is required).
    entry.self_signature =
        device_key.sign_bytes(b"", &tether_proto::device_list::entry_signed_bytes("bob", &entry)).to_vec();
    let list = f::DeviceList { handle: "bob".into(), version: 1, devices: vec![entry], issued_at_ms: T0 };
    f::DeviceListReply {
        handle: "bob".into(),
        account_key: bob.public().to_vec(),
        list: Some(bob.sign(&list)),
        removed: vec![],
    }
}

/// Registers `fuzzer` against the relay, adds `bob` as a contact, answers
/// everything the engine asks, and keeps the store it leaves.
fn registered_snapshot() -> MemoryStore {
    let store = Shared::default();
    let mut e = Engine::open(Box::new(store.clone()), Box::new(Seeded(1)), info()).unwrap();
    let mut relay = Relay::new();
    e.register("fuzzer", URL, T0).unwrap();
    relay.connect(&mut e);
    let answer = |relay: &mut Relay, e: &mut Engine| {
        for _ in 0..8 {
            let reqs = std::mem::take(&mut relay.requests);
            if reqs.is_empty() {
                break;
            }
            for (id, r) in reqs {
                let body = match r {
                    Request::Register(r) => {
                        ResponseBody::Registered(f::Registered { handle: r.handle, device_id: PRIMARY_DEVICE })
                    }
                    Request::GetDeviceList(r) if r.handle == "bob" => ResponseBody::DeviceList(bob_list()),
                    Request::UploadPrekeys(u) => {
                        ResponseBody::PrekeyCount(f::PrekeyCount { one_time_keys: u.one_time_keys.len() as u32 })
                    }
                    Request::Ping(_) => ResponseBody::Pong(f::Pong { time_ms: relay.now }),
                    _ => ResponseBody::Done(f::Done {}),
                };
                relay.respond(e, id, body);
            }
        }
    };
    answer(&mut relay, &mut e);
    assert!(e.handle().is_some(), "the snapshot engine registered");
    e.add_contact("bob", "Bob", relay.now).unwrap();
    relay.drain(&mut e);
    answer(&mut relay, &mut e);
    drop(e);
    store.0.borrow().clone()
}

static REGISTERED: LazyLock<MemoryStore> = LazyLock::new(registered_snapshot);

/// Runs one input (the fuzz target's body).
pub fn run(data: &[u8]) {
    let Some((&state, rest)) = data.split_first() else { return };
    let mut relay = Relay::new();
    let mut e = match state % 4 {
        0 => {
            let mut e = Engine::open(Box::new(MemoryStore::default()), Box::new(Seeded(2)), info()).unwrap();
            e.register("fuzzer", URL, T0).unwrap();
            e
        }
        1 => {
            let mut e = Engine::open(Box::new(MemoryStore::default()), Box::new(Seeded(3)), info()).unwrap();
            e.start_link(URL, false, T0).unwrap();
            e
        }
        _ => Engine::open(Box::new(REGISTERED.clone()), Box::new(Seeded(4)), info()).unwrap(),
    };
    relay.connect(&mut e);
    for (op, bytes) in records(rest) {
        match op % 8 {
            0 => relay.send(&mut e, bytes),
            2 => {
                if let Ok(ev) = f::Event::decode(bytes) {
                    relay.send(&mut e, &f::ServerFrame { body: Some(f::ServerBody::Event(ev)) }.encode_to_vec());
                }
            }
            3 => {
                e.handle_message(bytes, relay.now);
                relay.drain(&mut e);
            }
            4 => {
                let step = bytes.iter().take(2).fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                relay.now += step * 100;
                e.handle_timeout(relay.now);
                relay.drain(&mut e);
            }
            5 => {
                e.handle_disconnected(relay.now, "fuzz");
                relay.drain(&mut e);
                relay.connect(&mut e);
            }
            k => {
                if let Ok(mut r) = f::Response::decode(bytes) {
                    if k == 1 || r.id == 0 {
                        if let Some(id) = relay.pick(op / 8) {
                            r.id = id;
                        }
                    }
                    relay.send(&mut e, &f::ServerFrame { body: Some(f::ServerBody::Response(r)) }.encode_to_vec());
                }
            }
        }
    }
}
