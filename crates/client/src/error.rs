//! The engine's one error type.

/// What a command or input can fail with. Messages never contain keys or
/// message content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The local store failed.
    #[error("local storage: {0}")]
    Store(String),
    /// A stored record could not be read (written by a newer version?).
    #[error("local data is unreadable: {0}")]
    Corrupt(String),
    /// The command needs a registered or linked device.
    #[error("this device is not registered: run `tether register <handle> --server URL` (or link it)")]
    NotRegistered,
    /// The command needs an unregistered device.
    #[error("this device is already registered as {0}")]
    AlreadyRegistered(String),
    /// Only the primary device can do this.
    #[error("only the primary device can do this")]
    NotPrimary,
    /// No contact or chat with that handle.
    #[error("unknown contact {0}: add it first (`tether contacts add {0}`)")]
    UnknownContact(String),
    /// A handle, code, or link payload is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The link QR was made for another server.
    #[error("that code belongs to another server ({0}); link through the same server")]
    WrongServer(String),
    /// The command needs the connection to the server (connect first).
    #[error("not connected to the server")]
    Offline,
    /// A protocol-level failure (Noise, decoding, signatures).
    #[error(transparent)]
    Proto(#[from] tether_proto::Error),
}
