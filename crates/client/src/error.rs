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
    #[error("this device is not registered or linked to an account yet")]
    NotRegistered,
    /// Lazy history: the chat's messages are not in memory yet; the host
    /// loads them (`Engine::poll_want`, `Engine::load_chat`) and tries again.
    #[error("the chat {0} is still loading")]
    NotLoaded(String),
    /// The command needs an unregistered device.
    #[error("this device is already registered as {0}")]
    AlreadyRegistered(String),
    /// Only the primary device can do this.
    #[error("only the primary device can do this")]
    NotPrimary,
    /// No contact or chat with that handle.
    #[error("unknown contact {0}: add it as a contact first")]
    UnknownContact(String),
    /// The account's signed list has no such device.
    #[error("this account has no device {0}")]
    UnknownDevice(u32),
    /// A handle, code, or link payload is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The link QR was made for another server.
    #[error("that code belongs to another server ({0}); link through the same server")]
    WrongServer(String),
    /// The command needs the connection to the server (connect first).
    #[error("not connected to the server")]
    Offline,
    /// The server answered a request id that is not in flight.
    #[error("the server answered request {id}, which was not asked (or was already answered)")]
    UnexpectedResponse { id: u64 },
    /// The server answered a request with the wrong kind of response; the
    /// request is settled as failed.
    #[error("the server answered a {request} request with something else")]
    MismatchedResponse { request: &'static str },
    /// A recovery phrase is malformed (wrong length, unknown word, bad
    /// checksum).
    #[error("{0}")]
    Phrase(#[from] crate::recovery::PhraseError),
    /// The recovery phrase is valid but spells another account's key than
    /// the one the server holds for the handle.
    #[error("this phrase is not the recovery phrase of @{handle}")]
    NotRecoveryPhrase { handle: String },
    /// A protocol-level failure (Noise, decoding, signatures).
    #[error(transparent)]
    Proto(#[from] tether_proto::Error),
}
