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
//! The link rendezvous stays in the memory of the node a companion-to-be
//! is connected to (links.rs); a primary on another node reaches it by
//! asking (NATS request/reply on `tether.asks`: the node that has the
//! answer replies, the others stay silent): whose is this link ref, is an
//! approval held for this new device, is this pairing slot taken, fetch
//! it, relay this reply to its guest. The approval itself goes out as
//! a notice: the node that issued the ref retires it, the node holding the
//! companion-to-be's socket promotes it (and says so, so nobody else keeps
//! it), and if none holds it the issuing node keeps it for it.
//!
//! Without `--nats-url` (one node, the default) nothing is published.

use crate::Shared;
use crate::links::{PairingError, RefEntry, RefLookup, Replier, ReplyTo};
use crate::router::{Outbound, Promotion};
use futures_util::StreamExt;
use prost::Message as _;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tether_proto::ErrorCode;
use tether_proto::frames::{Event, EventBody, LinkApproved, PairingOffer};

/// The subject every node publishes to and listens on.
pub const SUBJECT: &str = "tether.notices";
/// The subject of questions only one node can answer.
pub const ASKS: &str = "tether.asks";
/// How long an ask waits for the node that has the answer. Nobody
/// answering is the answer "none has it": unknown refs and the usual "no
/// approval held" cost this long, only on several nodes.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// A notice on the wire: who sent it and what it says.
#[derive(Clone, PartialEq, prost::Message)]
struct Wire {
    /// The sending node (random per process), so it ignores its own.
    #[prost(uint64, tag = "1")]
    origin: u64,
    #[prost(oneof = "Notice", tags = "2, 3, 4, 5, 6, 7, 8, 9")]
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
    /// A primary approved a link: the node that issued the ref retires its
    /// batch; the node holding the guest's socket promotes it; if none
    /// does, the issuing node holds the approval.
    #[prost(message, tag = "7")]
    Approved(Approval),
    /// A guest was promoted (its approval delivered): drop any copy of it
    /// held for later.
    #[prost(bytes = "vec", tag = "8")]
    ApprovalTaken(Vec<u8>),
    /// A rate-limited action one node allowed: every node counts it too,
    /// so an account or a network spread over several nodes gets one
    /// allowance, not one per node.
    #[prost(message, tag = "9")]
    Spent(Spent),
}

/// What [`Notice::Spent`] counts.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Spent {
    #[prost(oneof = "Spend", tags = "1, 2, 3")]
    pub spend: Option<Spend>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Spend {
    /// `claimer` took a one-time key of (`handle`, `device_id`).
    #[prost(message, tag = "1")]
    Claim(ClaimRef),
    /// `account` looked up `handle`.
    #[prost(message, tag = "2")]
    Lookup(LookupRef),
    /// A restore attempt from this source (its address or /64: 4 or 16
    /// bytes).
    #[prost(bytes = "vec", tag = "3")]
    Restore(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ClaimRef {
    #[prost(string, tag = "1")]
    pub claimer: String,
    #[prost(message, required, tag = "2")]
    pub device: DeviceRef,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupRef {
    #[prost(string, tag = "1")]
    pub account: String,
    #[prost(string, tag = "2")]
    pub handle: String,
}

impl Spend {
    /// A restore attempt from `source`.
    pub fn restore(source: crate::links::Source) -> Self {
        match source.ip() {
            std::net::IpAddr::V4(v4) => Spend::Restore(v4.octets().to_vec()),
            std::net::IpAddr::V6(v6) => Spend::Restore(v6.octets().to_vec()),
        }
    }
}

/// A link approval on its way to its guest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Approval {
    /// The guest's (the new device's) Noise key.
    #[prost(bytes = "vec", tag = "1")]
    pub noise_key: Vec<u8>,
    /// The ref batch the approval used.
    #[prost(uint64, tag = "2")]
    pub batch: u64,
    #[prost(message, required, tag = "3")]
    pub event: LinkApproved,
}

/// A question on the wire.
#[derive(Clone, PartialEq, prost::Message)]
struct AskWire {
    #[prost(uint64, tag = "1")]
    origin: u64,
    #[prost(oneof = "Ask", tags = "2, 3, 4, 5, 6")]
    ask: Option<Ask>,
}

/// A question only the node holding the answer replies to.
#[derive(Clone, PartialEq, prost::Oneof)]
enum Ask {
    /// Whose is this link ref?
    #[prost(bytes = "vec", tag = "2")]
    LinkRef(Vec<u8>),
    /// Is an approval held for this Noise key? (Taken if so.)
    #[prost(bytes = "vec", tag = "3")]
    TakeApproval(Vec<u8>),
    /// Does a guest here hold this pairing slot?
    #[prost(uint32, tag = "4")]
    SlotTaken(u32),
    /// A device fetches (claims) a pairing slot held here.
    #[prost(message, tag = "5")]
    FetchPairing(SlotAsk),
    /// A device's pairing reply for the guest holding a slot here.
    #[prost(message, tag = "6")]
    ReplyPairing(SlotAsk),
}

/// A device's question about a pairing slot.
#[derive(Clone, PartialEq, prost::Message)]
struct SlotAsk {
    #[prost(uint32, tag = "1")]
    slot: u32,
    #[prost(message, required, tag = "2")]
    device: DeviceRef,
    /// The reply's payload and lookup (`ReplyPairing` only).
    #[prost(bytes = "vec", tag = "3")]
    payload: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    lookup: Vec<u8>,
}

/// A reply on the wire.
#[derive(Clone, PartialEq, prost::Message)]
struct ReplyWire {
    #[prost(oneof = "Reply", tags = "1, 2, 3, 4, 5, 6")]
    reply: Option<Reply>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Reply {
    /// The ref is valid: its guest's key and batch.
    #[prost(message, tag = "1")]
    Ref(RefFound),
    /// The ref was issued here but expired.
    #[prost(bool, tag = "2")]
    RefExpired(bool),
    #[prost(message, tag = "3")]
    Approval(LinkApproved),
    /// Yes (the slot is taken; a reply relayed).
    #[prost(bool, tag = "4")]
    Yes(bool),
    /// A fetched slot's offer.
    #[prost(bytes = "vec", tag = "5")]
    Offer(Vec<u8>),
    /// The slot is here but the request is refused: this side relayed its
    /// replies already.
    #[prost(bool, tag = "6")]
    TooManyReplies(bool),
}

#[derive(Clone, PartialEq, prost::Message)]
struct RefFound {
    #[prost(bytes = "vec", tag = "1")]
    noise_key: Vec<u8>,
    #[prost(uint64, tag = "2")]
    batch: u64,
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
    /// Encoded notices for the one task that publishes them, in the order
    /// told (an approval before its `ApprovalTaken`, a store before the
    /// next), off the writer's path.
    outbox: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    origin: u64,
}

/// Notices waiting for NATS before `tell` drops new ones.
const OUTBOX: usize = 65_536;

impl Cluster {
    /// One node alone: nothing to tell anyone.
    pub fn alone() -> Self {
        Self { nats: None, outbox: None, origin: 0 }
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
            .request_timeout(Some(ASK_TIMEOUT))
            .event_callback(move |event| {
                let reconnected = matches!(event, async_nats::Event::Connected);
                if reconnected {
                    on_reconnect();
                }
                async move {
                    match event {
                        async_nats::Event::Connected => tracing::info!("NATS connected"),
                        async_nats::Event::Disconnected => tracing::warn!(
                            "NATS disconnected: other nodes cannot reach this one's devices until it is back"
                        ),
                        other => tracing::debug!("NATS: {other}"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| crate::Error::Config(format!("NATS at {}: {e}", redact(url))))?;
        let (outbox, mut queued) = tokio::sync::mpsc::channel::<Vec<u8>>(OUTBOX);
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some(bytes) = queued.recv().await {
                if let Err(e) = publisher.publish(SUBJECT, bytes.into()).await {
                    tracing::warn!("a notice to the other nodes was dropped: {e}");
                }
            }
        });
        Ok(Self { nats: Some(client), outbox: Some(outbox), origin: u64::from_le_bytes(origin) })
    }

    /// Whether other nodes may hold devices.
    pub fn is_shared(&self) -> bool {
        self.nats.is_some()
    }

    /// Tells the other nodes (nothing when alone), after everything told
    /// before. Never waits for NATS: a notice that cannot be queued is
    /// dropped (see the module's doc).
    pub fn tell(&self, notice: Notice) {
        let Some(outbox) = &self.outbox else { return };
        let bytes = Wire { origin: self.origin, notice: Some(notice) }.encode_to_vec();
        if outbox.try_send(bytes).is_err() {
            tracing::warn!("a notice to the other nodes was dropped: {OUTBOX} are waiting for NATS");
        }
    }

    /// Asks the other nodes; `None` if none answered in time (or alone).
    async fn ask(&self, ask: Ask) -> Option<Reply> {
        let nats = self.nats.as_ref()?;
        let bytes = AskWire { origin: self.origin, ask: Some(ask) }.encode_to_vec();
        match nats.request(ASKS, bytes.into()).await {
            Ok(msg) => ReplyWire::decode(msg.payload.as_ref()).ok()?.reply,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    async_nats::RequestErrorKind::TimedOut | async_nats::RequestErrorKind::NoResponders
                ) {
                    tracing::warn!("asking the other nodes failed: {e}");
                }
                None
            }
        }
    }

    /// A link ref another node issued: what its lookup says there.
    pub async fn link_ref(&self, link_ref: &[u8]) -> RefLookup {
        match self.ask(Ask::LinkRef(link_ref.to_vec())).await {
            Some(Reply::Ref(found)) => match <[u8; 32]>::try_from(found.noise_key.as_slice()) {
                Ok(noise_key) => RefLookup::Valid(RefEntry { noise_key, batch: found.batch }),
                Err(_) => RefLookup::Unknown,
            },
            Some(Reply::RefExpired(_)) => RefLookup::Expired,
            _ => RefLookup::Unknown,
        }
    }

    /// An approval another node holds for the device with this Noise key
    /// (taken from it).
    pub async fn take_approval(&self, noise_key: &[u8; 32]) -> Option<LinkApproved> {
        match self.ask(Ask::TakeApproval(noise_key.to_vec())).await? {
            Reply::Approval(a) => Some(a),
            _ => None,
        }
    }

    /// Whether a guest on another node holds pairing slot `slot`.
    pub async fn slot_taken(&self, slot: u16) -> bool {
        matches!(self.ask(Ask::SlotTaken(slot.into())).await, Some(Reply::Yes(_)))
    }

    /// Fetches (claims, for `device`) a pairing slot a guest on another
    /// node holds: its offer.
    pub async fn fetch_pairing(&self, slot: u16, device: (&str, u32)) -> Result<Vec<u8>, PairingError> {
        let ask = SlotAsk { slot: slot.into(), device: DeviceRef::new(device.0, device.1), ..SlotAsk::default() };
        match self.ask(Ask::FetchPairing(ask)).await {
            Some(Reply::Offer(payload)) => Ok(payload),
            _ => Err(PairingError::Unknown),
        }
    }

    /// Relays `device`'s pairing reply to the guest on another node that
    /// holds slot `slot`.
    pub async fn reply_pairing(
        &self,
        slot: u16,
        device: (&str, u32),
        payload: Vec<u8>,
        lookup: Vec<u8>,
    ) -> Result<(), PairingError> {
        let ask = SlotAsk { slot: slot.into(), device: DeviceRef::new(device.0, device.1), payload, lookup };
        match self.ask(Ask::ReplyPairing(ask)).await {
            Some(Reply::Yes(_)) => Ok(()),
            Some(Reply::TooManyReplies(_)) => Err(PairingError::TooManyReplies),
            _ => Err(PairingError::Unknown),
        }
    }

    /// Listens for the other nodes' notices and acts on those for this
    /// node's devices, and answers the asks it has the answer to, until
    /// the server is gone.
    pub async fn listen(&self, shared: Weak<Shared>) -> Result<(), crate::Error> {
        let Some(nats) = &self.nats else { return Ok(()) };
        let subscribe_error = |e| crate::Error::Config(format!("NATS subscribe: {e}"));
        let mut notices = nats.subscribe(SUBJECT).await.map_err(subscribe_error)?;
        let mut asks = nats.subscribe(ASKS).await.map_err(subscribe_error)?;
        let origin = self.origin;
        let weak = shared.clone();
        tokio::spawn(async move {
            while let Some(msg) = notices.next().await {
                let Some(s) = weak.upgrade() else { break };
                match Wire::decode(msg.payload.as_ref()) {
                    Ok(Wire { origin: from, notice: Some(notice) }) if from != origin => apply(&s, notice),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("an undecodable notice from NATS was dropped: {e}"),
                }
            }
        });
        let nats = nats.clone();
        tokio::spawn(async move {
            while let Some(msg) = asks.next().await {
                let Some(s) = shared.upgrade() else { break };
                let (Some(reply_to), Ok(AskWire { origin: from, ask: Some(ask) })) =
                    (msg.reply, AskWire::decode(msg.payload.as_ref()))
                else {
                    continue;
                };
                if from == origin {
                    continue;
                }
                if let Some(reply) = answer(&s, ask) {
                    let bytes = ReplyWire { reply: Some(reply) }.encode_to_vec();
                    if let Err(e) = nats.publish(reply_to, bytes.into()).await {
                        tracing::warn!("a reply to another node was dropped: {e}");
                    }
                }
            }
        });
        Ok(())
    }
}

/// This node's answer to another's ask, if it has one.
fn answer(s: &Shared, ask: Ask) -> Option<Reply> {
    let now = s.clock.now_ms();
    match ask {
        Ask::LinkRef(link_ref) => match s.links.lookup(&link_ref, now) {
            RefLookup::Valid(e) => Some(Reply::Ref(RefFound { noise_key: e.noise_key.to_vec(), batch: e.batch })),
            RefLookup::Expired => Some(Reply::RefExpired(true)),
            RefLookup::Unknown => None,
        },
        Ask::TakeApproval(key) => {
            let key = <[u8; 32]>::try_from(key.as_slice()).ok()?;
            s.links.take_approval(&key, now).map(Reply::Approval)
        }
        Ask::SlotTaken(slot) => s.links.has_pairing(u16::try_from(slot).ok()?, now).then_some(Reply::Yes(true)),
        Ask::FetchPairing(a) => {
            let slot = u16::try_from(a.slot).ok()?;
            s.links.fetch_pairing(slot, (&a.device.handle, a.device.device_id), now).ok().map(Reply::Offer)
        }
        Ask::ReplyPairing(a) => {
            let slot = u16::try_from(a.slot).ok()?;
            match s.links.reply_pairing(slot, Replier::Device(&a.device.handle, a.device.device_id), now) {
                Ok(ReplyTo::Owner(guest)) => {
                    guest.push(Outbound::Event(Box::new(Event {
                        body: Some(EventBody::PairingAnswer(PairingOffer { payload: a.payload, lookup: a.lookup })),
                    })));
                    Some(Reply::Yes(true))
                }
                Err(PairingError::TooManyReplies) => Some(Reply::TooManyReplies(true)),
                _ => None,
            }
        }
    }
}

/// Delivers a link approval on this node, as far as it can: retires the
/// ref batch if it was issued here, promotes the guest if its socket is
/// here (and tells the others it was), and holds the approval for the
/// guest if the batch was issued here and the guest is not. The node where
/// the primary approved runs this, then tells the others (`Approved`),
/// which run it too.
pub fn deliver_approval(s: &Shared, approval: Approval) {
    let Ok(noise_key) = <[u8; 32]>::try_from(approval.noise_key.as_slice()) else { return };
    let now = s.clock.now_ms();
    let issued_here = s.links.retire(&RefEntry { noise_key, batch: approval.batch }, now);
    let event = approval.event;
    if let Some(guest) = s.router.guest(&noise_key) {
        guest.push(Outbound::Promote(Box::new(Promotion {
            handle: event.handle.clone(),
            device_id: event.device_id,
            event: Event { body: Some(EventBody::LinkApproved(event)) },
        })));
        s.cluster.tell(Notice::ApprovalTaken(noise_key.to_vec()));
    } else if issued_here {
        let (handle, device_id) = (event.handle.clone(), event.device_id);
        let elsewhere = crate::links::Source::of(std::net::IpAddr::from([0, 0, 0, 0]));
        if s.links.hold_approval(noise_key, event, elsewhere, now).is_err() {
            tracing::warn!(%handle, device_id, "no room to hold a link approval");
        }
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
        Notice::Acked(d) => s.usage.acked(&d.handle, d.device_id),
        Notice::Approved(a) => deliver_approval(s, a),
        // Counted as if allowed here: a spent allowance stays spent, and
        // one already used up stays used up (the result does not matter).
        Notice::Spent(Spent { spend: Some(spend) }) => {
            let now = s.clock.now_ms();
            let _ = match spend {
                Spend::Claim(c) => s.limits.reserve_claim(&c.claimer, &c.device.handle, c.device.device_id, now),
                Spend::Lookup(l) => s.limits.lookup(&l.account, &l.handle, now),
                Spend::Restore(ip) => {
                    let ip = match ip.len() {
                        4 => <[u8; 4]>::try_from(ip.as_slice()).map(std::net::IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(ip.as_slice()).map(std::net::IpAddr::from).ok(),
                        _ => None,
                    };
                    match ip {
                        Some(ip) => s.limits.restore(crate::links::Source::of(ip), now),
                        None => Ok(()),
                    }
                }
            };
        }
        Notice::Spent(Spent { spend: None }) => {}
        Notice::ApprovalTaken(key) => {
            if let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) {
                s.links.take_approval(&key, s.clock.now_ms());
            }
        }
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
