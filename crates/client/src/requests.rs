//! Requests in flight on the current connection: what each was for, and
//! the lookups (device lists, prekey claims) not to ask twice.

use crate::sorted::{Map, Set};
use tether_proto::frames::SignedDeviceList;

/// What a sent request was for.
#[derive(Debug)]
pub(crate) enum Pending {
    Register { handle: String, seed: [u8; 32], list: SignedDeviceList },
    List { handle: String },
    Claim { handle: String, device_id: u32 },
    Send { entry: String },
    SendHistory,
    Prekeys,
    Ack,
    Ping,
    Devices,
    LinkRefs,
    Approve { device_id: u32, list: SignedDeviceList, link_key: [u8; 32], binding: Vec<u8> },
    PairingPublish,
    PairingFetch,
    PairingReply,
    EntrySignature,
    /// `list` is the re-signed list (primary), or None (a companion leaving).
    RemoveDevice { device_id: u32, list: Option<SignedDeviceList> },
    PublishList { list: SignedDeviceList },
    /// The account's current list, before a restore.
    RestoreLookup,
    /// A restore: the new list, and the lowest companion id the account
    /// never used (from the list it replaces).
    Restore { handle: String, seed: [u8; 32], list: SignedDeviceList, next_device: u32 },
    /// A ticket to upload (or resume) the file of message `id`.
    BlobUpload { id: String },
    /// A ticket to download the file of message `id`.
    BlobDownload { id: String },
    BlobFetched,
    /// Blobs of this account deleted from the server (a message deleted
    /// for everyone).
    BlobDelete,
    /// Key shares of `group`'s outbound session `session_id` to `peers`
    /// (peer keys), before its next message goes.
    GroupKeys { group: String, session_id: String, peers: Vec<String> },
}

impl Pending {
    /// What the request was, for errors (never its content).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Pending::Register { .. } => "register",
            Pending::List { .. } => "device list",
            Pending::Claim { .. } => "prekey claim",
            Pending::Send { .. } => "send",
            Pending::SendHistory => "history send",
            Pending::Prekeys => "prekey upload",
            Pending::Ack => "ack",
            Pending::Ping => "ping",
            Pending::Devices => "device listing",
            Pending::LinkRefs => "link codes",
            Pending::Approve { .. } => "link approval",
            Pending::PairingPublish => "pairing offer",
            Pending::PairingFetch => "pairing fetch",
            Pending::PairingReply => "pairing answer",
            Pending::EntrySignature => "entry signature",
            Pending::RemoveDevice { .. } => "device removal",
            Pending::PublishList { .. } => "device list publish",
            Pending::RestoreLookup => "restore lookup",
            Pending::Restore { .. } => "restore",
            Pending::BlobUpload { .. } => "file upload",
            Pending::BlobDownload { .. } => "file download",
            Pending::BlobFetched => "file fetched",
            Pending::BlobDelete => "file deletion",
            Pending::GroupKeys { .. } => "group key share",
        }
    }
}

#[derive(Default)]
pub(crate) struct Requests {
    next_id: u64,
    pending: Map<u64, Pending>,
    /// Handles whose device list is being fetched.
    lists: Set<String>,
    /// (handle, device) whose prekey is being claimed.
    claims: Set<(String, u32)>,
    /// Groups (hex) with key shares in flight, and how many sends.
    group_keys: Map<String, usize>,
}

impl Requests {
    /// Registers a request; returns its frame id.
    pub fn start(&mut self, why: Pending) -> u64 {
        self.next_id += 1;
        match &why {
            Pending::List { handle } => {
                self.lists.insert(handle.clone());
            }
            Pending::Claim { handle, device_id } => {
                self.claims.insert((handle.clone(), *device_id));
            }
            Pending::GroupKeys { group, .. } => *self.group_keys.entry(group.clone()).or_default() += 1,
            _ => {}
        }
        self.pending.insert(self.next_id, why);
        self.next_id
    }

    /// The request a response answers, now settled.
    pub fn finish(&mut self, id: u64) -> Option<Pending> {
        let why = self.pending.remove(&id)?;
        match &why {
            Pending::List { handle } => {
                self.lists.remove(handle);
            }
            Pending::Claim { handle, device_id } => {
                self.claims.remove(&(handle.clone(), *device_id));
            }
            Pending::GroupKeys { group, .. } => {
                if let Some(n) = self.group_keys.get_mut(group) {
                    *n -= 1;
                    if *n == 0 {
                        self.group_keys.remove(group);
                    }
                }
            }
            _ => {}
        }
        Some(why)
    }

    pub fn list_pending(&self, handle: &str) -> bool {
        self.lists.contains(handle)
    }

    pub fn claim_pending(&self, handle: &str, device_id: u32) -> bool {
        self.claims.contains(&(handle.to_string(), device_id))
    }

    /// Any device list or prekey claim in flight.
    pub fn lookups_pending(&self) -> bool {
        !self.lists.is_empty() || !self.claims.is_empty()
    }

    pub fn group_keys_pending(&self, group: &str) -> bool {
        self.group_keys.contains_key(group)
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The connection closed: nothing is in flight any more.
    pub fn clear(&mut self) {
        self.pending.clear();
        self.lists.clear();
        self.claims.clear();
        self.group_keys.clear();
    }
}
