//! The documented error codes a server answers with. Each travels as its
//! snake_case string in [`crate::frames::ErrorInfo::code`], so a new code
//! never breaks an older client (it shows the message).

/// Why the server refused a request or closed a connection. Serialized as
/// its wire string (`"device_removed"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify))]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame decoded but a field is missing or malformed.
    BadRequest,
    /// The frame is not protobuf, or not a `ClientFrame`.
    MalformedFrame,
    /// A request type this server does not know (from a newer client).
    UnknownFrame,
    /// The frame is larger than the server accepts.
    FrameTooLarge,
    /// Too many frames too fast; slow down.
    RateLimited,
    /// The Noise handshake failed or was not finished in time.
    HandshakeFailed,
    /// This request needs a registered device.
    NotRegistered,
    /// This request is for guest connections (not yet a device).
    AlreadyRegistered,
    /// Only the primary device may do this.
    NotPrimary,
    /// The handle is not an E.164 number or a valid user name.
    InvalidHandle,
    /// Somebody already registered that handle.
    HandleTaken,
    /// Registration needs a token (`--registration token`) and none or a
    /// wrong one was given.
    RegistrationClosed,
    /// No account has that handle.
    UnknownAccount,
    /// No such device in the account.
    UnknownDevice,
    /// This device was removed from its account; it can never reconnect.
    DeviceRemoved,
    /// The account has the most companions allowed.
    TooManyDevices,
    /// A signature did not verify with the account key.
    BadSignature,
    /// The device list is not acceptable (version not newer, wrong handle,
    /// adds a device outside a link approval, drops the primary, …).
    InvalidDeviceList,
    /// The send's targets do not match the recipients' current device
    /// lists; the error carries the current lists: re-encrypt and resend.
    DeviceListChanged,
    /// The device has no one-time or fallback key to claim.
    NoPrekeys,
    /// The link ref is unknown (or was already used).
    UnknownRef,
    /// The link ref expired; the companion should show a new code.
    ExpiredRef,
    /// No pairing offer under that lookup id (wrong or expired code, or
    /// another device already answered it).
    UnknownPairing,
    /// Another device holds that pairing slot: pick a new code.
    PairingSlotTaken,
    /// The recipient's queue is full (count or bytes): retry later.
    RecipientQueueFull,
    /// This account may not claim more of that device's prekeys for now.
    TooManyClaims,
    /// The connection sent nothing for too long.
    IdleTimeout,
    /// The server is shutting down, or the device connected again elsewhere.
    GoingAway,
    /// The server is at its connection limit.
    ServerBusy,
    /// A restore named an account key that is not the account's: the
    /// recovery phrase belongs to another account (or is mistyped into
    /// another valid phrase).
    AccountKeyMismatch,
    /// Closing: the account was restored from its recovery phrase on
    /// another device; this device no longer belongs to it. The closing
    /// event carries the new signed list for the device to check.
    AccountRestored,
    /// The file is larger than this server accepts (64 MiB by default).
    BlobTooLarge,
    /// The account's stored files would exceed its quota; wait until
    /// recipients fetched earlier ones, or ask the operator.
    BlobQuota,
    /// No such blob: never uploaded, unfinished, already fetched by every
    /// recipient, or expired.
    BlobNotFound,
    /// A blob token is unknown, expired, or for another blob or direction
    /// (HTTP only).
    BadToken,
    /// A group change names an epoch that is not the next one for its
    /// group: another change came first (docs/protocol.md §15.3).
    GroupEpochTaken,
    /// Something failed on the server; try again.
    Internal,
    /// The server's database is unreachable for now (restarting, failing
    /// over, out of connections): nothing of the request was done. Try
    /// again shortly; the connection stays open.
    StoreUnavailable,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: &'static [ErrorCode] = &[
        Self::BadRequest,
        Self::MalformedFrame,
        Self::UnknownFrame,
        Self::FrameTooLarge,
        Self::RateLimited,
        Self::HandshakeFailed,
        Self::NotRegistered,
        Self::AlreadyRegistered,
        Self::NotPrimary,
        Self::InvalidHandle,
        Self::HandleTaken,
        Self::RegistrationClosed,
        Self::UnknownAccount,
        Self::UnknownDevice,
        Self::DeviceRemoved,
        Self::TooManyDevices,
        Self::BadSignature,
        Self::InvalidDeviceList,
        Self::DeviceListChanged,
        Self::NoPrekeys,
        Self::UnknownRef,
        Self::ExpiredRef,
        Self::UnknownPairing,
        Self::PairingSlotTaken,
        Self::RecipientQueueFull,
        Self::TooManyClaims,
        Self::IdleTimeout,
        Self::GoingAway,
        Self::ServerBusy,
        Self::Internal,
        Self::AccountKeyMismatch,
        Self::AccountRestored,
        Self::BlobTooLarge,
        Self::BlobQuota,
        Self::BlobNotFound,
        Self::BadToken,
        Self::GroupEpochTaken,
        Self::StoreUnavailable,
    ];

    /// The code as it travels on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::MalformedFrame => "malformed_frame",
            Self::UnknownFrame => "unknown_frame",
            Self::FrameTooLarge => "frame_too_large",
            Self::RateLimited => "rate_limited",
            Self::HandshakeFailed => "handshake_failed",
            Self::NotRegistered => "not_registered",
            Self::AlreadyRegistered => "already_registered",
            Self::NotPrimary => "not_primary",
            Self::InvalidHandle => "invalid_handle",
            Self::HandleTaken => "handle_taken",
            Self::RegistrationClosed => "registration_closed",
            Self::UnknownAccount => "unknown_account",
            Self::UnknownDevice => "unknown_device",
            Self::DeviceRemoved => "device_removed",
            Self::TooManyDevices => "too_many_devices",
            Self::BadSignature => "bad_signature",
            Self::InvalidDeviceList => "invalid_device_list",
            Self::DeviceListChanged => "device_list_changed",
            Self::NoPrekeys => "no_prekeys",
            Self::UnknownRef => "unknown_ref",
            Self::ExpiredRef => "expired_ref",
            Self::UnknownPairing => "unknown_pairing",
            Self::PairingSlotTaken => "pairing_slot_taken",
            Self::RecipientQueueFull => "recipient_queue_full",
            Self::TooManyClaims => "too_many_claims",
            Self::IdleTimeout => "idle_timeout",
            Self::GoingAway => "going_away",
            Self::ServerBusy => "server_busy",
            Self::Internal => "internal",
            Self::AccountKeyMismatch => "account_key_mismatch",
            Self::AccountRestored => "account_restored",
            Self::BlobTooLarge => "blob_too_large",
            Self::BlobQuota => "blob_quota",
            Self::BlobNotFound => "blob_not_found",
            Self::BadToken => "bad_token",
            Self::GroupEpochTaken => "group_epoch_taken",
            Self::StoreUnavailable => "store_unavailable",
        }
    }

    /// Parses a wire code; `None` for codes this version does not know.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }

    #[test]
    fn serde_uses_the_wire_string() {
        for &c in ErrorCode::ALL {
            let v = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(c.as_str());
            assert_eq!(<ErrorCode as serde::Deserialize>::deserialize(v).unwrap(), c);
        }
    }
}
