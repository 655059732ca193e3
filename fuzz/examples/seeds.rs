//! Writes the committed seed corpus, `fuzz/corpus/<target>/seed-*`: a few
//! genuine inputs per target, so the fuzzer starts from frames, boxes and
//! codes the code accepts instead of finding their structure by chance.
//!
//! `cargo xtask fuzz --write-seeds` builds and runs it with the fuzz
//! targets' flags (so it reuses their build); rerun it when the wire format
//! changes.

// The coverage instrumentation of that build needs libFuzzer's callbacks
// (feature `libfuzzer`, which `--write-seeds` turns on); a plain build, as
// `cargo test --workspace` makes to check that it compiles, does not.
#[cfg(feature = "libfuzzer")]
extern crate libfuzzer_sys;

use prost::Message;
use std::path::Path;
use tether_fuzz::encode_records;
use tether_proto::Fingerprint;
use tether_proto::device_list::AccountKey;
use tether_proto::frames::{self as f, ClientFrame, Request};
use tether_proto::link::LinkPayload;
use tether_proto::seal;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn entry(id: u32, byte: u8) -> f::DeviceEntry {
    f::DeviceEntry {
        device_id: id,
        noise_key: vec![byte; 32],
        identity_key: vec![byte ^ 1; 32],
        signing_key: vec![byte ^ 2; 32],
        platform: "cli/linux".into(),
        name: String::new(),
        linked_at_ms: 1,
        self_signature: vec![],
    }
}

fn list(handle: &str, version: u64, devices: Vec<f::DeviceEntry>) -> f::DeviceList {
    f::DeviceList { handle: handle.into(), version, devices, issued_at_ms: 1 }
}

fn frame(id: u64, r: Request) -> Vec<u8> {
    ClientFrame { id, request: Some(r) }.encode_to_vec()
}

fn link_uri() {
    let payload = LinkPayload {
        server: Fingerprint([1; 32]),
        link_ref: [2; 16],
        noise_key: seal::public_key(&[3; 32]),
        identity_key: seal::public_key(&[4; 32]),
        signing_key: [5; 32],
        link_key: seal::public_key(&[6; 32]),
        link_secret: [7; 32],
        platform: "chrome/linux".into(),
        name: "Chrome on Linux".into(),
    };
    write("link_uri", "link", payload.to_uri().as_bytes());
    write("link_uri", "code", b"ABCD-EFGH");
    write("link_uri", "code-typed", b" abcd efgh\n");
}

fn sealed_box() {
    let with = |selector: u8, aad: &[u8], body: &[u8]| [&[selector, aad.len() as u8][..], aad, body].concat();
    let boxed = seal::seal(&seal::public_key(&[0x11; 32]), b"history", b"ctx", [0x22; 32], [0x33; 12]);
    write("sealed_box", "open", &with(0, b"ctx", &boxed));
    let sym = seal::encrypt_with_key(&[0x44; 32], b"offer", b"pairing", [0x55; 12]);
    write("sealed_box", "symmetric", &with(1, b"pairing", &sym));
    let account = AccountKey::from_seed(&[7; 32]);
    let l = list("alice", 1, vec![entry(0, 1), entry(1, 9)]);
    write("sealed_box", "signed-list", &with(2, &account.public(), &account.sign(&l).encode_to_vec()));
    write("sealed_box", "list-body", &with(3, b"", &l.encode_to_vec()));
}

fn server_frame() {
    // op even: a guest; odd: the registered `fuzzer` (see the target).
    let guest = |frames: Vec<Vec<u8>>| encode_records(&frames.into_iter().map(|b| (0u8, b)).collect::<Vec<_>>());
    let device = |frames: Vec<Vec<u8>>| encode_records(&frames.into_iter().map(|b| (1u8, b)).collect::<Vec<_>>());
    write("server_frame", "guest-ping", &guest(vec![frame(1, Request::Ping(f::Ping {}))]));
    write("server_frame", "guest-link-refs", &guest(vec![frame(1, Request::RequestLinkRefs(f::RequestLinkRefs {}))]));
    write(
        "server_frame",
        "guest-pairing",
        &guest(vec![frame(
            1,
            Request::PairingPublish(f::PairingPublish { lookup: vec![9; 16], payload: vec![1; 64] }),
        )]),
    );
    let account = AccountKey::from_seed(&[0x31; 32]);
    let register = f::Register {
        handle: "newcomer".into(),
        account_key: account.public().to_vec(),
        device_list: Some(account.sign(&list("newcomer", 1, vec![entry(0, 0x31)]))),
        token: String::new(),
    };
    write("server_frame", "guest-register", &guest(vec![frame(1, Request::Register(register))]));
    write(
        "server_frame",
        "device-lists",
        &device(vec![
            frame(1, Request::GetDeviceList(f::GetDeviceList { handle: "peer".into() })),
            frame(2, Request::ListDevices(f::ListDevices {})),
            frame(3, Request::ClaimPrekey(f::ClaimPrekey { handle: "peer".into(), device_id: 0 })),
        ]),
    );
    let copy = f::Copy { handle: "peer".into(), device_id: 0, ciphertext: vec![0x42; 48], list_version: 0 };
    write(
        "server_frame",
        "device-send",
        &device(vec![
            frame(1, Request::Send(f::SendMessage { message_id: vec![1; 16], copies: vec![copy], blob_ids: vec![], ..Default::default() })),
            frame(2, Request::Ack(f::Ack { envelope_ids: vec![1, 2] })),
        ]),
    );
    write(
        "server_frame",
        "device-links",
        &device(vec![
            frame(
                1,
                Request::ApproveLink(f::ApproveLink {
                    link_ref: vec![3; 16],
                    device_id: 1,
                    new_list: None,
                    approval: vec![1; 8],
                }),
            ),
            frame(2, Request::PairingFetch(f::PairingFetch { lookup: vec![9; 16] })),
            frame(3, Request::PairingReply(f::PairingReply { lookup: vec![9; 16], payload: vec![2; 64] })),
            frame(4, Request::RemoveDevice(f::RemoveDevice { device_id: 3, new_list: None })),
            frame(5, Request::UploadPrekeys(f::UploadPrekeys { one_time_keys: vec![f::OneTimeKey { key_id: 500, key: vec![5; 32], signature: vec![] }], fallback: None })),
        ]),
    );
}

fn engine_message() {
    // First byte: 0 registering, 1 companion, 2 registered primary.
    let input = |state: u8, records: Vec<(u8, Vec<u8>)>| [vec![state], encode_records(&records)].concat();
    let response = |body: f::ResponseBody| f::Response { id: 0, error: None, body: Some(body) }.encode_to_vec();
    let event = |body: f::EventBody| f::Event { body: Some(body) }.encode_to_vec();
    write(
        "engine_message",
        "registering",
        &input(
            0,
            vec![(1, response(f::ResponseBody::Registered(f::Registered { handle: "fuzzer".into(), device_id: 0 })))],
        ),
    );
    let refs =
        f::LinkRefs { refs: vec![f::LinkRef { link_ref: vec![1; 16], not_before_ms: 0, expires_ms: u64::MAX / 2 }] };
    write(
        "engine_message",
        "companion",
        &input(
            1,
            vec![
                (1, response(f::ResponseBody::LinkRefs(refs))),
                (
                    2,
                    event(f::EventBody::LinkApproved(f::LinkApproved {
                        handle: "alice".into(),
                        device_id: 1,
                        account_key: vec![1; 32],
                        list: None,
                        approval: vec![1; 40],
                    })),
                ),
            ],
        ),
    );
    let envelope = f::Envelope {
        envelope_id: 7,
        message_id: vec![1; 16],
        sender_handle: "bob".into(),
        sender_device: 0,
        ciphertext: vec![0x42; 120],
        server_time_ms: 1_793_491_200_000,
    };
    let error = f::ErrorInfo { code: "rate_limited".into(), message: "slow down".into(), device_lists: vec![], ..Default::default() };
    write(
        "engine_message",
        "registered",
        &input(
            2,
            vec![
                (2, event(f::EventBody::Envelope(envelope))),
                (2, event(f::EventBody::DeviceListUpdated(f::DeviceListUpdated { handle: "bob".into() }))),
                (2, event(f::EventBody::PrekeysLow(f::PrekeyCount { one_time_keys: 1 }))),
                (1, response(f::ResponseBody::Pong(f::Pong { time_ms: 5 }))),
                (1, f::Response { id: 0, error: Some(error.clone()), body: None }.encode_to_vec()),
                (4, vec![1, 0]),
                (5, vec![]),
                (2, event(f::EventBody::Closing(error))),
            ],
        ),
    );
    let raw = f::ServerFrame {
        body: Some(f::ServerBody::Response(f::Response {
            id: 1,
            error: None,
            body: Some(f::ResponseBody::Done(f::Done {})),
        })),
    };
    write("engine_message", "raw-frame", &input(3, vec![(0, raw.encode_to_vec()), (3, vec![0; 40])]));
}

fn main() {
    link_uri();
    sealed_box();
    server_frame();
    engine_message();
    println!("seeds written under {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
