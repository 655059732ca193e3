//! The protocol crate's one error type.

/// What can go wrong while speaking the protocol. Messages never contain key
/// material or message content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Noise layer failed: a handshake message or a transport frame did
    /// not decrypt, or was malformed. The connection cannot continue.
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    /// A frame or payload is not valid protobuf of the expected type.
    #[error("malformed frame: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The server's static key is not the pinned one: someone is in between,
    /// or the server was reinstalled. The client refuses to talk.
    #[error(
        "the server's key does not match the pinned fingerprint (expected {expected}, got {got})"
    )]
    ServerKeyMismatch {
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint the server presented.
        got: String,
    },
    /// A frame is larger than a Noise message can carry.
    #[error("frame of {0} bytes is larger than the protocol allows")]
    FrameTooLarge(usize),
    /// A key has the wrong length or is not a valid point.
    #[error("invalid {0} key")]
    InvalidKey(&'static str),
    /// A signature did not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// A device list is internally inconsistent.
    #[error("invalid device list: {0}")]
    InvalidDeviceList(&'static str),
    /// The handle is neither an E.164 number nor a valid user name.
    #[error(
        "invalid handle: use a phone number in E.164 form (+4915112345678) or a user name of 3-32 letters, digits, '_' or '.', starting with a letter"
    )]
    InvalidHandle,
    /// A structure carries a format version this build does not know. The
    /// other side runs a newer (or broken) Tether; updating usually helps.
    #[error("unsupported {what} version {version}: update Tether on both devices")]
    UnsupportedVersion {
        /// What was versioned ("link code", "sealed box", …).
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A link code (the QR's `tether://link#…` text) or a link approval is
    /// malformed: wrong prefix, bad base64, wrong key length, …
    #[error("invalid link code: {0}")]
    InvalidLink(&'static str),
    /// A safety-number QR payload (`tether://verify#…`) is malformed.
    #[error("invalid safety number code: {0}")]
    InvalidSafetyCode(&'static str),
    /// A link approval was not made with this QR code's link secret: the
    /// primary did not see this QR, or the approval was altered on the way.
    #[error("the link approval does not belong to this QR code")]
    LinkSecretMismatch,
    /// Encrypted data is structurally broken (too short, …).
    #[error("malformed {0}")]
    MalformedCiphertext(&'static str),
    /// Authenticated decryption failed: wrong key, wrong associated data, or
    /// the data was tampered with. Deliberately no more detail than that.
    #[error("could not decrypt {0}: wrong key, or the data was altered")]
    DecryptFailed(&'static str),
    /// A pairing code is not 8 symbols of the pairing alphabet.
    #[error("invalid pairing code: {0}")]
    InvalidPairingCode(&'static str),
    /// The two sides of a pairing exchange did not use the same code (a
    /// typo, or someone guessing): nothing was revealed.
    #[error("the pairing code did not match on the other device: check it, or make a new one")]
    PairingMismatch,
}
