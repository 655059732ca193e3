//! Group commit: every durable write of the relay's hot path (a send's
//! copies, an ack's deletions) goes through one writer task. It takes
//! whatever has queued up meanwhile and commits it in one transaction (one
//! fsync), then pushes the new copies to online devices in id order and
//! hands each request's outcome back to its connection, which answers it
//! (`Sent`, `Done`). Connections do not wait for the commit: they go on
//! reading frames (up to a bound of requests in flight, see conn.rs).

use crate::Shared;
use crate::router::{ConnHandle, Done, Outbound, Outcome};
use crate::store::{AckedCopies, NewEnvelope, StoredEnvelope};
use std::sync::{Arc, Weak};
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
                Op::Store(mut e) => envelopes.append(&mut e),
                Op::Ack(a) => acks.push(a),
            }
            replies.push(r.reply);
        }
        match shared.store.commit_batch(&envelopes, &acks).await {
            Ok(done) => {
                if !envelopes.is_empty() {
                    shared.metrics.store_batches.inc();
                    shared.metrics.envelopes_stored.inc_by(done.ids.len() as u64);
                }
                shared.metrics.envelopes_acked.inc_by(done.acked);
                // Pushes first (delivery latency), then the answers.
                for (id, envelope) in done.ids.into_iter().zip(envelopes) {
                    if let Some(conn) = shared.router.device(&envelope.handle, envelope.device_id) {
                        conn.push(Outbound::Envelope(Arc::new(StoredEnvelope { id, envelope })));
                    }
                }
                for (conn, request_id, outcome) in replies {
                    conn.done(Done { request_id, outcome, ok: true });
                }
            }
            Err(e) => {
                tracing::error!("a group commit of {} copies and {} acks failed: {e}", envelopes.len(), acks.len());
                for (conn, request_id, outcome) in replies {
                    conn.done(Done { request_id, outcome, ok: false });
                }
            }
        }
    }
}
