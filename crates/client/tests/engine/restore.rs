//! Restoring an account from its recovery phrase (issue 10): the round
//! trip against the honest server, the refusals, and what a malicious
//! server can (not) do with a restore.

use crate::adversary::{Operator, Peer, device};
use crate::harness::*;
use crate::linking::link_companion;
use tether_client::{Error, Event, PhraseError, RESTORED_ELSEWHERE, Role};
use tether_proto::ErrorCode;
use tether_proto::device_list::{AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, Request, ResponseBody, ServerBody};

/// A fresh device restoring `handle` from `phrase`, connected and settled.
async fn restore(server: &TestServer, handle: &str, phrase: &str, others: &mut [&mut Device]) -> Device {
    let mut d = Device::new(server, "cli/linux", "new laptop");
    let now = d.now();
    d.engine.restore(handle, &server.url(), phrase, now).unwrap();
    d.connect().await;
    let mut all: Vec<&mut Device> = others.iter_mut().map(|d| &mut **d).collect();
    all.push(&mut d);
    settle(&mut all).await;
    d
}

/// The version of a signed list (encoded `SignedDeviceList`).
fn version(signed: &[u8]) -> u64 {
    let s: f::SignedDeviceList = prost::Message::decode(signed).unwrap();
    let l: f::DeviceList = prost::Message::decode(s.body.as_slice()).unwrap();
    l.version
}

fn unlinked_reason(d: &Device) -> Option<String> {
    d.events.iter().find_map(|e| match e {
        Event::Unlinked { reason } => Some(reason.clone()),
        _ => None,
    })
}

fn warned(d: &Device, handle: &str) -> bool {
    d.events.iter().any(|e| matches!(e, Event::SafetyWarning { handle: h, .. } if h == handle))
}

/// Alice (with a companion) and bob talk; alice's computer loses its data;
/// she restores from the phrase on a new one. Bob sees no key change, new
/// sessions start with the new primary, messages flow both ways, and
/// alice's old primary and companion end logged out with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_round_trip_keeps_the_account_key_and_logs_the_old_devices_out() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut companion = link_companion(&server, &mut alice, false).await;
    let now = bob.now();
    bob.engine.send_text("alice", "before", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    assert_eq!(texts(&alice, "bob"), vec![(false, "before".to_string())]);
    let old_companion = alice.engine.own_devices().into_iter().max().unwrap();
    let phrase = alice.engine.recovery_phrase().unwrap();
    assert_eq!(phrase.split(' ').count(), 24);
    assert!(matches!(companion.engine.recovery_phrase(), Err(Error::NotPrimary)), "only the primary has the phrase");
    // Bob compared safety numbers with alice: that survives the restore.
    bob.engine.mark_verified("alice").unwrap();
    let number = bob.engine.safety_number("alice").unwrap();
    let bob_saw = bob.engine.contact("alice").cloned().unwrap();
    assert!(bob_saw.verified);
    let old_version = version(&bob_saw.list);
    bob.take_events();

    let mut new = restore(&server, "alice", &phrase, &mut [&mut alice, &mut bob, &mut companion]).await;
    assert!(
        new.events.iter().any(|e| matches!(e, Event::Registered { handle, .. } if handle == "alice")),
        "{:?}",
        new.events
    );
    assert!(matches!(new.engine.role(), Role::Primary { handle, .. } if handle == "alice"));
    assert_eq!(new.engine.recovery_phrase().unwrap(), phrase, "the same account key, so the same phrase");
    assert_eq!(new.engine.own_devices().into_iter().collect::<Vec<_>>(), vec![PRIMARY_DEVICE]);

    // The old primary believed it (the list is signed by its own key) and
    // so did the companion: both are logged out, saying why.
    for old in [&alice, &companion] {
        assert_eq!(unlinked_reason(old).as_deref(), Some(RESTORED_ELSEWHERE), "{:?}", old.events);
        assert!(matches!(old.engine.role(), Role::Unlinked { reason: Some(r) } if r == RESTORED_ELSEWHERE));
    }

    // Contacts are not in the phrase: the restored primary adds bob again.
    new.add_contact("bob", "Bob").await;
    say(&mut bob, &mut new, "alice", "after the restore").await;
    assert_eq!(texts(&new, "bob"), vec![(false, "after the restore".to_string())]);
    say(&mut new, &mut bob, "bob", "back again").await;
    assert_eq!(texts(&bob, "alice").last(), Some(&(false, "back again".to_string())));

    // Bob took the new list without a key change: same key, no warning,
    // no safety-number reset, a higher version.
    let c = bob.engine.contact("alice").unwrap();
    assert_eq!(c.account_key, bob_saw.account_key);
    assert_eq!((c.warning.as_deref(), c.offered_key.is_empty(), c.verified), (None, true, true), "still verified");
    assert_eq!(version(&c.list), old_version + 1);
    assert!(!warned(&bob, "alice"), "{:?}", bob.events);
    assert_eq!(bob.engine.safety_number("alice").unwrap(), number, "the same safety number");

    // The restored primary links a new companion under an id never used.
    let _laptop = link_companion(&server, &mut new, false).await;
    let ids: Vec<u32> = new.engine.own_devices().into_iter().collect();
    assert_eq!(ids, vec![PRIMARY_DEVICE, old_companion + 1]);
}

/// Alice and bob (no companion: the restored list has the same device ids)
/// talk both ways, so bob holds sessions with the old primary's keys;
/// alice restores on a new device, which adds bob again. Returns the
/// restored primary and bob, and the version of alice's list bob had.
async fn restored_without_companion(server: &TestServer) -> (Device, Device, u64) {
    let (mut alice, mut bob) = alice_and_bob(server, "Bob", "Alice").await;
    let now = bob.now();
    bob.engine.send_text("alice", "hi", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let now = alice.now();
    alice.engine.send_text("bob", "hello", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(texts(&bob, "alice"), vec![(true, "hi".to_string()), (false, "hello".to_string())]);
    let old_version = version(&bob.engine.contact("alice").unwrap().list);
    let phrase = alice.engine.recovery_phrase().unwrap();
    bob.take_events();
    let mut new = restore(server, "alice", &phrase, &mut [&mut alice, &mut bob]).await;
    assert_eq!(unlinked_reason(&alice).as_deref(), Some(RESTORED_ELSEWHERE));
    new.add_contact("bob", "Bob").await;
    settle(&mut [&mut new, &mut bob]).await;
    assert_eq!(new.engine.own_devices().into_iter().collect::<Vec<_>>(), vec![PRIMARY_DEVICE], "the same device id");
    (new, bob, old_version)
}

/// Bob's view of alice after the restore: the newer list under the same
/// key, no warning.
/// `from` writes `text` in `chat`; then both devices settle.
async fn say(from: &mut Device, other: &mut Device, chat: &str, text: &str) {
    let now = from.now();
    from.engine.send_text(chat, text, now).unwrap();
    from.flush().await;
    settle(&mut [from, other]).await;
}

fn took_the_restored_list(bob: &Device, old_version: u64) {
    let c = bob.engine.contact("alice").unwrap();
    assert!(version(&c.list) > old_version, "bob fetched the restored list");
    assert_eq!(c.warning, None);
    assert!(!warned(bob, "alice"), "no key-change warning: {:?}", bob.events);
}

/// The restored primary (device 0 again, under new keys) writes first:
/// bob's session and listed identity key are the old primary's, so the
/// pre-key message fails once; bob fetches alice's list again and reads
/// it with the new key. Replies then go both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restore_the_restored_primary_can_write_first() {
    let server = TestServer::start().await;
    let (mut new, mut bob, old_version) = restored_without_companion(&server).await;
    say(&mut new, &mut bob, "bob", "I am back").await;
    assert_eq!(texts(&bob, "alice").last(), Some(&(false, "I am back".to_string())), "{:?}", texts(&bob, "alice"));
    assert_eq!(texts(&bob, "alice").len(), 3, "nothing undecryptable: {:?}", texts(&bob, "alice"));
    took_the_restored_list(&bob, old_version);

    say(&mut bob, &mut new, "alice", "welcome back").await;
    say(&mut new, &mut bob, "bob", "thanks").await;
    assert_eq!(
        texts(&new, "bob"),
        vec![(true, "I am back".to_string()), (false, "welcome back".to_string()), (true, "thanks".to_string())]
    );
    assert_eq!(texts(&bob, "alice").last(), Some(&(false, "thanks".to_string())));
    assert!(texts(&bob, "alice").iter().all(|(_, t)| !t.starts_with("undecryptable")), "{:?}", texts(&bob, "alice"));
}

/// Bob writes first after the restore: his copy states the version of
/// alice's list he encrypted for, older than the restored one, so the
/// server refuses it as `device_list_changed`; bob takes the new list, starts
/// a session with the new keys and sends again. Replies then go both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restore_a_contact_can_write_first() {
    let server = TestServer::start().await;
    let (mut new, mut bob, old_version) = restored_without_companion(&server).await;
    say(&mut bob, &mut new, "alice", "are you there?").await;
    assert_eq!(texts(&new, "bob"), vec![(false, "are you there?".to_string())]);
    took_the_restored_list(&bob, old_version);

    say(&mut new, &mut bob, "bob", "yes, on a new phone").await;
    say(&mut bob, &mut new, "alice", "good").await;
    assert_eq!(
        texts(&new, "bob"),
        vec![
            (false, "are you there?".to_string()),
            (true, "yes, on a new phone".to_string()),
            (false, "good".to_string())
        ]
    );
    assert_eq!(
        texts(&bob, "alice")[2..],
        [(true, "are you there?".to_string()), (false, "yes, on a new phone".to_string()), (true, "good".to_string())]
    );
    assert!(!warned(&bob, "alice"), "{:?}", bob.events);
}

/// Another account's phrase: the server refuses the lookup, nothing of
/// alice's changes, and the error says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_phrase_is_refused() {
    let server = TestServer::start().await;
    let mut alice = primary(&server, "alice").await;
    let carol = primary(&server, "carol").await;
    let carols = carol.engine.recovery_phrase().unwrap();

    let mut d = restore(&server, "alice", &carols, &mut [&mut alice]).await;
    let err = d.events.iter().find_map(|e| match e {
        Event::Error { code, message } => Some((*code, message.clone())),
        _ => None,
    });
    assert_eq!(
        err,
        Some((Some(ErrorCode::AccountKeyMismatch), "this phrase is not the recovery phrase of @alice".to_string()))
    );
    assert!(matches!(d.engine.role(), Role::Unlinked { .. }));
    assert!(matches!(alice.engine.role(), Role::Primary { .. }) && unlinked_reason(&alice).is_none());
    // Carol's phrase restores carol, not alice.
    let now = d.now();
    assert!(d.engine.restore("alice", &server.url(), &carols, now).is_ok());
}

/// Malformed phrases are refused before anything is sent, each with its
/// typed error; the phrase needs an unregistered device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_phrases_give_typed_errors() {
    let server = TestServer::start().await;
    let alice = primary(&server, "alice").await;
    let phrase = alice.engine.recovery_phrase().unwrap();
    let words: Vec<&str> = phrase.split(' ').collect();
    let mut d = Device::new(&server, "cli/linux", "new laptop");
    let now = d.now();
    let url = server.url();
    let mut attempt = |p: &str| d.engine.restore("alice", &url, p, now);
    assert!(matches!(attempt(&words[..12].join(" ")), Err(Error::Phrase(PhraseError::WrongLength { words: 12 }))));
    let mut typo = words.clone();
    typo[6] = "notaword";
    assert!(matches!(attempt(&typo.join(" ")), Err(Error::Phrase(PhraseError::UnknownWord { position: 7 }))));
    // The word list's 2048 words carry 11 bits each; the last word's low 8
    // bits are a checksum, so some swap of words breaks it.
    let broken = (1..24).map(|i| {
        let mut w = words.clone();
        w.swap(0, i);
        w.join(" ")
    });
    let checksum_failures =
        broken.filter(|p| matches!(attempt(p), Err(Error::Phrase(PhraseError::BadChecksum)))).count();
    assert!(checksum_failures > 0);
    let err = attempt(&typo.join(" ")).unwrap_err().to_string();
    assert_eq!(err, "word 7 is not a recovery-phrase word: check its spelling");
    assert!(alice.engine.recovery_phrase().is_ok());
    assert!(matches!(Device::new(&server, "cli/linux", "x").engine.recovery_phrase(), Err(Error::NotRegistered)));
    let mut registered = alice;
    let now = registered.now();
    assert!(matches!(registered.engine.restore("alice", &url, &phrase, now), Err(Error::AlreadyRegistered(_))));
}

/// A list of alice's forged by `key`: one device, signed by `key`.
fn forged_reply(key: &AccountKey, version: u64, like: &f::DeviceListReply) -> f::DeviceListReply {
    let mut list: f::DeviceList = prost::Message::decode(like.list.as_ref().unwrap().body.as_slice()).unwrap();
    list.version = version;
    list.devices.retain(|d| d.device_id == PRIMARY_DEVICE);
    f::DeviceListReply {
        handle: like.handle.clone(),
        account_key: key.public().to_vec(),
        list: Some(key.sign(&list)),
        removed: vec![],
    }
}

/// The server cannot restore an account without its phrase. Mallory (the
/// operator) makes a guest's lookup look as if its own key were alice's:
/// the honest store still refuses a list that alice's key did not sign.
/// Then the server serves bob a list signed by mallory's key as alice's:
/// bob refuses it with the key-change warning and encrypts nothing to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_cannot_restore_without_the_phrase() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let real = alice.engine.recovery_phrase().unwrap();
    let mallory_seed = [7u8; 32];
    let mallory = AccountKey::from_seed(&mallory_seed);
    let mallory_phrase = tether_client::recovery::phrase(&mallory_seed);
    assert_ne!(mallory_phrase, real);

    // The lookup names mallory's key; the server lets it through as if it
    // were alice's, and answers with alice's list re-signed by mallory.
    let alice_key = bob.engine.contact("alice").unwrap().account_key.clone();
    let key_for_rule = alice_key.clone();
    op.on_request(move |_, mut frame| {
        if let Some(Request::RestoreLookup(l)) = &mut frame.request {
            l.account_key = key_for_rule.clone();
        }
        Some(frame)
    });
    let forger = AccountKey::from_seed(&mallory_seed);
    op.on_send(move |to, mut frame| {
        if matches!(to, Peer::Guest { .. })
            && let Some(ServerBody::Response(r)) = &mut frame.body
            && let Some(ResponseBody::DeviceList(l)) = &mut r.body
        {
            let v = version_of(l) + 5;
            *l = forged_reply(&forger, v, l);
        }
        Some(frame)
    });
    let d = restore(&server, "alice", &mallory_phrase, &mut [&mut alice, &mut bob]).await;
    let refused = d.events.iter().find_map(|e| match e {
        Event::Error { code, .. } => *code,
        _ => None,
    });
    assert_eq!(refused, Some(ErrorCode::BadSignature), "{:?}", d.events);
    assert!(matches!(d.engine.role(), Role::Unlinked { .. }));
    assert!(
        matches!(alice.engine.role(), Role::Primary { .. }) && unlinked_reason(&alice).is_none(),
        "alice keeps her account"
    );
    let tried = op.requests_where(|p, r| matches!(p, Peer::Guest { .. }) && matches!(r, Request::Restore(_)));
    assert_eq!(tried.len(), 1, "the client sent its restore: the honest server's check refused it");

    // A server that accepted it would serve bob mallory's list as alice's.
    let like = op
        .sent
        .lock()
        .unwrap()
        .iter()
        .find_map(|(_, fr)| match &fr.body {
            Some(ServerBody::Response(f::Response { body: Some(ResponseBody::DeviceList(l)), .. }))
                if l.handle == "alice" =>
            {
                Some(l.clone())
            }
            _ => None,
        })
        .unwrap();
    let forged = forged_reply(&mallory, version_of(&like) + 10, &like);
    op.honest();
    op.on_send(move |to, mut frame| {
        if *to == device("bob", 0)
            && let Some(ServerBody::Response(r)) = &mut frame.body
        {
            if let Some(ResponseBody::DeviceList(l)) = &mut r.body
                && l.handle == "alice"
            {
                *l = forged.clone();
            }
            if let Some(e) = &mut r.error {
                e.device_lists.iter_mut().filter(|l| l.handle == "alice").for_each(|l| *l = forged.clone());
            }
        }
        Some(frame)
    });
    // Bob writes offline; on connecting he checks alice's keys first.
    bob.disconnect();
    let now = bob.now();
    bob.engine.send_text("alice", "to the real alice only", now).unwrap();
    op.requests.lock().unwrap().clear();
    bob.connect().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert!(warned(&bob, "alice"), "{:?}", bob.events);
    let c = bob.engine.contact("alice").unwrap();
    assert_eq!(c.account_key, alice_key, "the pinned key stays");
    assert_eq!(c.offered_key, mallory.public().to_vec(), "the warning is about mallory's key");
    assert!(c.warning.as_deref().is_some_and(|w| w.contains("account key changed")), "{:?}", c.warning);
    let sends = op.requests_where(|p, r| *p == device("bob", 0) && matches!(r, Request::Send(_)));
    assert!(sends.is_empty(), "nothing is encrypted to a list mallory signed: {sends:?}");
}

/// After a real restore, the server serves bob alice's older list (validly
/// signed, still naming the old primary and companion): bob keeps the
/// newer one and encrypts only to the restored primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_list_older_than_the_restore_is_refused() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut companion = link_companion(&server, &mut alice, false).await;
    let now = bob.now();
    bob.engine.send_text("alice", "before", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    let old = op
        .sent
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|(p, fr)| match &fr.body {
            Some(ServerBody::Response(r)) if *p == device("bob", 0) => match (&r.body, &r.error) {
                (Some(ResponseBody::DeviceList(l)), _) if l.handle == "alice" => Some(l.clone()),
                (_, Some(e)) => e.device_lists.iter().find(|l| l.handle == "alice").cloned(),
                _ => None,
            },
            _ => None,
        })
        .expect("bob got alice's list with the companion");
    assert_eq!(version_of(&old), version(&bob.engine.contact("alice").unwrap().list));

    let phrase = alice.engine.recovery_phrase().unwrap();
    let mut new = restore(&server, "alice", &phrase, &mut [&mut alice, &mut bob, &mut companion]).await;
    new.add_contact("bob", "Bob").await;
    say(&mut bob, &mut new, "alice", "learn the new list").await;
    let restored_version = version(&bob.engine.contact("alice").unwrap().list);
    assert_eq!(restored_version, version_of(&old) + 1);

    // From now on the server serves bob the old list whenever he asks.
    op.on_send(move |to, mut frame| {
        if *to == device("bob", 0)
            && let Some(ServerBody::Response(r)) = &mut frame.body
            && let Some(ResponseBody::DeviceList(l)) = &mut r.body
            && l.handle == "alice"
        {
            *l = old.clone();
        }
        Some(frame)
    });
    bob.disconnect();
    let now = bob.now();
    bob.engine.send_text("alice", "only to the new primary", now).unwrap();
    op.requests.lock().unwrap().clear();
    bob.connect().await;
    settle(&mut [&mut new, &mut bob]).await;
    assert_eq!(version(&bob.engine.contact("alice").unwrap().list), restored_version, "the older list was ignored");
    assert!(!warned(&bob, "alice"));
    let targets: Vec<u32> = op
        .requests_where(|p, r| *p == device("bob", 0) && matches!(r, Request::Send(_)))
        .into_iter()
        .flat_map(|(_, r)| match r {
            Request::Send(s) => {
                s.copies.into_iter().filter(|c| c.handle == "alice").map(|c| c.device_id).collect::<Vec<_>>()
            }
            _ => vec![],
        })
        .collect();
    assert_eq!(targets, vec![PRIMARY_DEVICE], "only the restored primary");
    assert_eq!(texts(&new, "bob").last(), Some(&(false, "only to the new primary".to_string())));
}

fn version_of(reply: &f::DeviceListReply) -> u64 {
    let l: f::DeviceList = prost::Message::decode(reply.list.as_ref().unwrap().body.as_slice()).unwrap();
    l.version
}

/// The server claims alice's account was restored elsewhere, without the
/// proof (no list; her own current list; a newer list signed by another
/// key): her primary keeps its key, contacts and chats, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_restored_close_without_proof_never_wipes_a_primary() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let now = alice.now();
    alice.engine.send_text("bob", "before", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let role = alice.engine.role().clone();
    let c = bob.engine.contact("alice").unwrap();
    let current = f::DeviceListReply {
        handle: "alice".into(),
        account_key: c.account_key.clone(),
        list: Some(prost::Message::decode(c.list.as_slice()).unwrap()),
        removed: vec![],
    };
    let mallory = AccountKey::from_seed(&[7; 32]);
    let forged = forged_reply(&mallory, version_of(&current) + 1, &current);
    let mut forged_as_alices = forged.clone();
    forged_as_alices.account_key = current.account_key.clone();

    for lists in [vec![], vec![current], vec![forged], vec![forged_as_alices]] {
        if !alice.connected() {
            alice.connect().await;
            settle(&mut [&mut alice]).await;
        }
        alice.take_events();
        let closing = f::ErrorInfo { code: "account_restored".into(), message: "restored".into(), device_lists: lists, ..Default::default() };
        assert!(server.server.inject("alice", 0, f::EventBody::Closing(closing)));
        settle(&mut [&mut alice]).await;
        assert_eq!(alice.engine.role(), &role, "the account key is kept");
        assert!(unlinked_reason(&alice).is_none(), "{:?}", alice.events);
        assert!(
            alice.events.iter().any(|e| matches!(e, Event::Error { code: Some(ErrorCode::AccountRestored), .. })),
            "the user is told: {:?}",
            alice.events
        );
    }
    assert_eq!(texts(&alice, "bob"), [(true, "before".to_string())], "chats are kept");
    assert!(alice.engine.contact("bob").is_some(), "contacts are kept");
}

/// The server answers a genuine restore's lookup with a list the account
/// key never signed (or under another key): the client signs nothing over
/// it and sends no `Restore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_never_signs_over_a_list_the_account_key_did_not_sign() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let mut alice = primary(&server, "alice").await;
    let phrase = alice.engine.recovery_phrase().unwrap();
    for swap_key in [false, true] {
        op.on_send(move |to, mut frame| {
            if matches!(to, Peer::Guest { .. })
                && let Some(ServerBody::Response(r)) = &mut frame.body
                && let Some(ResponseBody::DeviceList(l)) = &mut r.body
            {
                let key = l.account_key.clone();
                *l = forged_reply(&AccountKey::from_seed(&[7; 32]), version_of(l) + 100, l);
                if !swap_key {
                    l.account_key = key;
                }
            }
            Some(frame)
        });
        let d = restore(&server, "alice", &phrase, &mut [&mut alice]).await;
        let errors: Vec<&str> = d
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Error { message, .. } => Some(message.as_str()),
                _ => None,
            })
            .collect();
        let expected = match swap_key {
            true => "this phrase is not the recovery phrase of @alice",
            false => "the server's device list of @alice is not signed by this phrase's key: nothing was restored",
        };
        assert_eq!(errors, vec![expected], "{:?}", d.events);
        assert!(matches!(d.engine.role(), Role::Unlinked { .. }));
    }
    let sent = op.requests_where(|_, r| matches!(r, Request::Restore(_)));
    assert!(sent.is_empty(), "no restore was signed: {sent:?}");
    assert!(matches!(alice.engine.role(), Role::Primary { .. }) && unlinked_reason(&alice).is_none());
}
