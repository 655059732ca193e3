//! The server's one error type (for the operator; peers get error codes).

use crate::store::StoreError;

/// Everything that can stop tether-server from starting or serving.
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
    /// The blob object store (`--blob-url`) cannot be used.
    #[error("blob store: {0}")]
    BlobStore(String),
    /// The server's key file is unreadable or malformed.
    #[error("server key {path}: {reason}")]
    ServerKey { path: std::path::PathBuf, reason: String },
    /// The configuration file is unreadable or invalid.
    #[error("config: {0}")]
    Config(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// PostgreSQL (`--database-url`) could not be reached, or refused the
    /// connection, at start.
    #[error("PostgreSQL {server}: {reason}")]
    Postgres {
        /// `host:port/database`: never the URL, which may hold a password.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// A database migration failed.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A TLS certificate file (`tls_cert`, `acme_ca`) is unreadable or
    /// holds no usable certificate.
    #[error("TLS certificate {path}: {reason}")]
    TlsCert {
        /// The file in question.
        path: std::path::PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// The TLS private key file is unreadable, malformed, or not the
    /// certificate's key.
    #[error("TLS key {path}: {reason}")]
    TlsKey {
        /// The file in question.
        path: std::path::PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// Binding or serving the listening socket failed.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address we tried.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
}
