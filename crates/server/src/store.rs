//! Persistent state of the relay behind a small trait, so that SQLite (the
//! embedded default) and PostgreSQL (several nodes) pass one test suite.

use crate::Error;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;

/// The SQLite store: one file, `tether.db`, in the data directory, in WAL mode.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Connection pool; WAL lets readers run beside the one writer.
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir` and migrates it.
    pub async fn open(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::DataDir { path: dir.into(), source })?;
        let options = SqliteConnectOptions::new()
            .filename(dir.join("tether.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
