//! The blob store (docs/protocol.md §14.3): encrypted files that devices
//! upload and download over HTTP with tokens they get over their socket.
//!
//! ```text
//! socket (handlers.rs)        BlobUpload → ticket (token, path, offset)
//!                             Send { blob_ids } → readers, in the send's group commit (writer.rs)
//!                             BlobDownload → ticket; BlobFetched → reader dropped
//!                             BlobDelete → the caller account's blobs deleted
//! HTTP (http.rs)              HEAD / PATCH / GET / OPTIONS /v1/blobs/<hex>
//! bytes (files.rs)            a directory: <hex>.part while unfinished, <hex> once whole;
//!                             or an S3-compatible object store: part objects <hex>/<offset>
//! records (store)             owner, length, whole, sent, expiry; readers
//! ```
//!
//! A blob's record is the truth; its bytes follow: a record is deleted
//! first and then its bytes, so a crash in between leaves only bytes
//! without a record, which [`Blobs::tidy`] deletes at the next start.
//! The server never sees a key, a file name or a type: only lengths and
//! who fetches. Logs name blob ids and lengths, never tokens or content.

pub mod files;
pub(crate) mod http;
pub mod token;

use crate::store::{Blob, BlobId, Store, StoreError};
use files::BlobFiles;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_proto::frames::BlobTicket;
use token::{Direction, Grant, TOKEN_TTL_MS, TokenKey};

/// An unfinished or never-sent blob is deleted this long after its upload
/// started.
pub const UNSENT_TTL_MS: u64 = crate::DAY_MS;
/// Most unfinished uploads per account.
pub const MAX_UNFINISHED: u64 = 16;
/// Most blobs one send may name.
pub const MAX_BLOBS_PER_SEND: usize = 32;
/// Most blob ids in one `BlobFetched` (and in one `BlobDelete`).
pub const MAX_FETCHED: usize = 256;
/// How long a request waits for another request's hold on the same upload.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Where the bytes are, the token key, and who is writing which upload.
#[derive(Debug)]
pub struct Blobs {
    /// Where the bytes are: a directory or an object store.
    pub files: Arc<dyn BlobFiles>,
    /// Makes and checks tokens (derived from the server key).
    pub key: TokenKey,
    /// One writer (or offset reader) per upload at a time: a PATCH holds
    /// its blob's lock while it appends, so a HEAD or a second PATCH sees
    /// the file's length only once the first one is done with it. Within
    /// this process a mutex; between the nodes that share a directory,
    /// a file lock on `<hex>.lock` beside the upload (an object store
    /// refuses a second write at an offset by itself).
    locks: Mutex<HashMap<BlobId, Arc<Hold>>>,
}

/// One upload's lock within this process, and the way a newer PATCH asks
/// the one holding it to stop.
#[derive(Debug, Default)]
struct Hold {
    mutex: Arc<tokio::sync::Mutex<()>>,
    wanted: tokio::sync::Notify,
}

/// How often a PATCH waiting for an upload's lock asks its holder again
/// to let go (a holder between two reads of its body may miss one ask).
const ASK_EVERY: Duration = Duration::from_millis(50);

/// Whether a request waiting for an upload's lock asks the request that
/// holds it to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Waits for it to finish (a HEAD: the offset that PATCH leaves).
    Patiently,
    /// Asks it to stop, keeping what it received (a PATCH: the uploader
    /// sends again, so the earlier request is one it gave up, perhaps on a
    /// connection that went quiet without closing).
    TakingOver,
}

/// A hold on one upload (see [`Blobs::lock`]); released on drop.
pub struct UploadLock<'a> {
    blobs: &'a Blobs,
    id: BlobId,
    hold: Arc<Hold>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The locked `<hex>.lock` file (closing it releases the lock).
    file: Option<std::fs::File>,
}

impl UploadLock<'_> {
    /// Resolves when a newer request of this upload, in this process,
    /// asks this one to stop ([`Wait::TakingOver`]).
    pub async fn wanted(&self) {
        self.hold.wanted.notified().await;
    }

    /// Releases the hold on an upload that is whole or whose record is
    /// gone, and deletes its lock file: a lock file exists only while its
    /// upload is unfinished.
    pub fn gone(mut self) {
        self.file.take();
        if let Some(path) = self.blobs.files.lock_path(&self.id) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for UploadLock<'_> {
    fn drop(&mut self) {
        self.file.take();
        self.guard.take();
        // The map's and this one: release() counts holders and waiters.
        let id = self.id;
        let blobs = self.blobs;
        self.hold = Arc::default();
        blobs.release(&id);
    }
}

impl Blobs {
    /// Blobs kept in `files`; tokens are keyed from the server's static
    /// private key.
    pub fn open(files: Arc<dyn BlobFiles>, server_private: &[u8]) -> Self {
        Self { files, key: TokenKey::derive(server_private), locks: Mutex::default() }
    }

    /// Holds the upload `id` (waiting up to a few seconds for another
    /// request that holds it, here or on another node, and asking it to
    /// stop if `wait` says so); `None` if it stayed held.
    pub async fn lock(&self, id: BlobId, wait: Wait) -> Option<UploadLock<'_>> {
        self.lock_within(id, LOCK_WAIT, wait).await
    }

    async fn lock_within(&self, id: BlobId, within: Duration, wait: Wait) -> Option<UploadLock<'_>> {
        let deadline = tokio::time::Instant::now() + within;
        let hold = self.locks.lock().expect("upload locks").entry(id).or_default().clone();
        let guard = loop {
            if wait == Wait::TakingOver {
                hold.wanted.notify_waiters();
            }
            let until = match wait {
                Wait::TakingOver => deadline.min(tokio::time::Instant::now() + ASK_EVERY),
                Wait::Patiently => deadline,
            };
            match tokio::time::timeout_at(until, hold.mutex.clone().lock_owned()).await {
                Ok(guard) => break guard,
                Err(_) if tokio::time::Instant::now() < deadline => continue,
                Err(_) => {
                    drop(hold);
                    self.release(&id);
                    return None;
                }
            }
        };
        let mut held = UploadLock { blobs: self, id, hold, guard: Some(guard), file: None };
        let Some(path) = self.files.lock_path(&id) else { return Some(held) };
        let file = match std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path) {
            Ok(f) => f,
            Err(e) => {
                // No lock file (a read-only or odd file system): this
                // process's hold is all there is.
                tracing::warn!(blob = %id, "an upload's lock file cannot be made: {e}");
                return Some(held);
            }
        };
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => return None,
                Err(std::fs::TryLockError::Error(e)) => {
                    tracing::warn!(blob = %id, "an upload's lock file cannot be locked: {e}");
                    return Some(held);
                }
            }
        }
        held.file = Some(file);
        Some(held)
    }

    /// Forgets an upload's lock once no one holds or waits for it.
    fn release(&self, id: &BlobId) {
        let mut map = self.locks.lock().expect("upload locks");
        if map.get(id).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(id);
        }
    }

    /// How many bytes of the blob the server holds: its length once whole,
    /// else what its upload has kept (0 before the first PATCH).
    pub async fn received(&self, blob: &Blob) -> std::io::Result<u64> {
        if blob.complete {
            return Ok(blob.length);
        }
        Ok(self.files.received(&blob.id).await?.min(blob.length))
    }

    /// A ticket for `grant` (a token valid for an hour from `now_ms`).
    pub fn ticket(
        &self,
        blob: &Blob,
        direction: Direction,
        handle: &str,
        device_id: u32,
        offset: u64,
        now_ms: u64,
    ) -> BlobTicket {
        let expires_ms = now_ms + TOKEN_TTL_MS;
        let grant = Grant { blob: blob.id, direction, handle: handle.to_string(), device_id, expires_ms };
        BlobTicket {
            blob_id: blob.id.0.to_vec(),
            token: self.key.issue(&grant),
            path: format!("/v1/blobs/{}", blob.id),
            length: blob.length,
            offset,
            expires_ms,
        }
    }

    /// Deletes a blob's bytes (its record is already gone); a failure is
    /// logged, and the next start's [`Blobs::tidy`] tries again.
    pub async fn delete_files(&self, id: &BlobId) {
        if let Err(e) = self.files.delete(id).await {
            tracing::warn!(blob = %id, "deleting a blob's bytes failed: {e}");
        }
    }

    /// Deletes the files of blobs whose records are gone.
    pub async fn delete_all(&self, ids: &[BlobId]) {
        for id in ids {
            self.delete_files(id).await;
        }
    }

    /// At startup: deletes the bytes of every blob without a record (a
    /// crash between deleting a record and its bytes); finishes an upload
    /// whose bytes are all there but whose record was not updated yet (a
    /// crash in between), and tidies what unfinished uploads left beside
    /// whole blobs. Other files are left alone. Returns how many blobs'
    /// bytes it deleted.
    pub async fn tidy(&self, store: &dyn Store) -> Result<u64, StoreError> {
        let ids = match self.files.ids().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("listing the blobs in {} failed: {e}", self.files.describe());
                return Ok(0);
            }
        };
        let mut deleted = 0;
        for id in ids {
            let done = match store.blob(&id).await? {
                None => {
                    deleted += 1;
                    self.files.delete(&id).await
                }
                Some(b) if b.complete => self.files.finish(&id).await,
                Some(b) => match self.files.received(&id).await {
                    Ok(n) if n == b.length => match self.files.finish(&id).await {
                        Ok(()) => {
                            store.complete_blob(&id).await?;
                            Ok(())
                        }
                        Err(e) => Err(e),
                    },
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = done {
                tracing::warn!(blob = %id, "tidying a blob's bytes failed: {e}");
            }
        }
        if deleted > 0 {
            tracing::info!(blobs = deleted, "deleted the bytes of blobs without a record");
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_upload_is_held_by_one_node_at_a_time_over_a_shared_directory() {
        let dir = tempfile::tempdir().unwrap();
        // Two nodes' views of one directory.
        let files = || Arc::new(files::DirFiles::open(dir.path().to_path_buf()).unwrap());
        let a = Blobs::open(files(), &[1; 32]);
        let b = Blobs::open(files(), &[1; 32]);
        let id = BlobId([7; 16]);
        let held = a.lock_within(id, Duration::from_millis(100), Wait::Patiently).await.expect("free");
        assert!(
            b.lock_within(id, Duration::from_millis(200), Wait::TakingOver).await.is_none(),
            "held by the other node (which no ask reaches)"
        );
        let other = BlobId([8; 16]);
        assert!(
            b.lock_within(other, Duration::from_millis(100), Wait::Patiently).await.is_some(),
            "another upload is free"
        );
        drop(held);
        assert!(
            b.lock_within(id, Duration::from_millis(100), Wait::Patiently).await.is_some(),
            "released with the hold"
        );
        a.delete_files(&id).await;
        assert!(!a.files.lock_path(&id).unwrap().exists(), "its lock file goes with the blob's files");
    }

    #[tokio::test]
    async fn a_request_taking_over_asks_the_holder_to_stop_and_one_waiting_patiently_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(Arc::new(files::DirFiles::open(dir.path().to_path_buf()).unwrap()), &[1; 32]);
        let id = BlobId([7; 16]);
        let held = blobs.lock(id, Wait::Patiently).await.expect("free");
        // A patient request waits and gives up; the holder is not asked.
        let asked = async {
            tokio::select! {
                () = held.wanted() => true,
                _ = blobs.lock_within(id, Duration::from_millis(300), Wait::Patiently) => false,
            }
        };
        assert!(!asked.await, "a HEAD does not ask a PATCH to stop");
        // One taking over asks; the holder lets go, and it has the lock.
        let (taken, ()) = tokio::join!(blobs.lock_within(id, Duration::from_secs(5), Wait::TakingOver), async {
            held.wanted().await;
            drop(held);
        });
        let taken = taken.expect("the holder let go when asked");
        assert!(blobs.locks.lock().unwrap().contains_key(&id));
        drop(taken);
        assert!(blobs.locks.lock().unwrap().is_empty(), "forgotten once no one holds or waits");
    }
}
