//! One function per request. Each checks who may ask (guest, device,
//! primary), validates the request, and returns a response body or a
//! [`Failure`] with a documented code. Nothing here panics on peer input.

use crate::Shared;
use crate::blobs::token::Direction;
use crate::blobs::{MAX_BLOBS_PER_SEND, MAX_FETCHED, MAX_UNFINISHED, UNSENT_TTL_MS};
use crate::bounded::Refused;
use crate::conn::{Conn, Session};
use crate::cluster::{LookupRef, Spend};
use crate::limits::Limited;
use crate::links::{PairingError, RefLookup, Replier, ReplyTo};
use crate::router::{Outbound, Outcome, Promotion};
use crate::store::{
    Account, AckedCopies, Blob, BlobCreated, BlobId, BlobLimits, BlobSend, GroupEpochStep, GroupId, ListUpdate,
    NewDevice, NewEnvelope, Prekey, Restoration, StoreError,
};
use crate::writer::{Op, SendWrite};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tether_proto::ErrorCode;
use tether_proto::device_list::{self, PRIMARY_DEVICE};
use tether_proto::frames::*;

/// Most copies in one send.
const MAX_COPIES: usize = 1000;
/// Most accounts one send's copies may address.
const MAX_ACCOUNTS: usize = 64;
/// Most devices one send's fan-out may go to (its accounts are limited by
/// the config's `max_group_size`).
const MAX_FANOUT_DEVICES: usize = 4096;
/// Largest ciphertext of one copy: its envelope (with the sender's handle
/// and ids) must still fit one Noise frame on the way out.
pub const MAX_CIPHERTEXT: usize = tether_proto::noise::MAX_FRAME - 1024;
/// Most one-time keys stored per device.
const MAX_STORED_PREKEYS: u32 = 500;
/// Device ids stay far from overflow.
const MAX_DEVICE_ID: u32 = 1_000_000;
/// Most one-time keys in one upload.
const MAX_PREKEYS: usize = 200;
/// Largest opaque link approval.
const MAX_OPAQUE: usize = 8 * 1024;
/// Largest pairing slot payload (a PAKE message: SPAKE2's is 33 bytes).
const MAX_PAIRING_OFFER: usize = 64;
/// Largest pairing reply payload (PAKE confirmation, then the link code).
const MAX_PAIRING_REPLY: usize = 4096;
/// Most refs per `RequestLinkRefs`, whatever the config says.
const MAX_LINK_REFS: u32 = 16;
/// How long the first link ref lives, and each later one.
const FIRST_REF_MS: u64 = 60_000;
const NEXT_REF_MS: u64 = 20_000;

/// A refused request.
#[derive(Debug)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
    pub lists: Vec<DeviceListReply>,
    /// With `group_epoch_taken`: the group's stored epoch.
    pub group_epoch: u64,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), lists: vec![], group_epoch: 0 }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!("store unavailable: {e}");
            return unavailable();
        }
        tracing::error!("store: {e}");
        Failure::new(ErrorCode::Internal, "the server's store failed; try again")
    }
}

/// The database is unreachable for now (see [`StoreError::is_unavailable`]).
pub fn unavailable() -> Failure {
    Failure::new(ErrorCode::StoreUnavailable, "the server's database is unreachable for now; nothing was done: try again shortly")
}

type Result<T> = std::result::Result<T, Failure>;

/// How a request is answered.
#[derive(Debug)]
pub enum Answer {
    /// Now, with this body.
    Now(ResponseBody),
    /// When its durable write is committed (the writer hands the outcome
    /// back to the connection, which answers then).
    Later,
}

pub async fn handle(c: &mut Conn, id: u64, req: Request) -> Result<Answer> {
    match req {
        Request::Send(r) => send(c, id, r).await,
        Request::Ack(r) => {
            let (handle, device_id) = device(c)?;
            if r.envelope_ids.is_empty() {
                return Ok(Answer::Now(ResponseBody::Done(Done {})));
            }
            let op = Op::Ack(AckedCopies { handle, device_id, ids: r.envelope_ids });
            c.submit(id, op, Outcome::Acked).await?;
            Ok(Answer::Later)
        }
        other => handle_now(c, other).await.map(Answer::Now),
    }
}

/// Requests answered as soon as they ran.
async fn handle_now(c: &mut Conn, req: Request) -> Result<ResponseBody> {
    match req {
        Request::Send(_) | Request::Ack(_) => unreachable!("handled by `handle`"),
        Request::Ping(_) => Ok(ResponseBody::Pong(Pong { time_ms: c.s.clock.now_ms() })),
        Request::Register(r) => register(c, r).await,
        Request::GetDeviceList(r) => {
            let (me, _) = device(c)?;
            let handle = handle_arg(&r.handle)?;
            if handle != me {
                lookup_token(c, &me, &handle)?;
            }
            Ok(ResponseBody::DeviceList(list_reply(&c.s, &handle).await?))
        }
        Request::PublishDeviceList(r) => publish_list(c, r).await,
        Request::ListDevices(_) => list_devices(c).await,
        Request::RemoveDevice(r) => remove_device(c, r).await,
        Request::UploadPrekeys(r) => upload_prekeys(c, r).await,
        Request::ClaimPrekey(r) => claim_prekey(c, r).await,
        Request::RequestLinkRefs(_) => {
            guest(c)?;
            let cfg = &c.s.config;
            let n = cfg.link_refs.clamp(1, MAX_LINK_REFS);
            let refs =
                c.s.links
                    .issue(c.key, c.source, c.s.clock.now_ms(), n, FIRST_REF_MS, NEXT_REF_MS)
                    .map_err(|e| rendezvous_full(e, "link codes"))?;
            Ok(ResponseBody::LinkRefs(LinkRefs {
                refs: refs
                    .into_iter()
                    .map(|(id, not_before_ms, expires_ms)| LinkRef { link_ref: id.to_vec(), not_before_ms, expires_ms })
                    .collect(),
            }))
        }
        Request::ApproveLink(r) => approve_link(c, r).await,
        Request::PairingPublish(r) => pairing_publish(c, r).await,
        Request::PairingFetch(r) => pairing_fetch(c, r).await,
        Request::PairingReply(r) => pairing_reply(c, r).await,
        Request::PublishEntrySignature(r) => publish_entry_signature(c, r).await,
        Request::RestoreLookup(r) => restore_lookup(c, r).await,
        Request::Restore(r) => restore(c, r).await,
        Request::BlobUpload(r) => blob_upload(c, r).await,
        Request::BlobDownload(r) => blob_download(c, r).await,
        Request::BlobFetched(r) => blob_fetched(c, r).await,
        Request::BlobDelete(r) => blob_delete(c, r).await,
    }
}

// ------------------------------------------------------------------ helpers

fn bad(msg: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::BadRequest, msg)
}

fn unknown_pairing() -> Failure {
    Failure::new(ErrorCode::UnknownPairing, "no device is waiting with that pairing code: check it, or make a new one")
}

/// A rendezvous table refused an entry: `server_busy` when it is full,
/// `rate_limited` when the caller's source holds its share.
fn rendezvous_full(e: Refused, what: &str) -> Failure {
    match e {
        Refused::Full => Failure::new(
            ErrorCode::ServerBusy,
            format!("the server holds too many pending {what}; try again in a minute"),
        ),
        Refused::SourceFull => Failure::new(
            ErrorCode::RateLimited,
            format!("too many pending {what} from your network; let some expire or finish first"),
        ),
    }
}

/// A lookup of another account: free for a handle looked up lately, else
/// one of the account's tokens.
fn lookup_token(c: &Conn, me: &str, handle: &str) -> Result<()> {
    c.s.limits.lookup(me, handle, c.s.clock.now_ms()).map_err(|e| match e {
        Limited::Exhausted => {
            Failure::new(ErrorCode::RateLimited, "too many lookups of other accounts; slow down and try again later")
        }
        Limited::Busy => Failure::new(ErrorCode::ServerBusy, "the server is busy; try again in a minute"),
    })?;
    spent(&c.s, Spend::Lookup(LookupRef { account: me.to_string(), handle: handle.to_string() }));
    Ok(())
}

/// Tells the other nodes (if any) what this one counted against a limit.
fn spent(s: &Shared, spend: Spend) {
    if s.cluster.is_shared() {
        s.cluster.tell(crate::cluster::Notice::Spent(crate::cluster::Spent { spend: Some(spend) }));
    }
}

/// A pairing slot number: exactly 2 bytes, big-endian, top bit clear.
fn slot_arg(lookup: &[u8]) -> Result<u16> {
    match <[u8; 2]>::try_from(lookup) {
        Ok(b) if b[0] & 0x80 == 0 => Ok(u16::from_be_bytes(b)),
        _ => Err(bad("a pairing lookup is a 15-bit slot number: 2 bytes, big-endian, top bit clear")),
    }
}

fn pairing_failure(e: PairingError) -> Failure {
    match e {
        PairingError::Taken => {
            Failure::new(ErrorCode::PairingSlotTaken, "that pairing slot is in use: make a new pairing code")
        }
        PairingError::Unknown => unknown_pairing(),
        PairingError::TooManyReplies => bad(format!(
            "at most {} pairing replies per side: make a new pairing code",
            crate::links::MAX_PAIRING_REPLIES
        )),
        PairingError::Refused(r) => rendezvous_full(r, "pairing codes"),
    }
}

/// The caller's (handle, device id); refuses guests.
fn device(c: &Conn) -> Result<(String, u32)> {
    match &c.session {
        Session::Device { handle, device_id } => Ok((handle.clone(), *device_id)),
        Session::Guest => Err(Failure::new(ErrorCode::NotRegistered, "register or link this device first")),
    }
}

/// The caller's handle if it is the primary.
fn primary(c: &Conn) -> Result<String> {
    let (handle, id) = device(c)?;
    if id != PRIMARY_DEVICE {
        return Err(Failure::new(ErrorCode::NotPrimary, "only the primary device may do this"));
    }
    Ok(handle)
}

fn guest(c: &Conn) -> Result<()> {
    match c.session {
        Session::Guest => Ok(()),
        Session::Device { .. } => {
            Err(Failure::new(ErrorCode::AlreadyRegistered, "this device already belongs to an account"))
        }
    }
}

fn handle_arg(h: &str) -> Result<String> {
    tether_proto::normalize_handle(h).map_err(|e| Failure::new(ErrorCode::InvalidHandle, e.to_string()))
}

fn proto_failure(e: tether_proto::Error) -> Failure {
    match e {
        tether_proto::Error::BadSignature(_) | tether_proto::Error::InvalidKey(_) => {
            Failure::new(ErrorCode::BadSignature, "the device list's signature does not verify with the account key")
        }
        other => Failure::new(ErrorCode::InvalidDeviceList, other.to_string()),
    }
}

async fn account(s: &Shared, handle: &str) -> Result<Account> {
    s.store.account(handle).await?.ok_or_else(|| Failure::new(ErrorCode::UnknownAccount, "no account has that handle"))
}

/// An account's signed list plus the devices removed since it was signed.
pub async fn list_reply(s: &Shared, handle: &str) -> Result<DeviceListReply> {
    let a = account(s, handle).await?;
    let removed =
        s.store.devices(handle).await?.into_iter().filter(|d| d.removed_ms.is_some()).map(|d| d.device_id).collect();
    let signed = SignedDeviceList { body: a.list_body, signature: a.list_sig, entry_signatures: vec![] };
    Ok(DeviceListReply {
        handle: a.handle,
        account_key: a.account_key,
        list: Some(with_entry_signatures(s, handle, signed).await?),
        removed,
    })
}

/// A signed list with the entry signatures its devices handed in (a
/// device's own signature in the body wins; the rest ride beside it).
async fn with_entry_signatures(s: &Shared, handle: &str, mut signed: SignedDeviceList) -> Result<SignedDeviceList> {
    signed.entry_signatures = s
        .store
        .entry_signatures(handle)
        .await?
        .into_iter()
        .map(|(device_id, signature)| EntrySignature { device_id, signature })
        .collect();
    Ok(signed)
}

/// A device hands in its own signature over its entry in the current list.
async fn publish_entry_signature(c: &mut Conn, r: PublishEntrySignature) -> Result<ResponseBody> {
    let (handle, device_id) = device(c)?;
    let a = account(&c.s, &handle).await?;
    let list = <DeviceList as prost::Message>::decode(a.list_body.as_slice()).map_err(|_| Failure::new(ErrorCode::Internal, "the stored list is unreadable"))?;
    let mut entry = device_list::device(&list, device_id)
        .cloned()
        .ok_or_else(|| Failure::new(ErrorCode::UnknownDevice, "this device is not in its account's list"))?;
    entry.self_signature = r.signature;
    if device_list::verify_entry(&handle, &entry).is_err() {
        return Err(Failure::new(ErrorCode::BadSignature, "that is not this device's signature over its entry"));
    }
    c.s.store.set_entry_signature(&handle, device_id, &entry.self_signature).await?;
    // The account's other devices fetch the list again, now with it.
    if let Some(active) = c.s.active_devices(&handle).await? {
        announce_list(&c.s, &handle, &active, device_id);
    }
    Ok(ResponseBody::Done(Done {}))
}

/// Verifies a new list from the primary against the account: signature,
/// handle, a newer version, the same primary.
async fn check_new_list(
    key: &[u8; 32],
    a: &Account,
    signed: Option<SignedDeviceList>,
) -> Result<(SignedDeviceList, DeviceList)> {
    let signed = signed.ok_or_else(|| bad("a signed device list is required"))?;
    let list = device_list::verify(&a.account_key, &signed).map_err(proto_failure)?;
    if list.handle != a.handle {
        return Err(Failure::new(ErrorCode::InvalidDeviceList, "the list names another account"));
    }
    if list.version <= a.list_version {
        return Err(Failure::new(
            ErrorCode::InvalidDeviceList,
            "the list's version must be newer than the current one",
        ));
    }
    let primary = device_list::device(&list, PRIMARY_DEVICE)
        .ok_or_else(|| Failure::new(ErrorCode::InvalidDeviceList, "no primary"))?;
    if primary.noise_key != key {
        return Err(Failure::new(ErrorCode::InvalidDeviceList, "the list must keep this primary"));
    }
    Ok((signed, list))
}

/// Tells the account's other online devices that its list changed.
pub(crate) fn announce_list(s: &Shared, handle: &str, active: &BTreeSet<u32>, except: u32) {
    for &id in active {
        if id == except {
            continue;
        }
        s.push_event(
            handle,
            id,
            Event { body: Some(EventBody::DeviceListUpdated(DeviceListUpdated { handle: handle.to_string() })) },
        );
    }
}

fn list_ids(list: &DeviceList) -> BTreeSet<u32> {
    list.devices.iter().map(|d| d.device_id).collect()
}

// ----------------------------------------------------------------- requests

/// A guest opens (or replaces) its pairing slot with its first PAKE message.
async fn pairing_publish(c: &mut Conn, r: PairingPublish) -> Result<ResponseBody> {
    guest(c)?;
    let slot = slot_arg(&r.lookup)?;
    if r.payload.is_empty() || r.payload.len() > MAX_PAIRING_OFFER {
        return Err(bad(format!("a pairing offer is 1 to {MAX_PAIRING_OFFER} bytes")));
    }
    let now = c.s.clock.now_ms();
    // A slot is unique over all nodes: a device on any node fetches it.
    if c.s.cluster.is_shared() && !c.s.links.has_pairing(slot, now) && c.s.cluster.slot_taken(slot).await {
        return Err(pairing_failure(PairingError::Taken));
    }
    let expires = now + c.s.config.pairing_ttl.as_millis() as u64;
    c.s.links.publish_pairing(slot, c.handle.clone(), r.payload, c.source, now, expires).map_err(pairing_failure)?;
    Ok(ResponseBody::Done(Done {}))
}

/// A device claims a slot (the first fetch wins; one guess per code).
async fn pairing_fetch(c: &mut Conn, r: PairingFetch) -> Result<ResponseBody> {
    let (handle, device_id) = device(c)?;
    let slot = slot_arg(&r.lookup)?;
    let mut fetched = c.s.links.fetch_pairing(slot, (&handle, device_id), c.s.clock.now_ms());
    if matches!(fetched, Err(PairingError::Unknown)) && c.s.cluster.is_shared() {
        // The guest that holds it may be on another node.
        fetched = c.s.cluster.fetch_pairing(slot, (&handle, device_id)).await;
    }
    let payload = fetched.map_err(pairing_failure)?;
    Ok(ResponseBody::Pairing(PairingOffer { payload, lookup: r.lookup }))
}

/// Relays a PAKE message between a slot's guest and its claimer.
async fn pairing_reply(c: &mut Conn, r: PairingReply) -> Result<ResponseBody> {
    let slot = slot_arg(&r.lookup)?;
    if r.payload.is_empty() || r.payload.len() > MAX_PAIRING_REPLY {
        return Err(bad(format!("a pairing reply is 1 to {MAX_PAIRING_REPLY} bytes")));
    }
    let from = match &c.session {
        Session::Guest => Replier::Guest(c.handle.id),
        Session::Device { handle, device_id } => Replier::Device(handle, *device_id),
    };
    let device = match &from {
        Replier::Device(h, d) => Some((h.to_string(), *d)),
        Replier::Guest(_) => None,
    };
    let to = match (c.s.links.reply_pairing(slot, from, c.s.clock.now_ms()), device) {
        (Err(PairingError::Unknown), Some((h, d))) if c.s.cluster.is_shared() => {
            // A device's reply to a guest on another node: relayed there.
            c.s.cluster.reply_pairing(slot, (&h, d), r.payload, r.lookup).await.map_err(pairing_failure)?;
            return Ok(ResponseBody::Done(Done {}));
        }
        (to, _) => to.map_err(pairing_failure)?,
    };
    let answer = Event { body: Some(EventBody::PairingAnswer(PairingOffer { payload: r.payload, lookup: r.lookup })) };
    match to {
        ReplyTo::Owner(conn) => conn.push(Outbound::Event(Box::new(answer))),
        // The claimer, wherever it is connected (on one node: here, or
        // the reply is refused as before).
        ReplyTo::Claimer(handle, device_id) => {
            if !c.s.cluster.is_shared() && c.s.router.device(&handle, device_id).is_none() {
                return Err(unknown_pairing());
            }
            c.s.push_event(&handle, device_id, answer);
        }
    }
    Ok(ResponseBody::Done(Done {}))
}

async fn register(c: &mut Conn, r: Register) -> Result<ResponseBody> {
    guest(c)?;
    let handle = handle_arg(&r.handle)?;
    if r.account_key.len() != 32 {
        return Err(bad("account_key must be a 32-byte Ed25519 public key"));
    }
    let signed = r.device_list.ok_or_else(|| bad("the first device list is required"))?;
    let list = device_list::verify(&r.account_key, &signed).map_err(proto_failure)?;
    let me = device_list::device(&list, PRIMARY_DEVICE);
    if list.handle != handle || list.devices.len() != 1 || list.version == 0 || me.is_none_or(|d| d.noise_key != c.key)
    {
        return Err(Failure::new(
            ErrorCode::InvalidDeviceList,
            "the first list must name this handle and hold exactly this device as device 0",
        ));
    }
    let me = me.expect("checked");
    let now = c.s.clock.now_ms();
    if c.s.store.account(&handle).await?.is_some() {
        return Err(Failure::new(ErrorCode::HandleTaken, "that handle is taken"));
    }
    if c.s.config.registration_policy() == crate::Registration::Token
        && !c.s.store.use_token(&r.token, &handle, now).await?
    {
        return Err(Failure::new(
            ErrorCode::RegistrationClosed,
            "this server needs a registration token (ask its operator: tether-server token create)",
        ));
    }
    let acc = Account {
        handle: handle.clone(),
        account_key: r.account_key,
        list_version: list.version,
        list_body: signed.body,
        list_sig: signed.signature,
        next_device: 1,
    };
    let primary = NewDevice {
        device_id: PRIMARY_DEVICE,
        noise_key: c.key.to_vec(),
        platform: me.platform.clone(),
        name: me.name.clone(),
    };
    match c.s.store.create_account(&acc, &primary, now).await {
        Ok(()) => {}
        Err(StoreError::HandleTaken) => {
            return Err(Failure::new(ErrorCode::HandleTaken, "that handle is taken"));
        }
        Err(StoreError::KeyTaken) => {
            return Err(Failure::new(ErrorCode::AlreadyRegistered, "this device key is already registered"));
        }
        Err(e) => return Err(e.into()),
    }
    c.s.devices_changed(&handle);
    tracing::info!(%handle, "account registered");
    c.become_device(handle.clone(), PRIMARY_DEVICE, None)
        .await
        .map_err(|_| Failure::new(ErrorCode::Internal, "could not start the session"))?;
    Ok(ResponseBody::Registered(Registered { handle, device_id: PRIMARY_DEVICE }))
}

/// A restore attempt (lookup or restore) takes one of the source's tokens.
fn restore_token(c: &Conn) -> Result<()> {
    c.s.limits.restore(c.source, c.s.clock.now_ms()).map_err(|e| match e {
        Limited::Exhausted => {
            Failure::new(ErrorCode::RateLimited, "too many account restores from your network; try again in an hour")
        }
        Limited::Busy => Failure::new(ErrorCode::ServerBusy, "the server is busy; try again in a minute"),
    })?;
    spent(&c.s, Spend::restore(c.source));
    Ok(())
}

/// A guest about to restore an account asks for its current list, naming
/// the account key its recovery phrase gives.
async fn restore_lookup(c: &mut Conn, r: RestoreLookup) -> Result<ResponseBody> {
    guest(c)?;
    restore_token(c)?;
    let handle = handle_arg(&r.handle)?;
    let a = account(&c.s, &handle).await?;
    if a.account_key != r.account_key {
        return Err(Failure::new(
            ErrorCode::AccountKeyMismatch,
            "that is not this account's key: the recovery phrase belongs to another account",
        ));
    }
    Ok(ResponseBody::DeviceList(list_reply(&c.s, &handle).await?))
}

/// A guest restores an account from its recovery phrase: a new list signed
/// by the stored account key, a newer version, exactly this connection as
/// device 0 with its own entry signature. Every other device of the
/// account is removed and told `account_restored`.
async fn restore(c: &mut Conn, r: Restore) -> Result<ResponseBody> {
    guest(c)?;
    restore_token(c)?;
    let handle = handle_arg(&r.handle)?;
    let a = account(&c.s, &handle).await?;
    let signed = r.device_list.ok_or_else(|| bad("a signed device list is required"))?;
    let list = device_list::verify(&a.account_key, &signed).map_err(|e| match e {
        tether_proto::Error::BadSignature(_) | tether_proto::Error::InvalidKey(_) => Failure::new(
            ErrorCode::BadSignature,
            "the list is not signed by this account's key: that is not the account's recovery phrase",
        ),
        other => Failure::new(ErrorCode::InvalidDeviceList, other.to_string()),
    })?;
    if list.handle != handle {
        return Err(Failure::new(ErrorCode::InvalidDeviceList, "the list names another account"));
    }
    if list.version <= a.list_version {
        return Err(Failure::new(
            ErrorCode::InvalidDeviceList,
            "the list's version must be newer than the current one",
        ));
    }
    let me = device_list::device(&list, PRIMARY_DEVICE);
    let Some(me) = me.filter(|d| list.devices.len() == 1 && d.noise_key == c.key) else {
        return Err(Failure::new(
            ErrorCode::InvalidDeviceList,
            "a restored list holds exactly one device: this one, as device 0",
        ));
    };
    if device_list::verify_entry(&handle, me).is_err() {
        return Err(Failure::new(ErrorCode::BadSignature, "the primary's entry is not signed by its own key"));
    }
    let restoration = Restoration {
        handle: handle.clone(),
        expected_version: a.list_version,
        version: list.version,
        body: signed.body,
        sig: signed.signature,
        primary: NewDevice {
            device_id: PRIMARY_DEVICE,
            noise_key: c.key.to_vec(),
            platform: me.platform.clone(),
            name: me.name.clone(),
        },
    };
    let was = match c.s.store.restore_account(&restoration, c.s.clock.now_ms()).await {
        Ok(was) => was,
        Err(StoreError::Conflict) => {
            return Err(Failure::new(
                ErrorCode::InvalidDeviceList,
                "the list changed meanwhile: fetch it and sign again",
            ));
        }
        Err(StoreError::KeyTaken) => {
            return Err(Failure::new(ErrorCode::AlreadyRegistered, "this device key is already known"));
        }
        Err(e) => return Err(e.into()),
    };
    c.s.devices_changed(&handle);
    // The old devices hear why they are logged out (with the new list);
    // out of the router first, so the new primary replaces no one.
    for id in was {
        c.s.close_device(&handle, id, ErrorCode::AccountRestored);
    }
    tracing::info!(%handle, "account restored from its recovery phrase");
    c.s.drop_unread_blobs().await;
    c.become_device(handle.clone(), PRIMARY_DEVICE, None)
        .await
        .map_err(|_| Failure::new(ErrorCode::Internal, "could not start the session"))?;
    Ok(ResponseBody::Registered(Registered { handle, device_id: PRIMARY_DEVICE }))
}

async fn publish_list(c: &mut Conn, r: PublishDeviceList) -> Result<ResponseBody> {
    let handle = primary(c)?;
    let a = account(&c.s, &handle).await?;
    let (signed, list) = check_new_list(&c.key, &a, r.list).await?;
    let active = c.s.active_devices(&handle).await?.unwrap_or_default();
    let new_ids = list_ids(&list);
    if !new_ids.is_subset(&active) {
        return Err(Failure::new(ErrorCode::InvalidDeviceList, "devices are added only by a link approval"));
    }
    let stored = c.s.store.devices(&handle).await?;
    for d in &list.devices {
        if stored.iter().any(|s| s.device_id == d.device_id && s.noise_key != d.noise_key) {
            return Err(Failure::new(ErrorCode::InvalidDeviceList, "a device's key cannot change"));
        }
    }
    let remove: Vec<u32> = active.difference(&new_ids).copied().collect();
    apply_list(&c.s, &a, signed, list.version, None, remove, &active).await?;
    Ok(ResponseBody::Done(Done {}))
}

async fn apply_list(
    s: &Shared,
    a: &Account,
    signed: SignedDeviceList,
    version: u64,
    add: Option<NewDevice>,
    remove: Vec<u32>,
    before: &BTreeSet<u32>,
) -> Result<()> {
    let update = ListUpdate {
        handle: a.handle.clone(),
        expected_version: a.list_version,
        version,
        body: signed.body,
        sig: signed.signature,
        add,
        remove: remove.clone(),
    };
    match s.store.update_list(&update, s.clock.now_ms()).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(Failure::new(
                ErrorCode::InvalidDeviceList,
                "the list changed meanwhile: fetch it and sign again",
            ));
        }
        Err(StoreError::KeyTaken) => {
            return Err(Failure::new(ErrorCode::InvalidDeviceList, "that device key is already known"));
        }
        Err(e) => return Err(e.into()),
    }
    s.devices_changed(&a.handle);
    let removed = !remove.is_empty();
    for id in remove {
        s.close_device(&a.handle, id, ErrorCode::DeviceRemoved);
        tracing::info!(handle = %a.handle, device_id = id, "device removed by the primary");
    }
    announce_list(s, &a.handle, before, PRIMARY_DEVICE);
    if removed {
        s.drop_unread_blobs().await;
    }
    Ok(())
}

async fn list_devices(c: &mut Conn) -> Result<ResponseBody> {
    let (handle, me) = device(c)?;
    let devices =
        c.s.store
            .devices(&handle)
            .await?
            .into_iter()
            .filter(|d| d.removed_ms.is_none())
            .map(|d| DeviceInfo {
                device_id: d.device_id,
                platform: d.platform,
                name: d.name,
                linked_at_ms: d.linked_ms,
                last_active_ms: d.active_ms,
                current: d.device_id == me,
            })
            .collect();
    Ok(ResponseBody::Devices(DeviceInfoList { devices }))
}

async fn remove_device(c: &mut Conn, r: RemoveDevice) -> Result<ResponseBody> {
    let (handle, me) = device(c)?;
    if me == PRIMARY_DEVICE {
        if r.device_id == PRIMARY_DEVICE {
            return Err(bad("the primary cannot remove itself"));
        }
        let a = account(&c.s, &handle).await?;
        let (signed, list) = check_new_list(&c.key, &a, r.new_list).await?;
        let active = c.s.active_devices(&handle).await?.unwrap_or_default();
        if !active.contains(&r.device_id) {
            return Err(Failure::new(ErrorCode::UnknownDevice, "no such device in this account"));
        }
        let mut expected = (*active).clone();
        expected.remove(&r.device_id);
        if list_ids(&list) != expected {
            return Err(Failure::new(
                ErrorCode::InvalidDeviceList,
                "the new list must be the current one without that device",
            ));
        }
        apply_list(&c.s, &a, signed, list.version, None, vec![r.device_id], &active).await?;
    } else {
        if r.device_id != me || r.new_list.is_some() {
            return Err(Failure::new(ErrorCode::NotPrimary, "a companion may only remove itself"));
        }
        c.s.remove_device(&handle, me).await?;
        c.close_after = Some(ErrorCode::DeviceRemoved);
    }
    Ok(ResponseBody::Done(Done {}))
}

async fn upload_prekeys(c: &mut Conn, r: UploadPrekeys) -> Result<ResponseBody> {
    let (handle, id) = device(c)?;
    if r.one_time_keys.len() > MAX_PREKEYS {
        return Err(bad(format!("at most {MAX_PREKEYS} one-time keys per upload")));
    }
    let mut keys: Vec<Prekey> = Vec::with_capacity(r.one_time_keys.len() + 1);
    for k in &r.one_time_keys {
        if k.key.len() != 32 {
            return Err(bad("one-time keys are 32-byte Curve25519 keys"));
        }
        keys.push(Prekey { key_id: k.key_id, key: k.key.clone(), fallback: false, signature: k.signature.clone() });
    }
    if let Some(f) = r.fallback {
        if f.key.len() != 32 {
            return Err(bad("the fallback key is a 32-byte Curve25519 key"));
        }
        keys.push(Prekey { key_id: f.key_id, key: f.key, fallback: true, signature: f.signature });
    }
    let stored = c.s.store.prekey_count(&handle, id).await?;
    if stored + r.one_time_keys.len() as u32 > MAX_STORED_PREKEYS {
        return Err(bad(format!("at most {MAX_STORED_PREKEYS} one-time keys may be stored per device")));
    }
    c.s.store.add_prekeys(&handle, id, &keys).await?;
    let n = c.s.store.prekey_count(&handle, id).await?;
    Ok(ResponseBody::PrekeyCount(PrekeyCount { one_time_keys: n }))
}

async fn claim_prekey(c: &mut Conn, r: ClaimPrekey) -> Result<ResponseBody> {
    let (me, _) = device(c)?;
    let handle = handle_arg(&r.handle)?;
    if handle != me {
        lookup_token(c, &me, &handle)?;
    }
    let active =
        c.s.active_devices(&handle)
            .await?
            .ok_or_else(|| Failure::new(ErrorCode::UnknownAccount, "no account has that handle"))?;
    if !active.contains(&r.device_id) {
        return Err(Failure::new(ErrorCode::UnknownDevice, "no such device in that account"));
    }
    let key = claim_limited(&c.s, &me, &handle, r.device_id).await?.ok_or_else(|| {
        Failure::new(ErrorCode::NoPrekeys, "that device has no prekeys left; try again when it is online")
    })?;
    if !key.fallback {
        let left = c.s.store.prekey_count(&handle, r.device_id).await?;
        if left < c.s.config.prekeys_low {
            let event = Event { body: Some(EventBody::PrekeysLow(PrekeyCount { one_time_keys: left })) };
            c.s.push_event(&handle, r.device_id, event);
        }
    }
    Ok(ResponseBody::Prekey(PrekeyBundle {
        handle,
        device_id: r.device_id,
        key: Some(OneTimeKey { key_id: key.key_id, key: key.key, signature: key.signature }),
        fallback: key.fallback,
    }))
}

/// Claims a key of (`handle`, `device_id`) for account `me`, within the
/// per-claimer limit on one-time keys (a fallback key is not counted: it is
/// not used up).
async fn claim_limited(s: &Shared, me: &str, handle: &str, device_id: u32) -> Result<Option<Prekey>> {
    let now = s.clock.now_ms();
    s.limits.reserve_claim(me, handle, device_id, now).map_err(|e| match e {
        Limited::Exhausted => Failure::new(
            ErrorCode::TooManyClaims,
            format!(
                "this account claimed {} one-time keys of that device in the last hour; try again later",
                s.config.claims_per_hour
            ),
        ),
        Limited::Busy => Failure::new(ErrorCode::ServerBusy, "the server is busy; try again in a minute"),
    })?;
    let key = s.store.claim_prekey(handle, device_id).await;
    if matches!(&key, Ok(Some(k)) if !k.fallback) {
        let device = crate::cluster::DeviceRef::new(handle, device_id);
        spent(s, Spend::Claim(crate::cluster::ClaimRef { claimer: me.to_string(), device }));
    } else {
        s.limits.refund_claim(me, handle, device_id);
    }
    Ok(key?)
}

/// Checks a send and hands its copies and its fan-out's to the writer:
/// answered `Sent` once they are committed (docs/protocol.md §4.9, §15.5).
async fn send(c: &mut Conn, id: u64, m: SendMessage) -> Result<Answer> {
    let (me, my_device) = device(c)?;
    if m.message_id.len() != 16 {
        return Err(bad("message_id must be 16 bytes"));
    }
    if m.copies.len() > MAX_COPIES {
        return Err(bad(format!("a send carries at most {MAX_COPIES} copies")));
    }
    if m.copies.is_empty() && m.fanout.is_empty() {
        return Err(bad("a send needs at least one copy or a fan-out"));
    }
    if m.fanout.is_empty() != m.shared.is_empty() {
        return Err(bad("a fan-out needs its shared ciphertext, and a shared ciphertext a fan-out"));
    }
    if m.shared.len() > MAX_CIPHERTEXT {
        return Err(bad(format!("the shared ciphertext must be 1 to {MAX_CIPHERTEXT} bytes")));
    }
    if m.blob_ids.len() > MAX_BLOBS_PER_SEND {
        return Err(bad(format!("a send names at most {MAX_BLOBS_PER_SEND} blobs")));
    }
    let group = m.group_epoch.map(group_epoch_arg).transpose()?;
    // Targets per account, each device once over the copies and the fan-out.
    let mut targets: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    // Per account, the oldest list version a copy or fan-out entry states
    // it was encrypted for.
    let mut stated: BTreeMap<String, u64> = BTreeMap::new();
    let mut state = |handle: &str, version: u64| {
        if version > 0 {
            let v = stated.entry(handle.to_string()).or_insert(version);
            *v = (*v).min(version);
        }
    };
    let mut copies = Vec::with_capacity(m.copies.len());
    for copy in m.copies {
        if copy.ciphertext.is_empty() || copy.ciphertext.len() > MAX_CIPHERTEXT {
            return Err(bad(format!("each ciphertext must be 1 to {MAX_CIPHERTEXT} bytes")));
        }
        let handle = handle_arg(&copy.handle)?;
        if !targets.entry(handle.clone()).or_default().insert(copy.device_id) {
            return Err(bad("two copies for the same device"));
        }
        state(&handle, copy.list_version);
        copies.push((handle, copy));
    }
    if targets.len() > MAX_ACCOUNTS {
        return Err(bad(format!("a send's copies address at most {MAX_ACCOUNTS} accounts")));
    }
    // The fan-out: (handle, device) of every device that gets `shared`.
    let mut fanout: Vec<(String, u32)> = Vec::new();
    let mut fanout_accounts: BTreeSet<String> = BTreeSet::new();
    let max_group = c.s.config.max_group_size as usize;
    for r in m.fanout {
        let handle = handle_arg(&r.handle)?;
        if r.device_ids.is_empty() {
            return Err(bad("each fan-out entry names at least one device"));
        }
        if fanout.len() + r.device_ids.len() > MAX_FANOUT_DEVICES {
            return Err(bad(format!("a fan-out goes to at most {MAX_FANOUT_DEVICES} devices")));
        }
        let given = targets.entry(handle.clone()).or_default();
        for device_id in r.device_ids {
            if !given.insert(device_id) {
                return Err(bad("a device is named twice in the copies and the fan-out"));
            }
            fanout.push((handle.clone(), device_id));
        }
        state(&handle, r.list_version);
        fanout_accounts.insert(handle);
        if fanout_accounts.len() > max_group {
            return Err(bad(format!("a fan-out addresses at most {max_group} accounts on this server")));
        }
    }
    // The server's one check: the copies and the fan-out together cover
    // exactly the current devices of every account addressed (the sender's
    // own account: its other devices), encrypted for no older list than
    // the current one where they state it (a restored account keeps device
    // 0 under new keys). Anything else means the sender's view is stale.
    let mut stale = Vec::new();
    for (handle, given) in &targets {
        let Some(active) = c.s.active_devices(handle).await? else {
            // Telling "no such account" is a lookup.
            lookup_token(c, &me, handle)?;
            return Err(Failure::new(ErrorCode::UnknownAccount, "no account has that handle"));
        };
        let fits = if *handle == me {
            // Own devices: any of the others (history for a new companion,
            // read-sync); the full fan-out is the client's rule.
            given.iter().all(|d| *d != my_device && active.contains(d))
        } else {
            *given == *active
        };
        let fits = fits && !older_list(&c.s, handle, stated.get(handle).copied()).await?;
        if !fits {
            // Handing out another account's list is a lookup.
            if *handle != me {
                lookup_token(c, &me, handle)?;
            }
            stale.push(list_reply(&c.s, handle).await?);
        }
    }
    if !stale.is_empty() {
        return Err(Failure {
            code: ErrorCode::DeviceListChanged,
            message: "the recipients' devices changed: verify the new lists, encrypt again and resend".into(),
            lists: stale,
            group_epoch: 0,
        });
    }
    let blob_ids = sendable_blobs(&c.s, &me, &m.blob_ids).await?;
    let now = c.s.clock.now_ms();
    let blobs = (!blob_ids.is_empty()).then(|| BlobSend {
        blob_ids,
        readers: copies
            .iter()
            .map(|(handle, copy)| (handle.clone(), copy.device_id))
            .chain(fanout.iter().cloned())
            .collect(),
        expires_ms: now + c.s.config.envelope_ttl_days * crate::DAY_MS,
    });
    let envelope = |handle: String, device_id: u32, ciphertext: Arc<[u8]>| NewEnvelope {
        handle,
        device_id,
        message_id: m.message_id.clone(),
        sender_handle: me.clone(),
        sender_device: my_device,
        ciphertext,
        created_ms: now,
    };
    let shared: Arc<[u8]> = m.shared.into();
    let fanout_devices = fanout.len();
    let envelopes: Vec<NewEnvelope> = copies
        .into_iter()
        .map(|(handle, copy)| envelope(handle, copy.device_id, copy.ciphertext.into()))
        .chain(fanout.into_iter().map(|(handle, device_id)| envelope(handle, device_id, shared.clone())))
        .collect();
    let epoch = group.map(|(group_id, epoch)| GroupEpochStep { group_id, from: 0, to: epoch, updated_ms: now });
    let write = SendWrite { envelopes, blobs, epoch, fanout: fanout_devices };
    c.submit(id, Op::Store(Box::new(write)), Outcome::Sent { server_time_ms: now }).await?;
    Ok(Answer::Later)
}

/// A group change's epoch (docs/protocol.md §15.3): a 16-byte group id and
/// an epoch from 1 (creation) to 2^63 − 1.
fn group_epoch_arg(g: GroupEpoch) -> Result<(GroupId, u64)> {
    let group_id = GroupId::from_slice(&g.group_id).ok_or_else(|| bad("a group id is 16 bytes"))?;
    if g.epoch == 0 || g.epoch > i64::MAX as u64 {
        return Err(bad("a group epoch is 1 (the creation) or more"));
    }
    Ok((group_id, g.epoch))
}

/// The blobs a send names, each once: every one must be whole and either
/// an upload of the sender's account or one it may download (forwarding).
/// The writer checks again that they are still there when it commits.
async fn sendable_blobs(s: &Shared, me: &str, raw: &[Vec<u8>]) -> Result<Vec<BlobId>> {
    let mut ids: Vec<BlobId> = Vec::with_capacity(raw.len());
    for r in raw {
        let id = BlobId::from_slice(r).ok_or_else(blob_not_found)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    for id in &ids {
        let blob = s.store.blob(id).await?.filter(|b| b.complete).ok_or_else(blob_not_found)?;
        if blob.handle != me && !s.store.blob_readable_by(id, me).await? {
            return Err(blob_not_found());
        }
    }
    Ok(ids)
}

fn blob_not_found() -> Failure {
    Failure::new(
        ErrorCode::BlobNotFound,
        "no such blob: it is unfinished, expired, fetched by all, or not one this account may use",
    )
}

/// Starts an upload, or hands out a new token for an unfinished one.
async fn blob_upload(c: &mut Conn, r: BlobUpload) -> Result<ResponseBody> {
    let (me, my_device) = device(c)?;
    let max_size = c.s.config.max_file_size;
    let max = tether_proto::media::ciphertext_len(max_size).unwrap_or(u64::MAX);
    if r.length > max {
        return Err(Failure::new(
            ErrorCode::BlobTooLarge,
            format!("files on this server hold at most {max_size} bytes ({max} bytes encrypted)"),
        ));
    }
    if tether_proto::media::plaintext_len(r.length).is_none() {
        return Err(bad("no file encrypts to that length (see media::ciphertext_len)"));
    }
    let now = c.s.clock.now_ms();
    if !r.resume.is_empty() {
        let id = BlobId::from_slice(&r.resume).ok_or_else(blob_not_found)?;
        let blob = c.s.store.blob(&id).await?.filter(|b| b.handle == me).ok_or_else(blob_not_found)?;
        if blob.length != r.length {
            return Err(bad("that upload has another length"));
        }
        let offset = c.s.blobs.received(&blob).await.map_err(|e| {
            tracing::error!(blob = %id, "reading an upload's offset failed in {}: {e}", c.s.blobs.files.describe());
            Failure::new(ErrorCode::Internal, "the server cannot read the upload; try again")
        })?;
        tracing::debug!(blob = %id, offset, "blob upload resumed");
        return Ok(ResponseBody::BlobTicket(c.s.blobs.ticket(&blob, Direction::Upload, &me, my_device, offset, now)));
    }
    let blob = Blob {
        id: BlobId::random(),
        handle: me.clone(),
        length: r.length,
        created_ms: now,
        expires_ms: now + UNSENT_TTL_MS,
        complete: false,
        sent: false,
    };
    let limits = BlobLimits { quota_bytes: c.s.config.blob_quota, max_unfinished: MAX_UNFINISHED };
    match c.s.store.create_blob(&blob, limits).await? {
        BlobCreated::Created => {}
        BlobCreated::OverQuota => {
            return Err(Failure::new(
                ErrorCode::BlobQuota,
                format!(
                    "this account's files would exceed its {} bytes on this server; wait until sent files are fetched or expire",
                    c.s.config.blob_quota
                ),
            ));
        }
        BlobCreated::TooManyUnfinished => {
            return Err(Failure::new(
                ErrorCode::BlobQuota,
                format!("this account has {MAX_UNFINISHED} unfinished uploads; finish them or let them expire (24 h)"),
            ));
        }
    }
    tracing::info!(blob = %blob.id, length = blob.length, "blob upload started");
    Ok(ResponseBody::BlobTicket(c.s.blobs.ticket(&blob, Direction::Upload, &me, my_device, 0, now)))
}

/// A token to download a blob: for a device of the uploading account or
/// of an account with a reader; anyone else is told it does not exist.
async fn blob_download(c: &mut Conn, r: BlobDownload) -> Result<ResponseBody> {
    let (me, my_device) = device(c)?;
    let id = BlobId::from_slice(&r.blob_id).ok_or_else(blob_not_found)?;
    let blob = c.s.store.blob(&id).await?.filter(|b| b.complete).ok_or_else(blob_not_found)?;
    if blob.handle != me && !c.s.store.blob_readable_by(&id, &me).await? {
        return Err(blob_not_found());
    }
    let now = c.s.clock.now_ms();
    Ok(ResponseBody::BlobTicket(c.s.blobs.ticket(&blob, Direction::Download, &me, my_device, 0, now)))
}

/// This device has these blobs: it is no longer a reader; a sent blob
/// with no reader left is deleted. Unknown ids are ignored.
async fn blob_fetched(c: &mut Conn, r: BlobFetched) -> Result<ResponseBody> {
    let (me, my_device) = device(c)?;
    if r.blob_ids.len() > MAX_FETCHED {
        return Err(bad(format!("at most {MAX_FETCHED} blob ids at once")));
    }
    for raw in &r.blob_ids {
        let Some(id) = BlobId::from_slice(raw) else { continue };
        if c.s.store.remove_blob_reader(&id, &me, my_device).await? {
            c.s.blobs.delete_files(&id).await;
            tracing::info!(blob = %id, "blob fetched by every reader: deleted");
        }
    }
    Ok(ResponseBody::Done(Done {}))
}

/// The sender deleted a message for everyone: the blobs of these ids that
/// the caller's account uploaded are deleted (records and readers in one
/// transaction, then the files), whichever of its devices asks. Unknown ids
/// and other accounts' blobs are ignored with the same answer, so it tells
/// nothing about them.
async fn blob_delete(c: &mut Conn, r: BlobDelete) -> Result<ResponseBody> {
    let (me, _) = device(c)?;
    if r.blob_ids.len() > MAX_FETCHED {
        return Err(bad(format!("at most {MAX_FETCHED} blob ids at once")));
    }
    let mut ids: Vec<BlobId> = Vec::with_capacity(r.blob_ids.len());
    for raw in &r.blob_ids {
        let id = BlobId::from_slice(raw).ok_or_else(|| bad("a blob id is 16 bytes"))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Ok(ResponseBody::Done(Done {}));
    }
    // The record first, then the file: a crash in between leaves only a
    // file without a record, which the next start deletes.
    let gone = c.s.store.delete_own_blobs(&me, &ids).await?;
    c.s.blobs.delete_all(&gone).await;
    c.s.metrics.blob_deletes.inc_by(gone.len() as u64);
    if !gone.is_empty() {
        let list = gone.iter().map(BlobId::to_hex).collect::<Vec<_>>().join(",");
        tracing::info!(blobs = gone.len(), ids = %list, "blobs deleted by their owner");
    }
    Ok(ResponseBody::Done(Done {}))
}

/// Whether a send states an older version of `handle`'s list than the
/// stored one (never when it states none).
async fn older_list(s: &Shared, handle: &str, stated: Option<u64>) -> Result<bool> {
    let Some(stated) = stated else { return Ok(false) };
    Ok(stated < account(s, handle).await?.list_version)
}

async fn approve_link(c: &mut Conn, r: ApproveLink) -> Result<ResponseBody> {
    let handle = primary(c)?;
    let now = c.s.clock.now_ms();
    let mut lookup = c.s.links.lookup(&r.link_ref, now);
    if matches!(lookup, RefLookup::Unknown) && c.s.cluster.is_shared() {
        // Issued by another node: the companion-to-be is connected there.
        lookup = c.s.cluster.link_ref(&r.link_ref).await;
    }
    let entry = match lookup {
        RefLookup::Valid(e) => e,
        RefLookup::Expired => {
            return Err(Failure::new(ErrorCode::ExpiredRef, "that QR code expired: ask the companion for a new one"));
        }
        RefLookup::Unknown => {
            return Err(Failure::new(ErrorCode::UnknownRef, "unknown or already used link code"));
        }
    };
    if r.approval.len() > MAX_OPAQUE {
        return Err(bad("approval too large"));
    }
    let a = account(&c.s, &handle).await?;
    let (signed, list) = check_new_list(&c.key, &a, r.new_list).await?;
    let active = c.s.active_devices(&handle).await?.unwrap_or_default();
    let mut expected = (*active).clone();
    if active.contains(&r.device_id) || r.device_id < a.next_device || r.device_id > MAX_DEVICE_ID {
        return Err(Failure::new(
            ErrorCode::InvalidDeviceList,
            "the new device needs a device id never used in this account",
        ));
    }
    expected.insert(r.device_id);
    if list_ids(&list) != expected {
        return Err(Failure::new(
            ErrorCode::InvalidDeviceList,
            "the new list must be the current one plus the new device",
        ));
    }
    let companions = expected.iter().filter(|&&id| id != PRIMARY_DEVICE).count();
    if companions > c.s.config.max_companions as usize {
        return Err(Failure::new(
            ErrorCode::TooManyDevices,
            format!("an account can have at most {} linked devices: unlink one first", c.s.config.max_companions),
        ));
    }
    let new = device_list::device(&list, r.device_id).expect("checked above");
    if new.noise_key != entry.noise_key {
        return Err(Failure::new(ErrorCode::InvalidDeviceList, "the new device is not the one that showed this code"));
    }
    let add = NewDevice {
        device_id: r.device_id,
        noise_key: entry.noise_key.to_vec(),
        platform: new.platform.clone(),
        name: new.name.clone(),
    };
    let event = LinkApproved {
        handle: handle.clone(),
        device_id: r.device_id,
        account_key: a.account_key.clone(),
        list: Some(with_entry_signatures(&c.s, &handle, signed.clone()).await?),
        approval: r.approval,
    };
    // An offline companion's approval is held: make sure it fits before
    // anything is stored.
    let waiting = c.s.router.guest(&entry.noise_key);
    if waiting.is_none() {
        c.s.links.approval_room(&entry.noise_key, c.source, now).map_err(|e| rendezvous_full(e, "link approvals"))?;
    }
    apply_list(&c.s, &a, signed, list.version, Some(add), vec![], &active).await?;
    tracing::info!(%handle, device_id = r.device_id, "companion linked");
    if c.s.cluster.is_shared() {
        // The ref, the guest's socket or both may be on other nodes.
        let approval = crate::cluster::Approval { noise_key: entry.noise_key.to_vec(), batch: entry.batch, event };
        crate::cluster::deliver_approval(&c.s, approval.clone());
        c.s.cluster.tell(crate::cluster::Notice::Approved(approval));
        return Ok(ResponseBody::Done(Done {}));
    }
    c.s.links.retire(&entry, now);
    match waiting {
        Some(conn) => conn.push(Outbound::Promote(Box::new(Promotion {
            handle,
            device_id: r.device_id,
            event: Event { body: Some(EventBody::LinkApproved(event)) },
        }))),
        None => {
            if c.s.links.hold_approval(entry.noise_key, event, c.source, now).is_err() {
                tracing::warn!(%handle, device_id = r.device_id, "no room to hold a link approval");
            }
        }
    }
    Ok(ResponseBody::Done(Done {}))
}
