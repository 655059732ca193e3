//! The embedded SQLite backend: one file, `tether.db`, in WAL mode with
//! `synchronous=FULL`, so a committed transaction survives a crash or power
//! loss. Envelopes are written in batches (group commit): one fsync per
//! batch, not per message.

use super::*;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite, SqliteConnection};
use std::path::Path;
use std::str::FromStr;

/// Rows per INSERT: a batch is cut into chunks of these sizes, largest
/// first, so only a few distinct statements are ever prepared (sqlx keeps
/// them per connection). An envelope takes 8 of SQLite's 32766 variables.
const INSERT_CHUNKS: [usize; 10] = [512, 256, 128, 64, 32, 16, 8, 4, 2, 1];
/// Most acknowledged ids per DELETE (3 variables each). Lists are padded to
/// a power of two (repeating the last id, which deletes nothing twice),
/// again so that few distinct statements are prepared.
const ACK_CHUNK: usize = 4096;
/// How often the WAL is copied back into the database, by a task of its
/// own: the writer's commits never run a checkpoint (see `open`).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Envelope ids are reserved this many at a time (one row of
/// `server_meta` written in a commit, every million copies).
const ID_BLOCK: u64 = 1 << 20;
/// The `server_meta` key of the reserved ids' end.
const IDS_RESERVED: &str = "envelope_ids_reserved";

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Connection pool; WAL lets readers run beside the one writer.
    pool: SqlitePool,
    /// The envelope ids this store gives (see [`Ids`]).
    ids: Arc<std::sync::Mutex<Ids>>,
    /// The group commits' own connection, one commit at a time, so that
    /// ids become visible in increasing order even with several callers
    /// (SQLite has one writer anyway). Its page cache stays warm: a pool
    /// connection's is dropped whenever another connection wrote, and each
    /// commit read back from the WAL the pages the one before it wrote.
    commit: Arc<tokio::sync::Mutex<SqliteConnection>>,
}

/// Envelope ids: the store gives them itself, from `next` up, so that the
/// writer may push copies before their commit ([`Store::reserve_ids`]).
/// Ids below `reserved` (durable in `server_meta`) may have been given
/// before a commit and seen by a device; a restart goes on from
/// `reserved`, so no id is given twice even if its commit was lost.
#[derive(Debug)]
struct Ids {
    next: u64,
    /// Ids below this may be given before their commit.
    reserved: u64,
}

impl SqliteStore {
    /// Opens (creating if needed) `tether.db` in `dir` and migrates it.
    pub async fn open(dir: &Path) -> Result<Self, crate::Error> {
        std::fs::create_dir_all(dir).map_err(|source| crate::Error::DataDir { path: dir.into(), source })?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(StoreError::from)?
            .filename(dir.join("tether.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoints run beside the commits (below), not inside the
            // commit that crosses the threshold, which would hold up every
            // send waiting for it. Durability is the WAL's, synced on commit.
            .pragma("wal_autocheckpoint", "0")
            // A multi-row statement inside a transaction keeps a statement
            // journal (the pages it changed, to undo it alone); in a file
            // that was a second write per page of every group commit.
            .pragma("temp_store", "MEMORY");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // An in-process database: nothing to test on every acquire.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::from)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        tokio::spawn(checkpoints(pool.clone()));
        // Above every id stored or ever given (AUTOINCREMENT's sequence
        // remembers deleted ones), and above every id reserved before.
        let stored: i64 = sqlx::query_scalar(
            "SELECT MAX(COALESCE((SELECT MAX(id) FROM envelopes), 0), \
             COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'envelopes'), 0))",
        )
        .fetch_one(&pool)
        .await
        .map_err(StoreError::from)?;
        let reserved: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM server_meta WHERE key = ?")
            .bind(IDS_RESERVED)
            .fetch_optional(&pool)
            .await
            .map_err(StoreError::from)?;
        let reserved = reserved.and_then(|v| v.try_into().ok()).map_or(0, u64::from_be_bytes);
        let next = (u(stored) + 1).max(reserved);
        // A range for ids given before their commit, durable before any is.
        let reserved = next + ID_BLOCK;
        put_meta(&pool, IDS_RESERVED, &reserved.to_be_bytes()).await?;
        let ids = Ids { next, reserved };
        // The writer's own connection, after the migrations.
        let writer = options.connect().await.map_err(StoreError::from)?;
        Ok(Self { pool, ids: Arc::new(std::sync::Mutex::new(ids)), commit: Arc::new(tokio::sync::Mutex::new(writer)) })
    }
}

columns!(SqliteRow);

fn key_taken(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            if d.message().contains("accounts.handle") {
                StoreError::HandleTaken
            } else {
                StoreError::KeyTaken
            }
        }
        _ => StoreError::Backend(e),
    }
}

/// Adds a device (the primary at registration, a companion at linking).
async fn insert_device(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    handle: &str,
    d: &NewDevice,
    now_ms: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO devices (handle, device_id, noise_key, platform, name, linked_ms, active_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(handle)
    .bind(d.device_id as i64)
    .bind(&d.noise_key)
    .bind(&d.platform)
    .bind(&d.name)
    .bind(i(now_ms))
    .bind(i(now_ms))
    .execute(&mut **tx)
    .await
    .map_err(key_taken)?;
    Ok(())
}

async fn drop_device(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    handle: &str,
    device_id: u32,
    now_ms: u64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET removed_ms = ? WHERE handle = ? AND device_id = ? AND removed_ms IS NULL")
        .bind(i(now_ms))
        .bind(handle)
        .bind(device_id as i64)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM envelopes WHERE handle = ? AND device_id = ?")
        .bind(handle)
        .bind(device_id as i64)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM prekeys WHERE handle = ? AND device_id = ?")
        .bind(handle)
        .bind(device_id as i64)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM blob_readers WHERE handle = ? AND device_id = ?")
        .bind(handle)
        .bind(device_id as i64)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Rows per INSERT of blob readers (3 variables each).
const READER_CHUNK: usize = 256;

fn blob_row(r: &SqliteRow) -> Blob {
    Blob {
        id: blob_id(r.get("id")),
        handle: r.get("handle"),
        length: u(r.get("length")),
        created_ms: u(r.get("created_ms")),
        expires_ms: u(r.get("expires_ms")),
        complete: r.get::<i64, _>("complete") != 0,
        sent: r.get::<i64, _>("sent") != 0,
    }
}

/// A stored id; the store only ever writes 16-byte ids.
fn blob_id(bytes: Vec<u8>) -> BlobId {
    BlobId::from_slice(&bytes).unwrap_or(BlobId([0; 16]))
}

/// Records a send's blobs: each marked sent, kept until at least its
/// expiry, and every target device a reader. `BlobGone` if a blob is no
/// longer stored or not whole (the caller rolls back).
async fn record_blob_send(conn: &mut SqliteConnection, send: &BlobSend) -> Result<(), StoreError> {
    for id in &send.blob_ids {
        let done =
            sqlx::query("UPDATE blobs SET sent = 1, expires_ms = MAX(expires_ms, ?) WHERE id = ? AND complete = 1")
                .bind(i(send.expires_ms))
                .bind(id.0.as_slice())
                .execute(&mut *conn)
                .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::BlobGone(*id));
        }
        for chunk in send.readers.chunks(READER_CHUNK) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT OR IGNORE INTO blob_readers (blob_id, handle, device_id) ");
            q.push_values(chunk, |mut b, (handle, device_id)| {
                b.push_bind(id.0.as_slice()).push_bind(handle).push_bind(*device_id as i64);
            });
            q.build().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Copies the WAL back into the database now and then (PASSIVE: never
/// waits for, nor blocks, readers and the writer), so it does not grow
/// without bound. Stops when the pool is closed.
async fn checkpoints(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::warn!("WAL checkpoint failed: {e}");
        }
    }
}

/// Writes one `server_meta` value, on the pool or inside a transaction.
async fn put_meta<'e>(e: impl sqlx::SqliteExecutor<'e>, key: &str, value: &[u8]) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO server_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(e)
    .await?;
    Ok(())
}

/// Inserts copies with the ids given (one each, increasing, above every
/// stored id).
async fn insert_envelopes(
    conn: &mut SqliteConnection,
    envelopes: &[NewEnvelope],
    ids: &[u64],
) -> Result<(), StoreError> {
    let mut rest: Vec<(&NewEnvelope, u64)> = envelopes.iter().zip(ids.iter().copied()).collect();
    while !rest.is_empty() {
        let n = INSERT_CHUNKS.iter().copied().find(|&c| c <= rest.len()).unwrap_or(1);
        let tail = rest.split_off(n);
        let chunk = std::mem::replace(&mut rest, tail);
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO envelopes (id, handle, device_id, message_id, sender_handle, sender_device, ciphertext, created_ms) ",
        );
        q.push_values(&chunk, |mut b, (e, id)| {
            b.push_bind(i(*id))
                .push_bind(&e.handle)
                .push_bind(e.device_id as i64)
                .push_bind(&e.message_id)
                .push_bind(&e.sender_handle)
                .push_bind(e.sender_device as i64)
                .push_bind(&*e.ciphertext)
                .push_bind(i(e.created_ms));
        });
        let done = q.build().execute(&mut *conn).await?;
        if done.rows_affected() != n as u64 {
            return Err(StoreError::Backend(sqlx::Error::Protocol(format!(
                "inserted {} of {n} copies",
                done.rows_affected()
            ))));
        }
    }
    Ok(())
}

/// Moves each group's epoch on, in the order given: from no row to a new
/// one (`from` 0), else only if the row holds `from`. `EpochTaken` if not
/// (the caller rolls back).
async fn step_epochs(conn: &mut SqliteConnection, steps: &[GroupEpochStep]) -> Result<(), StoreError> {
    for step in steps {
        let id = step.group_id.0.as_slice();
        let done = if step.from == 0 {
            sqlx::query(
                "INSERT INTO group_epochs (group_id, epoch, updated_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(i(step.to))
            .bind(i(step.updated_ms))
            .execute(&mut *conn)
            .await?
        } else {
            sqlx::query("UPDATE group_epochs SET epoch = ?, updated_ms = ? WHERE group_id = ? AND epoch = ?")
                .bind(i(step.to))
                .bind(i(step.updated_ms))
                .bind(id)
                .bind(i(step.from))
                .execute(&mut *conn)
                .await?
        };
        if done.rows_affected() != 1 {
            return Err(StoreError::EpochTaken(step.group_id));
        }
    }
    Ok(())
}

/// Deletes acknowledged copies, each only if it is the acknowledging
/// device's own, in as few statements as possible; returns how many.
async fn delete_acked(conn: &mut SqliteConnection, acks: &[AckedCopies]) -> Result<u64, StoreError> {
    let all: Vec<(&str, u32, u64)> =
        acks.iter().flat_map(|a| a.ids.iter().map(|&id| (a.handle.as_str(), a.device_id, id))).collect();
    let mut deleted = 0;
    for chunk in all.chunks(ACK_CHUNK) {
        let Some(&last) = chunk.last() else { continue };
        let padded = chunk.len().next_power_of_two();
        // For each (handle, device, id): the row with that id (a rowid
        // lookup) if it belongs to that device.
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("DELETE FROM envelopes WHERE id IN (SELECT e.id FROM (VALUES ");
        let mut sep = q.separated(", ");
        for &(handle, device_id, id) in chunk.iter().chain(std::iter::repeat_n(&last, padded - chunk.len())) {
            sep.push("(")
                .push_bind_unseparated(handle)
                .push_unseparated(", ")
                .push_bind_unseparated(device_id as i64)
                .push_unseparated(", ")
                .push_bind_unseparated(i(id))
                .push_unseparated(")");
        }
        q.push(") AS v JOIN envelopes AS e ON e.id = v.column3 AND e.handle = v.column1 AND e.device_id = v.column2)");
        deleted += q.build().execute(&mut *conn).await?.rows_affected();
    }
    Ok(deleted)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM server_meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        put_meta(&self.pool, key, value).await
    }

    async fn create_account(&self, a: &Account, primary: &NewDevice, now_ms: u64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (handle, account_key, list_version, list_body, list_sig, next_device, created_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.handle)
        .bind(&a.account_key)
        .bind(i(a.list_version))
        .bind(&a.list_body)
        .bind(&a.list_sig)
        .bind(a.next_device as i64)
        .bind(i(now_ms))
        .execute(&mut *tx)
        .await
        .map_err(key_taken)?;
        insert_device(&mut tx, &a.handle, primary, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn account(&self, handle: &str) -> Result<Option<Account>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM accounts WHERE handle = ?").bind(handle).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(account_row))
    }

    async fn handles(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT handle FROM accounts ORDER BY handle").fetch_all(&self.pool).await?)
    }

    async fn device_by_key(&self, noise_key: &[u8]) -> Result<Option<Device>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM devices WHERE noise_key = ?").bind(noise_key).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(device_row))
    }

    async fn devices(&self, handle: &str) -> Result<Vec<Device>, StoreError> {
        let rows = sqlx::query("SELECT * FROM devices WHERE handle = ? ORDER BY device_id")
            .bind(handle)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(device_row).collect())
    }

    async fn touch(&self, seen: &[Seen]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for s in seen {
            sqlx::query("UPDATE devices SET active_ms = MAX(active_ms, ?) WHERE handle = ? AND device_id = ?")
                .bind(i(s.at_ms))
                .bind(&s.handle)
                .bind(s.device_id as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_entry_signature(&self, handle: &str, device_id: u32, signature: &[u8]) -> Result<(), StoreError> {
        sqlx::query("UPDATE devices SET entry_signature = ? WHERE handle = ? AND device_id = ? AND removed_ms IS NULL")
            .bind(signature)
            .bind(handle)
            .bind(device_id as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn entry_signatures(&self, handle: &str) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT device_id, entry_signature FROM devices
             WHERE handle = ? AND removed_ms IS NULL AND length(entry_signature) > 0 ORDER BY device_id",
        )
        .bind(handle)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, sig)| (id as u32, sig)).collect())
    }

    async fn update_list(&self, up: &ListUpdate, now_ms: u64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let next = up.add.as_ref().map(|d| d.device_id + 1).unwrap_or(0) as i64;
        let done = sqlx::query(
            "UPDATE accounts SET list_version = ?, list_body = ?, list_sig = ?, next_device = MAX(next_device, ?)
             WHERE handle = ? AND list_version = ?",
        )
        .bind(i(up.version))
        .bind(&up.body)
        .bind(&up.sig)
        .bind(next)
        .bind(&up.handle)
        .bind(i(up.expected_version))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict);
        }
        if let Some(d) = &up.add {
            insert_device(&mut tx, &up.handle, d, now_ms).await?;
        }
        for &id in &up.remove {
            drop_device(&mut tx, &up.handle, id, now_ms).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn restore_account(&self, r: &Restoration, now_ms: u64) -> Result<Vec<u32>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE accounts SET list_version = ?, list_body = ?, list_sig = ? WHERE handle = ? AND list_version = ?",
        )
        .bind(i(r.version))
        .bind(&r.body)
        .bind(&r.sig)
        .bind(&r.handle)
        .bind(i(r.expected_version))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict);
        }
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM restored_keys WHERE noise_key = ?")
            .bind(&r.primary.noise_key)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_some() {
            return Err(StoreError::KeyTaken);
        }
        let active: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT device_id, noise_key FROM devices WHERE handle = ? AND removed_ms IS NULL")
                .bind(&r.handle)
                .fetch_all(&mut *tx)
                .await?;
        for (id, key) in &active {
            sqlx::query("INSERT OR IGNORE INTO restored_keys (noise_key, handle, restored_ms) VALUES (?, ?, ?)")
                .bind(key)
                .bind(&r.handle)
                .bind(i(now_ms))
                .execute(&mut *tx)
                .await?;
            drop_device(&mut tx, &r.handle, *id as u32, now_ms).await?;
        }
        // Device 0 is the new primary now; the old one's key stays known
        // in restored_keys.
        sqlx::query("DELETE FROM devices WHERE handle = ? AND device_id = ?")
            .bind(&r.handle)
            .bind(r.primary.device_id as i64)
            .execute(&mut *tx)
            .await?;
        insert_device(&mut tx, &r.handle, &r.primary, now_ms).await?;
        tx.commit().await?;
        Ok(active.into_iter().map(|(id, _)| id as u32).collect())
    }

    async fn restored_key(&self, noise_key: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT handle FROM restored_keys WHERE noise_key = ?")
            .bind(noise_key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn remove_device(&self, handle: &str, device_id: u32, now_ms: u64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        drop_device(&mut tx, handle, device_id, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_batch_as(
        &self,
        envelopes: &[NewEnvelope],
        given: Option<&[u64]>,
        acks: &[AckedCopies],
        blobs: &[BlobSend],
        epochs: &[GroupEpochStep],
    ) -> Result<Committed, StoreError> {
        if envelopes.is_empty() && acks.iter().all(|a| a.ids.is_empty()) && blobs.is_empty() && epochs.is_empty() {
            return Ok(Committed::default());
        }
        let mut writer = self.commit.lock().await;
        // Ids: the ones reserved for these copies, else the next ones. A
        // range reserved for later batches is renewed when half used, in
        // this transaction.
        let (ids, renew) = {
            let mut state = self.ids.lock().expect("ids lock");
            let ids = match given {
                Some(ids) => {
                    if ids.len() != envelopes.len() || ids.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(StoreError::Backend(sqlx::Error::Protocol("reserved ids do not fit".into())));
                    }
                    ids.to_vec()
                }
                None => {
                    let first = state.next;
                    state.next += envelopes.len() as u64;
                    (first..state.next).collect()
                }
            };
            let renew = (state.next + ID_BLOCK / 2 > state.reserved).then_some(state.next + ID_BLOCK);
            (ids, renew)
        };
        let mut tx = writer.begin().await?;
        // On any error the transaction is dropped: rolled back, nothing
        // stored (the ids it took are not given again).
        step_epochs(&mut tx, epochs).await?;
        // Copies before acks: with pipelined commits (writer.rs) a device
        // may acknowledge a copy pushed before its commit in the same group.
        insert_envelopes(&mut tx, envelopes, &ids).await?;
        let acked = delete_acked(&mut tx, acks).await?;
        for send in blobs {
            record_blob_send(&mut tx, send).await?;
        }
        if let Some(end) = renew {
            put_meta(&mut *tx, IDS_RESERVED, &end.to_be_bytes()).await?;
        }
        tx.commit().await?;
        if let Some(end) = renew {
            let mut state = self.ids.lock().expect("ids lock");
            state.reserved = state.reserved.max(end);
        }
        Ok(Committed { ids, acked })
    }

    fn reserve_ids(&self, n: usize) -> Option<Vec<u64>> {
        let mut state = self.ids.lock().expect("ids lock");
        let end = state.next + n as u64;
        if end > state.reserved {
            return None;
        }
        let ids = (state.next..end).collect();
        state.next = end;
        Some(ids)
    }

    async fn pending(
        &self,
        handle: &str,
        device_id: u32,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM envelopes WHERE handle = ? AND device_id = ? AND id > ? ORDER BY id LIMIT ?")
                .bind(handle)
                .bind(device_id as i64)
                .bind(i(after))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(envelope_row).collect())
    }

    async fn expire(&self, before_ms: u64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM envelopes WHERE created_ms < ?")
            .bind(i(before_ms))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        Ok(u(sqlx::query_scalar("SELECT COUNT(*) FROM envelopes").fetch_one(&self.pool).await?))
    }

    async fn queue_usage(&self, handle: &str, device_id: u32) -> Result<(u64, u64), StoreError> {
        let (n, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(ciphertext)), 0) FROM envelopes WHERE handle = ? AND device_id = ?",
        )
        .bind(handle)
        .bind(device_id as i64)
        .fetch_one(&self.pool)
        .await?;
        Ok((u(n), u(bytes)))
    }

    async fn group_epoch(&self, group_id: &GroupId) -> Result<u64, StoreError> {
        let epoch: Option<i64> = sqlx::query_scalar("SELECT epoch FROM group_epochs WHERE group_id = ?")
            .bind(group_id.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        Ok(epoch.map(u).unwrap_or(0))
    }

    async fn add_prekeys(&self, handle: &str, device_id: u32, keys: &[Prekey]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if keys.iter().any(|k| k.fallback) {
            sqlx::query("DELETE FROM prekeys WHERE handle = ? AND device_id = ? AND fallback = 1")
                .bind(handle)
                .bind(device_id as i64)
                .execute(&mut *tx)
                .await?;
        }
        for k in keys {
            sqlx::query(
                "INSERT INTO prekeys (handle, device_id, key_id, key, fallback, signature) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT DO UPDATE SET key = excluded.key, signature = excluded.signature",
            )
            .bind(handle)
            .bind(device_id as i64)
            .bind(i(k.key_id))
            .bind(&k.key)
            .bind(k.fallback as i64)
            .bind(&k.signature)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_prekey(&self, handle: &str, device_id: u32) -> Result<Option<Prekey>, StoreError> {
        // One statement: SQLite runs it atomically, so two claimers can
        // never get the same one-time key.
        let one_time = sqlx::query(
            "DELETE FROM prekeys WHERE rowid = (
                SELECT rowid FROM prekeys WHERE handle = ? AND device_id = ? AND fallback = 0
                ORDER BY key_id LIMIT 1)
             RETURNING key_id, key, signature",
        )
        .bind(handle)
        .bind(device_id as i64)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = one_time {
            return Ok(Some(Prekey {
                key_id: u(r.get("key_id")),
                key: r.get("key"),
                fallback: false,
                signature: r.get("signature"),
            }));
        }
        let fallback = sqlx::query(
            "SELECT key_id, key, signature FROM prekeys WHERE handle = ? AND device_id = ? AND fallback = 1",
        )
        .bind(handle)
        .bind(device_id as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(fallback.map(|r| Prekey {
            key_id: u(r.get("key_id")),
            key: r.get("key"),
            fallback: true,
            signature: r.get("signature"),
        }))
    }

    async fn prekey_count(&self, handle: &str, device_id: u32) -> Result<u32, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM prekeys WHERE handle = ? AND device_id = ? AND fallback = 0")
                .bind(handle)
                .bind(device_id as i64)
                .fetch_one(&self.pool)
                .await?;
        Ok(n as u32)
    }

    async fn create_blob(&self, b: &Blob, limits: BlobLimits) -> Result<BlobCreated, StoreError> {
        // One statement: the check and the insert are atomic.
        let done = sqlx::query(
            "INSERT INTO blobs (id, handle, length, created_ms, expires_ms, complete, sent)
             SELECT ?, ?, ?, ?, ?, ?, ?
             WHERE (SELECT COALESCE(SUM(length), 0) FROM blobs WHERE handle = ?) + ? <= ?
               AND (SELECT COUNT(*) FROM blobs WHERE handle = ? AND complete = 0) < ?",
        )
        .bind(b.id.0.as_slice())
        .bind(&b.handle)
        .bind(i(b.length))
        .bind(i(b.created_ms))
        .bind(i(b.expires_ms))
        .bind(b.complete as i64)
        .bind(b.sent as i64)
        .bind(&b.handle)
        .bind(i(b.length))
        .bind(i(limits.quota_bytes))
        .bind(&b.handle)
        .bind(i(limits.max_unfinished))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(BlobCreated::Created);
        }
        let (unfinished, _) = self.blob_usage(&b.handle).await?;
        Ok(if unfinished >= limits.max_unfinished { BlobCreated::TooManyUnfinished } else { BlobCreated::OverQuota })
    }

    async fn blob(&self, id: &BlobId) -> Result<Option<Blob>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM blobs WHERE id = ?").bind(id.0.as_slice()).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(blob_row))
    }

    async fn complete_blob(&self, id: &BlobId) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE blobs SET complete = 1 WHERE id = ?").bind(id.0.as_slice()).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn blob_readable_by(&self, id: &BlobId, handle: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM blob_readers WHERE blob_id = ? AND handle = ? LIMIT 1")
                .bind(id.0.as_slice())
                .bind(handle)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn remove_blob_reader(&self, id: &BlobId, handle: &str, device_id: u32) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM blob_readers WHERE blob_id = ? AND handle = ? AND device_id = ?")
            .bind(id.0.as_slice())
            .bind(handle)
            .bind(device_id as i64)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query(
            "DELETE FROM blobs WHERE id = ? AND sent = 1
             AND NOT EXISTS (SELECT 1 FROM blob_readers WHERE blob_id = blobs.id)",
        )
        .bind(id.0.as_slice())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(gone == 1)
    }

    async fn delete_blob(&self, id: &BlobId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM blobs WHERE id = ?").bind(id.0.as_slice()).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_own_blobs(&self, handle: &str, ids: &[BlobId]) -> Result<Vec<BlobId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut gone = Vec::new();
        for id in ids {
            // Readers go with the record (ON DELETE CASCADE).
            let done = sqlx::query("DELETE FROM blobs WHERE id = ? AND handle = ?")
                .bind(id.0.as_slice())
                .bind(handle)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 1 {
                gone.push(*id);
            }
        }
        tx.commit().await?;
        Ok(gone)
    }

    async fn expire_blobs(&self, now_ms: u64) -> Result<Vec<BlobId>, StoreError> {
        let ids: Vec<Vec<u8>> = sqlx::query_scalar("DELETE FROM blobs WHERE expires_ms < ? RETURNING id")
            .bind(i(now_ms))
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(blob_id).collect())
    }

    async fn drop_unread_blobs(&self) -> Result<Vec<BlobId>, StoreError> {
        let ids: Vec<Vec<u8>> = sqlx::query_scalar(
            "DELETE FROM blobs WHERE sent = 1
             AND NOT EXISTS (SELECT 1 FROM blob_readers WHERE blob_id = blobs.id) RETURNING id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(blob_id).collect())
    }

    async fn blob_usage(&self, handle: &str) -> Result<(u64, u64), StoreError> {
        let (unfinished, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(complete = 0), 0), COALESCE(SUM(length), 0) FROM blobs WHERE handle = ?",
        )
        .bind(handle)
        .fetch_one(&self.pool)
        .await?;
        Ok((u(unfinished), u(bytes)))
    }

    async fn blob_totals(&self) -> Result<(u64, u64), StoreError> {
        let (n, bytes): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(length), 0) FROM blobs").fetch_one(&self.pool).await?;
        Ok((u(n), u(bytes)))
    }

    async fn add_token(&self, token: &str, now_ms: u64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tokens (token, created_ms) VALUES (?, ?)")
            .bind(token)
            .bind(i(now_ms))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn use_token(&self, token: &str, handle: &str, now_ms: u64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE tokens SET used_ms = ?, used_by = ? WHERE token = ? AND used_ms IS NULL")
            .bind(i(now_ms))
            .bind(handle)
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
