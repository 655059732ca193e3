//! The behaviour every [`Store`] backend must have. Each backend's tests call
//! [`run`] on a fresh, empty store.

use super::*;

pub(crate) fn account(handle: &str) -> Account {
    Account {
        handle: handle.into(),
        account_key: vec![1; 32],
        list_version: 1,
        list_body: b"list v1".to_vec(),
        list_sig: vec![2; 64],
        next_device: 1,
    }
}

pub(crate) fn device(id: u32, key: u8) -> NewDevice {
    NewDevice { device_id: id, noise_key: vec![key; 32], platform: "cli/linux".into(), name: format!("d{id}") }
}

/// A copy for `handle`'s device, its message id and ciphertext made of `n`.
pub fn envelope(handle: &str, device_id: u32, n: u8, created_ms: u64) -> NewEnvelope {
    NewEnvelope {
        handle: handle.into(),
        device_id,
        message_id: vec![n; 16],
        sender_handle: "sender".into(),
        sender_device: 0,
        ciphertext: vec![n; 8].into(),
        created_ms,
    }
}

/// Runs every check; panics with the first broken rule.
pub async fn run(store: &dyn Store) {
    accounts_and_devices(store).await;
    device_lists(store).await;
    restore(store).await;
    envelopes(store).await;
    group_commit(store).await;
    prekeys(store).await;
    tokens(store).await;
    meta(store).await;
    blobs(store).await;
    blob_sends(store).await;
    blob_readers_of_removed_devices(store).await;
    blob_deletes_by_owner(store).await;
    group_epochs(store).await;
    concurrent_commits(store).await;
    concurrent_callers(store).await;
}

async fn accounts_and_devices(s: &dyn Store) {
    s.ping().await.unwrap();
    s.create_account(&account("alice"), &device(0, 10), 100).await.unwrap();
    assert!(matches!(s.create_account(&account("alice"), &device(0, 11), 100).await, Err(StoreError::HandleTaken)));
    assert!(matches!(s.create_account(&account("bob"), &device(0, 10), 100).await, Err(StoreError::KeyTaken)));
    assert_eq!(s.account("bob").await.unwrap(), None, "a failed registration leaves nothing behind");
    assert_eq!(s.account("alice").await.unwrap(), Some(account("alice")));
    let d = s.device_by_key(&[10; 32]).await.unwrap().unwrap();
    assert_eq!((d.handle.as_str(), d.device_id, d.linked_ms, d.removed_ms), ("alice", 0, 100, None));
    let seen = |handle: &str, at_ms| Seen { handle: handle.into(), device_id: 0, at_ms };
    s.touch(&[seen("alice", 500), seen("nobody", 600)]).await.unwrap();
    s.touch(&[seen("alice", 400)]).await.unwrap();
    s.touch(&[]).await.unwrap();
    assert_eq!(s.device_by_key(&[10; 32]).await.unwrap().unwrap().active_ms, 500, "activity never goes back");
    assert_eq!(s.handles().await.unwrap(), vec!["alice".to_string()]);
}

async fn device_lists(s: &dyn Store) {
    s.create_account(&account("carol"), &device(0, 20), 0).await.unwrap();
    let add = ListUpdate {
        handle: "carol".into(),
        expected_version: 1,
        version: 2,
        body: b"v2".to_vec(),
        sig: vec![3; 64],
        add: Some(device(1, 21)),
        remove: vec![],
    };
    s.update_list(&add, 10).await.unwrap();
    assert!(matches!(s.update_list(&add, 10).await, Err(StoreError::Conflict)), "a stale version is refused");
    let a = s.account("carol").await.unwrap().unwrap();
    assert_eq!((a.list_version, a.list_body.as_slice(), a.next_device), (2, &b"v2"[..], 2));
    s.commit_batch(&[envelope("carol", 1, 1, 10)], &[], &[], &[]).await.unwrap();
    s.add_prekeys("carol", 1, &[Prekey { key_id: 1, key: vec![1], fallback: false, signature: vec![] }]).await.unwrap();

    let remove =
        ListUpdate { expected_version: 2, version: 3, body: b"v3".to_vec(), add: None, remove: vec![1], ..add.clone() };
    s.update_list(&remove, 20).await.unwrap();
    let removed = s.device_by_key(&[21; 32]).await.unwrap().unwrap();
    assert_eq!(removed.removed_ms, Some(20), "a removed device stays known by its key");
    assert!(s.pending("carol", 1, 0, 10).await.unwrap().is_empty(), "its queue is deleted");
    assert_eq!(s.prekey_count("carol", 1).await.unwrap(), 0, "its prekeys are deleted");
    assert_eq!(s.account("carol").await.unwrap().unwrap().next_device, 2, "ids are never reused");

    // A removed key cannot come back as a new device.
    let again = ListUpdate { expected_version: 3, version: 4, add: Some(device(2, 21)), remove: vec![], ..add.clone() };
    assert!(matches!(s.update_list(&again, 30).await, Err(StoreError::KeyTaken)));
    assert_eq!(s.account("carol").await.unwrap().unwrap().list_version, 3, "a failed update changes nothing");

    s.remove_device("carol", 0, 40).await.unwrap();
    assert!(s.devices("carol").await.unwrap().iter().all(|d| d.removed_ms.is_some()));
}

async fn restore(s: &dyn Store) {
    s.create_account(&account("ruth"), &device(0, 70), 0).await.unwrap();
    let link = ListUpdate {
        handle: "ruth".into(),
        expected_version: 1,
        version: 2,
        body: b"v2".to_vec(),
        sig: vec![3; 64],
        add: Some(device(1, 71)),
        remove: vec![],
    };
    s.update_list(&link, 10).await.unwrap();
    for id in [0, 1] {
        s.commit_batch(&[envelope("ruth", id, 1, 10)], &[], &[], &[]).await.unwrap();
        s.add_prekeys("ruth", id, &[Prekey { key_id: 1, key: vec![1], fallback: false, signature: vec![] }])
            .await
            .unwrap();
    }
    let r = Restoration {
        handle: "ruth".into(),
        expected_version: 2,
        version: 3,
        body: b"restored".to_vec(),
        sig: vec![4; 64],
        primary: device(0, 72),
    };
    let stale = Restoration { expected_version: 1, ..r.clone() };
    assert!(matches!(s.restore_account(&stale, 20).await, Err(StoreError::Conflict)));
    let reused = Restoration { primary: device(0, 71), ..r.clone() };
    assert!(matches!(s.restore_account(&reused, 20).await, Err(StoreError::KeyTaken)), "a known key is no new primary");
    assert_eq!(s.account("ruth").await.unwrap().unwrap().list_version, 2, "a failed restore changes nothing");
    assert_eq!(s.restored_key(&[70; 32]).await.unwrap(), None);

    let mut was = s.restore_account(&r, 30).await.unwrap();
    was.sort_unstable();
    assert_eq!(was, vec![0, 1]);
    let a = s.account("ruth").await.unwrap().unwrap();
    assert_eq!(
        (a.list_version, a.list_body.as_slice(), a.next_device),
        (3, &b"restored"[..], 2),
        "ids are never reused"
    );
    let new = s.device_by_key(&[72; 32]).await.unwrap().unwrap();
    assert_eq!((new.device_id, new.removed_ms), (0, None), "the new primary is device 0");
    assert_eq!(s.device_by_key(&[71; 32]).await.unwrap().unwrap().removed_ms, Some(30), "the companion is removed");
    for key in [70, 71] {
        assert_eq!(
            s.restored_key(&[key; 32]).await.unwrap().as_deref(),
            Some("ruth"),
            "old key {key} is known as restored away"
        );
    }
    assert_eq!(s.restored_key(&[72; 32]).await.unwrap(), None);
    for id in [0, 1] {
        assert!(s.pending("ruth", id, 0, 10).await.unwrap().is_empty(), "device {id}'s old queue is deleted");
        assert_eq!(s.prekey_count("ruth", id).await.unwrap(), 0, "device {id}'s old prekeys are deleted");
    }
    let active: Vec<u32> =
        s.devices("ruth").await.unwrap().into_iter().filter(|d| d.removed_ms.is_none()).map(|d| d.device_id).collect();
    assert_eq!(active, vec![0]);
}

async fn envelopes(s: &dyn Store) {
    let batch: Vec<_> = (1..=5).map(|n| envelope("alice", 0, n, u64::from(n) * 10)).collect();
    let ids = s.commit_batch(&batch, &[], &[], &[]).await.unwrap().ids;
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase in storage order");
    let more =
        s.commit_batch(&[envelope("alice", 0, 6, 60), envelope("alice", 1, 7, 60)], &[], &[], &[]).await.unwrap().ids;
    assert!(more[0] > ids[4]);

    let pending = s.pending("alice", 0, 0, 100).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.envelope.message_id[0]).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(pending[0].envelope, batch[0]);
    assert_eq!(s.pending("alice", 0, ids[2], 2).await.unwrap().len(), 2, "after + limit");

    assert_eq!(
        s.commit_batch(&[], &[acked("alice", 1, &ids[..2])], &[], &[]).await.unwrap().acked,
        0,
        "a device cannot ack another's copies"
    );
    assert_eq!(s.commit_batch(&[], &[acked("alice", 0, &ids[..2])], &[], &[]).await.unwrap().acked, 2);
    assert_eq!(
        s.commit_batch(&[], &[acked("alice", 0, &ids[..2])], &[], &[]).await.unwrap().acked,
        0,
        "acking twice is harmless"
    );
    assert_eq!(s.queue_depth().await.unwrap(), 5);
    assert_eq!(s.queue_usage("alice", 0).await.unwrap(), (4, 32), "four copies of 8 bytes");
    assert_eq!(s.queue_usage("alice", 9).await.unwrap(), (0, 0));
    assert_eq!(s.expire(35).await.unwrap(), 1, "only the copy created before 35 (the 3rd) expires");
    let left: Vec<u8> = s.pending("alice", 0, 0, 100).await.unwrap().iter().map(|e| e.envelope.message_id[0]).collect();
    assert_eq!(left, vec![4, 5, 6]);
    assert_eq!(s.commit_batch(&[], &[], &[], &[]).await.unwrap().ids, Vec::<u64>::new());
}

fn acked(handle: &str, device_id: u32, ids: &[u64]) -> AckedCopies {
    AckedCopies { handle: handle.into(), device_id, ids: ids.to_vec() }
}

async fn group_commit(s: &dyn Store) {
    s.create_account(&account("dave"), &device(0, 40), 0).await.unwrap();
    let before = s.queue_depth().await.unwrap();
    assert_eq!(s.commit_batch(&[], &[], &[], &[]).await.unwrap(), Committed::default(), "an empty batch is harmless");
    assert_eq!(s.commit_batch(&[], &[acked("dave", 0, &[])], &[], &[]).await.unwrap(), Committed::default());

    // Copies of several sends for several devices, in one commit; sizes
    // that do not fit one statement.
    let first: Vec<_> = (0..300u32).map(|n| envelope("dave", n % 3, n as u8, 1000 + u64::from(n))).collect();
    let done = s.commit_batch(&first, &[], &[], &[]).await.unwrap();
    assert_eq!((done.ids.len(), done.acked), (300, 0));
    assert!(done.ids.windows(2).all(|w| w[0] < w[1]), "ids increase in the order given");
    let stored = s.pending("dave", 0, 0, 1000).await.unwrap();
    assert_eq!(stored.len(), 100);
    assert_eq!(stored[1].envelope, first[3], "stored as given");
    assert_eq!(
        stored.iter().map(|e| e.id).collect::<Vec<_>>(),
        done.ids.iter().copied().step_by(3).collect::<Vec<_>>()
    );

    // Acks of several devices and new copies together. A device deletes
    // only its own copies; repeated, unknown and foreign ids delete nothing.
    let d0: Vec<u64> = done.ids.iter().copied().step_by(3).collect();
    let d1: Vec<u64> = done.ids.iter().copied().skip(1).step_by(3).collect();
    let more: Vec<_> = (0..5u8).map(|n| envelope("dave", 2, n, 5000)).collect();
    let acks = [
        acked("dave", 0, &d0[..10]),
        acked("dave", 1, &[d1[0], d1[0], d1[1], 999_999_999]),
        acked("dave", 2, &d0[10..20]), // device 0's copies: not device 2's to delete
        acked("erin", 0, &d0[20..30]),
    ];
    let done2 = s.commit_batch(&more, &acks, &[], &[]).await.unwrap();
    assert_eq!(done2.acked, 12, "10 of device 0, 2 of device 1");
    assert!(done2.ids[0] > done.ids[299], "new ids above every earlier one");
    assert_eq!(s.pending("dave", 0, 0, 1000).await.unwrap().len(), 90);
    assert_eq!(s.pending("dave", 1, 0, 1000).await.unwrap().len(), 98);
    assert_eq!(s.pending("dave", 2, 0, 1000).await.unwrap().len(), 105);
    assert_eq!(s.queue_depth().await.unwrap(), before + 305 - 12);

    // More ids than one statement takes.
    let all0: Vec<u64> = s.pending("dave", 0, 0, 1000).await.unwrap().iter().map(|e| e.id).collect();
    let mut many: Vec<u64> = (1_000_000..1_002_000).collect();
    many.extend(&all0);
    assert_eq!(s.commit_batch(&[], &[acked("dave", 0, &many)], &[], &[]).await.unwrap().acked, 90);
    assert!(s.pending("dave", 0, 0, 1000).await.unwrap().is_empty());
    s.remove_device("dave", 1, 1).await.unwrap();
    s.remove_device("dave", 2, 1).await.unwrap();
    assert_eq!(s.queue_depth().await.unwrap(), before);
}

async fn prekeys(s: &dyn Store) {
    let keys: Vec<_> = (1..=3)
        .map(|k| Prekey { key_id: k, key: vec![k as u8; 32], fallback: false, signature: vec![k as u8; 64] })
        .collect();
    s.add_prekeys("alice", 0, &keys).await.unwrap();
    s.add_prekeys("alice", 0, &[Prekey { key_id: 90, key: vec![90; 32], fallback: true, signature: vec![90; 64] }])
        .await
        .unwrap();
    s.add_prekeys("alice", 0, &[Prekey { key_id: 91, key: vec![91; 32], fallback: true, signature: vec![91; 64] }])
        .await
        .unwrap();
    assert_eq!(s.prekey_count("alice", 0).await.unwrap(), 3);
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let k = s.claim_prekey("alice", 0).await.unwrap().unwrap();
        assert!(!k.fallback);
        assert_eq!(k.signature, vec![k.key_id as u8; 64], "the key's signature comes back with it");
        claimed.push(k.key_id);
    }
    claimed.sort();
    assert_eq!(claimed, vec![1, 2, 3], "each one-time key handed out once");
    for _ in 0..2 {
        let k = s.claim_prekey("alice", 0).await.unwrap().unwrap();
        assert_eq!((k.key_id, k.fallback), (91, true), "then the newest fallback key, kept");
        assert_eq!(k.signature, vec![91; 64]);
    }
    assert_eq!(s.claim_prekey("nobody", 0).await.unwrap(), None);
}

async fn tokens(s: &dyn Store) {
    s.add_token("tok-1", 1).await.unwrap();
    assert!(s.use_token("tok-1", "alice", 2).await.unwrap());
    assert!(!s.use_token("tok-1", "bob", 3).await.unwrap(), "single use");
    assert!(!s.use_token("tok-2", "bob", 3).await.unwrap());
}

async fn meta(s: &dyn Store) {
    assert_eq!(s.meta("k").await.unwrap(), None);
    s.set_meta("k", b"v1").await.unwrap();
    s.set_meta("k", b"v2").await.unwrap();
    assert_eq!(s.meta("k").await.unwrap(), Some(b"v2".to_vec()));
}

fn blob(id: u8, handle: &str, length: u64, now_ms: u64) -> Blob {
    Blob {
        id: BlobId([id; 16]),
        handle: handle.into(),
        length,
        created_ms: now_ms,
        expires_ms: now_ms + 1000,
        complete: false,
        sent: false,
    }
}

const LIMITS: BlobLimits = BlobLimits { quota_bytes: 1000, max_unfinished: 3 };

async fn blobs(s: &dyn Store) {
    s.create_account(&account("bea"), &device(0, 80), 0).await.unwrap();
    assert_eq!(s.blob_usage("bea").await.unwrap(), (0, 0));
    assert_eq!(s.create_blob(&blob(1, "bea", 400, 10), LIMITS).await.unwrap(), BlobCreated::Created);
    let b = s.blob(&BlobId([1; 16])).await.unwrap().unwrap();
    assert_eq!(b, blob(1, "bea", 400, 10), "stored as given");
    assert_eq!(s.blob(&BlobId([9; 16])).await.unwrap(), None);
    assert_eq!(s.create_blob(&blob(2, "bea", 500, 10), LIMITS).await.unwrap(), BlobCreated::Created);
    assert_eq!(s.blob_usage("bea").await.unwrap(), (2, 900), "unfinished blobs count against the quota");
    assert_eq!(
        s.create_blob(&blob(3, "bea", 101, 10), LIMITS).await.unwrap(),
        BlobCreated::OverQuota,
        "900 + 101 > 1000"
    );
    assert_eq!(s.blob(&BlobId([3; 16])).await.unwrap(), None, "a refused blob is not stored");
    assert_eq!(
        s.create_blob(&blob(3, "bea", 100, 10), LIMITS).await.unwrap(),
        BlobCreated::Created,
        "exactly the quota"
    );
    assert_eq!(
        s.create_blob(&blob(4, "other", 1000, 10), LIMITS).await.unwrap(),
        BlobCreated::Created,
        "the quota is per account"
    );
    assert_eq!(s.create_blob(&blob(5, "bea", 0, 10), LIMITS).await.unwrap(), BlobCreated::TooManyUnfinished);

    // Whole blobs still count against the quota, but not as unfinished.
    assert!(s.complete_blob(&BlobId([1; 16])).await.unwrap());
    assert!(s.blob(&BlobId([1; 16])).await.unwrap().unwrap().complete);
    assert!(!s.complete_blob(&BlobId([9; 16])).await.unwrap(), "an unknown blob cannot be completed");
    assert_eq!(s.blob_usage("bea").await.unwrap(), (2, 1000));
    assert_eq!(s.blob_totals().await.unwrap(), (4, 2000));

    // Expiry deletes what expired before now, whole or not.
    assert_eq!(s.expire_blobs(1010).await.unwrap(), vec![], "expires_ms 1010 is not before 1010");
    let mut gone = s.expire_blobs(1011).await.unwrap();
    gone.sort();
    assert_eq!(gone, vec![BlobId([1; 16]), BlobId([2; 16]), BlobId([3; 16]), BlobId([4; 16])]);
    assert_eq!(s.blob_usage("bea").await.unwrap(), (0, 0));
    assert_eq!(s.blob_totals().await.unwrap(), (0, 0));

    assert_eq!(s.create_blob(&blob(6, "bea", 10, 2000), LIMITS).await.unwrap(), BlobCreated::Created);
    assert!(s.delete_blob(&BlobId([6; 16])).await.unwrap());
    assert!(!s.delete_blob(&BlobId([6; 16])).await.unwrap(), "deleting twice is harmless");
}

async fn blob_sends(s: &dyn Store) {
    s.create_account(&account("cleo"), &device(0, 90), 0).await.unwrap();
    let (whole, unfinished) = (BlobId([20; 16]), BlobId([21; 16]));
    s.create_blob(&blob(20, "cleo", 100, 0), LIMITS).await.unwrap();
    s.create_blob(&blob(21, "cleo", 100, 0), LIMITS).await.unwrap();
    s.complete_blob(&whole).await.unwrap();
    let readers = vec![("dana".to_string(), 0), ("dana".to_string(), 1), ("cleo".to_string(), 1)];
    let depth = s.queue_depth().await.unwrap();

    // A send naming an unfinished blob fails whole: no copy, no reader.
    let bad = BlobSend { blob_ids: vec![whole, unfinished], readers: readers.clone(), expires_ms: 50_000 };
    let copies = [envelope("dana", 0, 1, 100), envelope("dana", 1, 1, 100)];
    match s.commit_batch(&copies, &[], &[bad], &[]).await {
        Err(StoreError::BlobGone(id)) => assert_eq!(id, unfinished),
        other => panic!("expected BlobGone, got {other:?}"),
    }
    assert_eq!(s.queue_depth().await.unwrap(), depth, "no copy of the failed batch is stored");
    assert!(!s.blob_readable_by(&whole, "dana").await.unwrap(), "no reader of the failed batch is stored");
    assert!(!s.blob(&whole).await.unwrap().unwrap().sent);
    let unknown = BlobSend { blob_ids: vec![BlobId([99; 16])], readers: readers.clone(), expires_ms: 50_000 };
    assert!(matches!(s.commit_batch(&copies, &[], &[unknown], &[]).await, Err(StoreError::BlobGone(_))));

    // A good send: copies, readers and expiry in one commit.
    let good = BlobSend { blob_ids: vec![whole], readers: readers.clone(), expires_ms: 50_000 };
    let done = s.commit_batch(&copies, &[], std::slice::from_ref(&good), &[]).await.unwrap();
    assert_eq!(done.ids.len(), 2);
    let b = s.blob(&whole).await.unwrap().unwrap();
    assert!(b.sent && b.complete);
    assert_eq!(b.expires_ms, 50_000, "kept until the send's expiry");
    assert!(s.blob_readable_by(&whole, "dana").await.unwrap());
    assert!(s.blob_readable_by(&whole, "cleo").await.unwrap(), "the sender's other device is a reader");
    assert!(!s.blob_readable_by(&whole, "eve").await.unwrap());
    // The same send again (a retry) adds nothing twice; an older expiry
    // never shortens the blob's life.
    let older = BlobSend { expires_ms: 40_000, ..good };
    s.commit_batch(&[], &[], &[older], &[]).await.unwrap();
    assert_eq!(s.blob(&whole).await.unwrap().unwrap().expires_ms, 50_000);

    // Readers drop one by one; the last one deletes the blob.
    assert!(!s.remove_blob_reader(&whole, "dana", 0).await.unwrap());
    assert!(!s.remove_blob_reader(&whole, "dana", 0).await.unwrap(), "twice is harmless");
    assert!(!s.remove_blob_reader(&whole, "eve", 0).await.unwrap(), "a stranger removes nothing");
    assert!(s.blob_readable_by(&whole, "dana").await.unwrap(), "dana's device 1 still reads it");
    assert!(!s.remove_blob_reader(&whole, "dana", 1).await.unwrap());
    assert!(!s.blob_readable_by(&whole, "dana").await.unwrap());
    assert!(s.remove_blob_reader(&whole, "cleo", 1).await.unwrap(), "the last reader: the blob is deleted");
    assert_eq!(s.blob(&whole).await.unwrap(), None);

    // An unsent blob has no readers, and is not deleted for it.
    assert!(!s.remove_blob_reader(&unfinished, "cleo", 0).await.unwrap());
    assert!(s.blob(&unfinished).await.unwrap().is_some());
    assert_eq!(s.drop_unread_blobs().await.unwrap(), vec![], "unsent blobs are not unread ones");
    s.delete_blob(&unfinished).await.unwrap();
    s.commit_batch(&[], &[acked("dana", 0, &done.ids), acked("dana", 1, &done.ids)], &[], &[]).await.unwrap();
    assert_eq!(s.queue_depth().await.unwrap(), depth);
}

async fn blob_readers_of_removed_devices(s: &dyn Store) {
    s.create_account(&account("fred"), &device(0, 100), 0).await.unwrap();
    let link = ListUpdate {
        handle: "fred".into(),
        expected_version: 1,
        version: 2,
        body: b"v2".to_vec(),
        sig: vec![3; 64],
        add: Some(device(1, 101)),
        remove: vec![],
    };
    s.update_list(&link, 10).await.unwrap();
    let (a, b) = (BlobId([30; 16]), BlobId([31; 16]));
    for id in [a, b] {
        s.create_blob(&blob(id.0[0], "gina", 10, 0), LIMITS).await.unwrap();
        s.complete_blob(&id).await.unwrap();
    }
    let both = vec![("fred".to_string(), 0), ("fred".to_string(), 1)];
    s.commit_batch(&[], &[], &[BlobSend { blob_ids: vec![a], readers: both, expires_ms: 9_000 }], &[]).await.unwrap();
    let one = vec![("fred".to_string(), 1)];
    s.commit_batch(&[], &[], &[BlobSend { blob_ids: vec![b], readers: one, expires_ms: 9_000 }], &[]).await.unwrap();

    // Removing device 1 (by a new list) drops its reader rows in the same
    // transaction; blob b is left without readers.
    let remove = ListUpdate { expected_version: 2, version: 3, add: None, remove: vec![1], ..link };
    s.update_list(&remove, 20).await.unwrap();
    assert!(s.blob_readable_by(&a, "fred").await.unwrap(), "device 0 still reads a");
    assert!(!s.blob_readable_by(&b, "fred").await.unwrap());
    assert_eq!(s.drop_unread_blobs().await.unwrap(), vec![b]);
    assert_eq!(s.blob(&b).await.unwrap(), None);
    assert!(s.blob(&a).await.unwrap().is_some());

    // So does removing a device without a list.
    s.remove_device("fred", 0, 30).await.unwrap();
    assert!(!s.blob_readable_by(&a, "fred").await.unwrap());
    assert_eq!(s.drop_unread_blobs().await.unwrap(), vec![a]);
    assert_eq!(s.blob_totals().await.unwrap(), (0, 0));
}

async fn blob_deletes_by_owner(s: &dyn Store) {
    let (sent, unfinished, foreign, unknown) = (BlobId([40; 16]), BlobId([41; 16]), BlobId([42; 16]), BlobId([43; 16]));
    s.create_blob(&blob(40, "hana", 10, 0), LIMITS).await.unwrap();
    s.complete_blob(&sent).await.unwrap();
    s.create_blob(&blob(41, "hana", 10, 0), LIMITS).await.unwrap();
    s.create_blob(&blob(42, "ivan", 10, 0), LIMITS).await.unwrap();
    s.complete_blob(&foreign).await.unwrap();
    let readers = vec![("ivan".to_string(), 0), ("hana".to_string(), 1)];
    let send = |id| BlobSend { blob_ids: vec![id], readers: readers.clone(), expires_ms: 9_000 };
    s.commit_batch(&[], &[], &[send(sent), send(foreign)], &[]).await.unwrap();

    // Only the owner's blobs go, whole or not, sent or not; unknown ids,
    // other accounts' blobs and repeated ids change nothing.
    assert_eq!(s.delete_own_blobs("ivan", &[sent, unfinished, unknown]).await.unwrap(), vec![]);
    assert!(s.blob(&sent).await.unwrap().is_some() && s.blob(&unfinished).await.unwrap().is_some());
    let gone = s.delete_own_blobs("hana", &[sent, foreign, unknown, unfinished, sent]).await.unwrap();
    assert_eq!(gone, vec![sent, unfinished], "the deleted ones, in the order given, each once");
    assert_eq!((s.blob(&sent).await.unwrap(), s.blob(&unfinished).await.unwrap()), (None, None));
    assert!(!s.blob_readable_by(&sent, "ivan").await.unwrap(), "its readers went with it");
    assert!(s.blob(&foreign).await.unwrap().is_some(), "another account's blob stays");
    assert!(s.blob_readable_by(&foreign, "ivan").await.unwrap(), "… with its readers");
    assert_eq!(s.blob_usage("hana").await.unwrap(), (0, 0));
    assert!(!s.drop_unread_blobs().await.unwrap().contains(&sent), "a deleted blob is not reported again");
    assert_eq!(s.delete_own_blobs("hana", &[sent]).await.unwrap(), vec![], "deleting twice is harmless");
    assert_eq!(s.delete_own_blobs("hana", &[]).await.unwrap(), vec![]);
    // No reader row outlived its blob: the same id again has none.
    s.create_blob(&blob(40, "hana", 10, 0), LIMITS).await.unwrap();
    assert!(!s.blob_readable_by(&sent, "ivan").await.unwrap() && !s.blob_readable_by(&sent, "hana").await.unwrap());

    assert_eq!(s.delete_own_blobs("hana", &[sent]).await.unwrap(), vec![sent]);
    assert_eq!(s.delete_own_blobs("ivan", &[foreign]).await.unwrap(), vec![foreign]);
    assert_eq!(s.blob_totals().await.unwrap(), (0, 0));
}

fn step(group: u8, from: u64, to: u64) -> GroupEpochStep {
    GroupEpochStep { group_id: GroupId([group; 16]), from, to, updated_ms: 500 + to }
}

async fn group_epochs(s: &dyn Store) {
    s.create_account(&account("gus"), &device(0, 110), 0).await.unwrap();
    let (g1, g2) = (GroupId([1; 16]), GroupId([2; 16]));
    assert_eq!(s.group_epoch(&g1).await.unwrap(), 0, "an unknown group is at 0");
    let depth = s.queue_depth().await.unwrap();

    // A new group, with the copies of its creation, in one commit.
    let done = s.commit_batch(&[envelope("gus", 0, 1, 10)], &[], &[], &[step(1, 0, 1)]).await.unwrap();
    assert_eq!(done.ids.len(), 1);
    assert_eq!(s.group_epoch(&g1).await.unwrap(), 1);
    assert_eq!(s.group_epoch(&g2).await.unwrap(), 0, "groups are apart");

    // A step from an epoch the group is not at fails the whole batch:
    // nothing stored, no epoch moved, no ack applied.
    for wrong in [step(1, 0, 1), step(1, 2, 3), step(1, 5, 6)] {
        let batch = [envelope("gus", 0, 2, 10)];
        let steps = [step(2, 0, 1), wrong];
        match s.commit_batch(&batch, &[acked("gus", 0, &done.ids)], &[], &steps).await {
            Err(StoreError::EpochTaken(id)) => assert_eq!(id, g1),
            other => panic!("expected EpochTaken, got {other:?}"),
        }
        assert_eq!(s.queue_depth().await.unwrap(), depth + 1, "nothing of the failed batch is stored or acked");
        assert_eq!((s.group_epoch(&g1).await.unwrap(), s.group_epoch(&g2).await.unwrap()), (1, 0));
    }

    // Steps apply in order: one batch may move a group on twice; a step
    // needs no copy of its own.
    s.commit_batch(&[], &[], &[], &[step(1, 1, 2), step(2, 0, 1), step(1, 2, 3)]).await.unwrap();
    assert_eq!((s.group_epoch(&g1).await.unwrap(), s.group_epoch(&g2).await.unwrap()), (3, 1));
    assert!(matches!(
        s.commit_batch(&[], &[], &[], &[step(2, 2, 3)]).await,
        Err(StoreError::EpochTaken(id)) if id == g2
    ));
    // Large epochs are kept as they are.
    let big = (1u64 << 63) - 1;
    s.commit_batch(&[], &[], &[], &[step(3, 0, big - 1)]).await.unwrap();
    s.commit_batch(&[], &[], &[], &[step(3, big - 1, big)]).await.unwrap();
    assert_eq!(s.group_epoch(&GroupId([3; 16])).await.unwrap(), big);

    // Epochs are never expired, whatever else is.
    s.expire(u64::MAX).await.unwrap();
    s.expire_blobs(u64::MAX).await.unwrap();
    s.remove_device("gus", 0, 20).await.unwrap();
    assert_eq!((s.group_epoch(&g1).await.unwrap(), s.group_epoch(&g2).await.unwrap()), (3, 1));
}

/// Two group commits at once (as two relays writing to one database would
/// run them) while a device drains its queue the way clients do, with the
/// last id it got as its cursor: ids become visible in increasing order,
/// so the reader misses nothing. (A backend that hands out ids at insert
/// time and lets a later range commit first fails here.)
async fn concurrent_commits(s: &dyn Store) {
    s.create_account(&account("kim"), &device(0, 120), 0).await.unwrap();
    let finished = std::cell::Cell::new(false);
    let writers = async {
        let mut committed = Vec::new();
        for round in 0..20u8 {
            let a: Vec<_> = (0..40).map(|_| envelope("kim", 0, round, 1)).collect();
            let b: Vec<_> = (0..40).map(|_| envelope("kim", 0, 100 + round, 1)).collect();
            let (a, b) = tokio::join!(s.commit_batch(&a, &[], &[], &[]), s.commit_batch(&b, &[], &[], &[]));
            let (a, b) = (a.unwrap().ids, b.unwrap().ids);
            assert!(a.windows(2).all(|w| w[0] < w[1]) && b.windows(2).all(|w| w[0] < w[1]));
            assert!(a.last() < b.first() || b.last() < a.first(), "one batch's ids all above the other's");
            committed.extend(a.into_iter().chain(b));
        }
        finished.set(true);
        committed
    };
    let reader = async {
        let (mut seen, mut cursor) = (Vec::new(), 0);
        loop {
            let was_finished = finished.get();
            let page = s.pending("kim", 0, cursor, 25).await.unwrap();
            match page.last() {
                Some(last) => cursor = last.id,
                None if was_finished => return seen,
                None => tokio::task::yield_now().await,
            }
            seen.extend(page.iter().map(|e| e.id));
        }
    };
    let (mut committed, seen) = tokio::join!(writers, reader);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "pending returns ids in increasing order, each once");
    committed.sort_unstable();
    assert_eq!(seen.len(), committed.len(), "the reader's cursor passed no copy it had not seen");
    assert_eq!(seen, committed);
    s.remove_device("kim", 0, 1).await.unwrap();
}

/// The rules a backend states as atomic hold for callers at the same time,
/// not only one after another.
async fn concurrent_callers(s: &dyn Store) {
    s.create_account(&account("lee"), &device(0, 130), 0).await.unwrap();

    // Concurrent claims: each one-time key once, then the fallback key.
    let keys: Vec<_> =
        (1..=6).map(|k| Prekey { key_id: k, key: vec![k as u8; 32], fallback: false, signature: vec![] }).collect();
    s.add_prekeys("lee", 0, &keys).await.unwrap();
    s.add_prekeys("lee", 0, &[Prekey { key_id: 99, key: vec![99; 32], fallback: true, signature: vec![] }])
        .await
        .unwrap();
    let claim = || async { s.claim_prekey("lee", 0).await.unwrap().unwrap() };
    let (a, b, c, d) = tokio::join!(claim(), claim(), claim(), claim());
    let (e, f, g, h) = tokio::join!(claim(), claim(), claim(), claim());
    let mut one_time: Vec<u64> = [a, b, c, d, e, f, g, h].iter().filter(|k| !k.fallback).map(|k| k.key_id).collect();
    one_time.sort_unstable();
    assert_eq!(one_time, vec![1, 2, 3, 4, 5, 6], "every one-time key handed out, none twice");
    assert_eq!(s.prekey_count("lee", 0).await.unwrap(), 0);

    // Concurrent uploads of fallback keys leave one.
    let fallback = |k: u64| [Prekey { key_id: k, key: vec![k as u8; 32], fallback: true, signature: vec![] }];
    let (k100, k101) = (fallback(100), fallback(101));
    let (x, y) = tokio::join!(s.add_prekeys("lee", 0, &k100), s.add_prekeys("lee", 0, &k101));
    x.unwrap();
    y.unwrap();
    let kept = s.claim_prekey("lee", 0).await.unwrap().unwrap();
    assert!(kept.fallback && [100, 101].contains(&kept.key_id), "the fallback key is one of the two uploaded");

    // Concurrent uploads cannot squeeze past the quota together.
    let limits = BlobLimits { quota_bytes: 1000, max_unfinished: 10 };
    let up = |n: u8| async move { s.create_blob(&blob(n, "lee", 400, 0), limits).await.unwrap() };
    let (p, q, r, t) = tokio::join!(up(50), up(51), up(52), up(53));
    let created = [p, q, r, t].iter().filter(|&&c| c == BlobCreated::Created).count();
    assert_eq!(created, 2, "two of 400 bytes fit in 1000, not three");
    assert_eq!(s.blob_usage("lee").await.unwrap(), (2, 800));
    let ids = [50, 51, 52, 53].map(|n| BlobId([n; 16]));
    assert_eq!(s.delete_own_blobs("lee", &ids).await.unwrap().len(), 2);

    // Concurrent list updates from one version: one wins, the other conflicts.
    let update = |name: &str, key: u8| ListUpdate {
        handle: "lee".into(),
        expected_version: 1,
        version: 2,
        body: name.as_bytes().to_vec(),
        sig: vec![3; 64],
        add: Some(device(1, key)),
        remove: vec![],
    };
    let (u1, u2) = (update("one", 131), update("two", 132));
    let (one, two) = tokio::join!(s.update_list(&u1, 10), s.update_list(&u2, 10));
    let won = match (one, two) {
        (Ok(()), Err(StoreError::Conflict)) => "one",
        (Err(StoreError::Conflict), Ok(())) => "two",
        other => panic!("expected one update and one conflict, got {other:?}"),
    };
    let a = s.account("lee").await.unwrap().unwrap();
    assert_eq!((a.list_version, a.list_body.as_slice()), (2, won.as_bytes()));
    assert_eq!(s.devices("lee").await.unwrap().len(), 2, "only the winner's device was added");

    // Concurrent registrations of one handle: one account, one HandleTaken.
    let (mia, d1, d2) = (account("mia"), device(0, 140), device(0, 141));
    let (one, two) = tokio::join!(s.create_account(&mia, &d1, 0), s.create_account(&mia, &d2, 0));
    assert!(
        matches!((&one, &two), (Ok(()), Err(StoreError::HandleTaken)) | (Err(StoreError::HandleTaken), Ok(()))),
        "expected one registration and one HandleTaken, got {one:?} / {two:?}"
    );
    s.remove_device("lee", 0, 20).await.unwrap();
}
