//! What the popup paints: one [`Snapshot`] of the core's state, computed
//! here so the popup holds no rules of its own (order, names, formats).

use crate::primary::PrimaryView;
use crate::settings::Settings;
use serde::Serialize;
use tether_client::view::{BlockedSummary, ChatSummary, ContactSummary, RequestSummary};
use tether_client::{Engine, Role};
use tsify::Tsify;

/// Where this browser stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub enum LinkState {
    /// First run: no server confirmed yet.
    Setup,
    /// Not linked (a code may be on show).
    Unlinked,
    /// Asked the server for link codes; none on show yet.
    Linking,
    /// Approved by a primary; the person has not yet said the account is
    /// theirs ("Linked to @handle: is this you?").
    Confirm,
    Linked,
}

/// The socket to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub enum Connection {
    Offline,
    /// Socket opening or Noise handshake under way.
    Connecting,
    /// Handshake done.
    Connected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub handle: String,
    pub device_id: u32,
}

/// The link code on show (from the engine's events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct LinkView {
    /// `tether://link#…`; empty while the first code is on its way.
    pub uri: String,
    /// The QR of `uri` as SVG.
    pub qr_svg: String,
    pub expires_ms: u64,
    /// Which of the `total` codes this is (they rotate as they expire).
    pub index: usize,
    pub total: usize,
    /// The code to type on the primary, when linking by code.
    pub pairing_code: Option<String>,
    /// Once a primary proved the code: the 6 digits both screens show.
    pub confirmation: Option<String>,
    /// Every code expired; the popup offers a new one.
    pub exhausted: bool,
}

impl LinkView {
    /// A code is on show (or all expired), not just asked for.
    pub fn shown(&self) -> bool {
        !self.uri.is_empty() || self.exhausted
    }
}

/// Everything the popup shows, in one value.
#[derive(Debug, Clone, PartialEq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct Snapshot {
    /// The core's version (the workspace version).
    pub version: String,
    pub protocol_version: u16,
    pub state: LinkState,
    /// Why this browser is not linked (after a log-out or removal).
    pub unlinked_reason: Option<String>,
    pub account: Option<Account>,
    pub link: Option<LinkView>,
    /// Display order; archived chats included (archived = true).
    pub chats: Vec<ChatSummary>,
    /// Sorted by name.
    pub contacts: Vec<ContactSummary>,
    /// Unread messages in chats that are not muted.
    pub unread: u32,
    /// Open message requests (non-contacts), newest first: not in `chats`,
    /// not in `unread`.
    pub requests: Vec<RequestSummary>,
    /// Blocked senders (settings offers to unblock them).
    pub blocked: Vec<BlockedSummary>,
    pub server: String,
    /// The pinned server key as people compare it (`abcd-ef01-…`).
    pub server_fingerprint: Option<String>,
    /// Messages not yet accepted by the server.
    pub outbox: usize,
    pub connection: Connection,
    pub notifications: bool,
    pub device_name: String,
    /// The last error worth showing (cleared by a successful connection).
    pub error: Option<String>,
    /// A primary's link requests, link progress and devices (the web
    /// app); null on a companion.
    pub primary: Option<PrimaryView>,
    /// Files being sent (their state, and why one stopped).
    pub uploads: Vec<tether_client::Upload>,
}

/// An answer to a message request (`Core::answerRequest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub enum RequestAction {
    Accept,
    Delete,
    Block,
    Unblock,
    Report,
}

/// A chat for the context menu and the keyboard command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct RecentChat {
    pub handle: String,
    pub name: String,
}

/// What the core hands the host after a change: the new snapshot, the
/// chats for the menu, and which chats' messages changed (for open popups).
#[derive(Debug, Clone, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub snapshot: Snapshot,
    pub recent_chats: Vec<RecentChat>,
    pub changed_chats: Vec<String>,
}

/// The inputs of a snapshot beside the engine.
pub struct Local<'a> {
    pub settings: &'a Settings,
    pub link: Option<&'a LinkView>,
    pub primary: &'a PrimaryView,
    pub connection: Connection,
    pub error: Option<&'a str>,
}

pub fn snapshot(e: &Engine, local: Local<'_>) -> Snapshot {
    let (state, account, unlinked_reason) = match e.role() {
        Role::Unlinked { reason } => {
            let state = match local.link {
                Some(l) if !l.shown() => LinkState::Linking,
                Some(_) => LinkState::Unlinked,
                None if !local.settings.configured && reason.is_none() => LinkState::Setup,
                None => LinkState::Unlinked,
            };
            (state, None, reason.clone())
        }
        Role::Primary { handle, .. } => (LinkState::Linked, Some(Account { handle: handle.clone(), device_id: 0 }), None),
        Role::Companion { handle, device_id, .. } => {
            let state = if e.account_to_confirm().is_some() { LinkState::Confirm } else { LinkState::Linked };
            (state, Some(Account { handle: handle.clone(), device_id: *device_id }), None)
        }
    };
    let server = if e.server_url().is_empty() { local.settings.server.clone() } else { e.server_url().to_string() };
    Snapshot {
        version: tether_client::VERSION.to_string(),
        protocol_version: tether_proto::PROTOCOL_VERSION,
        state,
        unlinked_reason,
        account,
        link: local.link.filter(|l| l.shown()).cloned(),
        chats: e.chat_list(),
        contacts: e.contact_list(),
        unread: e.unread_unmuted(),
        requests: e.message_requests(),
        blocked: e.blocked_list(),
        server,
        server_fingerprint: e.server_fingerprint().map(|f| f.to_string()),
        outbox: e.outbox_len(),
        connection: local.connection,
        notifications: local.settings.notifications,
        device_name: local.settings.device_name.clone(),
        error: local.error.map(str::to_string),
        primary: matches!(e.role(), Role::Primary { .. }).then(|| local.primary.clone()),
        uploads: e.uploads(),
    }
}

/// The chats the user last sent to (not archived), latest send first, up
/// to `n` (the menu's 5): the engine's rule (`Engine::recent_chats`), so a
/// message someone else sends never makes their chat a one-click target.
pub fn recent_chats(e: &Engine, n: usize) -> Vec<RecentChat> {
    e.recent_chats(n).into_iter().map(|c| RecentChat { handle: c.handle, name: c.name }).collect()
}
