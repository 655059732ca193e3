use crate::common::*;
use tether_proto::ErrorCode;
use tether_proto::frames::*;
use tether_proto::noise::StaticKey;
use tether_server::DAY_MS;

fn list_of(body: ResponseBody) -> DeviceListReply {
    match body {
        ResponseBody::DeviceList(l) => l,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_approval_adds_companions_up_to_four_and_lists_are_served_as_signed() {
    let server = TestServer::start().await;
    let (mut alice, mut primary) = register(&server, "alice").await;
    let mut companions = Vec::new();
    for id in 1..=4 {
        companions.push(link(&server, &mut alice, &mut primary, id).await);
    }
    // A companion is a device now, on the same connection.
    companions[0].ping().await;
    match companions[2].ok(Request::ListDevices(ListDevices {})).await {
        ResponseBody::Devices(d) => {
            assert_eq!(d.devices.iter().map(|d| d.device_id).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
            assert_eq!(d.devices.iter().filter(|d| d.current).map(|d| d.device_id).collect::<Vec<_>>(), vec![3]);
            assert_eq!(d.devices[1].platform, "chrome/linux");
        }
        other => panic!("{other:?}"),
    }

    // The fifth is refused.
    let mut fifth = server.guest().await;
    let refs = match fifth.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
        ResponseBody::LinkRefs(r) => r.refs,
        other => panic!("{other:?}"),
    };
    let mut attempt = TestAccount {
        handle: alice.handle.clone(),
        key: tether_proto::device_list::AccountKey::from_seed(&alice.key.seed()),
        list: alice.list.clone(),
    };
    let list = attempt.with_device(entry(5, &fifth.key, "firefox/linux"));
    let e = primary
        .fails(
            Request::ApproveLink(ApproveLink {
                link_ref: refs[0].link_ref.clone(),
                device_id: 5,
                new_list: Some(list),
                approval: vec![],
            }),
            ErrorCode::TooManyDevices,
        )
        .await;
    assert!(e.message.contains("at most 4"), "{}", e.message);

    // Anyone's device list is served byte for byte as the primary signed it.
    let (_bob, mut bob) = register(&server, "bob").await;
    let served = list_of(bob.ok(Request::GetDeviceList(GetDeviceList { handle: "alice".into() })).await);
    assert_eq!(served.list, Some(alice.signed()));
    assert_eq!(served.account_key, alice.key.public().to_vec());
    assert!(served.removed.is_empty());
    let verified = tether_proto::device_list::verify(&served.account_key, served.list.as_ref().unwrap()).unwrap();
    assert_eq!(verified.devices.len(), 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_refs_rotate_expire_and_are_single_use() {
    let server = TestServer::start().await;
    let (mut alice, mut primary) = register(&server, "alice").await;
    let mut companion = server.guest().await;
    let refs = match companion.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
        ResponseBody::LinkRefs(r) => r.refs,
        other => panic!("{other:?}"),
    };
    assert_eq!(refs.len(), 6);
    assert_eq!(refs[0].expires_ms - refs[0].not_before_ms, 60_000, "the first ref shows 60 s");
    for w in refs.windows(2) {
        assert_eq!(w[1].not_before_ms, w[0].expires_ms);
        assert_eq!(w[1].expires_ms - w[1].not_before_ms, 20_000, "later refs 20 s each");
    }
    let approve = |r: &LinkRef, list: SignedDeviceList| {
        Request::ApproveLink(ApproveLink {
            link_ref: r.link_ref.clone(),
            device_id: 1,
            new_list: Some(list),
            approval: vec![1],
        })
    };
    primary
        .fails(approve(&LinkRef { link_ref: vec![9; 16], ..refs[0].clone() }, alice.signed()), ErrorCode::UnknownRef)
        .await;

    // The first ref has expired after 61 s; the second is still good.
    server.clock.advance(61_000);
    let list = alice.with_device(entry(1, &companion.key, "chrome/linux"));
    primary.fails(approve(&refs[0], list.clone()), ErrorCode::ExpiredRef).await;
    primary.ok(approve(&refs[1], list.clone())).await;
    assert!(matches!(companion.event().await, EventBody::LinkApproved(_)));
    // Used: the batch is gone.
    primary.fails(approve(&refs[2], list), ErrorCode::UnknownRef).await;

    // A primary cannot link a different key than the one that asked.
    let mut other = server.guest().await;
    let refs = match other.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
        ResponseBody::LinkRefs(r) => r.refs,
        other => panic!("{other:?}"),
    };
    let impostor = StaticKey::generate();
    let list = alice.with_device(entry(2, &impostor, "chrome/linux"));
    let r = Request::ApproveLink(ApproveLink {
        link_ref: refs[0].link_ref.clone(),
        device_id: 2,
        new_list: Some(list),
        approval: vec![],
    });
    primary.fails(r, ErrorCode::InvalidDeviceList).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_waits_for_a_companion_that_went_offline() {
    let server = TestServer::start().await;
    let (mut alice, mut primary) = register(&server, "alice").await;
    let mut companion = server.guest().await;
    let key = companion.key.clone();
    let refs = match companion.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
        ResponseBody::LinkRefs(r) => r.refs,
        other => panic!("{other:?}"),
    };
    drop(companion);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let list = alice.with_device(entry(1, &key, "chrome/linux"));
    primary
        .ok(Request::ApproveLink(ApproveLink {
            link_ref: refs[0].link_ref.clone(),
            device_id: 1,
            new_list: Some(list),
            approval: b"a".to_vec(),
        }))
        .await;
    // The primary seals the history to its new device at once: it is queued
    // before the companion is back.
    primary.ok(send_req(7, vec![("alice", 1, b"history".to_vec())])).await;
    let mut back = reconnect(&server, &key).await;
    // The approval comes before the queue: a device that has not seen it
    // yet cannot take its history (it would be dropped, and the chats never
    // show).
    match back.event().await {
        EventBody::LinkApproved(a) => {
            assert_eq!((a.device_id, a.approval.as_slice()), (1, &b"a"[..]))
        }
        other => panic!("the approval must come first, got {other:?}"),
    }
    assert_eq!(back.envelope().await.ciphertext, b"history");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_closes_the_socket_with_device_removed_and_it_can_never_reconnect() {
    let server = TestServer::start().await;
    let (mut alice, mut primary) = register(&server, "alice").await;
    let mut c1 = link(&server, &mut alice, &mut primary, 1).await;
    let mut c2 = link(&server, &mut alice, &mut primary, 2).await;
    let (k1, k2) = (c1.key.clone(), c2.key.clone());

    // The primary removes companion 1 with a new signed list.
    let list = alice.without_device(1);
    primary.ok(Request::RemoveDevice(RemoveDevice { device_id: 1, new_list: Some(list) })).await;
    assert_eq!(c1.until_closed().await, (Some("device_removed".into()), "device_removed".into()));
    match Client::connect(&server.url(), k1, Some(server.pin())).await {
        Ok(mut c) => assert_eq!(c.until_closed().await, (Some("device_removed".into()), "device_removed".into())),
        Err(e) => panic!("{e:?}"),
    }
    // Senders now get the list without it.
    let (_bob, mut bob) = register(&server, "bob").await;
    let e = bob
        .fails(
            send_req(1, vec![("alice", 0, b"x".to_vec()), ("alice", 1, b"x".to_vec()), ("alice", 2, b"x".to_vec())]),
            ErrorCode::DeviceListChanged,
        )
        .await;
    let l = tether_proto::device_list::verify(&e.device_lists[0].account_key, e.device_lists[0].list.as_ref().unwrap())
        .unwrap();
    assert_eq!(l.devices.iter().map(|d| d.device_id).collect::<Vec<_>>(), vec![0, 2]);

    // Companion 2 logs itself out: the server forgets it, the primary hears of it.
    c2.ok(Request::RemoveDevice(RemoveDevice { device_id: 2, new_list: None })).await;
    assert_eq!(c2.until_closed().await.1, "device_removed");
    assert!(matches!(primary.event().await, EventBody::DeviceListUpdated(_)));
    let served = list_of(bob.ok(Request::GetDeviceList(GetDeviceList { handle: "alice".into() })).await);
    assert_eq!(served.removed, vec![1, 2]);
    assert!(reconnect(&server, &k2).await.until_closed().await.1 == "device_removed");
    // The primary signs the list without it; then links another.
    let list = alice.without_device(2);
    primary.ok(Request::PublishDeviceList(PublishDeviceList { list: Some(list) })).await;
    // Publishing can only drop devices, never add one.
    let sneaky = alice.with_device(entry(9, &StaticKey::generate(), "chrome/linux"));
    primary
        .fails(Request::PublishDeviceList(PublishDeviceList { list: Some(sneaky) }), ErrorCode::InvalidDeviceList)
        .await;
    alice.without_device(9);
    alice.list.version -= 2; // the server never saw those two versions
    // A companion cannot remove others; the primary cannot remove itself.
    let mut c3 = link(&server, &mut alice, &mut primary, 3).await;
    c3.fails(Request::RemoveDevice(RemoveDevice { device_id: 0, new_list: None }), ErrorCode::NotPrimary).await;
    primary.fails(Request::RemoveDevice(RemoveDevice { device_id: 0, new_list: None }), ErrorCode::BadRequest).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_primary_for_14_days_logs_out_every_companion() {
    let server = TestServer::start().await;
    let (mut alice, mut primary) = register(&server, "alice").await;
    let c1 = link(&server, &mut alice, &mut primary, 1).await;
    let k1 = c1.key.clone();
    drop(c1);
    drop(primary);
    server.clock.advance(13 * DAY_MS);
    assert_eq!(server.server.sweep().await.unwrap(), Default::default(), "13 days: nothing happens");
    // The companion stays active; only the primary's absence counts.
    let mut c1 = reconnect(&server, &k1).await;
    c1.ping().await;
    server.clock.advance(DAY_MS + 1000);
    let report = server.server.sweep().await.unwrap();
    assert_eq!(report.primary_inactive, vec![("alice".to_string(), 1)]);
    assert_eq!(c1.until_closed().await.1, "device_removed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_inactive_for_30_days_is_removed_and_old_copies_expire() {
    let server = TestServer::start().await;
    let (mut alice, mut primary) = register(&server, "alice").await;
    let c1 = link(&server, &mut alice, &mut primary, 1).await;
    let mut c2 = link(&server, &mut alice, &mut primary, 2).await;
    let k1 = c1.key.clone();
    drop(c1);
    let (_bob, mut bob) = register(&server, "bob").await;
    bob.ok(send_req(1, vec![("alice", 0, b"a".to_vec()), ("alice", 1, b"a".to_vec()), ("alice", 2, b"a".to_vec())]))
        .await;
    c2.envelope().await; // delivered but never acknowledged
    // The primary and companion 2 stay active (they ping daily); companion 1 does not.
    for _ in 0..31 {
        server.clock.advance(DAY_MS);
        primary.ping().await;
        c2.ping().await;
    }
    // Pings only write activity once a minute of the clock: make sure.
    let report = server.server.sweep().await.unwrap();
    assert_eq!(report.companion_inactive, vec![("alice".to_string(), 1)]);
    assert!(report.primary_inactive.is_empty());
    // Copies older than 30 days expire: the two still queued for 0 and 2
    // (companion 1's copy went with it).
    assert_eq!(report.expired, 2);
    assert_eq!(reconnect(&server, &k1).await.until_closed().await.1, "device_removed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prekeys_are_claimed_once_each_then_the_fallback_and_low_stock_is_announced() {
    let server = TestServer::start_with(|c| c.prekeys_low = 5).await;
    let (_alice, mut a) = register(&server, "alice").await;
    let keys: Vec<OneTimeKey> = (0..20).map(|i| OneTimeKey { key_id: i, key: vec![i as u8; 32], signature: vec![] }).collect();
    let up = Request::UploadPrekeys(UploadPrekeys {
        one_time_keys: keys,
        fallback: Some(OneTimeKey { key_id: 99, key: vec![99; 32], signature: vec![] }),
    });
    assert_eq!(a.ok(up).await, ResponseBody::PrekeyCount(PrekeyCount { one_time_keys: 20 }));

    // Four claimers at once, 5 claims each: 20 distinct one-time keys.
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (_acc, mut c) = register(&server, &format!("claimer{i}")).await;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..5 {
                match c.ok(Request::ClaimPrekey(ClaimPrekey { handle: "alice".into(), device_id: 0 })).await {
                    ResponseBody::Prekey(p) => {
                        assert!(!p.fallback);
                        got.push(p.key.unwrap().key_id);
                    }
                    other => panic!("{other:?}"),
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (0..20).collect::<Vec<u64>>(), "no one-time key handed out twice");
    match a.event().await {
        EventBody::PrekeysLow(p) => assert!(p.one_time_keys < 5),
        other => panic!("{other:?}"),
    }
    let (_b, mut b) = register(&server, "bob").await;
    match b.ok(Request::ClaimPrekey(ClaimPrekey { handle: "alice".into(), device_id: 0 })).await {
        ResponseBody::Prekey(p) => assert!(p.fallback && p.key.unwrap().key_id == 99),
        other => panic!("{other:?}"),
    }
    b.fails(Request::ClaimPrekey(ClaimPrekey { handle: "alice".into(), device_id: 3 }), ErrorCode::UnknownDevice).await;
    a.fails(Request::ClaimPrekey(ClaimPrekey { handle: "bob".into(), device_id: 0 }), ErrorCode::NoPrekeys).await;
    server.stop().await;
}
