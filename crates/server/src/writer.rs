//! Group commit: every durable write of the relay's hot path (a send's
//! copies, an ack's deletions) goes through one writer task. It takes
//! whatever has queued up meanwhile and commits it in one transaction (one
//! fsync), then pushes the new copies to online devices in id order and
//! hands each request's outcome back to its connection, which answers it
//! (`Sent`, `Done`). Connections do not wait for the commit: they go on
//! reading frames (up to a bound of requests in flight, see conn.rs).

use crate::Shared;
use crate::router::{ConnHandle, Done, Outbound, Outcome, Written};
use crate::store::{AckedCopies, NewEnvelope, StoreError, StoredEnvelope};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::mpsc;

/// Most copies stored in one transaction.
const MAX_BATCH: usize = 8192;
/// Most acknowledged ids deleted in one transaction.
const MAX_ACKED: usize = 16_384;

/// What to write.
pub enum Op {
    /// Store a send's copies.
    Store(Vec<NewEnvelope>),
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

/// Runs until every sender is dropped and the queue is drained.
pub async fn run(shared: Weak<Shared>, mut rx: mpsc::Receiver<WriteRequest>) {
    let mut batch: Vec<WriteRequest> = Vec::new();
    while let Some(first) = rx.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        batch.push(first);
        let (mut copies, mut acked) = (0, 0);
        loop {
            match &batch[batch.len() - 1].op {
                Op::Store(e) => copies += e.len(),
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
        let mut acks: Vec<AckedCopies> = Vec::new();
        let mut replies: Vec<(ConnHandle, u64, Outcome)> = Vec::with_capacity(batch.len());
        for r in batch.drain(..) {
            match r.op {
                Op::Store(mut e) => {
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
                    envelopes.append(&mut e)
                }
                Op::Ack(a) => acks.push(a),
            }
            replies.push(r.reply);
        }
        if replies.is_empty() {
            continue;
        }
        match shared.store.commit_batch(&envelopes, &acks).await {
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
}
