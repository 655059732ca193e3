//! The engine against a scripted relay: the server side of the real Noise
//! handshake and frames, driven by the test in virtual time, with no socket.
//! It answers exactly what a test wants, so the paths an honest server never
//! takes (refused approvals, the same list twice, answers that match no
//! request) are reached deterministically.

use prost::Message;
use tether_client::store::MemoryStore;
use tether_client::{ClientInfo, Engine, Event, KEEPALIVE_MS, Random};
use tether_proto::ErrorCode;
use tether_proto::device_list::{AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, Request, ResponseBody};
use tether_proto::link::{DeviceIdentity, LinkPayload, make_approval};
use tether_proto::noise::{ServerHandshake, StaticKey, Transport};

const T0: u64 = 1_793_491_200_000;

/// A seeded generator: the same run every time.
struct Seeded(u64);
impl Random for Seeded {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

struct Relay {
    key: StaticKey,
    transport: Option<Transport>,
}

impl Relay {
    fn new() -> Self {
        Self { key: StaticKey::generate(), transport: None }
    }

    /// Runs the real handshake with the engine; returns the requests it
    /// sent once connected.
    fn connect(&mut self, e: &mut Engine, now: u64) -> Vec<(u64, Request)> {
        e.handle_connected(now);
        let m1 = e.poll_transmit().expect("handshake message 1");
        let hello = f::ServerHello { server_version: "relay".into(), protocol: tether_proto::PROTOCOL_VERSION.into(), time_ms: now };
        let (expect, m2) = ServerHandshake::handle(&self.key, &m1, &hello).unwrap();
        e.handle_message(&m2, now);
        let m3 = e.poll_transmit().expect("handshake message 3");
        self.transport = Some(expect.handle(&m3).unwrap().transport);
        self.requests(e)
    }

    /// Decrypts every frame the engine wants to send.
    fn requests(&mut self, e: &mut Engine) -> Vec<(u64, Request)> {
        let t = self.transport.as_mut().expect("connected");
        let mut out = Vec::new();
        while let Some(m) = e.poll_transmit() {
            let frame = f::ClientFrame::decode(t.decrypt(&m).unwrap().as_slice()).unwrap();
            out.push((frame.id, frame.request.expect("a request")));
        }
        out
    }

    fn send(&mut self, e: &mut Engine, body: f::ServerBody, now: u64) -> Vec<(u64, Request)> {
        let bytes = f::ServerFrame { body: Some(body) }.encode_to_vec();
        let msg = self.transport.as_mut().unwrap().encrypt(&bytes).unwrap();
        e.handle_message(&msg, now);
        self.requests(e)
    }

    fn respond(&mut self, e: &mut Engine, id: u64, body: ResponseBody, now: u64) -> Vec<(u64, Request)> {
        self.send(e, f::ServerBody::Response(f::Response { id, error: None, body: Some(body) }), now)
    }

    fn fail(&mut self, e: &mut Engine, id: u64, error: f::ErrorInfo, now: u64) -> Vec<(u64, Request)> {
        self.send(e, f::ServerBody::Response(f::Response { id, error: Some(error), body: None }), now)
    }

    fn event(&mut self, e: &mut Engine, body: f::EventBody, now: u64) -> Vec<(u64, Request)> {
        self.send(e, f::ServerBody::Event(f::Event { body: Some(body) }), now)
    }
}

fn engine(platform: &str) -> Engine {
    let info = ClientInfo { client_version: "relay-test".into(), platform: platform.into(), name: "Test".into() };
    Engine::open(Box::new(MemoryStore::default()), Box::new(Seeded(7)), info).unwrap()
}

fn events(e: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

fn errors(events: &[Event]) -> Vec<String> {
    events.iter().filter_map(|e| if let Event::Error { message, .. } = e { Some(message.clone()) } else { None }).collect()
}

/// A companion showing its first code: (engine, relay, the payload on show).
fn companion_showing(refs: &[u64]) -> (Engine, Relay, LinkPayload) {
    let mut e = engine("chrome/linux");
    let mut relay = Relay::new();
    e.start_link("http://relay", false, T0).unwrap();
    let reqs = relay.connect(&mut e, T0);
    let (id, req) = &reqs[0];
    assert!(matches!(req, Request::RequestLinkRefs(_)), "{req:?}");
    let refs = refs.iter().enumerate().map(|(i, &exp)| f::LinkRef { link_ref: vec![i as u8; 16], not_before_ms: T0, expires_ms: exp }).collect();
    relay.respond(&mut e, *id, ResponseBody::LinkRefs(f::LinkRefs { refs }), T0);
    let uri = events(&mut e)
        .into_iter()
        .find_map(|ev| if let Event::LinkCode { uri, .. } = ev { Some(uri) } else { None })
        .expect("a code on show");
    (e, relay, LinkPayload::from_uri(&uri).unwrap())
}

#[test]
fn link_codes_rotate_then_run_out_in_virtual_time() {
    let (mut e, _relay, first) = companion_showing(&[T0 + 60_000, T0 + 80_000, T0 + 100_000]);
    assert_eq!(e.poll_timeout(), Some(T0 + 20_000), "the keepalive comes before the first code expires");
    e.handle_timeout(T0 + 60_000);
    let ev = events(&mut e);
    let second = ev.iter().find_map(|x| if let Event::LinkCode { uri, index, total, .. } = x { Some((uri.clone(), *index, *total)) } else { None });
    let (uri, index, total) = second.expect("the next code");
    assert_eq!((index, total), (1, 3));
    let second = LinkPayload::from_uri(&uri).unwrap();
    assert_ne!(second.link_ref, first.link_ref, "a new ref");
    assert_eq!(second.link_secret, first.link_secret, "one link secret per flow");
    // A long sleep: every remaining code expired at once.
    e.handle_timeout(T0 + 500_000);
    let ev = events(&mut e);
    assert!(ev.contains(&Event::LinkCodesExhausted), "{ev:?}");
    assert!(!ev.iter().any(|x| matches!(x, Event::LinkCode { .. })), "no expired code is shown");
    assert!(e.poll_close().is_some(), "the linking socket closes");
}

#[test]
fn keepalive_pings_after_twenty_idle_seconds() {
    let (mut e, mut relay, _) = companion_showing(&[T0 + 600_000]);
    assert_eq!(e.poll_timeout(), Some(T0 + KEEPALIVE_MS));
    e.handle_timeout(T0 + KEEPALIVE_MS - 1);
    assert!(relay.requests(&mut e).is_empty(), "not before the keepalive is due");
    e.handle_timeout(T0 + KEEPALIVE_MS);
    let reqs = relay.requests(&mut e);
    assert!(matches!(reqs.as_slice(), [(_, Request::Ping(_))]), "{reqs:?}");
    assert_eq!(e.poll_timeout(), Some(T0 + 2 * KEEPALIVE_MS), "the next keepalive is armed from the ping");
}

/// Every way an approval can be wrong is refused, and the companion asks
/// the server to forget the device it was made.
#[test]
fn each_bad_link_approval_is_refused_and_the_device_leaves() {
    let account = AccountKey::from_seed(&[9; 32]);
    let stranger = AccountKey::from_seed(&[3; 32]);
    type Tamper = fn(&mut f::LinkApproved, &mut DeviceIdentity, &mut [u8; 32], &mut f::DeviceList, &mut bool);
    let cases: Vec<(&str, Tamper)> = vec![
        ("does not prove the primary scanned this code", |_, _, secret, _, _| secret[0] ^= 1),
        ("names other keys", |_, id, _, _, _| id.noise_key[0] ^= 1),
        ("no device list", |a, _, _, _, _| a.list = None),
        ("not signed by the account", |_, _, _, _, by_stranger| *by_stranger = true),
        ("does not hold this device", |_, _, _, list, _| list.devices.retain(|d| d.device_id == PRIMARY_DEVICE)),
    ];
    for (why, tamper) in cases {
        let (mut e, mut relay, code) = companion_showing(&[T0 + 60_000]);
        let entry = |id: u32, p: &LinkPayload| f::DeviceEntry {
            device_id: id,
            noise_key: p.noise_key.to_vec(),
            identity_key: p.identity_key.to_vec(),
            signing_key: p.signing_key.to_vec(),
            platform: p.platform.clone(),
            name: p.name.clone(),
            linked_at_ms: T0,
            self_signature: vec![],
        };
        let primary = f::DeviceEntry { device_id: PRIMARY_DEVICE, noise_key: vec![1; 32], identity_key: vec![2; 32], signing_key: vec![3; 32], ..entry(0, &code) };
        let mut list = f::DeviceList { handle: "alice".into(), version: 2, devices: vec![primary, entry(1, &code)], issued_at_ms: T0 };
        let mut identity = DeviceIdentity {
            handle: "alice".into(),
            device_id: 1,
            noise_key: code.noise_key,
            identity_key: code.identity_key,
            signing_key: code.signing_key,
            linked_at_ms: T0,
        };
        let mut secret = code.link_secret;
        let mut by_stranger = false;
        let mut a = f::LinkApproved { handle: "alice".into(), device_id: 1, account_key: account.public().to_vec(), list: Some(f::SignedDeviceList::default()), approval: vec![] };
        tamper(&mut a, &mut identity, &mut secret, &mut list, &mut by_stranger);
        a.approval = make_approval(&account, &identity, &secret);
        if a.list.is_some() {
            a.list = Some(if by_stranger { stranger.sign(&list) } else { account.sign(&list) });
        }
        let reqs = relay.event(&mut e, f::EventBody::LinkApproved(a), T0 + 1000);
        let ev = events(&mut e);
        let errs = errors(&ev);
        assert!(errs.iter().any(|m| m.contains("refused") && m.contains(why)), "{why}: {errs:?}");
        assert!(!ev.iter().any(|x| matches!(x, Event::Linked { .. })), "{why}: must not link");
        assert!(e.handle().is_none(), "{why}: still unlinked");
        assert!(
            reqs.iter().any(|(_, r)| matches!(r, Request::RemoveDevice(rd) if rd.device_id == 1 && rd.new_list.is_none())),
            "{why}: the device asks the server to forget it: {reqs:?}"
        );
    }
}

/// A registered primary with one contact (bob) whose list (as served) is known.
fn primary_with_contact() -> (Engine, Relay, AccountKey, f::DeviceListReply) {
    let mut e = engine("cli/linux");
    let mut relay = Relay::new();
    e.register("alice", "http://relay", T0).unwrap();
    let reqs = relay.connect(&mut e, T0);
    let (id, Request::Register(r)) = &reqs[0] else { panic!("{reqs:?}") };
    let reqs = relay.respond(&mut e, *id, ResponseBody::Registered(f::Registered { handle: "alice".into(), device_id: 0 }), T0);
    assert_eq!(e.handle(), Some("alice"));
    assert_eq!(r.handle, "alice");
    let (id, _) = reqs.iter().find(|(_, r)| matches!(r, Request::UploadPrekeys(_))).expect("prekeys are uploaded");
    relay.respond(&mut e, *id, ResponseBody::PrekeyCount(f::PrekeyCount { one_time_keys: 50 }), T0);
    let bob = AccountKey::from_seed(&[5; 32]);
    e.add_contact("bob", "Bob", T0).unwrap();
    let reqs = relay.requests(&mut e);
    let (id, _) = reqs.iter().find(|(_, r)| matches!(r, Request::GetDeviceList(g) if g.handle == "bob")).expect("bob's list is asked for");
    let served = bob_list(&bob, 1, &[0]);
    relay.respond(&mut e, *id, ResponseBody::DeviceList(served.clone()), T0);
    events(&mut e);
    (e, relay, bob, served)
}

/// Bob's device `id` (its Olm account, the same in every test).
fn with_bob_device<R>(id: u32, f: impl FnOnce(&mut vodozemac::olm::Account) -> R) -> R {
    static DEVICES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<u32, vodozemac::olm::Account>>> = std::sync::OnceLock::new();
    let mut devices = DEVICES.get_or_init(Default::default).lock().unwrap();
    f(devices.entry(id).or_insert_with(vodozemac::olm::Account::new))
}

/// A one-time key of bob's device `id`, signed by it (or not).
fn bob_prekey(id: u32, signed: bool) -> f::OneTimeKey {
    with_bob_device(id, |olm| {
        olm.generate_one_time_keys(1);
        let key = olm.one_time_keys().values().next().unwrap().to_bytes().to_vec();
        olm.mark_keys_as_published();
        let signature = if signed { olm.sign(tether_proto::device_list::prekey_signed_bytes(&key)).to_bytes().to_vec() } else { vec![] };
        f::OneTimeKey { key_id: 1, key, signature }
    })
}

fn bob_list(key: &AccountKey, version: u64, devices: &[u32]) -> f::DeviceListReply {
    let devices = devices
        .iter()
        .map(|&id| {
            let k = StaticKey::generate();
            with_bob_device(id, |olm| {
                let mut e = f::DeviceEntry {
                    device_id: id,
                    noise_key: k.public().to_vec(),
                    identity_key: olm.curve25519_key().to_bytes().to_vec(),
                    signing_key: olm.ed25519_key().as_bytes().to_vec(),
                    platform: "cli/linux".into(),
                    name: "bob".into(),
                    linked_at_ms: T0,
                    self_signature: vec![],
                };
                e.self_signature = olm.sign(tether_proto::device_list::entry_signed_bytes("bob", &e)).to_bytes().to_vec();
                e
            })
        })
        .collect();
    let list = f::DeviceList { handle: "bob".into(), version, devices, issued_at_ms: T0 };
    f::DeviceListReply { handle: "bob".into(), account_key: key.public().to_vec(), list: Some(key.sign(&list)), removed: vec![] }
}

#[test]
fn a_response_that_matches_nothing_is_a_typed_error_and_a_mismatched_one_settles_the_request() {
    let (mut e, mut relay, _, _) = primary_with_contact();
    // An id nobody asked for.
    relay.respond(&mut e, 9_999, ResponseBody::Done(f::Done {}), T0);
    let errs = errors(&events(&mut e));
    assert!(errs.iter().any(|m| m.contains("request 9999") && m.contains("not asked")), "{errs:?}");
    // A device listing answered with the wrong kind of body: an error, and
    // nothing stays in flight.
    e.request_devices(T0).unwrap();
    let reqs = relay.requests(&mut e);
    let (id, _) = reqs.iter().find(|(_, r)| matches!(r, Request::ListDevices(_))).unwrap();
    assert!(e.busy());
    relay.respond(&mut e, *id, ResponseBody::Pong(f::Pong { time_ms: 0 }), T0);
    let errs = errors(&events(&mut e));
    assert!(errs.iter().any(|m| m.contains("device listing") && m.contains("something else")), "{errs:?}");
    assert!(!e.busy(), "the mismatched request is settled");
}

#[test]
fn the_same_device_list_served_twice_with_device_list_changed_is_refused() {
    let (mut e, mut relay, _, served) = primary_with_contact();
    e.send_text("bob", "hello", T0 + 1).unwrap();
    let reqs = relay.requests(&mut e);
    // No session with bob's device yet: a prekey claim comes first.
    let (id, Request::ClaimPrekey(c)) = reqs.iter().find(|(_, r)| matches!(r, Request::ClaimPrekey(_))).cloned().expect("a claim") else { unreachable!() };
    assert_eq!((c.handle.as_str(), c.device_id), ("bob", 0));
    // A one-time key of the device the claim named, signed by it.
    let reqs = relay.respond(&mut e, id, ResponseBody::Prekey(f::PrekeyBundle { key: Some(bob_prekey(0, true)), ..Default::default() }), T0 + 2);
    let (send_id, _) = reqs.iter().find(|(_, r)| matches!(r, Request::Send(_))).cloned().expect("the message is sent");
    // The server claims bob has a device 7 that no signed list holds: first
    // time, the engine refetches from what it was served (still v1 without 7).
    let changed = |lists: Vec<f::DeviceListReply>| f::ErrorInfo { code: ErrorCode::DeviceListChanged.as_str().into(), message: "devices changed".into(), device_lists: lists, ..Default::default() };
    let reqs = relay.fail(&mut e, send_id, changed(vec![served.clone()]), T0 + 3);
    let ev = events(&mut e);
    assert!(!ev.iter().any(|x| matches!(x, Event::SafetyWarning { .. })), "first time is not yet a warning: {ev:?}");
    // The same list again: refused, and nothing more goes to bob.
    let again = reqs.iter().find(|(_, r)| matches!(r, Request::Send(_))).map(|(id, _)| *id);
    let send_id = again.expect("the engine tried once more with the list it verified");
    let reqs = relay.fail(&mut e, send_id, changed(vec![served]), T0 + 4);
    let ev = events(&mut e);
    assert!(
        ev.iter().any(|x| matches!(x, Event::SafetyWarning { handle, warning } if handle == "bob" && warning.contains("signed list does not contain"))),
        "{ev:?}"
    );
    assert!(!reqs.iter().any(|(_, r)| matches!(r, Request::Send(_))), "held back: {reqs:?}");
    assert!(e.contact("bob").unwrap().warning.is_some());
    assert_eq!(e.outbox_len(), 1, "the message waits for the user, it is not lost");
}

#[test]
fn an_older_contact_list_is_refused_after_a_newer_one() {
    let (mut e, mut relay, bob, _) = primary_with_contact();
    let mut serve = |e: &mut Engine, version: u64, devices: &[u32]| {
        e.add_contact("bob", "", T0).unwrap(); // asks for bob's list again
        let reqs = relay.requests(e);
        let (id, _) = reqs.iter().find(|(_, r)| matches!(r, Request::GetDeviceList(_))).expect("a list request");
        relay.respond(e, *id, ResponseBody::DeviceList(bob_list(&bob, version, devices)), T0);
        e.contact("bob").unwrap().list.clone()
    };
    let v3 = serve(&mut e, 3, &[0]);
    // The server replays an older, validly signed list that still had device 4.
    let after = serve(&mut e, 2, &[0, 4]);
    assert_eq!(after, v3, "the rollback is ignored");
    assert!(e.contact("bob").unwrap().warning.is_none());
}

#[test]
fn a_send_the_server_refuses_leaves_the_outbox_and_shows_as_failed() {
    let (mut e, mut relay, _, _) = primary_with_contact();
    let id = e.send_text("bob", "hello", T0 + 1).unwrap();
    let reqs = relay.requests(&mut e);
    let (claim, _) = reqs.iter().find(|(_, r)| matches!(r, Request::ClaimPrekey(_))).cloned().expect("a claim");
    let reqs = relay.respond(&mut e, claim, ResponseBody::Prekey(f::PrekeyBundle { key: Some(bob_prekey(0, true)), ..Default::default() }), T0 + 2);
    let (send, _) = reqs.iter().find(|(_, r)| matches!(r, Request::Send(_))).cloned().expect("sent");
    events(&mut e);
    let refused = f::ErrorInfo { code: ErrorCode::BadRequest.as_str().into(), message: "no".into(), device_lists: vec![], ..Default::default() };
    relay.fail(&mut e, send, refused, T0 + 3);
    let ev = events(&mut e);
    assert!(ev.iter().any(|x| matches!(x, Event::Error { code: Some(ErrorCode::BadRequest), .. })), "the code is typed: {ev:?}");
    assert!(ev.iter().any(|x| matches!(x, Event::MessageStatus { id: m, status: tether_client::Status::Failed, .. } if *m == id)), "{ev:?}");
    assert!(!e.outbox().contains(&id));
    assert_eq!(e.messages("bob").last().unwrap().status, tether_client::Status::Failed);
    // A transient failure is different: the message stays and goes again.
    let id2 = e.send_text("bob", "again", T0 + 4).unwrap();
    let reqs = relay.requests(&mut e);
    let (send, _) = reqs.iter().find(|(_, r)| matches!(r, Request::Send(_))).cloned().expect("sent");
    let busy = f::ErrorInfo { code: ErrorCode::ServerBusy.as_str().into(), message: "busy".into(), device_lists: vec![], ..Default::default() };
    relay.fail(&mut e, send, busy, T0 + 5);
    assert!(e.outbox().contains(&id2));
    // Virtual time runs timer to timer (keepalives, then the retry).
    let mut reqs = Vec::new();
    for _ in 0..4 {
        let at = e.poll_timeout().expect("a timer is armed");
        e.handle_timeout(at);
        reqs.extend(relay.requests(&mut e));
    }
    assert!(reqs.iter().any(|(_, r)| matches!(r, Request::Send(s) if s.message_id == hex_bytes(&id2))), "{reqs:?}");
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

#[test]
fn a_message_held_for_a_contact_holds_nothing_else_and_leaves_the_engine_idle() {
    let (mut e, mut relay, _, _) = primary_with_contact();
    e.add_contact("zed", "", T0).unwrap();
    let reqs = relay.requests(&mut e);
    let (id, _) = reqs.iter().find(|(_, r)| matches!(r, Request::GetDeviceList(g) if g.handle == "zed")).unwrap();
    let unknown = f::ErrorInfo { code: ErrorCode::UnknownAccount.as_str().into(), message: "no account has that handle".into(), device_lists: vec![], ..Default::default() };
    relay.fail(&mut e, *id, unknown, T0);
    events(&mut e);
    e.send_text("zed", "anyone?", T0 + 1).unwrap();
    let ev = events(&mut e);
    assert!(ev.iter().any(|x| matches!(x, Event::SafetyWarning { handle, .. } if handle == "zed")), "held, and said so: {ev:?}");
    // A read-sync for this account's other devices is not held behind it.
    e.mark_read("zed", T0 + 2).unwrap();
    assert_eq!(e.outbox_len(), 1, "only the held message waits");
    assert!(!e.busy(), "a held message waits for the user, not the server");
}
