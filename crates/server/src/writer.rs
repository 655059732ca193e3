//! Group commit: every send's copies go through one writer task that stores
//! whatever has queued up meanwhile in one transaction (one fsync), then
//! answers each sender and pushes the copies to online devices in id order.

use crate::Shared;
use crate::router::Outbound;
use crate::store::{NewEnvelope, StoredEnvelope};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most copies in one transaction.
const MAX_BATCH: usize = 8192;

pub struct WriteRequest {
    pub envelopes: Vec<NewEnvelope>,
    /// true once the copies are durable; false if storing failed.
    pub done: oneshot::Sender<bool>,
}

/// Runs until every sender is dropped and the queue is drained.
pub async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<WriteRequest>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut count = batch[0].envelopes.len();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    count += r.envelopes.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let all: Vec<NewEnvelope> = batch.iter().flat_map(|r| r.envelopes.iter().cloned()).collect();
        match shared.store.store_envelopes(&all).await {
            Ok(ids) => {
                shared.metrics.store_batches.inc();
                shared.metrics.envelopes_stored.inc_by(ids.len() as u64);
                for r in batch {
                    let _ = r.done.send(true);
                }
                for (id, envelope) in ids.into_iter().zip(all) {
                    if let Some(conn) = shared.router.device(&envelope.handle, envelope.device_id) {
                        conn.push(Outbound::Envelope(Arc::new(StoredEnvelope { id, envelope })));
                    }
                }
            }
            Err(e) => {
                tracing::error!("storing a batch of {} copies failed: {e}", all.len());
                for r in batch {
                    let _ = r.done.send(false);
                }
            }
        }
    }
}
