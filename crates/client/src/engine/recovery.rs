//! Recovery: the primary's recovery phrase, restoring an account from it on
//! a new device, and what a device hears when its account was restored
//! elsewhere. See docs/protocol.md, "Restore".
//!
//! A restore: `restore` checks the phrase and keeps the seed in memory;
//! once connected, `RestoreLookup` names the phrase's account key and gets
//! the account's current list, which must be signed by that key; the new
//! list (one version up, only this device as the primary, its entry
//! self-signed) goes out in `Restore`; the server's `Registered` makes this
//! device the primary (`Event::Registered`, as after a registration) and
//! prekeys are uploaded. Contacts, chats and history are not in the phrase:
//! a restored primary starts with none.

use super::Engine;
use crate::error::Error;
use crate::event::Event;
use crate::linking::Restoration;
use crate::model::Role;
use crate::recovery;
use crate::requests::Pending;
use tether_proto::ErrorCode;
use tether_proto::device_list::{self, AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, Request};
use tether_proto::normalize_handle;

/// Why a device restored away is no longer linked (shown by every client).
pub const RESTORED_ELSEWHERE: &str = "This account was restored on another device; this device was logged out.";

impl Engine {
    /// The primary's recovery phrase: the account seed as 24 BIP-39 English
    /// words, space-separated. Show it only on the user's request; whoever
    /// reads it can take the account over.
    pub fn recovery_phrase(&self) -> Result<String, Error> {
        match &self.me.role {
            Role::Primary { account_seed, .. } => {
                let seed = <[u8; 32]>::try_from(account_seed.as_slice())
                    .map_err(|_| Error::Corrupt("the stored account key is unreadable".into()))?;
                Ok(recovery::phrase(&seed))
            }
            Role::Companion { .. } => Err(Error::NotPrimary),
            Role::Unlinked { .. } => Err(Error::NotRegistered),
        }
    }

    /// Restores the account `handle` on this (unregistered) device from its
    /// recovery phrase: this device becomes the account's primary and every
    /// other device of the account is logged out. The phrase is checked
    /// here (`Error::Phrase`: length, unknown word, checksum); connect (or
    /// stay connected) afterwards: `Event::Registered` follows, or
    /// `Event::Error` (with `Error::NotRecoveryPhrase`'s text if the phrase
    /// belongs to another account). Contacts and chats are not restored.
    pub fn restore(&mut self, handle: &str, server_url: &str, phrase: &str, now: u64) -> Result<(), Error> {
        if let Some(h) = self.handle() {
            return Err(Error::AlreadyRegistered(h.to_string()));
        }
        let handle = normalize_handle(handle)?;
        let seed = recovery::seed(phrase)?;
        self.me.server_url = server_url.to_string();
        self.save_me();
        let r = Restoration { handle, seed };
        self.linking.registering = None;
        self.linking.restoring = Some(r.clone());
        if self.is_open() {
            self.send_restore_lookup(&r, now);
        }
        self.finish();
        Ok(())
    }

    pub(super) fn send_restore_lookup(&mut self, r: &Restoration, now: u64) {
        let key = AccountKey::from_seed(&r.seed);
        let req =
            Request::RestoreLookup(f::RestoreLookup { handle: r.handle.clone(), account_key: key.public().to_vec() });
        self.request(req, Pending::RestoreLookup, now);
    }

    /// The account's current list: it must be signed by the phrase's key.
    /// The new list goes one version above it.
    pub(super) fn restore_looked_up(&mut self, reply: f::DeviceListReply, now: u64) {
        let Some(r) = self.linking.restoring.clone() else { return };
        let key = AccountKey::from_seed(&r.seed);
        if reply.handle != r.handle || reply.account_key != key.public() {
            let message = Error::NotRecoveryPhrase { handle: r.handle.clone() }.to_string();
            return self.restore_failed(Some(ErrorCode::AccountKeyMismatch), message);
        }
        let current = match reply.list.as_ref().map(|l| device_list::verify(&key.public(), l)) {
            Some(Ok(l)) if l.handle == r.handle => l,
            _ => {
                let message = format!(
                    "the server's device list of @{} is not signed by this phrase's key: nothing was restored",
                    r.handle
                );
                return self.restore_failed(None, message);
            }
        };
        let used = current.devices.iter().map(|d| d.device_id).chain(reply.removed.iter().copied());
        let next_device = used.map(|id| id.saturating_add(1)).max().unwrap_or(1).max(1);
        let list = f::DeviceList {
            handle: r.handle.clone(),
            version: current.version + 1,
            devices: vec![self.own_entry(&r.handle, PRIMARY_DEVICE, now)],
            issued_at_ms: now,
        };
        let signed = key.sign(&list);
        let req = Request::Restore(f::Restore { handle: r.handle.clone(), device_list: Some(signed.clone()) });
        self.request(req, Pending::Restore { handle: r.handle.clone(), seed: r.seed, list: signed, next_device }, now);
    }

    /// The server took the restore: this device is the primary now.
    pub(super) fn restored(
        &mut self,
        handle: String,
        seed: [u8; 32],
        list: &f::SignedDeviceList,
        next_device: u32,
        now: u64,
    ) {
        self.linking.restoring = None;
        self.registered(handle, seed, list, now);
        self.directory.reserve_device_ids(next_device, &mut self.fx);
    }

    pub(super) fn restore_failed(&mut self, code: Option<ErrorCode>, message: String) {
        let message = match (code, &self.linking.restoring) {
            (Some(ErrorCode::AccountKeyMismatch), Some(r)) => {
                Error::NotRecoveryPhrase { handle: r.handle.clone() }.to_string()
            }
            _ => message,
        };
        self.linking.restoring = None;
        self.fx.emit(Event::Error { code, message });
        self.link.close = Some("restore failed".into());
    }

    /// The server closes this connection because the account was restored
    /// on another device. A primary believes it only on the proof: the new
    /// list, signed by this account's key, newer than its own, with another
    /// device as the primary; then it forgets everything, as removed
    /// devices do. Without the proof it keeps its key and data and says the
    /// server misbehaves. A companion is logged out either way (the server
    /// can remove a companion at will); the proof only picks the reason.
    pub(super) fn restored_elsewhere(&mut self, info: &f::ErrorInfo) {
        let proven = self.restore_proven(&info.device_lists);
        match (&self.me.role, proven) {
            (Role::Primary { .. }, false) => {
                let message = "The server says this account was restored on another device, but showed no list signed by this account's key that says so. This primary keeps its account key, contacts and chats; if you did not restore the account, the server is misbehaving.".to_string();
                self.fx.emit(Event::Error { code: Some(ErrorCode::AccountRestored), message });
                self.link.close = Some("the server closed the connection: account restored".into());
            }
            (Role::Companion { .. }, false) => self.wipe("This device was removed from its account.".into()),
            (Role::Unlinked { .. }, _) => self.link.close = Some(info.message.clone()),
            (_, true) => self.wipe(RESTORED_ELSEWHERE.into()),
        }
    }

    /// Whether `lists` holds this account's list, signed by its key, newer
    /// than the one this device knows, whose primary is another device.
    fn restore_proven(&self, lists: &[f::DeviceListReply]) -> bool {
        let (Some(handle), Some(key)) = (self.handle(), self.me.role.account_public()) else { return false };
        let Some(reply) = lists.iter().find(|l| l.handle == handle && l.account_key == key) else { return false };
        let Some(list) = reply.list.as_ref().and_then(|l| device_list::verify(&key, l).ok()) else { return false };
        let known = self.directory.own_list(&key).map_or(0, |l| l.version);
        let primary = device_list::device(&list, PRIMARY_DEVICE);
        list.handle == handle
            && list.version > known
            && primary.is_some_and(|p| p.identity_key != self.olm.identity_key())
    }
}
