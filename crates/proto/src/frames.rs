//! Frames: what travels inside the Noise transport, one frame per WebSocket
//! binary message. Protobuf (prost) so that the format can grow: unknown
//! fields are ignored, and an unknown request decodes with `request: None`
//! and is answered with the `unknown_frame` error code.
//!
//! Field numbers are part of the protocol: never reuse one. See
//! docs/protocol.md for the meaning of every frame.

use prost::{Message, Oneof};

// ---------------------------------------------------------------- handshake

/// Payload of the server's handshake message (Noise XX message 2).
#[derive(Clone, PartialEq, Message)]
pub struct ServerHello {
    /// tether-server version, for diagnostics.
    #[prost(string, tag = "1")]
    pub server_version: String,
    /// Wire protocol version the server speaks.
    #[prost(uint32, tag = "2")]
    pub protocol: u32,
    /// Server clock (ms since the Unix epoch), so clients can see skew.
    #[prost(uint64, tag = "3")]
    pub time_ms: u64,
}

/// Payload of the client's last handshake message (Noise XX message 3).
#[derive(Clone, PartialEq, Message)]
pub struct ClientHello {
    /// Client software and version, e.g. "tether-cli 0.1.0".
    #[prost(string, tag = "1")]
    pub client_version: String,
}

// ------------------------------------------------------------------ client

/// A request from a client. `id` is chosen by the client and echoed in the
/// response; 0 is allowed for requests whose answer the client ignores.
#[derive(Clone, PartialEq, Message)]
pub struct ClientFrame {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(
        oneof = "Request",
        tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23"
    )]
    pub request: Option<Request>,
}

/// Every request a client can make.
#[derive(Clone, PartialEq, Oneof)]
pub enum Request {
    /// Keepalive; answered with `Pong`.
    #[prost(message, tag = "2")]
    Ping(Ping),
    /// Create an account (guest connections only).
    #[prost(message, tag = "3")]
    Register(Register),
    /// Fetch an account's signed device list.
    #[prost(message, tag = "4")]
    GetDeviceList(GetDeviceList),
    /// Replace the own account's device list (primary only; may only drop devices).
    #[prost(message, tag = "5")]
    PublishDeviceList(PublishDeviceList),
    /// List the own account's devices with platform and activity.
    #[prost(message, tag = "6")]
    ListDevices(ListDevices),
    /// Remove a device: the primary any companion, a companion itself.
    #[prost(message, tag = "7")]
    RemoveDevice(RemoveDevice),
    /// Upload one-time keys and a fallback key.
    #[prost(message, tag = "8")]
    UploadPrekeys(UploadPrekeys),
    /// Claim one prekey of another device.
    #[prost(message, tag = "9")]
    ClaimPrekey(ClaimPrekey),
    /// Send one message, one ciphertext per target device.
    #[prost(message, tag = "10")]
    Send(SendMessage),
    /// Acknowledge delivered envelopes (they are then deleted).
    #[prost(message, tag = "11")]
    Ack(Ack),
    /// A companion-to-be asks for link refs (guest connections only).
    #[prost(message, tag = "12")]
    RequestLinkRefs(RequestLinkRefs),
    /// The primary approves a link ref (adds the companion).
    #[prost(message, tag = "13")]
    ApproveLink(ApproveLink),
    /// A companion-to-be opens its pairing slot with its first PAKE message
    /// (guest only; one slot per connection).
    #[prost(message, tag = "14")]
    PairingPublish(PairingPublish),
    /// A device fetches a pairing slot, claiming it: afterwards only this
    /// device may fetch it or reply on it (one guess per code).
    #[prost(message, tag = "15")]
    PairingFetch(PairingFetch),
    /// A PAKE message from the slot's claimer to its owner guest, or back
    /// (at most 4 per side); forwarded as `PairingAnswer`.
    #[prost(message, tag = "16")]
    PairingReply(PairingReply),
    /// A device hands in its own signature over its entry in the account's
    /// list (a companion can make it only once it is signed in).
    #[prost(message, tag = "17")]
    PublishEntrySignature(PublishEntrySignature),
    /// A guest about to restore an account from its recovery phrase asks
    /// for the account's current list, naming the account key it holds;
    /// answered with `DeviceList` (guests only, limited per source).
    #[prost(message, tag = "18")]
    RestoreLookup(RestoreLookup),
    /// A guest restores an account: a new list signed by the account key,
    /// holding only this connection as the primary. The account's other
    /// devices are logged out (`account_restored`); answered `Registered`.
    #[prost(message, tag = "19")]
    Restore(Restore),
    /// Start uploading an encrypted file (a blob), or get a fresh token to
    /// resume one: answered with `BlobTicket` (devices only).
    #[prost(message, tag = "20")]
    BlobUpload(BlobUpload),
    /// Get a token to download a blob: answered with `BlobTicket`.
    #[prost(message, tag = "21")]
    BlobDownload(BlobDownload),
    /// This device has the whole blob (checked and decrypted): the server
    /// may delete it once every device it was sent to says so. `Done`.
    #[prost(message, tag = "22")]
    BlobFetched(BlobFetched),
    /// Delete these blobs of the caller's account now (the sender deleted
    /// the message for everyone): ids of other accounts' blobs and unknown
    /// ids are ignored. `Done`.
    #[prost(message, tag = "23")]
    BlobDelete(BlobDelete),
}

/// See [`Request::BlobUpload`].
#[derive(Clone, PartialEq, Message)]
pub struct BlobUpload {
    /// The blob's length in bytes (ciphertext: `media::ciphertext_len` of
    /// the file's size). Refused with `blob_too_large` above the server's
    /// limit, `bad_request` when no file size gives this length, and
    /// `blob_quota` when the account's stored blobs would exceed its quota.
    #[prost(uint64, tag = "1")]
    pub length: u64,
    /// Non-empty: resume this unfinished upload of the same account instead
    /// (`length` must match); the ticket's `offset` says where.
    #[prost(bytes = "vec", tag = "2")]
    pub resume: Vec<u8>,
}

/// See [`Request::BlobDownload`].
#[derive(Clone, PartialEq, Message)]
pub struct BlobDownload {
    #[prost(bytes = "vec", tag = "1")]
    pub blob_id: Vec<u8>,
}

/// See [`Request::BlobFetched`].
#[derive(Clone, PartialEq, Message)]
pub struct BlobFetched {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub blob_ids: Vec<Vec<u8>>,
}

/// See [`Request::BlobDelete`].
#[derive(Clone, PartialEq, Message)]
pub struct BlobDelete {
    /// 16 bytes each; at most as many as `BlobFetched` may name (256).
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub blob_ids: Vec<Vec<u8>>,
}

/// The answer to `BlobUpload` and `BlobDownload`: where and with what to
/// talk HTTP to the server (docs/protocol.md §14.3).
#[derive(Clone, PartialEq, Message)]
pub struct BlobTicket {
    /// 16 random bytes chosen by the server.
    #[prost(bytes = "vec", tag = "1")]
    pub blob_id: Vec<u8>,
    /// The bearer token for `Authorization: Bearer …`; valid for this blob,
    /// this direction and this device only, until `expires_ms`.
    #[prost(string, tag = "2")]
    pub token: String,
    /// The path on the server's HTTP origin: `/v1/blobs/<hex id>`.
    #[prost(string, tag = "3")]
    pub path: String,
    /// The blob's whole length.
    #[prost(uint64, tag = "4")]
    pub length: u64,
    /// Uploads: how many bytes the server holds already (0 for a new one).
    #[prost(uint64, tag = "5")]
    pub offset: u64,
    #[prost(uint64, tag = "6")]
    pub expires_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Ping {}

#[derive(Clone, PartialEq, Message)]
pub struct Register {
    /// Phone number in E.164 form (`+4915112345678`) or a user name
    /// (`[a-z0-9_.]{3,32}`, starting with a letter).
    #[prost(string, tag = "1")]
    pub handle: String,
    /// The account's Ed25519 public key: it signs every device list.
    #[prost(bytes = "vec", tag = "2")]
    pub account_key: Vec<u8>,
    /// The first device list: exactly device 0, this connection's key.
    #[prost(message, optional, tag = "3")]
    pub device_list: Option<SignedDeviceList>,
    /// Registration token, when the server requires one.
    #[prost(string, tag = "4")]
    pub token: String,
}

/// See [`Request::RestoreLookup`].
#[derive(Clone, PartialEq, Message)]
pub struct RestoreLookup {
    #[prost(string, tag = "1")]
    pub handle: String,
    /// The account's Ed25519 public key, derived from the recovery phrase:
    /// the server answers only if it is the account's
    /// (`account_key_mismatch` otherwise).
    #[prost(bytes = "vec", tag = "2")]
    pub account_key: Vec<u8>,
}

/// See [`Request::Restore`].
#[derive(Clone, PartialEq, Message)]
pub struct Restore {
    #[prost(string, tag = "1")]
    pub handle: String,
    /// Signed by the account key the server holds, a version above the
    /// stored one, exactly one device: device 0 with this connection's
    /// Noise key and its own entry signature.
    #[prost(message, optional, tag = "2")]
    pub device_list: Option<SignedDeviceList>,
}

/// A device list and the account key's signature over it. `body` is an
/// encoded [`DeviceList`]; it is kept as bytes so the signature covers
/// exactly what was signed, whatever fields a later version adds.
#[derive(Clone, PartialEq, Message)]
pub struct SignedDeviceList {
    #[prost(bytes = "vec", tag = "1")]
    pub body: Vec<u8>,
    /// Ed25519 signature over `DEVICE_LIST_CONTEXT || body`.
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
    /// Devices' own signatures over their entries (see
    /// `device_list::entry_signed_bytes`) that `body` does not carry: a
    /// companion can sign its entry only after it was signed in, so the
    /// server attaches what devices handed in. Not covered by `signature`;
    /// each is checked against its entry's own signing key.
    #[prost(message, repeated, tag = "3")]
    pub entry_signatures: Vec<EntrySignature>,
}

/// One device's signature over its entry, outside the signed body.
#[derive(Clone, PartialEq, Message)]
pub struct EntrySignature {
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// A device's signature over its own entry (see [`EntrySignature`]).
#[derive(Clone, PartialEq, Message)]
pub struct PublishEntrySignature {
    #[prost(bytes = "vec", tag = "1")]
    pub signature: Vec<u8>,
}

/// The devices of one account, as its primary signed them.
#[derive(Clone, PartialEq, Message)]
pub struct DeviceList {
    #[prost(string, tag = "1")]
    pub handle: String,
    /// Grows with every change; the server refuses older or equal versions.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    #[prost(message, repeated, tag = "3")]
    pub devices: Vec<DeviceEntry>,
    #[prost(uint64, tag = "4")]
    pub issued_at_ms: u64,
}

/// One device in a signed device list.
#[derive(Clone, PartialEq, Message)]
pub struct DeviceEntry {
    /// 0 is the primary; companions get 1, 2, … (never reused).
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    /// The device's Noise static public key: how the server knows it.
    #[prost(bytes = "vec", tag = "2")]
    pub noise_key: Vec<u8>,
    /// The device's Olm identity (Curve25519) key.
    #[prost(bytes = "vec", tag = "3")]
    pub identity_key: Vec<u8>,
    /// The device's Olm signing (Ed25519) key.
    #[prost(bytes = "vec", tag = "4")]
    pub signing_key: Vec<u8>,
    /// "cli/linux", "chrome/linux", …
    #[prost(string, tag = "5")]
    pub platform: String,
    /// A name the user recognises ("Chrome on Linux").
    #[prost(string, tag = "6")]
    pub name: String,
    #[prost(uint64, tag = "7")]
    pub linked_at_ms: u64,
    /// The device's own Ed25519 signature (with `signing_key`) over its
    /// handle, device id and keys (`device_list::entry_signed_bytes`): it
    /// proves the device holds these keys and agreed to be this entry, so
    /// an account cannot list another device's keys as its own.
    #[prost(bytes = "vec", tag = "8")]
    pub self_signature: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetDeviceList {
    #[prost(string, tag = "1")]
    pub handle: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct PublishDeviceList {
    #[prost(message, optional, tag = "1")]
    pub list: Option<SignedDeviceList>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListDevices {}

#[derive(Clone, PartialEq, Message)]
pub struct RemoveDevice {
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    /// From the primary: the new signed list without that device.
    /// From a companion removing itself: absent.
    #[prost(message, optional, tag = "2")]
    pub new_list: Option<SignedDeviceList>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OneTimeKey {
    #[prost(uint64, tag = "1")]
    pub key_id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// The uploading device's Ed25519 signature (its `signing_key` in the
    /// signed device list) over `device_list::prekey_signed_bytes(key)`.
    /// The server stores and returns it as it is; a claimer verifies it
    /// before starting a session, so the server cannot hand out a key of its own.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct UploadPrekeys {
    #[prost(message, repeated, tag = "1")]
    pub one_time_keys: Vec<OneTimeKey>,
    /// Replaces the previous fallback key when present.
    #[prost(message, optional, tag = "2")]
    pub fallback: Option<OneTimeKey>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ClaimPrekey {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct SendMessage {
    /// 16 random bytes chosen by the sender; the same for every copy, so
    /// receivers deduplicate retries.
    #[prost(bytes = "vec", tag = "1")]
    pub message_id: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub copies: Vec<Copy>,
    /// The blobs (uploaded files) the message refers to: every recipient
    /// device of a copy may then download them, and each is deleted once
    /// all of them fetched it (or when it expires). Each must be a whole
    /// upload of the sender's account, or a blob the sender may download
    /// (forwarding); else the send is refused with `blob_not_found`.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub blob_ids: Vec<Vec<u8>>,
    /// Devices that each get `shared` as their envelope's ciphertext: a
    /// group message encrypted once (docs/protocol.md §15.5).
    #[prost(message, repeated, tag = "4")]
    pub fanout: Vec<Recipients>,
    /// The one ciphertext for every device of `fanout`.
    #[prost(bytes = "vec", tag = "5")]
    pub shared: Vec<u8>,
    /// A group change: stored only if `epoch` is above the last one the
    /// server stored for the group (else `group_epoch_taken`), committed
    /// with the copies (§15.3).
    #[prost(message, optional, tag = "6")]
    pub group_epoch: Option<GroupEpoch>,
}

/// Devices of one account in a fan-out.
#[derive(Clone, PartialEq, Message)]
pub struct Recipients {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(uint32, repeated, tag = "2")]
    pub device_ids: Vec<u32>,
    /// As [`Copy::list_version`].
    #[prost(uint64, tag = "3")]
    pub list_version: u64,
}

/// See [`SendMessage::group_epoch`].
#[derive(Clone, PartialEq, Message)]
pub struct GroupEpoch {
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub epoch: u64,
}

/// One ciphertext for one device.
#[derive(Clone, PartialEq, Message)]
pub struct Copy {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub ciphertext: Vec<u8>,
    /// The version of `handle`'s signed device list the sender encrypted
    /// for (0: not stated). The server refuses the send with
    /// `device_list_changed` when it is older than the account's current
    /// list: a restored account keeps device 0 under new keys, so the ids
    /// alone would still match.
    #[prost(uint64, tag = "4")]
    pub list_version: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Ack {
    #[prost(uint64, repeated, tag = "1")]
    pub envelope_ids: Vec<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RequestLinkRefs {}

#[derive(Clone, PartialEq, Message)]
pub struct ApproveLink {
    #[prost(bytes = "vec", tag = "1")]
    pub link_ref: Vec<u8>,
    /// The id the primary gave the companion in `new_list`.
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    /// The account's list with the companion added.
    #[prost(message, optional, tag = "3")]
    pub new_list: Option<SignedDeviceList>,
    /// Opaque to the server: the signed device identity and the HMAC with
    /// the QR's link secret, for the companion to verify.
    #[prost(bytes = "vec", tag = "4")]
    pub approval: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PairingPublish {
    /// The slot: a 15-bit number from the pairing code, 2 bytes big-endian,
    /// top bit clear. The server never sees the rest of the code.
    #[prost(bytes = "vec", tag = "1")]
    pub lookup: Vec<u8>,
    /// Opaque, 1 to 64 bytes: the companion's first PAKE message.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PairingFetch {
    /// The slot (as in [`PairingPublish::lookup`]).
    #[prost(bytes = "vec", tag = "1")]
    pub lookup: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PairingReply {
    /// The slot (as in [`PairingPublish::lookup`]).
    #[prost(bytes = "vec", tag = "1")]
    pub lookup: Vec<u8>,
    /// Opaque, 1 to 4 096 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

// ------------------------------------------------------------------ server

/// Everything the server sends after the handshake.
#[derive(Clone, PartialEq, Message)]
pub struct ServerFrame {
    #[prost(oneof = "ServerBody", tags = "1, 2")]
    pub body: Option<ServerBody>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum ServerBody {
    /// The answer to one request.
    #[prost(message, tag = "1")]
    Response(Response),
    /// Something the client did not ask for (a message, a link approval, …).
    #[prost(message, tag = "2")]
    Event(Event),
}

/// The answer to the request with the same `id`: either `error` or `body`.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, optional, tag = "2")]
    pub error: Option<ErrorInfo>,
    #[prost(oneof = "ResponseBody", tags = "3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13")]
    pub body: Option<ResponseBody>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum ResponseBody {
    #[prost(message, tag = "3")]
    Pong(Pong),
    #[prost(message, tag = "4")]
    Registered(Registered),
    #[prost(message, tag = "5")]
    DeviceList(DeviceListReply),
    #[prost(message, tag = "6")]
    Devices(DeviceInfoList),
    #[prost(message, tag = "7")]
    Done(Done),
    #[prost(message, tag = "8")]
    Prekey(PrekeyBundle),
    #[prost(message, tag = "9")]
    Sent(SendAccepted),
    #[prost(message, tag = "10")]
    LinkRefs(LinkRefs),
    #[prost(message, tag = "11")]
    Pairing(PairingOffer),
    #[prost(message, tag = "12")]
    PrekeyCount(PrekeyCount),
    #[prost(message, tag = "13")]
    BlobTicket(BlobTicket),
}

/// A failed request: a documented code (see [`crate::ErrorCode`]) and a
/// message for humans. Never contains keys or message content.
#[derive(Clone, PartialEq, Message)]
pub struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub code: String,
    #[prost(string, tag = "2")]
    pub message: String,
    /// With `device_list_changed`: the current lists of the accounts whose
    /// devices the request got wrong, so the sender can re-encrypt.
    #[prost(message, repeated, tag = "3")]
    pub device_lists: Vec<DeviceListReply>,
    /// With `group_epoch_taken`: the last epoch the server stored for the
    /// group (docs/protocol.md §15.3).
    #[prost(uint64, tag = "4")]
    pub group_epoch: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Pong {
    #[prost(uint64, tag = "1")]
    pub time_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Registered {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
}

/// An account's device list as the primary signed it, plus every device id
/// the server has removed from the account (a companion that logged itself
/// out before the primary re-signed, the inactivity rules). Clients encrypt
/// to listed devices not in `removed`. The server can hide a device this
/// way, never add one.
#[derive(Clone, PartialEq, Message)]
pub struct DeviceListReply {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(bytes = "vec", tag = "2")]
    pub account_key: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    pub list: Option<SignedDeviceList>,
    #[prost(uint32, repeated, tag = "4")]
    pub removed: Vec<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DeviceInfo {
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    #[prost(string, tag = "2")]
    pub platform: String,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(uint64, tag = "4")]
    pub linked_at_ms: u64,
    #[prost(uint64, tag = "5")]
    pub last_active_ms: u64,
    /// True for the device that asked.
    #[prost(bool, tag = "6")]
    pub current: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct DeviceInfoList {
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<DeviceInfo>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Done {}

#[derive(Clone, PartialEq, Message)]
pub struct PrekeyBundle {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    #[prost(message, optional, tag = "3")]
    pub key: Option<OneTimeKey>,
    /// True when the device's one-time keys ran out and this is its fallback key.
    #[prost(bool, tag = "4")]
    pub fallback: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct PrekeyCount {
    #[prost(uint32, tag = "1")]
    pub one_time_keys: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct SendAccepted {
    /// The server's clock when it accepted the send (the copies are
    /// durable once this answer is sent).
    #[prost(uint64, tag = "1")]
    pub server_time_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct LinkRef {
    /// 16 random bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub link_ref: Vec<u8>,
    /// Show this ref from `not_before_ms` until `expires_ms`.
    #[prost(uint64, tag = "2")]
    pub not_before_ms: u64,
    #[prost(uint64, tag = "3")]
    pub expires_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct LinkRefs {
    #[prost(message, repeated, tag = "1")]
    pub refs: Vec<LinkRef>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PairingOffer {
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
    /// The slot this belongs to (the `lookup` of the publish).
    #[prost(bytes = "vec", tag = "2")]
    pub lookup: Vec<u8>,
}

/// Something the server sends unasked.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(oneof = "EventBody", tags = "1, 2, 3, 4, 5, 6")]
    pub body: Option<EventBody>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum EventBody {
    #[prost(message, tag = "1")]
    Envelope(Envelope),
    #[prost(message, tag = "2")]
    LinkApproved(LinkApproved),
    #[prost(message, tag = "3")]
    PrekeysLow(PrekeyCount),
    #[prost(message, tag = "4")]
    DeviceListUpdated(DeviceListUpdated),
    #[prost(message, tag = "5")]
    PairingAnswer(PairingOffer),
    /// The server is about to close this connection, and why.
    #[prost(message, tag = "6")]
    Closing(ErrorInfo),
}

/// One stored copy of a message for this device.
#[derive(Clone, PartialEq, Message)]
pub struct Envelope {
    /// Server-assigned, increasing per device; acknowledge it to delete it.
    #[prost(uint64, tag = "1")]
    pub envelope_id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub message_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub sender_handle: String,
    #[prost(uint32, tag = "4")]
    pub sender_device: u32,
    #[prost(bytes = "vec", tag = "5")]
    pub ciphertext: Vec<u8>,
    #[prost(uint64, tag = "6")]
    pub server_time_ms: u64,
}

/// Sent to the waiting companion when the primary approved its ref. The
/// server promotes that same connection to the new device; a companion that
/// was offline gets it when it connects next (held for 10 minutes).
#[derive(Clone, PartialEq, Message)]
pub struct LinkApproved {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub account_key: Vec<u8>,
    #[prost(message, optional, tag = "4")]
    pub list: Option<SignedDeviceList>,
    #[prost(bytes = "vec", tag = "5")]
    pub approval: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DeviceListUpdated {
    #[prost(string, tag = "1")]
    pub handle: String,
}
