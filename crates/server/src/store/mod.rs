//! Persistent state of the relay behind one small trait, so that SQLite (the
//! embedded default) and PostgreSQL (several nodes) are interchangeable and
//! pass the same conformance suite (`store::conformance`).
//!
//! Everything stored is public keys, signed lists and ciphertext: the
//! server never holds a secret of its users.

#[doc(hidden)]
pub mod conformance;
mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use std::sync::Arc;

/// What a store can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The handle is already registered.
    #[error("handle already registered")]
    HandleTaken,
    /// The Noise key already belongs to a device (active or removed).
    #[error("device key already known")]
    KeyTaken,
    /// The device list changed under us (a concurrent update won).
    #[error("device list version conflict")]
    Conflict,
    /// A send named a blob that is gone or unfinished at commit time
    /// ([`Store::commit_batch`]); nothing of the batch was stored.
    #[error("blob {0} is gone or unfinished")]
    BlobGone(BlobId),
    /// A group's stored epoch was not the one a [`GroupEpochStep`] moves
    /// on from ([`Store::commit_batch`]); nothing of the batch was stored.
    #[error("group {0}: the stored epoch changed")]
    EpochTaken(GroupId),
    /// The backend failed.
    #[error("database: {0}")]
    Backend(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, out
    /// of connections) rather than refusing the request: nothing was done,
    /// and the same request may succeed shortly.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Backend(e) = self else { return false };
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                true
            }
            // SQLSTATE classes 08 (connection exception) and 57P
            // (operator intervention: admin shutdown, crash shutdown,
            // cannot connect now), and 53300 (too many connections).
            sqlx::Error::Database(db) => {
                db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300")
            }
            _ => false,
        }
    }
}

/// u64 as the databases' signed 64-bit integer (saturating).
fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored signed 64-bit integer as u64 (negative: 0).
fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// What both backends' rows can be read as: the column types of the
/// accounts and devices tables.
trait Columns: sqlx::Row
where
    for<'a> &'a str: sqlx::ColumnIndex<Self>,
{
    fn int(&self, col: &str) -> i64;
    fn opt_int(&self, col: &str) -> Option<i64>;
    fn text(&self, col: &str) -> String;
    fn bytes(&self, col: &str) -> Vec<u8>;
}

macro_rules! columns {
    ($row:ty) => {
        impl super::Columns for $row {
            fn int(&self, col: &str) -> i64 {
                sqlx::Row::get(self, col)
            }
            fn opt_int(&self, col: &str) -> Option<i64> {
                sqlx::Row::get(self, col)
            }
            fn text(&self, col: &str) -> String {
                sqlx::Row::get(self, col)
            }
            fn bytes(&self, col: &str) -> Vec<u8> {
                sqlx::Row::get(self, col)
            }
        }
    };
}
use columns;

fn account_row<R: Columns>(r: &R) -> Account
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    Account {
        handle: r.text("handle"),
        account_key: r.bytes("account_key"),
        list_version: u(r.int("list_version")),
        list_body: r.bytes("list_body"),
        list_sig: r.bytes("list_sig"),
        next_device: r.int("next_device") as u32,
    }
}

fn device_row<R: Columns>(r: &R) -> Device
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    Device {
        handle: r.text("handle"),
        device_id: r.int("device_id") as u32,
        noise_key: r.bytes("noise_key"),
        platform: r.text("platform"),
        name: r.text("name"),
        linked_ms: u(r.int("linked_ms")),
        active_ms: u(r.int("active_ms")),
        removed_ms: r.opt_int("removed_ms").map(u),
    }
}

fn envelope_row<R: Columns>(r: &R) -> StoredEnvelope
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    StoredEnvelope {
        id: u(r.int("id")),
        envelope: NewEnvelope {
            handle: r.text("handle"),
            device_id: r.int("device_id") as u32,
            message_id: r.bytes("message_id"),
            sender_handle: r.text("sender_handle"),
            sender_device: r.int("sender_device") as u32,
            ciphertext: r.bytes("ciphertext").into(),
            created_ms: u(r.int("created_ms")),
        },
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub handle: String,
    pub account_key: Vec<u8>,
    pub list_version: u64,
    pub list_body: Vec<u8>,
    pub list_sig: Vec<u8>,
    /// The lowest device id never used in this account.
    pub next_device: u32,
}

/// A device as stored (active or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub handle: String,
    pub device_id: u32,
    pub noise_key: Vec<u8>,
    pub platform: String,
    pub name: String,
    pub linked_ms: u64,
    pub active_ms: u64,
    pub removed_ms: Option<u64>,
}

/// A device that a new list adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    pub device_id: u32,
    pub noise_key: Vec<u8>,
    pub platform: String,
    pub name: String,
}

/// A new signed device list and what it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUpdate {
    pub handle: String,
    /// The version the update was checked against (optimistic concurrency).
    pub expected_version: u64,
    pub version: u64,
    pub body: Vec<u8>,
    pub sig: Vec<u8>,
    /// A companion added by a link approval.
    pub add: Option<NewDevice>,
    /// Devices the new list drops: marked removed, queues and prekeys deleted.
    pub remove: Vec<u32>,
}

/// An account restored from its recovery phrase: a new list holding only
/// a new primary, which replaces every device of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restoration {
    pub handle: String,
    /// The version the restore was checked against (optimistic concurrency).
    pub expected_version: u64,
    pub version: u64,
    pub body: Vec<u8>,
    pub sig: Vec<u8>,
    /// The new primary (device 0).
    pub primary: NewDevice,
}

/// One copy of a message for one device, to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnvelope {
    pub handle: String,
    pub device_id: u32,
    pub message_id: Vec<u8>,
    pub sender_handle: String,
    pub sender_device: u32,
    /// Shared, not copied, between the envelopes of a fan-out (one
    /// ciphertext for up to 4 096 devices) until it is stored.
    pub ciphertext: Arc<[u8]>,
    pub created_ms: u64,
}

/// A stored copy, with its id (increasing in storage order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    pub id: u64,
    pub envelope: NewEnvelope,
}

/// Copies one device acknowledged: deleted, but only if they are that
/// device's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedCopies {
    pub handle: String,
    pub device_id: u32,
    pub ids: Vec<u64>,
}

/// A device seen active ([`Store::touch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub handle: String,
    pub device_id: u32,
    pub at_ms: u64,
}

/// What one group commit ([`Store::commit_batch`]) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The ids of the stored copies, in the order given.
    pub ids: Vec<u64>,
    /// How many acknowledged copies were deleted, over all devices.
    pub acked: u64,
}

/// A blob's id: 16 random bytes chosen by the server; in paths and file
/// names as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobId(pub [u8; 16]);

impl BlobId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).expect("OS randomness");
        Self(id)
    }

    /// The id a client names: exactly 16 bytes, else `None`.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// 32 lowercase hex digits, else `None`.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(id))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A group's id: 16 random bytes chosen by its creator
/// (docs/protocol.md §15.1); in logs as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub [u8; 16]);

impl GroupId {
    /// The id a client names: exactly 16 bytes, else `None`.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A group change's epoch, stored with its send's copies in one group
/// commit (docs/protocol.md §15.3): the group's stored epoch moves from
/// `from` (0: no epoch stored for the group yet) to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupEpochStep {
    pub group_id: GroupId,
    pub from: u64,
    pub to: u64,
    pub updated_ms: u64,
}

/// A blob (an uploaded encrypted file) as stored. Its bytes are a file in
/// the blob directory, not in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub id: BlobId,
    /// The uploading account: it counts against this account's quota.
    pub handle: String,
    /// The whole length in bytes (a `media::ciphertext_len`).
    pub length: u64,
    pub created_ms: u64,
    /// When the sweep deletes it: 24 h after creation until a send names
    /// it, then 30 days after the last send that named it.
    pub expires_ms: u64,
    /// The upload is whole (the file is renamed from `.part`).
    pub complete: bool,
    /// A send named it: it is deleted once it has no readers left.
    pub sent: bool,
}

/// The limits a new blob must stay within ([`Store::create_blob`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLimits {
    /// Most bytes of blobs, unfinished and whole, one account may hold.
    pub quota_bytes: u64,
    /// Most unfinished uploads one account may have.
    pub max_unfinished: u64,
}

/// What [`Store::create_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCreated {
    Created,
    /// The account's blobs plus this one would exceed the quota.
    OverQuota,
    /// The account has the most unfinished uploads allowed.
    TooManyUnfinished,
}

/// A send's blobs, stored with its copies in one group commit: every
/// device a copy goes to becomes a reader of every blob, and the blobs are
/// marked sent and kept at least until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSend {
    pub blob_ids: Vec<BlobId>,
    /// (handle, device id) of every copy's target device.
    pub readers: Vec<(String, u32)>,
    pub expires_ms: u64,
}

/// A one-time or fallback key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prekey {
    pub key_id: u64,
    pub key: Vec<u8>,
    pub fallback: bool,
    /// The device's signature on the key, stored and returned as uploaded.
    pub signature: Vec<u8>,
}

/// The relay's persistent state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A value of the server's own (its key, …).
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Creates an account with its primary (device 0).
    async fn create_account(&self, account: &Account, primary: &NewDevice, now_ms: u64) -> Result<(), StoreError>;
    async fn account(&self, handle: &str) -> Result<Option<Account>, StoreError>;
    /// Every account's handle (for the inactivity sweep).
    async fn handles(&self) -> Result<Vec<String>, StoreError>;

    /// The device, active or removed, that owns a Noise key.
    async fn device_by_key(&self, noise_key: &[u8]) -> Result<Option<Device>, StoreError>;
    /// All devices of an account, active and removed, by id.
    async fn devices(&self, handle: &str) -> Result<Vec<Device>, StoreError>;
    /// Records when devices were last active, all in one transaction; a
    /// device's time never goes back.
    async fn touch(&self, seen: &[Seen]) -> Result<(), StoreError>;
    /// Keeps a device's own signature over its list entry (checked by the
    /// caller against the current list).
    async fn set_entry_signature(&self, handle: &str, device_id: u32, signature: &[u8]) -> Result<(), StoreError>;
    /// The entry signatures the account's active devices handed in, by id.
    async fn entry_signatures(&self, handle: &str) -> Result<Vec<(u32, Vec<u8>)>, StoreError>;
    /// Applies a new signed list atomically. `Conflict` if the stored
    /// version is no longer `expected_version`.
    async fn update_list(&self, update: &ListUpdate, now_ms: u64) -> Result<(), StoreError>;
    /// Restores an account atomically: the new list; every active device
    /// (the old primary included) removed as [`Store::remove_device`] does
    /// (queue and prekeys deleted) and its Noise key recorded as restored
    /// away ([`Store::restored_key`]); device 0 is then the new primary.
    /// `Conflict` if the stored version is no longer `expected_version`,
    /// `KeyTaken` if the new primary's key is already known. Returns the ids
    /// of the devices that were active.
    async fn restore_account(&self, r: &Restoration, now_ms: u64) -> Result<Vec<u32>, StoreError>;
    /// The account whose restore logged out the device with this Noise key.
    async fn restored_key(&self, noise_key: &[u8]) -> Result<Option<String>, StoreError>;
    /// Removes a device without a new list (a companion logging itself out,
    /// or the inactivity rules): marked removed, queue and prekeys deleted,
    /// and it is no longer a reader of any blob. (Every way a device is
    /// removed, `update_list` and `restore_account` too, drops its reader
    /// rows in the same transaction; [`Store::drop_unread_blobs`] then
    /// finds the sent blobs left without readers.)
    async fn remove_device(&self, handle: &str, device_id: u32, now_ms: u64) -> Result<(), StoreError>;

    /// Group commit: deletes acknowledged copies (each device only its own),
    /// stores new ones, records the sends' blob readers and moves group
    /// epochs on, all in one durable transaction: on success all of it is
    /// committed, on error none of it. New copies get increasing ids in the
    /// order given, above every id stored before. `BlobGone(id)` if a blob
    /// of `blobs` is no longer stored or not whole. `EpochTaken(id)` if a
    /// step's `from` is not the group's stored epoch (0: none stored) when
    /// it is applied; the steps are applied in the order given, so one
    /// batch may move a group on twice (1 → 2, then 2 → 3).
    async fn commit_batch(
        &self,
        envelopes: &[NewEnvelope],
        acks: &[AckedCopies],
        blobs: &[BlobSend],
        epochs: &[GroupEpochStep],
    ) -> Result<Committed, StoreError> {
        self.commit_batch_as(envelopes, None, acks, blobs, epochs).await
    }

    /// [`Store::commit_batch`], the new copies taking the ids `ids` (one
    /// each, increasing) that [`Store::reserve_ids`] gave, when given.
    async fn commit_batch_as(
        &self,
        envelopes: &[NewEnvelope],
        ids: Option<&[u64]>,
        acks: &[AckedCopies],
        blobs: &[BlobSend],
        epochs: &[GroupEpochStep],
    ) -> Result<Committed, StoreError>;

    /// Ids for `n` new copies before they are committed, so the writer can
    /// push them while the commit runs (docs/protocol.md, "Durability"):
    /// above every id given before, and never given again, not even after
    /// a crash that lost the commit they were for (a device may have seen
    /// them). `None`: this backend gives ids at commit only (PostgreSQL,
    /// where several nodes give them), or no reserved range is left until
    /// the next commit renews it.
    fn reserve_ids(&self, _n: usize) -> Option<Vec<u64>> {
        None
    }
    /// The device's stored copies with id > `after`, oldest first.
    async fn pending(
        &self,
        handle: &str,
        device_id: u32,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// Deletes copies created before `before_ms`; returns how many.
    async fn expire(&self, before_ms: u64) -> Result<u64, StoreError>;
    /// Stored copies awaiting delivery, over all devices.
    async fn queue_depth(&self) -> Result<u64, StoreError>;
    /// One device's stored copies: (how many, total ciphertext bytes).
    async fn queue_usage(&self, handle: &str, device_id: u32) -> Result<(u64, u64), StoreError>;

    /// The last epoch stored for a group (by [`Store::commit_batch`]); 0 if
    /// none. Group epochs are kept for good: no sweep deletes them.
    async fn group_epoch(&self, group_id: &GroupId) -> Result<u64, StoreError>;

    /// Adds one-time keys; replaces the fallback key when given.
    async fn add_prekeys(&self, handle: &str, device_id: u32, keys: &[Prekey]) -> Result<(), StoreError>;
    /// Takes one one-time key atomically (never the same twice), else the
    /// fallback key (kept); `None` if the device has neither.
    async fn claim_prekey(&self, handle: &str, device_id: u32) -> Result<Option<Prekey>, StoreError>;
    /// One-time keys left for a device.
    async fn prekey_count(&self, handle: &str, device_id: u32) -> Result<u32, StoreError>;

    /// Creates an unfinished blob owned by `blob.handle`, unless the
    /// account's blobs (unfinished and whole) plus this one would exceed
    /// `limits.quota_bytes` or it has `limits.max_unfinished` unfinished
    /// uploads already: checked and inserted atomically, so concurrent
    /// uploads cannot both squeeze past the quota.
    async fn create_blob(&self, blob: &Blob, limits: BlobLimits) -> Result<BlobCreated, StoreError>;
    async fn blob(&self, id: &BlobId) -> Result<Option<Blob>, StoreError>;
    /// Marks an unfinished blob whole; false if it is gone.
    async fn complete_blob(&self, id: &BlobId) -> Result<bool, StoreError>;
    /// Whether some device of account `handle` is a reader of the blob.
    async fn blob_readable_by(&self, id: &BlobId, handle: &str) -> Result<bool, StoreError>;
    /// Drops one reader (a device that fetched the blob). When the blob was
    /// sent and has no readers left, its record is deleted too: returns
    /// true, and the caller deletes the file.
    async fn remove_blob_reader(&self, id: &BlobId, handle: &str, device_id: u32) -> Result<bool, StoreError>;
    /// Deletes a blob's record (and its readers); false if it was gone.
    async fn delete_blob(&self, id: &BlobId) -> Result<bool, StoreError>;
    /// Deletes, in one transaction, the records (and readers) of those of
    /// `ids` that account `handle` uploaded, whole or not, sent or not;
    /// returns their ids, for the caller to delete the files. Unknown ids
    /// and other accounts' blobs are left alone.
    async fn delete_own_blobs(&self, handle: &str, ids: &[BlobId]) -> Result<Vec<BlobId>, StoreError>;
    /// Deletes every blob that expired before `now_ms` (its record and
    /// readers) and returns their ids, for the caller to delete the files.
    /// One statement: a send that extends a blob's expiry meanwhile either
    /// commits first (and the blob stays) or finds it gone.
    async fn expire_blobs(&self, now_ms: u64) -> Result<Vec<BlobId>, StoreError>;
    /// Deletes every sent blob left without readers (after device
    /// removals) and returns their ids, for the caller to delete the files.
    async fn drop_unread_blobs(&self) -> Result<Vec<BlobId>, StoreError>;
    /// One account's blobs: (unfinished uploads, bytes of all its blobs,
    /// unfinished and whole), for its quota.
    async fn blob_usage(&self, handle: &str) -> Result<(u64, u64), StoreError>;
    /// All blobs: (how many, their bytes), for the metrics.
    async fn blob_totals(&self) -> Result<(u64, u64), StoreError>;

    /// Adds a registration token.
    async fn add_token(&self, token: &str, now_ms: u64) -> Result<(), StoreError>;
    /// Uses a token once; false if unknown or already used.
    async fn use_token(&self, token: &str, handle: &str, now_ms: u64) -> Result<bool, StoreError>;
}
