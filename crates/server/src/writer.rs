//! Group commit: every durable write of the relay's hot path (a send's
//! copies and blob readers, an ack's deletions) goes through one writer task. It takes
//! whatever has queued up meanwhile and commits it in one transaction (one
//! fsync), then pushes the new copies to online devices in id order and
//! hands each request's outcome back to its connection, which answers it
//! (`Sent`, `Done`). Connections do not wait for the commit: they go on
//! reading frames (up to a bound of requests in flight, see conn.rs).

use crate::Shared;
use crate::router::{ConnHandle, Done, Outbound, Outcome, Written};
use crate::store::{AckedCopies, BlobSend, NewEnvelope, StoreError, StoredEnvelope};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::mpsc;

/// Most copies stored in one transaction.
const MAX_BATCH: usize = 8192;
/// Most acknowledged ids deleted in one transaction.
const MAX_ACKED: usize = 16_384;

/// What to write.
pub enum Op {
    /// Store a send's copies, and make their target devices readers of
    /// the blobs it names (in the same transaction).
    Store { envelopes: Vec<NewEnvelope>, blobs: Option<BlobSend> },
    /// Delete copies a device acknowledged.
    Ack(AckedCopies),
}

/// One request's write, and whom to tell once it is durable.
pub struct WriteRequest {
    pub op: Op,
    /// The connection that asked, its request id, and the answer on success.
    pub reply: (ConnHandle, u64, Outcome),
}

/// Stored copies per device (count, ciphertext bytes), for the queue
/// quotas. Only the writer adds to it, so its check and its commit cannot
/// race with another send. An entry is read from the store when first
/// needed and forgotten when the device acknowledges copies (or when the
/// expiry sweep ran), so it never undercounts for long: at worst a send is
/// checked against copies expired a moment ago.
#[derive(Debug, Default)]
pub struct Usage {
    map: Mutex<HashMap<(String, u32), (u64, u64)>>,
}

impl Usage {
    /// Forgets everything (after expiry deleted copies).
    pub fn clear(&self) {
        self.map.lock().expect("usage lock").clear();
    }

    fn forget(&self, handle: &str, device_id: u32) {
        self.map.lock().expect("usage lock").remove(&(handle.to_string(), device_id));
    }

    fn cached(&self, handle: &str, device_id: u32) -> Option<(u64, u64)> {
        self.map.lock().expect("usage lock").get(&(handle.to_string(), device_id)).copied()
    }

    fn set(&self, handle: &str, device_id: u32, usage: (u64, u64)) {
        self.map.lock().expect("usage lock").insert((handle.to_string(), device_id), usage);
    }
}

/// Would this send's copies keep every recipient device within its quota?
/// If so they are counted (before the commit: a failed commit clears the
/// counts). Each device appears at most once per send (handlers.rs).
async fn within_quota(s: &Shared, envelopes: &[NewEnvelope]) -> Result<bool, StoreError> {
    let (max_n, max_bytes) = (s.config.queue_max_envelopes, s.config.queue_max_bytes);
    let mut after = Vec::with_capacity(envelopes.len());
    for e in envelopes {
        let (n, bytes) = match s.usage.cached(&e.handle, e.device_id) {
            Some(u) => u,
            None => {
                let u = s.store.queue_usage(&e.handle, e.device_id).await?;
                s.usage.set(&e.handle, e.device_id, u);
                u
            }
        };
        let (n, bytes) = (n + 1, bytes + e.ciphertext.len() as u64);
        if n > max_n || bytes > max_bytes {
            return Ok(false);
        }
        after.push((n, bytes));
    }
    for (e, u) in envelopes.iter().zip(after) {
        s.usage.set(&e.handle, e.device_id, u);
    }
    Ok(true)
}

/// A send accepted into the batch: how many of the batch's copies are its
/// own (they lie in request order), its blobs, and whom to answer.
struct Accepted {
    copies: usize,
    blobs: Option<BlobSend>,
    reply: (ConnHandle, u64, Outcome),
}

/// Runs until every sender is dropped and the queue is drained.
pub async fn run(shared: Weak<Shared>, mut rx: mpsc::Receiver<WriteRequest>) {
    let mut batch: Vec<WriteRequest> = Vec::new();
    while let Some(first) = rx.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        batch.push(first);
        let (mut copies, mut acked) = (0, 0);
        loop {
            match &batch[batch.len() - 1].op {
                Op::Store { envelopes, .. } => copies += envelopes.len(),
                Op::Ack(a) => acked += a.ids.len(),
            }
            if copies >= MAX_BATCH || acked >= MAX_ACKED {
                break;
            }
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut envelopes: Vec<NewEnvelope> = Vec::with_capacity(copies);
        let mut sends: Vec<Accepted> = Vec::new();
        let mut acks: Vec<AckedCopies> = Vec::new();
        let mut ack_replies: Vec<(ConnHandle, u64, Outcome)> = Vec::new();
        for r in batch.drain(..) {
            match r.op {
                Op::Store { envelopes: mut e, blobs } => {
                    let written = match within_quota(&shared, &e).await {
                        Ok(true) => Written::Ok,
                        Ok(false) => Written::QueueFull,
                        Err(err) => {
                            tracing::error!("reading a queue's size failed: {err}");
                            Written::Failed
                        }
                    };
                    if written != Written::Ok {
                        let (conn, request_id, outcome) = r.reply;
                        conn.done(Done { request_id, outcome, written });
                        continue;
                    }
                    sends.push(Accepted { copies: e.len(), blobs, reply: r.reply });
                    envelopes.append(&mut e)
                }
                Op::Ack(a) => {
                    acks.push(a);
                    ack_replies.push(r.reply);
                }
            }
        }
        commit(&shared, envelopes, sends, acks, ack_replies).await;
    }
}

/// Commits one batch and answers its requests. A send whose blob vanished
/// since its handler checked it (expired, or fetched by its last reader)
/// fails the transaction: that send alone is refused (`BlobGone`) and the
/// rest is committed again without it.
async fn commit(
    shared: &Shared,
    mut envelopes: Vec<NewEnvelope>,
    mut sends: Vec<Accepted>,
    acks: Vec<AckedCopies>,
    ack_replies: Vec<(ConnHandle, u64, Outcome)>,
) {
    let result = loop {
        if sends.is_empty() && ack_replies.is_empty() {
            return;
        }
        let blobs: Vec<BlobSend> = sends.iter().filter_map(|a| a.blobs.clone()).collect();
        match shared.store.commit_batch(&envelopes, &acks, &blobs).await {
            Err(StoreError::BlobGone(id)) => {
                tracing::info!(blob = %id, "a send names a blob that is gone: refused");
                // Counted before the commit: read the queues again.
                shared.usage.clear();
                let before = sends.len();
                let mut start = 0;
                let mut kept = Vec::with_capacity(sends.len());
                for a in sends {
                    if a.blobs.as_ref().is_some_and(|b| b.blob_ids.contains(&id)) {
                        envelopes.drain(start..start + a.copies);
                        let (conn, request_id, outcome) = a.reply;
                        conn.done(Done { request_id, outcome, written: Written::BlobGone });
                    } else {
                        start += a.copies;
                        kept.push(a);
                    }
                }
                sends = kept;
                if sends.len() == before {
                    // No send of this batch names it: a store bug; fail all.
                    break Err(StoreError::BlobGone(id));
                }
            }
            other => break other,
        }
    };
    let replies = sends.into_iter().map(|a| a.reply).chain(ack_replies);
    match result {
        Ok(done) => {
            if !envelopes.is_empty() {
                shared.metrics.store_batches.inc();
                shared.metrics.envelopes_stored.inc_by(done.ids.len() as u64);
            }
            shared.metrics.envelopes_acked.inc_by(done.acked);
            // Acknowledged copies are gone: read those queues' sizes again.
            for a in &acks {
                shared.usage.forget(&a.handle, a.device_id);
            }
            // Pushes first (delivery latency), then the answers.
            for (id, envelope) in done.ids.into_iter().zip(envelopes) {
                if let Some(conn) = shared.router.device(&envelope.handle, envelope.device_id) {
                    conn.push(Outbound::Envelope(Arc::new(StoredEnvelope { id, envelope })));
                }
            }
            for (conn, request_id, outcome) in replies {
                conn.done(Done { request_id, outcome, written: Written::Ok });
            }
        }
        Err(e) => {
            tracing::error!("a group commit of {} copies and {} acks failed: {e}", envelopes.len(), acks.len());
            shared.usage.clear();
            for (conn, request_id, outcome) in replies {
                conn.done(Done { request_id, outcome, written: Written::Failed });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Next;
    use crate::store::{Blob, BlobId, BlobLimits};
    use crate::{Config, ManualClock, Server};

    fn copy(handle: &str, n: u8) -> NewEnvelope {
        NewEnvelope {
            handle: handle.into(),
            device_id: 0,
            message_id: vec![n; 16],
            sender_handle: "alice".into(),
            sender_device: 0,
            ciphertext: vec![n; 8],
            created_ms: 1,
        }
    }

    fn answer(conn: &ConnHandle) -> Written {
        match conn.next() {
            Next::Done(d) => d.written,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    /// A send whose blob vanished between its handler's check and the
    /// commit is refused alone; the rest of the batch is stored.
    #[tokio::test]
    async fn a_blob_gone_at_commit_refuses_only_the_sends_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data: dir.path().to_path_buf(), ..Config::default() };
        let server = Server::open(config, Arc::new(ManualClock::new(1))).await.unwrap();
        let s = &server.shared;
        let kept = BlobId([1; 16]);
        let blob = Blob {
            id: kept,
            handle: "alice".into(),
            length: 16,
            created_ms: 1,
            expires_ms: 10,
            complete: false,
            sent: false,
        };
        let limits = BlobLimits { quota_bytes: 1000, max_unfinished: 10 };
        s.store.create_blob(&blob, limits).await.unwrap();
        s.store.complete_blob(&kept).await.unwrap();
        let gone = BlobId([2; 16]);

        let (a, b, c, d) = (ConnHandle::new(), ConnHandle::new(), ConnHandle::new(), ConnHandle::new());
        let send = |blobs: Vec<BlobId>| BlobSend { blob_ids: blobs, readers: vec![("bob".into(), 0)], expires_ms: 100 };
        let sent = Outcome::Sent { server_time_ms: 1 };
        let sends = vec![
            Accepted { copies: 2, blobs: Some(send(vec![kept])), reply: (a.clone(), 1, sent) },
            Accepted { copies: 1, blobs: Some(send(vec![kept, gone])), reply: (b.clone(), 2, sent) },
            Accepted { copies: 1, blobs: None, reply: (c.clone(), 3, sent) },
        ];
        let envelopes = vec![copy("bob", 1), copy("carol", 1), copy("bob", 2), copy("bob", 3)];
        let acks = vec![AckedCopies { handle: "bob".into(), device_id: 0, ids: vec![999] }];
        commit(s, envelopes, sends, acks, vec![(d.clone(), 4, Outcome::Acked)]).await;

        assert_eq!(answer(&b), Written::BlobGone);
        for conn in [&a, &c, &d] {
            assert_eq!(answer(conn), Written::Ok);
        }
        let stored: Vec<u8> =
            s.store.pending("bob", 0, 0, 10).await.unwrap().iter().map(|e| e.envelope.message_id[0]).collect();
        assert_eq!(stored, vec![1, 3], "the refused send's copy is not stored, the others are");
        assert_eq!(s.store.pending("carol", 0, 0, 10).await.unwrap().len(), 1);
        assert!(s.store.blob_readable_by(&kept, "bob").await.unwrap(), "the first send's readers are stored");
    }
}
