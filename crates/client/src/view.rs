//! What a UI shows, computed once here so every client (popup, phone app,
//! CLI) orders, names and formats alike. Serialized camelCase for
//! JavaScript; the UI paints these and holds no rules of its own.

use serde::Serialize;

/// One row of the chat list, in display order (see `Engine::chat_list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct ChatSummary {
    pub handle: String,
    /// The contact's display name (their handle when they have none).
    pub name: String,
    pub unread: u32,
    pub last_ms: u64,
    pub last_preview: String,
    pub muted: bool,
    pub archived: bool,
    pub pinned: bool,
    /// A group chat (`handle` is `g:` and the group's id).
    pub group: bool,
    /// The note to self (`handle` is this account's).
    pub note_to_self: bool,
    /// Marked as unread by the user.
    pub marked_unread: bool,
    /// The composer's unsent text.
    pub draft: String,
    /// Disappearing-messages timer in seconds (0: off).
    pub disappear_secs: u32,
    /// Incoming messages up to this time are read (for "N unread messages").
    pub read_up_to_ms: u64,
}

/// A message that matched a search (see `Engine::search`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct SearchHit {
    /// The name of the message's chat.
    pub chat_name: String,
    pub message: crate::model::ChatMessage,
}

/// One contact, sorted by display name (see `Engine::contact_list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct ContactSummary {
    pub handle: String,
    pub name: String,
    /// Why nothing is encrypted to them right now, if so.
    pub warning: Option<String>,
    /// Their safety number was compared (see `Engine::safety_number`).
    pub verified: bool,
}

/// A contact's safety number (see `Engine::safety_number`), for the
/// contact info screen and `tether verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct SafetyNumberView {
    pub handle: String,
    /// 60 digits in 12 groups of 5, the same on both sides.
    pub number: String,
    /// What the QR code holds (`tether://verify#…`), as this side shows it.
    pub qr: String,
    /// The user compared it with them.
    pub verified: bool,
}

/// What scanning a contact's safety-number code found (see `Engine::verify_scanned`).
pub use tether_proto::safety::Comparison;

/// An open message request (see `Engine::message_requests`): always named
/// by the sender's handle, never by a name the sender chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct RequestSummary {
    pub handle: String,
    /// Messages it sent while requesting (kept or not).
    pub count: u32,
    pub first_ms: u64,
    pub last_ms: u64,
    /// The first message's preview.
    pub first_preview: String,
}

/// A blocked sender (see `Engine::blocked_list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct BlockedSummary {
    pub handle: String,
    pub blocked_ms: u64,
    /// Reported as spam (recorded on this device only).
    pub reported: bool,
}

/// A fingerprint as people compare it (one implementation, in the protocol crate).
pub use tether_proto::format_fingerprint;

#[cfg(test)]
mod tests {
    use super::format_fingerprint;

    #[test]
    fn fingerprints_show_as_eight_groups() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert_eq!(format_fingerprint(hex), "0011-2233-4455-6677-8899-aabb-ccdd-eeff");
        assert_eq!(format_fingerprint(""), "");
        assert_eq!(format_fingerprint("abcdef"), "abcd-ef");
    }
}
