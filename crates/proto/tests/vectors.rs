//! Known-answer vectors: recomputes every vector of the appendix
//! "Known-answer vectors" of `docs/protocol.md` and compares it with the hex
//! written there, so the specification and the code cannot drift apart.
//!
//! The appendix holds `name = value` lines inside its ```` ```text ```` blocks:
//! `value` is lower-case hex (continued on following lines that hold only
//! hex) or a string in double quotes. Every name there must be one this test
//! computes, and every vector this test computes must be there.
//!
//! `TETHER_PRINT_VECTORS=1 cargo test -p tether-proto --test vectors -- --nocapture`
//! prints the computed vectors in that form (for writing the appendix).

use prost::Message;
use std::collections::BTreeMap;
use tether_proto::device_list::{self, AccountKey};
use tether_proto::frames::{self as f, ClientFrame, Request};
use tether_proto::noise::{self, ClientHandshake, NOISE_PARAMS, ServerHandshake, StaticKey};
use tether_proto::{Fingerprint, media, pairing, prologue, seal};

const APPENDIX: &str = "## Appendix: Known-answer vectors";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `0x00, 0x01, …` from `start`: readable fixed key material.
fn counting<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

/// The vectors as the code computes them, in appendix order.
#[derive(Default)]
struct Vectors(Vec<(String, String)>);

impl Vectors {
    fn hex(&mut self, name: &str, bytes: &[u8]) {
        self.0.push((name.to_string(), hex(bytes)));
    }
    fn text(&mut self, name: &str, s: &str) {
        self.0.push((name.to_string(), format!("\"{s}\"")));
    }
}

// ------------------------------------------------------------- (a) Noise XX

const CLIENT_STATIC: [u8; 32] = [0x01; 32];
const CLIENT_EPHEMERAL: [u8; 32] = [0x02; 32];
const SERVER_STATIC: [u8; 32] = [0x03; 32];
const SERVER_EPHEMERAL: [u8; 32] = [0x04; 32];
const HELLO_TIME_MS: u64 = 1_793_491_200_000;

fn server_hello() -> f::ServerHello {
    f::ServerHello { server_version: "0.1.0".into(), protocol: 1, time_ms: HELLO_TIME_MS }
}

fn client_hello() -> f::ClientHello {
    f::ClientHello { client_version: "0.1.0".into() }
}

fn ping() -> ClientFrame {
    ClientFrame { id: 1, request: Some(Request::Ping(f::Ping {})) }
}

fn pong() -> f::ServerFrame {
    let r =
        f::Response { id: 1, error: None, body: Some(f::ResponseBody::Pong(f::Pong { time_ms: HELLO_TIME_MS + 1 })) };
    f::ServerFrame { body: Some(f::ServerBody::Response(r)) }
}

/// A snow handshake state with fixed static and ephemeral keys: the same
/// parameters, crypto resolver and prologue as `tether_proto::noise`, which
/// draws its ephemeral keys at random and so cannot produce a fixed transcript.
fn fixed(static_key: &[u8; 32], ephemeral: &[u8; 32], initiator: bool) -> snow::HandshakeState {
    let prologue = prologue();
    let b = noise::builder()
        .local_private_key(static_key)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(ephemeral)
        .prologue(&prologue)
        .unwrap();
    if initiator { b.build_initiator().unwrap() } else { b.build_responder().unwrap() }
}

fn write(hs: &mut snow::HandshakeState, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 65535];
    let n = hs.write_message(payload, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn read(hs: &mut snow::HandshakeState, msg: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 65535];
    let n = hs.read_message(msg, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn noise(v: &mut Vectors) {
    let client_public = StaticKey::from_private(&CLIENT_STATIC).unwrap().public();
    let server_public = StaticKey::from_private(&SERVER_STATIC).unwrap().public();
    v.text("noise.protocol", NOISE_PARAMS);
    v.hex("noise.prologue", &prologue());
    v.hex("noise.client_static_private", &CLIENT_STATIC);
    v.hex("noise.client_static_public", &client_public);
    v.hex("noise.client_ephemeral_private", &CLIENT_EPHEMERAL);
    v.hex("noise.server_static_private", &SERVER_STATIC);
    v.hex("noise.server_static_public", &server_public);
    v.hex("noise.server_fingerprint", &Fingerprint::of(&server_public).0);
    v.hex("noise.server_ephemeral_private", &SERVER_EPHEMERAL);
    v.hex("noise.server_hello", &server_hello().encode_to_vec());
    v.hex("noise.client_hello", &client_hello().encode_to_vec());

    let mut client = fixed(&CLIENT_STATIC, &CLIENT_EPHEMERAL, true);
    let mut server = fixed(&SERVER_STATIC, &SERVER_EPHEMERAL, false);
    let m1 = write(&mut client, &[]);
    read(&mut server, &m1);
    let m2 = write(&mut server, &server_hello().encode_to_vec());
    assert_eq!(read(&mut client, &m2), server_hello().encode_to_vec());
    let m3 = write(&mut client, &client_hello().encode_to_vec());
    assert_eq!(read(&mut server, &m3), client_hello().encode_to_vec());
    assert_eq!(server.get_remote_static(), Some(&client_public[..]));
    let hash = client.get_handshake_hash().to_vec();
    assert_eq!(server.get_handshake_hash(), &hash[..]);
    v.hex("noise.message_1", &m1);
    v.hex("noise.message_2", &m2);
    v.hex("noise.message_3", &m3);
    v.hex("noise.handshake_hash", &hash);

    // (b) the Ping frame, and the first transport message each way.
    let mut client = client.into_transport_mode().unwrap();
    let mut server = server.into_transport_mode().unwrap();
    let ping = ping().encode_to_vec();
    let mut buf = vec![0u8; 65535];
    let n = client.write_message(&ping, &mut buf).unwrap();
    let t1 = buf[..n].to_vec();
    let n = server.read_message(&t1, &mut buf).unwrap();
    assert_eq!(&buf[..n], &ping[..]);
    let pong = pong().encode_to_vec();
    let n = server.write_message(&pong, &mut buf).unwrap();
    let t2 = buf[..n].to_vec();
    v.hex("ping.frame", &ping);
    v.hex("ping.transport_message", &t1);
    v.hex("pong.frame", &pong);
    v.hex("pong.transport_message", &t2);
}

/// The crate's own handshake (random ephemeral keys) speaks the protocol of
/// the fixed transcript: against the fixed-key client and server above,
/// both of its sides complete, authenticate the right static keys and carry
/// the same hellos and frames.
#[test]
fn the_crates_handshake_interoperates_with_the_fixed_transcript() {
    let server_key = StaticKey::from_private(&SERVER_STATIC).unwrap();
    let client_key = StaticKey::from_private(&CLIENT_STATIC).unwrap();

    // tether_proto's server, fixed-key client.
    let mut client = fixed(&CLIENT_STATIC, &CLIENT_EPHEMERAL, true);
    let m1 = write(&mut client, &[]);
    let (expect, m2) = ServerHandshake::handle(&server_key, &m1, &server_hello()).unwrap();
    assert_eq!(read(&mut client, &m2), server_hello().encode_to_vec());
    assert_eq!(client.get_remote_static(), Some(&server_key.public()[..]));
    let m3 = write(&mut client, &client_hello().encode_to_vec());
    let mut done = expect.handle(&m3).unwrap();
    assert_eq!(done.client_key, client_key.public());
    assert_eq!(done.hello, client_hello());
    let mut client = client.into_transport_mode().unwrap();
    let mut buf = vec![0u8; 1024];
    let n = client.write_message(&ping().encode_to_vec(), &mut buf).unwrap();
    assert_eq!(done.transport.decrypt(&buf[..n]).unwrap(), ping().encode_to_vec());

    // tether_proto's client, pinning the fixed server.
    let (expect, m1) = ClientHandshake::start(&client_key, Some(Fingerprint::of(&server_key.public()))).unwrap();
    let mut server = fixed(&SERVER_STATIC, &SERVER_EPHEMERAL, false);
    read(&mut server, &m1);
    let m2 = write(&mut server, &server_hello().encode_to_vec());
    let verified = expect.handle(&m2).unwrap();
    assert_eq!(verified.hello, server_hello());
    let (mut transport, m3) = verified.finish(&client_hello()).unwrap();
    assert_eq!(read(&mut server, &m3), client_hello().encode_to_vec());
    assert_eq!(server.get_remote_static(), Some(&client_key.public()[..]));
    let mut server = server.into_transport_mode().unwrap();
    let t1 = transport.encrypt(&ping().encode_to_vec()).unwrap();
    let n = server.read_message(&t1, &mut buf).unwrap();
    assert_eq!(&buf[..n], &ping().encode_to_vec()[..]);
}

// ----------------------------------------------------------- (c) sealed box

fn sealed_box(v: &mut Vectors) {
    let recipient_secret: [u8; 32] = counting(0x20);
    let ephemeral: [u8; 32] = counting(0x40);
    let nonce: [u8; 12] = counting(0x60);
    let plaintext = b"tether history chunk 0";
    let aad = b"tether vectors";
    let recipient = seal::public_key(&recipient_secret);
    let sealed = seal::seal(&recipient, plaintext, aad, ephemeral, nonce);
    assert_eq!(seal::open(&recipient_secret, &sealed, aad).unwrap(), plaintext);
    v.hex("seal.recipient_private", &recipient_secret);
    v.hex("seal.recipient_public", &recipient);
    v.hex("seal.ephemeral_private", &ephemeral);
    v.hex("seal.ephemeral_public", &seal::public_key(&ephemeral));
    v.hex("seal.nonce", &nonce);
    v.text("seal.plaintext", std::str::from_utf8(plaintext).unwrap());
    v.text("seal.aad", std::str::from_utf8(aad).unwrap());
    v.hex("seal.sealed", &sealed);

    let key: [u8; 32] = counting(0x80);
    let nonce: [u8; 12] = counting(0xa0);
    let boxed = seal::encrypt_with_key(&key, plaintext, aad, nonce);
    assert_eq!(seal::decrypt_with_key(&key, &boxed, aad).unwrap(), plaintext);
    v.hex("symmetric.key", &key);
    v.hex("symmetric.nonce", &nonce);
    v.hex("symmetric.encrypted", &boxed);
}

// --------------------------------------------------------- (d) pairing code

const NEW_CODES: [[u8; 5]; 3] = [[0x00; 5], [0x12, 0x34, 0x56, 0x78, 0x9a], [0xff; 5]];
const NORMALIZE: [&str; 3] = ["abcd efgh", "  xY2z-9k m3 ", "WXYZ\u{2013}2345"];

fn pairing_code(v: &mut Vectors) {
    for (i, random) in NEW_CODES.iter().enumerate() {
        v.hex(&format!("pairing.new_code_{}.random", i + 1), random);
        v.text(&format!("pairing.new_code_{}.code", i + 1), &pairing::new_code(*random));
    }
    for (i, input) in NORMALIZE.iter().enumerate() {
        v.text(&format!("pairing.normalize_{}.input", i + 1), input);
        v.text(&format!("pairing.normalize_{}.code", i + 1), &pairing::normalize_code(input).unwrap());
    }
}

// ---------------------------------------------------- (e) signed device list

fn signed_device_list(v: &mut Vectors) {
    let seed: [u8; 32] = counting(0xc0);
    let account = AccountKey::from_seed(&seed);
    let list = f::DeviceList {
        handle: "alice".into(),
        version: 2,
        devices: vec![
            f::DeviceEntry {
                device_id: 0,
                noise_key: vec![0x01; 32],
                identity_key: vec![0x02; 32],
                signing_key: vec![0x03; 32],
                platform: "cli/linux".into(),
                name: "laptop".into(),
                linked_at_ms: HELLO_TIME_MS,
                self_signature: vec![],
            },
            f::DeviceEntry {
                device_id: 1,
                noise_key: vec![0x11; 32],
                identity_key: vec![0x12; 32],
                signing_key: vec![0x13; 32],
                platform: "chrome/linux".into(),
                name: "Chrome on Linux".into(),
                linked_at_ms: HELLO_TIME_MS + 60_000,
                self_signature: vec![],
            },
        ],
        issued_at_ms: HELLO_TIME_MS + 60_000,
    };
    let signed = account.sign(&list);
    assert_eq!(device_list::verify(&account.public(), &signed).unwrap(), list);
    v.hex("device_list.account_seed", &seed);
    v.hex("device_list.account_public", &account.public());
    v.hex("device_list.body", &signed.body);
    v.hex("device_list.signature", &signed.signature);
    v.hex("device_list.signed", &signed.encode_to_vec());
}

// ----------------------------------------------------- (f) SPAKE2 pairing

const PAKE_CODE: &str = "ABCD-EFGH";
const PAKE_URI: &str = "tether://link#example";

fn pake(v: &mut Vectors) {
    use tether_proto::pairing::{Pake, Side};
    let (companion_random, primary_random) = ([0x21u8; 64], [0x42u8; 64]);
    v.text("pake.code", PAKE_CODE);
    v.hex("pake.slot", &pairing::slot(PAKE_CODE).unwrap());
    v.hex("pake.companion_random", &companion_random);
    v.hex("pake.primary_random", &primary_random);
    let (companion, a) = Pake::start(Side::Companion, PAKE_CODE, companion_random).unwrap();
    let (primary, b) = Pake::start(Side::Primary, PAKE_CODE, primary_random).unwrap();
    v.hex("pake.message_a", &a);
    v.hex("pake.message_b", &b);
    let (kc, kp) = (companion.finish(&b).unwrap(), primary.finish(&a).unwrap());
    assert_eq!(kc, kp, "both sides derive the same keys");
    v.hex("pake.primary_confirmation", &kp.primary_confirmation());
    let nonce = [0x07u8; 12];
    v.text("pake.offer_plaintext", PAKE_URI);
    v.hex("pake.offer_nonce", &nonce);
    v.hex("pake.sealed_offer", &kc.seal_offer(PAKE_URI, nonce));
    v.text("pake.confirmation_digits", &kc.sas());
}

// ------------------------------------------------------ (g) safety number

fn safety_number(v: &mut Vectors) {
    use tether_proto::safety::{SafetyNumber, fingerprint};
    let (alice, bob) = ([0x01u8; 32], [0x02u8; 32]);
    v.hex("safety.alice_account_key", &alice);
    v.hex("safety.bob_account_key", &bob);
    v.hex("safety.alice_fingerprint", &fingerprint("alice", &alice));
    v.hex("safety.bob_fingerprint", &fingerprint("bob", &bob));
    let n = SafetyNumber::new("alice", &alice, "bob", &bob);
    v.text("safety.number", &n.display());
    v.text("safety.alice_qr_payload", &n.qr_payload());
}

// ------------------------------------------------------------ (h) media

const MEDIA_ONE: &str = "tether media vector";

/// `len` bytes of the pattern `i mod 251`.
fn media_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn media_file(v: &mut Vectors) {
    let key: [u8; 32] = counting(0xd0);
    v.hex("media.key", &key);
    v.text("media.chunk_size", &media::CHUNK_SIZE.to_string());

    let (ct, info) = media::encrypt_all(&key, MEDIA_ONE.as_bytes());
    assert_eq!(media::decrypt_all(&key, &ct).unwrap(), MEDIA_ONE.as_bytes());
    v.text("media.one.plaintext", MEDIA_ONE);
    v.hex("media.one.nonce_0", &media::nonce(0));
    v.hex("media.one.aad_0", &media::aad(0, true));
    v.hex("media.one.ciphertext", &ct);
    v.hex("media.one.digest", &info.digest);

    let plain = media_pattern(media::CHUNK_SIZE + 100);
    let (ct, info) = media::encrypt_all(&key, &plain);
    assert_eq!(media::decrypt_all(&key, &ct).unwrap(), plain);
    v.text("media.two.plaintext_len", &plain.len().to_string());
    v.hex("media.two.aad_0", &media::aad(0, false));
    v.hex("media.two.nonce_1", &media::nonce(1));
    v.hex("media.two.aad_1", &media::aad(1, true));
    v.text("media.two.ciphertext_len", &ct.len().to_string());
    v.hex("media.two.ciphertext_first_32", &ct[..32]);
    v.hex("media.two.ciphertext_last_32", &ct[ct.len() - 32..]);
    v.hex("media.two.digest", &info.digest);
}

// ------------------------------------------------------------------ checks

fn compute() -> Vectors {
    let mut v = Vectors::default();
    noise(&mut v);
    sealed_box(&mut v);
    pairing_code(&mut v);
    signed_device_list(&mut v);
    pake(&mut v);
    safety_number(&mut v);
    media_file(&mut v);
    v
}

/// `name = value` lines of the appendix's ```text blocks.
fn parse(doc: &str) -> BTreeMap<String, String> {
    let start = doc.find(APPENDIX).unwrap_or_else(|| panic!("docs/protocol.md has no \"{APPENDIX}\""));
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let (mut in_block, mut last): (bool, Option<String>) = (false, None);
    for line in doc[start..].lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_block = t == "```text";
            last = None;
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some((name, value)) = t.split_once(" = ") {
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            assert!(out.insert(name.clone(), value).is_none(), "vector `{name}` appears twice in docs/protocol.md");
            last = Some(name);
        } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let name = last.as_ref().unwrap_or_else(|| panic!("a hex line with no vector name: {t}"));
            out.get_mut(name).expect("named").push_str(t);
        } else {
            last = None;
        }
    }
    out
}

#[test]
fn the_spec_vectors_match_the_code() {
    let computed = compute();
    if std::env::var_os("TETHER_PRINT_VECTORS").is_some() {
        for (name, value) in &computed.0 {
            println!("{name} = {value}");
        }
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/protocol.md");
    let mut written = parse(&doc);
    let mut wrong = Vec::new();
    for (name, value) in &computed.0 {
        match written.remove(name) {
            Some(w) if w == *value => {}
            Some(w) => wrong.push(format!("vector `{name}` differs:\n  spec: {w}\n  code: {value}")),
            None => wrong.push(format!("vector `{name}` is missing from the spec (code: {value})")),
        }
    }
    for name in written.keys() {
        wrong.push(format!("vector `{name}` is in the spec but no code computes it"));
    }
    assert!(wrong.is_empty(), "docs/protocol.md, \"{APPENDIX}\":\n{}", wrong.join("\n"));
}

#[test]
fn the_vector_parser_reads_continued_hex_and_strings() {
    let doc = format!("{APPENDIX}\n\n```text\na.b = 0102\n0304\nc = \"x y\"\n```\n\n```rust\nd = 05\n```\n");
    let v = parse(&doc);
    assert_eq!(v.get("a.b").map(String::as_str), Some("01020304"));
    assert_eq!(v.get("c").map(String::as_str), Some("\"x y\""));
    assert_eq!(v.get("d"), None);
}
