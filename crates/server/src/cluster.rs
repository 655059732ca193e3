//! Several nodes: what one node tells the others, over NATS core
//! (docs/architecture.md, "Several nodes"). Only wake-ups and small events
//! travel this way; every message stays in the database (PostgreSQL), so a
//! notice lost in NATS delays a delivery but loses nothing: a device that
//! missed one gets its copies when it next drains its queue (on connect,
//! and on every node whenever NATS comes back).
//!
//! One subject, every node subscribed: a notice names the device it is
//! for, and the node holding that device's connection acts on it, the
//! others drop it. A node ignores its own notices (it already acted
//! locally before publishing).
//!
//! Without `--nats-url` (one node, the default) nothing is published.

use crate::router::Outbound;
use crate::Shared;
use futures_util::StreamExt;
use prost::Message as _;
use std::sync::{Arc, Weak};
use tether_proto::ErrorCode;
use tether_proto::frames::Event;

/// The subject every node publishes to and listens on.
pub const SUBJECT: &str = "tether.notices";

/// A notice on the wire: who sent it and what it says.
#[derive(Clone, PartialEq, prost::Message)]
struct Wire {
    /// The sending node (random per process), so it ignores its own.
    #[prost(uint64, tag = "1")]
    origin: u64,
    #[prost(oneof = "Notice", tags = "2, 3, 4, 5, 6")]
    notice: Option<Notice>,
}

/// What one node tells the others.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Notice {
    /// Copies were stored for this device: the node holding it drains its
    /// queue from the store; every node forgets its queue size.
    #[prost(message, tag = "2")]
    Stored(DeviceRef),
    /// An event for this device (its account's list changed, its prekeys
    /// run low, a pairing answer).
    #[prost(message, tag = "3")]
    Event(DeviceEvent),
    /// This device must close, with the code (removed, restored away).
    #[prost(message, tag = "4")]
    Close(DeviceClose),
    /// The account's devices changed: forget its cached device set.
    #[prost(message, tag = "5")]
    DevicesChanged(AccountRef),
    /// This device acknowledged copies: forget its cached queue size.
    #[prost(message, tag = "6")]
    Acked(DeviceRef),
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct DeviceRef {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceEvent {
    #[prost(message, required, tag = "1")]
    pub device: DeviceRef,
    #[prost(message, required, tag = "2")]
    pub event: Event,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceClose {
    #[prost(message, required, tag = "1")]
    pub device: DeviceRef,
    /// The code's wire string (`ErrorCode::as_str`).
    #[prost(string, tag = "2")]
    pub code: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AccountRef {
    #[prost(string, tag = "1")]
    pub handle: String,
}

impl DeviceRef {
    pub fn new(handle: &str, device_id: u32) -> Self {
        Self { handle: handle.to_string(), device_id }
    }
}

/// This node's link to the others: a NATS connection, or none (one node).
pub struct Cluster {
    nats: Option<async_nats::Client>,
    origin: u64,
}

impl Cluster {
    /// One node alone: nothing to tell anyone.
    pub fn alone() -> Self {
        Self { nats: None, origin: 0 }
    }

    /// Connects to NATS at `url`. The connection retries for as long as
    /// the node runs, so a node starts while NATS is down, and serves its
    /// own devices meanwhile; `on_reconnect` runs every time it (re)connects.
    pub async fn connect(url: &str, on_reconnect: impl Fn() + Send + Sync + 'static) -> Result<Self, crate::Error> {
        let mut origin = [0u8; 8];
        getrandom::fill(&mut origin).expect("OS randomness");
        let client = async_nats::ConnectOptions::new()
            .name("tether-server")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let reconnected = matches!(event, async_nats::Event::Connected);
                if reconnected {
                    on_reconnect();
                }
                async move {
                    match event {
                        async_nats::Event::Connected => tracing::info!("NATS connected"),
                        async_nats::Event::Disconnected => tracing::warn!("NATS disconnected: other nodes cannot reach this one's devices until it is back"),
                        other => tracing::debug!("NATS: {other}"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| crate::Error::Config(format!("NATS at {}: {e}", redact(url))))?;
        Ok(Self { nats: Some(client), origin: u64::from_le_bytes(origin) })
    }

    /// Whether other nodes may hold devices.
    pub fn is_shared(&self) -> bool {
        self.nats.is_some()
    }

    /// Tells the other nodes (nothing when alone). Never waits for NATS:
    /// a notice that cannot go now is dropped (see the module's doc).
    pub fn tell(&self, notice: Notice) {
        let Some(nats) = &self.nats else { return };
        let bytes = Wire { origin: self.origin, notice: Some(notice) }.encode_to_vec();
        let nats = nats.clone();
        tokio::spawn(async move {
            if let Err(e) = nats.publish(SUBJECT, bytes.into()).await {
                tracing::warn!("a notice to the other nodes was dropped: {e}");
            }
        });
    }

    /// Listens for the other nodes' notices and acts on those for this
    /// node's devices, until the server is gone.
    pub async fn listen(&self, shared: Weak<Shared>) -> Result<(), crate::Error> {
        let Some(nats) = &self.nats else { return Ok(()) };
        let mut notices =
            nats.subscribe(SUBJECT).await.map_err(|e| crate::Error::Config(format!("NATS subscribe: {e}")))?;
        let origin = self.origin;
        tokio::spawn(async move {
            while let Some(msg) = notices.next().await {
                let Some(s) = shared.upgrade() else { break };
                match Wire::decode(msg.payload.as_ref()) {
                    Ok(Wire { origin: from, notice: Some(notice) }) if from != origin => apply(&s, notice),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("an undecodable notice from NATS was dropped: {e}"),
                }
            }
        });
        Ok(())
    }
}

/// Acts on another node's notice.
fn apply(s: &Arc<Shared>, notice: Notice) {
    match notice {
        Notice::Stored(d) => {
            s.usage.forget(&d.handle, d.device_id);
            if let Some(conn) = s.router.device(&d.handle, d.device_id) {
                conn.lag();
            }
        }
        Notice::Event(e) => {
            if let Some(conn) = s.router.device(&e.device.handle, e.device.device_id) {
                conn.push(Outbound::Event(Box::new(e.event)));
            }
        }
        Notice::Close(c) => {
            if let Some(conn) = s.router.take_device(&c.device.handle, c.device.device_id) {
                conn.close(ErrorCode::parse(&c.code).unwrap_or(ErrorCode::DeviceRemoved));
            }
        }
        Notice::DevicesChanged(a) => s.forget_devices(&a.handle),
        Notice::Acked(d) => s.usage.forget(&d.handle, d.device_id),
    }
}

/// A URL for logs: without its user and password.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_round_trips_and_garbage_is_an_error() {
        let wire = Wire {
            origin: 7,
            notice: Some(Notice::Close(DeviceClose {
                device: DeviceRef::new("alice", 2),
                code: ErrorCode::DeviceRemoved.as_str().into(),
            })),
        };
        assert_eq!(Wire::decode(wire.encode_to_vec().as_slice()).unwrap(), wire);
        assert!(Wire::decode(&[0xff, 0xff, 0xff][..]).is_err());
    }

    #[test]
    fn urls_in_logs_lose_their_credentials() {
        assert_eq!(redact("nats://user:secret@10.0.0.1:4222"), "nats://…@10.0.0.1:4222");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
