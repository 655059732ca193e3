//! Where blob bytes are kept: [`DirFiles`], a directory (one node, or
//! several nodes mounting the same one), or [`ObjectFiles`], an
//! S3-compatible object store through the `object_store` crate. Both pass
//! the same suite ([`conformance`]).
//!
//! An upload is appended to at its offset (tus). A directory appends to a
//! file; objects cannot be appended to, so an upload is a run of part
//! objects, `<prefix>/<hex>/<offset as 16 hex digits>`, each written once
//! and never changed: a PATCH body is cut into parts of at most
//! [`PART_SIZE`] (the most a PATCH holds in memory), and a body that stops
//! early keeps what arrived as a shorter last part. The offset is the sum
//! of the parts that follow each other from 0. A part is created only if
//! no object has its name (`If-None-Match: *`), so two nodes that PATCH the
//! same upload at once cannot both write at one offset: the second is
//! refused, as on one node. A whole blob stays in its parts; a download
//! reads the parts its range covers, in order.

use crate::store::BlobId;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// The longest part object, and the most bytes one PATCH holds in memory
/// before writing them out (object store only).
pub const PART_SIZE: usize = 4 * 1024 * 1024;
/// Read size when streaming a download from a file.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes of a blob, as they are read.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// Where blob bytes are kept. Errors are `io::Error`s; one of kind
/// `AlreadyExists` from an append means another request wrote at the same
/// offset first.
#[async_trait]
pub trait BlobFiles: Send + Sync + std::fmt::Debug + 'static {
    /// How many bytes of `id` are kept (0 if none).
    async fn received(&self, id: &BlobId) -> io::Result<u64>;
    /// Starts appending to `id`, which holds `offset` bytes.
    async fn append(&self, id: &BlobId, offset: u64) -> io::Result<Box<dyn Append>>;
    /// All of `id`'s bytes are kept: makes it a whole blob that can be
    /// read, and drops what an unfinished upload leaves beside it. Doing it
    /// again does nothing.
    async fn finish(&self, id: &BlobId) -> io::Result<()>;
    /// Bytes `first..=last` of the whole blob `id`.
    async fn read(&self, id: &BlobId, first: u64, last: u64) -> io::Result<ByteStream>;
    /// Deletes everything kept of `id` (nothing kept is not an error).
    async fn delete(&self, id: &BlobId) -> io::Result<()>;
    /// Every blob something is kept of, once each.
    async fn ids(&self) -> io::Result<Vec<BlobId>>;
    /// The file that holds an upload against other nodes' PATCHes while
    /// one is appending (a directory's lock file); `None` where the
    /// backend refuses a second write at an offset by itself.
    fn lock_path(&self, id: &BlobId) -> Option<PathBuf>;
    /// What to call it in logs and errors (a path or a URL without
    /// credentials).
    fn describe(&self) -> String;
}

/// One PATCH's appending.
#[async_trait]
pub trait Append: Send {
    /// Appends `bytes` (written through, or held up to [`PART_SIZE`]).
    async fn write(&mut self, bytes: Bytes) -> io::Result<()>;
    /// Makes everything written durable.
    async fn commit(self: Box<Self>) -> io::Result<()>;
    /// Takes back everything this appending wrote.
    async fn abort(self: Box<Self>) -> io::Result<()>;
}

// ------------------------------------------------------------ directory

/// Files in a directory: `<hex>.part` while unfinished, `<hex>` once
/// whole, and `<hex>.lock` while an upload is unfinished.
#[derive(Debug)]
pub struct DirFiles {
    dir: PathBuf,
}

impl DirFiles {
    /// Creates the directory if needed.
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn part(&self, id: &BlobId) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    fn whole(&self, id: &BlobId) -> PathBuf {
        self.dir.join(id.to_hex())
    }

    fn lock(&self, id: &BlobId) -> PathBuf {
        self.dir.join(format!("{id}.lock"))
    }
}

/// Removes a file; one that is not there is not an error.
async fn remove(path: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

async fn len(path: &Path) -> io::Result<Option<u64>> {
    match tokio::fs::metadata(path).await {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl BlobFiles for DirFiles {
    async fn received(&self, id: &BlobId) -> io::Result<u64> {
        Ok(match len(&self.whole(id)).await? {
            Some(n) => n,
            None => len(&self.part(id)).await?.unwrap_or(0),
        })
    }

    async fn append(&self, id: &BlobId, offset: u64) -> io::Result<Box<dyn Append>> {
        let file = tokio::fs::OpenOptions::new().create(true).append(true).open(self.part(id)).await?;
        Ok(Box::new(FileAppend { file, offset }))
    }

    async fn finish(&self, id: &BlobId) -> io::Result<()> {
        let part = self.part(id);
        if len(&part).await?.is_some() {
            if len(&self.whole(id)).await?.is_some() {
                remove(&part).await?;
            } else {
                tokio::fs::rename(&part, self.whole(id)).await?;
            }
            sync_dir(&self.dir).await?;
        }
        remove(&self.lock(id)).await
    }

    async fn read(&self, id: &BlobId, first: u64, last: u64) -> io::Result<ByteStream> {
        let mut file = tokio::fs::File::open(self.whole(id)).await?;
        if first > 0 {
            file.seek(io::SeekFrom::Start(first)).await?;
        }
        let reader = tokio::io::AsyncReadExt::take(file, last - first + 1);
        Ok(tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK).boxed())
    }

    async fn delete(&self, id: &BlobId) -> io::Result<()> {
        for path in [self.part(id), self.whole(id), self.lock(id)] {
            remove(&path).await?;
        }
        Ok(())
    }

    async fn ids(&self) -> io::Result<Vec<BlobId>> {
        let mut ids = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = dir.next_entry().await? {
            let Ok(name) = entry.file_name().into_string() else { continue };
            let hex = name.strip_suffix(".part").or_else(|| name.strip_suffix(".lock")).unwrap_or(&name);
            ids.extend(BlobId::from_hex(hex));
        }
        ids.sort_by_key(|id| id.0);
        ids.dedup();
        Ok(ids)
    }

    fn lock_path(&self, id: &BlobId) -> Option<PathBuf> {
        Some(self.lock(id))
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

struct FileAppend {
    file: tokio::fs::File,
    /// Where this appending started (an abort truncates back to it).
    offset: u64,
}

#[async_trait]
impl Append for FileAppend {
    async fn write(&mut self, bytes: Bytes) -> io::Result<()> {
        self.file.write_all(&bytes).await
    }

    async fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.file.flush().await?;
        self.file.sync_data().await
    }

    async fn abort(mut self: Box<Self>) -> io::Result<()> {
        self.file.flush().await?;
        self.file.set_len(self.offset).await?;
        self.file.sync_data().await
    }
}

/// Makes a directory entry (a rename) durable.
pub(crate) async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all()).await.map_err(io::Error::other)?
}

// --------------------------------------------------------- object store

/// Part objects in an S3-compatible object store.
#[derive(Debug)]
pub struct ObjectFiles {
    store: Arc<dyn ObjectStore>,
    /// Where the blobs are under the bucket (may be empty).
    prefix: ObjectPath,
    /// `s3://bucket/prefix`, for logs.
    url: String,
}

impl ObjectFiles {
    /// The bucket and prefix of `url` (`s3://bucket[/prefix]`); the
    /// endpoint, region and credentials from the usual `AWS_*` environment
    /// variables (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, …) and then `options`
    /// (the same settings by object_store's names: `aws_endpoint`, …).
    /// Creates nothing: the bucket must exist.
    pub fn open(url: &str, options: &std::collections::BTreeMap<String, String>) -> Result<Self, String> {
        let rest = url.strip_prefix("s3://").ok_or("the blob URL must start with s3:// (s3://bucket[/prefix])")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("the blob URL names no bucket (s3://bucket[/prefix])".into());
        }
        // reqwest's TLS (for an https endpoint) uses the process's rustls
        // provider: the same ring provider as the server's own TLS.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
        for (key, value) in options {
            let key: object_store::aws::AmazonS3ConfigKey =
                key.parse().map_err(|_| format!("blob_options: no such object store setting: {key}"))?;
            builder = builder.with_config(key, value);
        }
        let store = builder.build().map_err(|e| format!("the object store {url}: {e}"))?;
        Ok(Self::new(Arc::new(store), prefix, url.to_string()))
    }

    /// Over any object store (tests use an in-memory one too).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, url: String) -> Self {
        Self { store, prefix: ObjectPath::from(prefix.trim_matches('/')), url }
    }

    fn dir(&self, id: &BlobId) -> ObjectPath {
        self.prefix.clone().join(id.to_hex())
    }

    /// The parts of `id` that follow each other from 0: (name, offset,
    /// length), in order.
    async fn parts(&self, id: &BlobId) -> io::Result<Vec<(ObjectPath, u64, u64)>> {
        let dir = self.dir(id);
        let mut found: Vec<(ObjectPath, u64, u64)> = self
            .store
            .list(Some(&dir))
            .map_err(other)
            .try_filter_map(|meta| async move {
                let offset = meta.location.filename().and_then(|f| u64::from_str_radix(f, 16).ok());
                Ok(offset.map(|o| (meta.location, o, meta.size)))
            })
            .try_collect()
            .await?;
        found.sort_by_key(|p| p.1);
        let mut next = 0;
        found.retain(|&(_, offset, length)| {
            let follows = offset == next && length > 0;
            if follows {
                next += length;
            }
            follows
        });
        Ok(found)
    }
}

fn other(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::AlreadyExists { .. } => io::Error::new(io::ErrorKind::AlreadyExists, e.to_string()),
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        e => io::Error::other(e.to_string()),
    }
}

#[async_trait]
impl BlobFiles for ObjectFiles {
    async fn received(&self, id: &BlobId) -> io::Result<u64> {
        Ok(self.parts(id).await?.last().map_or(0, |(_, offset, length)| offset + length))
    }

    async fn append(&self, id: &BlobId, offset: u64) -> io::Result<Box<dyn Append>> {
        Ok(Box::new(ObjectAppend {
            store: self.store.clone(),
            dir: self.dir(id),
            next: offset,
            held: BytesMut::new(),
            written: Vec::new(),
        }))
    }

    async fn finish(&self, _id: &BlobId) -> io::Result<()> {
        Ok(())
    }

    async fn read(&self, id: &BlobId, first: u64, last: u64) -> io::Result<ByteStream> {
        let pieces: Vec<(ObjectPath, std::ops::Range<u64>)> = self
            .parts(id)
            .await?
            .into_iter()
            .filter(|&(_, offset, length)| offset <= last && offset + length > first)
            .map(|(path, offset, length)| {
                let from = first.max(offset) - offset;
                let to = (last + 1).min(offset + length) - offset;
                (path, from..to)
            })
            .collect();
        let covered: u64 = pieces.iter().map(|(_, r)| r.end - r.start).sum();
        if covered != last - first + 1 {
            return Err(io::Error::new(io::ErrorKind::NotFound, "the blob's parts do not cover the range"));
        }
        let store = self.store.clone();
        Ok(stream::iter(pieces)
            .then(move |(path, range)| {
                let store = store.clone();
                async move {
                    let options = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
                    let got = store.get_opts(&path, options).await.map_err(other)?;
                    Ok::<_, io::Error>(got.into_stream().map_err(other))
                }
            })
            .try_flatten()
            .boxed())
    }

    async fn delete(&self, id: &BlobId) -> io::Result<()> {
        let names: Vec<ObjectPath> =
            self.store.list(Some(&self.dir(id))).map_ok(|m| m.location).try_collect().await.map_err(other)?;
        for name in names {
            match self.store.delete(&name).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(other(e)),
            }
        }
        Ok(())
    }

    async fn ids(&self) -> io::Result<Vec<BlobId>> {
        let prefix = self.prefix.clone();
        let depth = prefix.parts().count();
        let mut ids: Vec<BlobId> = self
            .store
            .list(Some(&prefix))
            .map_err(other)
            .try_filter_map(|meta| async move {
                Ok(meta.location.parts().nth(depth).and_then(|hex| BlobId::from_hex(hex.as_ref())))
            })
            .try_collect()
            .await?;
        ids.sort_by_key(|id| id.0);
        ids.dedup();
        Ok(ids)
    }

    fn lock_path(&self, _id: &BlobId) -> Option<PathBuf> {
        None
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

struct ObjectAppend {
    store: Arc<dyn ObjectStore>,
    dir: ObjectPath,
    /// The offset of the next part.
    next: u64,
    /// Bytes not yet in a part.
    held: BytesMut,
    /// The parts this appending wrote (an abort deletes them).
    written: Vec<ObjectPath>,
}

impl ObjectAppend {
    /// Writes `bytes` as the part at `self.next`, if no part is there.
    async fn put(&mut self, bytes: Bytes) -> io::Result<()> {
        let path = self.dir.clone().join(format!("{:016x}", self.next));
        let length = bytes.len() as u64;
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        self.store.put_opts(&path, PutPayload::from(bytes), options).await.map_err(other)?;
        self.written.push(path);
        self.next += length;
        Ok(())
    }
}

#[async_trait]
impl Append for ObjectAppend {
    async fn write(&mut self, bytes: Bytes) -> io::Result<()> {
        self.held.extend_from_slice(&bytes);
        while self.held.len() >= PART_SIZE {
            let part = self.held.split_to(PART_SIZE).freeze();
            self.put(part).await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> io::Result<()> {
        if !self.held.is_empty() {
            let rest = std::mem::take(&mut self.held).freeze();
            self.put(rest).await?;
        }
        Ok(())
    }

    async fn abort(self: Box<Self>) -> io::Result<()> {
        for path in &self.written {
            match self.store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(other(e)),
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------- conformance

/// What every [`BlobFiles`] backend must do; run on each (the directory
/// in this crate's tests, an S3 server in tests/relay/objects.rs).
pub mod conformance {
    use super::*;

    async fn all(files: &dyn BlobFiles, id: &BlobId, length: u64) -> Vec<u8> {
        read(files, id, 0, length - 1).await
    }

    async fn read(files: &dyn BlobFiles, id: &BlobId, first: u64, last: u64) -> Vec<u8> {
        let chunks: Vec<Bytes> = files.read(id, first, last).await.unwrap().try_collect().await.unwrap();
        chunks.concat()
    }

    async fn append(files: &dyn BlobFiles, id: &BlobId, offset: u64, bytes: &[u8], step: usize) {
        let mut a = files.append(id, offset).await.unwrap();
        for piece in bytes.chunks(step) {
            a.write(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        a.commit().await.unwrap();
    }

    /// Runs the suite on `files`, which must hold nothing yet.
    pub async fn run(files: &dyn BlobFiles) {
        assert_eq!(files.ids().await.unwrap(), vec![], "starts empty");
        let data: Vec<u8> = (0..(PART_SIZE * 2 + 1000)).map(|i| (i % 251) as u8).collect();
        let id = BlobId([1; 16]);
        assert_eq!(files.received(&id).await.unwrap(), 0);

        // Appended in three PATCHes of odd sizes, read back whole and by ranges.
        let cuts = [0, 1000, PART_SIZE + 17, data.len()];
        for w in cuts.windows(2) {
            append(files, &id, w[0] as u64, &data[w[0]..w[1]], 65_536).await;
            assert_eq!(files.received(&id).await.unwrap(), w[1] as u64);
        }
        files.finish(&id).await.unwrap();
        files.finish(&id).await.unwrap();
        assert_eq!(files.received(&id).await.unwrap(), data.len() as u64, "a whole blob keeps its length");
        assert!(all(files, &id, data.len() as u64).await == data, "read back whole");
        for (a, b) in [(0, 0), (999, 1000), (PART_SIZE - 1, PART_SIZE + 20), (data.len() - 1, data.len() - 1)] {
            assert!(read(files, &id, a as u64, b as u64).await == data[a..=b], "range {a}-{b}");
        }

        // An aborted appending leaves the offset where it was.
        let other = BlobId([2; 16]);
        append(files, &other, 0, &data[..500], 100).await;
        let mut a = files.append(&other, 500).await.unwrap();
        a.write(Bytes::from(vec![9; PART_SIZE + 5])).await.unwrap();
        a.abort().await.unwrap();
        assert_eq!(files.received(&other).await.unwrap(), 500, "nothing of an aborted PATCH is kept");
        append(files, &other, 500, &data[500..800], 7).await;
        assert_eq!(files.received(&other).await.unwrap(), 800);

        assert_eq!(files.ids().await.unwrap(), vec![id, other]);
        files.delete(&id).await.unwrap();
        files.delete(&id).await.unwrap();
        assert_eq!(files.received(&id).await.unwrap(), 0, "deleted");
        assert!(files.read(&id, 0, 0).await.is_err() || read(files, &id, 0, 0).await.is_empty());
        files.delete(&other).await.unwrap();
        assert_eq!(files.ids().await.unwrap(), vec![], "nothing left");
    }

    /// Two appendings at the same offset (two nodes' PATCHes at once):
    /// only one is kept. Only for backends without a lock file (a
    /// directory's lock file keeps the second from starting at all).
    pub async fn one_write_per_offset(files: &dyn BlobFiles) {
        assert!(files.lock_path(&BlobId([3; 16])).is_none());
        let id = BlobId([3; 16]);
        let mut a = files.append(&id, 0).await.unwrap();
        let mut b = files.append(&id, 0).await.unwrap();
        a.write(Bytes::from_static(b"first")).await.unwrap();
        b.write(Bytes::from_static(b"second")).await.unwrap();
        a.commit().await.unwrap();
        let e = b.commit().await.err().expect("the second write at offset 0 is refused");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(files.received(&id).await.unwrap(), 5);
        assert!(all(files, &id, 5).await == b"first");
        files.delete(&id).await.unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_passes_the_blob_files_suite() {
        let dir = tempfile::tempdir().unwrap();
        conformance::run(&DirFiles::open(dir.path().join("blobs")).unwrap()).await;
    }

    #[tokio::test]
    async fn objects_pass_the_blob_files_suite_over_object_stores_own_memory_store() {
        let files = ObjectFiles::new(Arc::new(object_store::memory::InMemory::new()), "tether/blobs", "memory".into());
        conformance::run(&files).await;
        conformance::one_write_per_offset(&files).await;
    }
}
