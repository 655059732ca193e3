//! Prometheus metrics, served at `GET /metrics`. Counts only: no handles,
//! keys or content in any label.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: &'static str,
}

/// Every metric of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_total: Counter,
    pub connections_open: Gauge,
    pub frames_in: Counter,
    pub frames_out: Counter,
    pub envelopes_stored: Counter,
    /// Copies handed to their device's connection before their commit.
    pub pushed_before_commit: Counter,
    pub envelopes_delivered: Counter,
    pub envelopes_acked: Counter,
    /// Copies acknowledged before their group commit started: never
    /// stored, nothing to delete.
    pub acked_before_commit: Counter,
    pub handshake_failures: Counter,
    pub errors: Family<CodeLabel, Counter>,
    /// Set at scrape time from the store.
    pub queue_depth: Gauge,
    pub store_batches: Counter,
    /// Set at scrape time: entries of the rendezvous tables …
    pub rendezvous_entries: Gauge,
    /// … and their estimated memory.
    pub rendezvous_bytes: Gauge,
    /// Set at scrape time from the store: blobs held (unfinished and
    /// whole) …
    pub blobs_stored: Gauge,
    /// … and their lengths in bytes.
    pub blob_bytes_stored: Gauge,
    /// Blob bytes written to disk by PATCH requests.
    pub blob_bytes_received: Counter,
    /// Uploads that became whole.
    pub blob_uploads: Counter,
    /// GET requests of blobs answered with bytes (whole or a range) …
    pub blob_downloads: Counter,
    /// … and the bytes they answered with.
    pub blob_bytes_sent: Counter,
    /// Blobs deleted by their owner account (`BlobDelete`).
    pub blob_deletes: Counter,
    /// Sends stored with a fan-out (one ciphertext for many devices) …
    pub fanout_sends: Counter,
    /// … and the fan-out devices they were stored for.
    pub fanout_devices: Counter,
    /// Group changes refused because their epoch was not the group's next
    /// one (`group_epoch_taken`).
    pub group_epoch_refusals: Counter,
}

impl Metrics {
    pub fn error(&self, code: tether_proto::ErrorCode) {
        self.errors.get_or_create(&CodeLabel { code: code.as_str() }).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut r = Registry::with_prefix("tether");
        r.register("connections", "WebSocket connections accepted", self.connections_total.clone());
        r.register("connections_open", "Connections open now", self.connections_open.clone());
        r.register("frames_in", "Frames received after the handshake", self.frames_in.clone());
        r.register("frames_out", "Frames sent after the handshake", self.frames_out.clone());
        r.register("envelopes_stored", "Message copies durably stored", self.envelopes_stored.clone());
        r.register("envelopes_delivered", "Message copies pushed to a device", self.envelopes_delivered.clone());
        r.register(
            "pushed_before_commit",
            "Message copies pushed to their device's connection while their group commit ran",
            self.pushed_before_commit.clone(),
        );
        r.register("envelopes_acked", "Message copies acknowledged and deleted", self.envelopes_acked.clone());
        r.register(
            "acked_before_commit",
            "Message copies acknowledged before their group commit started: neither stored nor deleted",
            self.acked_before_commit.clone(),
        );
        r.register("handshake_failures", "Noise handshakes that failed or timed out", self.handshake_failures.clone());
        r.register("errors", "Error responses by code", self.errors.clone());
        r.register("queue_depth", "Stored copies awaiting acknowledgement", self.queue_depth.clone());
        r.register("store_batches", "Group commits of message copies", self.store_batches.clone());
        r.register(
            "rendezvous_entries",
            "Link refs, pairing slots and held approvals in memory",
            self.rendezvous_entries.clone(),
        );
        r.register("rendezvous_bytes", "Estimated memory of the rendezvous tables", self.rendezvous_bytes.clone());
        r.register("blobs", "Blobs held, unfinished and whole", self.blobs_stored.clone());
        r.register("blob_bytes", "Bytes of the blobs held (whole lengths)", self.blob_bytes_stored.clone());
        r.register("blob_bytes_received", "Blob bytes written by uploads", self.blob_bytes_received.clone());
        r.register("blob_uploads", "Blob uploads that became whole", self.blob_uploads.clone());
        r.register("blob_downloads", "Blob downloads answered", self.blob_downloads.clone());
        r.register("blob_bytes_sent", "Blob bytes answered to downloads", self.blob_bytes_sent.clone());
        r.register("blob_deletes", "Blobs deleted by their owner account", self.blob_deletes.clone());
        r.register("fanout_sends", "Sends stored with a fan-out of one ciphertext", self.fanout_sends.clone());
        r.register("fanout_devices", "Devices the fan-outs of stored sends went to", self.fanout_devices.clone());
        r.register(
            "group_epoch_refusals",
            "Group changes refused: their epoch was not the next one",
            self.group_epoch_refusals.clone(),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).expect("writing to a String");
        out
    }
}
