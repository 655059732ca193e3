//! The PostgreSQL backend (`--database-url postgres://…`): the same tables
//! and rules as the SQLite one (migrations in `migrations-postgres/`), for
//! a database that lives apart from the relay. Durable on commit with
//! PostgreSQL's default `synchronous_commit = on`; envelopes are written in
//! batches (group commit), one transaction and one WAL flush per batch.
//!
//! SQLite has one writer at a time, so its statements never race. Here
//! several connections (and, one day, several relays) write at once, so
//! every rule the trait states atomically is held by PostgreSQL's own
//! locks:
//! - envelope ids: a transaction-scoped advisory lock around drawing and
//!   committing them ([`ENVELOPE_LOCK`]);
//! - optimistic concurrency (`update_list`, `restore_account`, group
//!   epochs, tokens): a conditional `UPDATE`, which re-checks its condition
//!   on the newest row once a concurrent writer of the row commits;
//! - one-time keys: `DELETE … RETURNING` of a row picked `FOR UPDATE SKIP
//!   LOCKED`, so two claimers never get the same key and neither waits;
//! - blob quotas: an advisory lock per account ([`BLOB_QUOTA_LOCK`]);
//! - blob records dropped when their last reader goes: the blob's row is
//!   locked first, then its readers are counted afresh.

use super::*;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Row};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

/// Most connections to PostgreSQL. The writer uses one at a time; the
/// rest serve connections' reads (lookups, `pending`, prekey claims).
const MAX_CONNECTIONS: u32 = 16;
/// How long a query waits for a connection: when PostgreSQL is down, a
/// request fails after this (`internal`, `/healthz` 503) instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Key of the transaction-scoped advisory lock that every transaction
/// inserting envelopes takes first ("tether" in ASCII, then 1).
///
/// Ids come from a sequence, which hands a value out when it is drawn, not
/// when the transaction commits. Without the lock, two transactions (two
/// writers, on one relay or on several) could draw ids 1–10 and 11–20 and
/// commit the second range first; a device that read 11–20 meanwhile
/// moves its cursor (`pending(…, after = 20, …)`) past 1–10, which it then
/// never sees: a lost message. With the lock, ids are drawn only by the
/// transaction that holds it, and it is released only after the commit is
/// durable and visible, so ids become visible in increasing order. The
/// price is one envelope-writing transaction at a time per database, which
/// group commit makes cheap (one transaction per batch, not per message).
/// A sequence drawn under the lock, rather than `SELECT MAX(id) + 1`,
/// keeps ids never reused, even after the largest ones are deleted.
const ENVELOPE_LOCK: i64 = 0x7465_7468_6572_0001;
/// Class of the advisory locks (the two-`int4` form: this class, then
/// `hashtext(handle)`) that `create_blob` takes per account, so that the
/// quota check and the insert of two concurrent uploads run one after the
/// other. Two accounts whose handles hash alike merely wait for each other.
const BLOB_QUOTA_LOCK: i32 = 0x7465_7468;
/// Most envelopes per INSERT: their fields go as one array per column
/// (`UNNEST`), so the statement is the same whatever the count and far
/// from PostgreSQL's 65 535 parameters; a batch is cut only to keep each
/// statement's message small.
const INSERT_ROWS: usize = 4096;
/// Most ciphertext bytes per INSERT (a fan-out repeats its ciphertext for
/// every copy; PostgreSQL refuses a message of 1 GiB).
const INSERT_BYTES: usize = 32 * 1024 * 1024;
/// Most acknowledged ids per DELETE (three arrays of this length).
const ACK_CHUNK: usize = 16_384;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// Connection pool: at most [`MAX_CONNECTIONS`], each acquired within
    /// [`ACQUIRE_TIMEOUT`] or the query fails.
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://` or
    /// `postgresql://`) and migrates it. Errors name the server and the
    /// database, never the URL (it may hold a password).
    pub async fn connect(url: &str) -> Result<Self, crate::Error> {
        let options = PgConnectOptions::from_str(url).map_err(|e| crate::Error::Postgres {
            server: "(unreadable --database-url)".into(),
            reason: e.to_string(),
        })?;
        let server = describe(&options);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| crate::Error::Postgres {
                server: server.clone(),
                reason: match e {
                    sqlx::Error::PoolTimedOut => {
                        format!("no connection within {} s (is it running and reachable?)", ACQUIRE_TIMEOUT.as_secs())
                    }
                    e => e.to_string(),
                },
            })?;
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        tracing::info!(%server, "store: PostgreSQL");
        Ok(Self { pool })
    }
}

/// `host:port/database` of a connection's settings: what logs and errors
/// say of the database (never the user's password).
fn describe(options: &PgConnectOptions) -> String {
    let db = options.get_database().unwrap_or(options.get_username());
    format!("{}:{}/{db}", options.get_host(), options.get_port())
}

columns!(PgRow);

/// A unique violation (SQLSTATE 23505) of the accounts' key is
/// `HandleTaken`, of the devices' keys `KeyTaken` (the constraints are
/// named in the migration); anything else stays a backend error.
fn key_taken(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        match d.constraint() {
            Some("accounts_pkey") => return StoreError::HandleTaken,
            Some("devices_pkey" | "devices_noise_key_key") => return StoreError::KeyTaken,
            _ => {}
        }
    }
    StoreError::Backend(e)
}

/// Adds a device (the primary at registration, a companion at linking).
async fn insert_device(conn: &mut PgConnection, handle: &str, d: &NewDevice, now_ms: u64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO devices (handle, device_id, noise_key, platform, name, linked_ms, active_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(handle)
    .bind(i64::from(d.device_id))
    .bind(&d.noise_key)
    .bind(&d.platform)
    .bind(&d.name)
    .bind(i(now_ms))
    .execute(conn)
    .await
    .map_err(key_taken)?;
    Ok(())
}

/// Marks a device removed and deletes its queue, prekeys and reader rows.
async fn drop_device(conn: &mut PgConnection, handle: &str, device_id: u32, now_ms: u64) -> Result<(), StoreError> {
    let device_id = i64::from(device_id);
    sqlx::query("UPDATE devices SET removed_ms = $1 WHERE handle = $2 AND device_id = $3 AND removed_ms IS NULL")
        .bind(i(now_ms))
        .bind(handle)
        .bind(device_id)
        .execute(&mut *conn)
        .await?;
    for table in ["envelopes", "prekeys", "blob_readers"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE handle = $1 AND device_id = $2"))
            .bind(handle)
            .bind(device_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn blob_row(r: &PgRow) -> Blob {
    Blob {
        id: blob_id(r.get("id")),
        handle: r.get("handle"),
        length: u(r.get("length")),
        created_ms: u(r.get("created_ms")),
        expires_ms: u(r.get("expires_ms")),
        complete: r.get("complete"),
        sent: r.get("sent"),
    }
}

/// A stored id; the store only ever writes 16-byte ids.
fn blob_id(bytes: Vec<u8>) -> BlobId {
    BlobId::from_slice(&bytes).unwrap_or(BlobId([0; 16]))
}

/// Records a send's blobs: each marked sent, kept until at least its
/// expiry, and every target device a reader. `BlobGone` if a blob is no
/// longer stored or not whole (the caller rolls back). The UPDATE locks the
/// blob's row, so a concurrent delete either went first (the blob is gone)
/// or waits for this commit.
async fn record_blob_send(conn: &mut PgConnection, send: &BlobSend) -> Result<(), StoreError> {
    let handles: Vec<&str> = send.readers.iter().map(|(h, _)| h.as_str()).collect();
    let devices: Vec<i64> = send.readers.iter().map(|&(_, d)| i64::from(d)).collect();
    for id in &send.blob_ids {
        let done = sqlx::query(
            "UPDATE blobs SET sent = TRUE, expires_ms = GREATEST(expires_ms, $1) WHERE id = $2 AND complete",
        )
        .bind(i(send.expires_ms))
        .bind(id.0.as_slice())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::BlobGone(*id));
        }
        sqlx::query(
            "INSERT INTO blob_readers (blob_id, handle, device_id)
             SELECT $1, r.handle, r.device_id FROM UNNEST($2::TEXT[], $3::BIGINT[]) AS r (handle, device_id)
             ON CONFLICT DO NOTHING",
        )
        .bind(id.0.as_slice())
        .bind(&handles)
        .bind(&devices)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Inserts copies; returns their ids in the order given. The caller holds
/// [`ENVELOPE_LOCK`]: ids are drawn from the sequence by this transaction
/// alone and are above every id committed before.
async fn insert_envelopes(conn: &mut PgConnection, envelopes: &[NewEnvelope]) -> Result<Vec<u64>, StoreError> {
    if envelopes.is_empty() {
        return Ok(Vec::new());
    }
    // Drawn explicitly, then given out in the order of `envelopes`: no
    // reliance on the order in which PostgreSQL fills in column defaults.
    let mut drawn: Vec<i64> = sqlx::query_scalar("SELECT nextval('envelope_ids') FROM generate_series(1, $1)")
        .bind(envelopes.len() as i64)
        .fetch_all(&mut *conn)
        .await?;
    drawn.sort_unstable();
    if drawn.len() != envelopes.len() {
        return Err(StoreError::Backend(sqlx::Error::Protocol(format!(
            "drew {} ids for {} copies",
            drawn.len(),
            envelopes.len()
        ))));
    }
    let mut rest: (&[NewEnvelope], &[i64]) = (envelopes, &drawn);
    while !rest.0.is_empty() {
        let mut n = 0;
        let mut bytes = 0;
        while n < rest.0.len() && n < INSERT_ROWS && (n == 0 || bytes + rest.0[n].ciphertext.len() <= INSERT_BYTES) {
            bytes += rest.0[n].ciphertext.len();
            n += 1;
        }
        let (chunk, tail) = rest.0.split_at(n);
        let (ids, tail_ids) = rest.1.split_at(n);
        rest = (tail, tail_ids);
        sqlx::query(
            "INSERT INTO envelopes
                 (id, handle, device_id, message_id, sender_handle, sender_device, ciphertext, created_ms)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BYTEA[],
                                  $5::TEXT[], $6::BIGINT[], $7::BYTEA[], $8::BIGINT[])",
        )
        .bind(ids)
        .bind(chunk.iter().map(|e| e.handle.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|e| i64::from(e.device_id)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|e| e.message_id.as_slice()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|e| e.sender_handle.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|e| i64::from(e.sender_device)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|e| &*e.ciphertext).collect::<Vec<_>>())
        .bind(chunk.iter().map(|e| i(e.created_ms)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(drawn.into_iter().map(u).collect())
}

/// Moves each group's epoch on, in the order given: from no row to a new
/// one (`from` 0), else only if the row holds `from`. `EpochTaken` if not
/// (the caller rolls back). A concurrent step of the same group waits for
/// this one's commit, then finds the row taken or changed.
async fn step_epochs(conn: &mut PgConnection, steps: &[GroupEpochStep]) -> Result<(), StoreError> {
    for step in steps {
        let id = step.group_id.0.as_slice();
        let done = if step.from == 0 {
            sqlx::query(
                "INSERT INTO group_epochs (group_id, epoch, updated_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(i(step.to))
            .bind(i(step.updated_ms))
            .execute(&mut *conn)
            .await?
        } else {
            sqlx::query("UPDATE group_epochs SET epoch = $1, updated_ms = $2 WHERE group_id = $3 AND epoch = $4")
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
async fn delete_acked(conn: &mut PgConnection, acks: &[AckedCopies]) -> Result<u64, StoreError> {
    let all: Vec<(&str, i64, i64)> =
        acks.iter().flat_map(|a| a.ids.iter().map(|&id| (a.handle.as_str(), i64::from(a.device_id), i(id)))).collect();
    let mut deleted = 0;
    for chunk in all.chunks(ACK_CHUNK) {
        // A row named twice is still deleted (and counted) once.
        deleted += sqlx::query(
            "DELETE FROM envelopes AS e
             USING UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[]) AS v (handle, device_id, id)
             WHERE e.id = v.id AND e.handle = v.handle AND e.device_id = v.device_id",
        )
        .bind(chunk.iter().map(|a| a.0).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| a.1).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| a.2).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(deleted)
}

fn prekey_row(r: &PgRow, fallback: bool) -> Prekey {
    Prekey { key_id: u(r.get("key_id")), key: r.get("key"), fallback, signature: r.get("signature") }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM server_meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO server_meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_account(&self, a: &Account, primary: &NewDevice, now_ms: u64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (handle, account_key, list_version, list_body, list_sig, next_device, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.handle)
        .bind(&a.account_key)
        .bind(i(a.list_version))
        .bind(&a.list_body)
        .bind(&a.list_sig)
        .bind(i64::from(a.next_device))
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
            sqlx::query("SELECT * FROM accounts WHERE handle = $1").bind(handle).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(account_row))
    }

    async fn handles(&self) -> Result<Vec<String>, StoreError> {
        // Byte order, as SQLite's, whatever the database's collation.
        Ok(sqlx::query_scalar(r#"SELECT handle FROM accounts ORDER BY handle COLLATE "C""#)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn device_by_key(&self, noise_key: &[u8]) -> Result<Option<Device>, StoreError> {
        let row = sqlx::query("SELECT * FROM devices WHERE noise_key = $1")
            .bind(noise_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(device_row))
    }

    async fn devices(&self, handle: &str) -> Result<Vec<Device>, StoreError> {
        let rows = sqlx::query("SELECT * FROM devices WHERE handle = $1 ORDER BY device_id")
            .bind(handle)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(device_row).collect())
    }

    async fn touch(&self, seen: &[Seen]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for s in seen {
            sqlx::query("UPDATE devices SET active_ms = GREATEST(active_ms, $1) WHERE handle = $2 AND device_id = $3")
                .bind(i(s.at_ms))
                .bind(&s.handle)
                .bind(i64::from(s.device_id))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_entry_signature(&self, handle: &str, device_id: u32, signature: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET entry_signature = $1 WHERE handle = $2 AND device_id = $3 AND removed_ms IS NULL",
        )
        .bind(signature)
        .bind(handle)
        .bind(i64::from(device_id))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn entry_signatures(&self, handle: &str) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT device_id, entry_signature FROM devices
             WHERE handle = $1 AND removed_ms IS NULL AND octet_length(entry_signature) > 0 ORDER BY device_id",
        )
        .bind(handle)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, sig)| (id as u32, sig)).collect())
    }

    async fn update_list(&self, up: &ListUpdate, now_ms: u64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let next = up.add.as_ref().map(|d| i64::from(d.device_id) + 1).unwrap_or(0);
        // A concurrent update of the account waits for this row's lock,
        // then sees the new version and changes nothing: `Conflict`.
        let done = sqlx::query(
            "UPDATE accounts SET list_version = $1, list_body = $2, list_sig = $3,
                                 next_device = GREATEST(next_device, $4)
             WHERE handle = $5 AND list_version = $6",
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
            "UPDATE accounts SET list_version = $1, list_body = $2, list_sig = $3
             WHERE handle = $4 AND list_version = $5",
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
        let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM restored_keys WHERE noise_key = $1")
            .bind(&r.primary.noise_key)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_some() {
            return Err(StoreError::KeyTaken);
        }
        let active: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT device_id, noise_key FROM devices WHERE handle = $1 AND removed_ms IS NULL")
                .bind(&r.handle)
                .fetch_all(&mut *tx)
                .await?;
        for (id, key) in &active {
            sqlx::query(
                "INSERT INTO restored_keys (noise_key, handle, restored_ms) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(key)
            .bind(&r.handle)
            .bind(i(now_ms))
            .execute(&mut *tx)
            .await?;
            drop_device(&mut tx, &r.handle, *id as u32, now_ms).await?;
        }
        // Device 0 is the new primary now; the old one's key stays known
        // in restored_keys.
        sqlx::query("DELETE FROM devices WHERE handle = $1 AND device_id = $2")
            .bind(&r.handle)
            .bind(i64::from(r.primary.device_id))
            .execute(&mut *tx)
            .await?;
        insert_device(&mut tx, &r.handle, &r.primary, now_ms).await?;
        tx.commit().await?;
        Ok(active.into_iter().map(|(id, _)| id as u32).collect())
    }

    async fn restored_key(&self, noise_key: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT handle FROM restored_keys WHERE noise_key = $1")
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
        if given.is_some() {
            // Ids come from the database, under its lock (reserve_ids
            // gives none here).
            return Err(StoreError::Backend(sqlx::Error::Protocol("PostgreSQL gives ids at commit only".into())));
        }
        if envelopes.is_empty() && acks.iter().all(|a| a.ids.is_empty()) && blobs.is_empty() && epochs.is_empty() {
            return Ok(Committed::default());
        }
        let mut tx = self.pool.begin().await?;
        // On any error the transaction is dropped: rolled back, nothing stored.
        if !envelopes.is_empty() {
            // First, so that envelope-writing transactions run (and commit)
            // one after the other; released by the commit or rollback.
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ENVELOPE_LOCK).execute(&mut *tx).await?;
        }
        step_epochs(&mut tx, epochs).await?;
        let acked = delete_acked(&mut tx, acks).await?;
        let ids = insert_envelopes(&mut tx, envelopes).await?;
        for send in blobs {
            record_blob_send(&mut tx, send).await?;
        }
        tx.commit().await?;
        Ok(Committed { ids, acked })
    }

    async fn pending(
        &self,
        handle: &str,
        device_id: u32,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM envelopes WHERE handle = $1 AND device_id = $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(handle)
        .bind(i64::from(device_id))
        .bind(i(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(envelope_row).collect())
    }

    async fn expire(&self, before_ms: u64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM envelopes WHERE created_ms < $1")
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
            "SELECT COUNT(*), COALESCE(SUM(octet_length(ciphertext)), 0)::BIGINT FROM envelopes
             WHERE handle = $1 AND device_id = $2",
        )
        .bind(handle)
        .bind(i64::from(device_id))
        .fetch_one(&self.pool)
        .await?;
        Ok((u(n), u(bytes)))
    }

    async fn group_epoch(&self, group_id: &GroupId) -> Result<u64, StoreError> {
        let epoch: Option<i64> = sqlx::query_scalar("SELECT epoch FROM group_epochs WHERE group_id = $1")
            .bind(group_id.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        Ok(epoch.map(u).unwrap_or(0))
    }

    async fn add_prekeys(&self, handle: &str, device_id: u32, keys: &[Prekey]) -> Result<(), StoreError> {
        // One upsert per kind. A key id given twice: the last one wins, as
        // SQLite's one upsert after another (and PostgreSQL refuses to
        // upsert one row twice in a statement). The fallback key goes by
        // the partial unique index `prekeys_one_fallback`, so a device has
        // one even when two uploads race.
        let mut seen = HashSet::new();
        let one_time: Vec<&Prekey> = keys.iter().rev().filter(|k| !k.fallback && seen.insert(k.key_id)).collect();
        let fallback = keys.iter().rfind(|k| k.fallback);
        let device_id = i64::from(device_id);
        let mut tx = self.pool.begin().await?;
        if !one_time.is_empty() {
            sqlx::query(
                "INSERT INTO prekeys (handle, device_id, key_id, key, fallback, signature)
                 SELECT $1, $2, k.key_id, k.key, FALSE, k.signature
                 FROM UNNEST($3::BIGINT[], $4::BYTEA[], $5::BYTEA[]) AS k (key_id, key, signature)
                 ON CONFLICT (handle, device_id, fallback, key_id)
                 DO UPDATE SET key = EXCLUDED.key, signature = EXCLUDED.signature",
            )
            .bind(handle)
            .bind(device_id)
            .bind(one_time.iter().map(|k| i(k.key_id)).collect::<Vec<_>>())
            .bind(one_time.iter().map(|k| k.key.as_slice()).collect::<Vec<_>>())
            .bind(one_time.iter().map(|k| k.signature.as_slice()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(k) = fallback {
            sqlx::query(
                "INSERT INTO prekeys (handle, device_id, key_id, key, fallback, signature)
                 VALUES ($1, $2, $3, $4, TRUE, $5)
                 ON CONFLICT (handle, device_id) WHERE fallback
                 DO UPDATE SET key_id = EXCLUDED.key_id, key = EXCLUDED.key, signature = EXCLUDED.signature",
            )
            .bind(handle)
            .bind(device_id)
            .bind(i(k.key_id))
            .bind(&k.key)
            .bind(&k.signature)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_prekey(&self, handle: &str, device_id: u32) -> Result<Option<Prekey>, StoreError> {
        // One statement. The key is picked FOR UPDATE SKIP LOCKED: a
        // concurrent claimer skips a key another is taking (rather than
        // waiting for it, then finding it gone and handing out the
        // fallback key while one-time keys are left), and DELETE …
        // RETURNING hands each key out once.
        let one_time = sqlx::query(
            "DELETE FROM prekeys WHERE (handle, device_id, fallback, key_id) = (
                SELECT handle, device_id, fallback, key_id FROM prekeys
                WHERE handle = $1 AND device_id = $2 AND NOT fallback
                ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING key_id, key, signature",
        )
        .bind(handle)
        .bind(i64::from(device_id))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = one_time {
            return Ok(Some(prekey_row(&r, false)));
        }
        let fallback =
            sqlx::query("SELECT key_id, key, signature FROM prekeys WHERE handle = $1 AND device_id = $2 AND fallback")
                .bind(handle)
                .bind(i64::from(device_id))
                .fetch_optional(&self.pool)
                .await?;
        Ok(fallback.map(|r| prekey_row(&r, true)))
    }

    async fn prekey_count(&self, handle: &str, device_id: u32) -> Result<u32, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM prekeys WHERE handle = $1 AND device_id = $2 AND NOT fallback")
                .bind(handle)
                .bind(i64::from(device_id))
                .fetch_one(&self.pool)
                .await?;
        Ok(n as u32)
    }

    async fn create_blob(&self, b: &Blob, limits: BlobLimits) -> Result<BlobCreated, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The account's uploads are checked and inserted one at a time:
        // without the lock, two transactions would each count the other's
        // blob out (not yet committed) and both squeeze past the quota.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(BLOB_QUOTA_LOCK)
            .bind(&b.handle)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO blobs (id, handle, length, created_ms, expires_ms, complete, sent)
             SELECT $1, $2, $3, $4, $5, $6, $7
             WHERE (SELECT COALESCE(SUM(length), 0) FROM blobs WHERE handle = $2) + $3 <= $8
               AND (SELECT COUNT(*) FROM blobs WHERE handle = $2 AND NOT complete) < $9",
        )
        .bind(b.id.0.as_slice())
        .bind(&b.handle)
        .bind(i(b.length))
        .bind(i(b.created_ms))
        .bind(i(b.expires_ms))
        .bind(b.complete)
        .bind(b.sent)
        .bind(i(limits.quota_bytes))
        .bind(i(limits.max_unfinished))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(BlobCreated::Created);
        }
        let unfinished: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE handle = $1 AND NOT complete")
            .bind(&b.handle)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(if u(unfinished) >= limits.max_unfinished { BlobCreated::TooManyUnfinished } else { BlobCreated::OverQuota })
    }

    async fn blob(&self, id: &BlobId) -> Result<Option<Blob>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM blobs WHERE id = $1").bind(id.0.as_slice()).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(blob_row))
    }

    async fn complete_blob(&self, id: &BlobId) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE blobs SET complete = TRUE WHERE id = $1")
            .bind(id.0.as_slice())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn blob_readable_by(&self, id: &BlobId, handle: &str) -> Result<bool, StoreError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM blob_readers WHERE blob_id = $1 AND handle = $2 LIMIT 1")
                .bind(id.0.as_slice())
                .bind(handle)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn remove_blob_reader(&self, id: &BlobId, handle: &str, device_id: u32) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The blob's row first: two devices dropping the last two readers
        // at once then run one after the other, and the second one sees
        // the first one's deletion (each statement reads afresh), so one
        // of them deletes the blob.
        sqlx::query("SELECT 1 FROM blobs WHERE id = $1 FOR UPDATE")
            .bind(id.0.as_slice())
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM blob_readers WHERE blob_id = $1 AND handle = $2 AND device_id = $3")
            .bind(id.0.as_slice())
            .bind(handle)
            .bind(i64::from(device_id))
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query(
            "DELETE FROM blobs WHERE id = $1 AND sent
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
        let done = sqlx::query("DELETE FROM blobs WHERE id = $1").bind(id.0.as_slice()).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_own_blobs(&self, handle: &str, ids: &[BlobId]) -> Result<Vec<BlobId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement (readers go with their blob: ON DELETE CASCADE);
        // the answer in the order given, each id once.
        let deleted: Vec<Vec<u8>> =
            sqlx::query_scalar("DELETE FROM blobs WHERE id = ANY($1) AND handle = $2 RETURNING id")
                .bind(ids.iter().map(|id| id.0.as_slice()).collect::<Vec<_>>())
                .bind(handle)
                .fetch_all(&self.pool)
                .await?;
        let mut deleted: HashSet<BlobId> = deleted.into_iter().map(blob_id).collect();
        Ok(ids.iter().filter(|id| deleted.remove(id)).copied().collect())
    }

    async fn expire_blobs(&self, now_ms: u64) -> Result<Vec<BlobId>, StoreError> {
        // One statement: a row a send is extending is re-checked once that
        // send commits (and kept if its expiry moved on).
        let ids: Vec<Vec<u8>> = sqlx::query_scalar("DELETE FROM blobs WHERE expires_ms < $1 RETURNING id")
            .bind(i(now_ms))
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(blob_id).collect())
    }

    async fn drop_unread_blobs(&self) -> Result<Vec<BlobId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Lock the candidates, then count their readers again in a
        // statement of its own (a fresh snapshot): a send that made a
        // device a reader meanwhile has committed by then (it held the
        // blob's row) and the blob stays. A row another transaction holds
        // is skipped until the next sweep.
        let candidates: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT id FROM blobs WHERE sent AND NOT EXISTS (SELECT 1 FROM blob_readers WHERE blob_id = blobs.id)
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Vec<u8>> = sqlx::query_scalar(
            "DELETE FROM blobs WHERE id = ANY($1) AND sent
             AND NOT EXISTS (SELECT 1 FROM blob_readers WHERE blob_id = blobs.id) RETURNING id",
        )
        .bind(&candidates)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ids.into_iter().map(blob_id).collect())
    }

    async fn blob_usage(&self, handle: &str) -> Result<(u64, u64), StoreError> {
        let (unfinished, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE NOT complete), COALESCE(SUM(length), 0)::BIGINT FROM blobs
             WHERE handle = $1",
        )
        .bind(handle)
        .fetch_one(&self.pool)
        .await?;
        Ok((u(unfinished), u(bytes)))
    }

    async fn blob_totals(&self) -> Result<(u64, u64), StoreError> {
        let (n, bytes): (i64, i64) = sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(length), 0)::BIGINT FROM blobs")
            .fetch_one(&self.pool)
            .await?;
        Ok((u(n), u(bytes)))
    }

    async fn add_token(&self, token: &str, now_ms: u64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tokens (token, created_ms) VALUES ($1, $2)")
            .bind(token)
            .bind(i(now_ms))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn use_token(&self, token: &str, handle: &str, now_ms: u64) -> Result<bool, StoreError> {
        // A concurrent use waits for this row, then finds it used.
        let done = sqlx::query("UPDATE tokens SET used_ms = $1, used_by = $2 WHERE token = $3 AND used_ms IS NULL")
            .bind(i(now_ms))
            .bind(handle)
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
