//! Files this device is sending: one record per message whose blob is not
//! (wholly) on the server yet. The engine asks the server for tickets; the
//! host does the HTTP and the encryption, and reports back. A record
//! persists from the moment the user sends until the message is queued, so
//! an upload survives a restart, a worker stop or a server restart and
//! goes on where the server's offset says (docs/protocol.md §14.3).

use crate::effects::Effects;
use crate::error::Error;
use crate::store::{KvStore, load_all};
use serde::{Deserialize, Serialize};
use crate::sorted::Map;

const NS_UPLOADS: &str = "uploads";

/// Where one upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify))]
pub enum UploadState {
    /// Needs a ticket (new, or resuming after a stop or a failure).
    Waiting,
    /// A ticket was asked for on this connection.
    Asking,
    /// The host has a ticket and is sending bytes.
    Uploading,
    /// Stopped by a refusal or by the user's "cancel"; only `retry` goes on.
    Stopped,
}

/// One file being sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct Upload {
    /// The message's id (32 hex digits).
    pub id: String,
    pub chat: String,
    /// The blob's length (ciphertext).
    pub length: u64,
    /// Hex; empty until the server gave the first ticket.
    pub blob_id: String,
    pub state: UploadState,
    /// Why it stopped, in words (with `Stopped`).
    #[serde(default)]
    pub reason: String,
}

#[derive(Default)]
pub struct Uploads {
    by_id: Map<String, Upload>,
}

impl Uploads {
    pub(crate) fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let mut by_id: Map<String, Upload> = Map::new();
        for mut u in load_all::<Upload>(store, NS_UPLOADS, "uploads")? {
            // A ticket asked for, or in use, before the restart is gone
            // with the connection: ask again.
            if matches!(u.state, UploadState::Asking | UploadState::Uploading) {
                u.state = UploadState::Waiting;
            }
            by_id.insert(u.id.clone(), u);
        }
        Ok(Self { by_id })
    }

    pub fn get(&self, id: &str) -> Option<&Upload> {
        self.by_id.get(id)
    }

    /// Every unfinished upload, in id order.
    pub fn all(&self) -> impl Iterator<Item = &Upload> {
        self.by_id.values()
    }

    pub(crate) fn put(&mut self, u: Upload, fx: &mut Effects) {
        fx.put(NS_UPLOADS, &u.id, &u);
        self.by_id.insert(u.id.clone(), u);
    }

    /// Changes one record and persists it.
    pub(crate) fn update(&mut self, id: &str, fx: &mut Effects, f: impl FnOnce(&mut Upload)) -> Option<Upload> {
        let u = self.by_id.get_mut(id)?;
        f(u);
        fx.put(NS_UPLOADS, id, &*u);
        Some(u.clone())
    }

    pub(crate) fn remove(&mut self, id: &str, fx: &mut Effects) -> Option<Upload> {
        let u = self.by_id.remove(id)?;
        fx.delete(NS_UPLOADS, id);
        Some(u)
    }

    /// Ids of uploads that need a ticket.
    pub(crate) fn waiting(&self) -> Vec<String> {
        self.by_id.values().filter(|u| u.state == UploadState::Waiting).map(|u| u.id.clone()).collect()
    }

    /// The connection closed: tickets asked for are lost with it (the
    /// host's HTTP upload may go on with a ticket it has).
    pub(crate) fn disconnected(&mut self) {
        for (_, u) in self.by_id.iter_mut() {
            if u.state == UploadState::Asking {
                u.state = UploadState::Waiting;
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_id.clear();
    }
}
