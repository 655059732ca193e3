//! The server's one error type.

/// Everything that can go wrong in tether-server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory cannot be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory in question.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The database failed (open, migrate or query).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A database migration failed.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Binding or serving the listening socket failed.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address we tried.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
}
