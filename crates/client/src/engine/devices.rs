//! Accounts and devices: registration, contacts and their device lists,
//! prekeys, the own list's re-signing and device removal.

use super::{Engine, PREKEY_BATCH, RETRY_MS};
use crate::olm::Peer;
use crate::directory::ListOutcome;
use crate::error::Error;
use crate::event::Event;
use crate::linking::Registration;
use crate::model::Role;
use crate::requests::Pending;
use crate::sorted::Set;
use tether_proto::device_list::{self, AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, Request};
use tether_proto::noise::StaticKey;
use tether_proto::normalize_handle;

impl Engine {
    // ------------------------------------------------------- registration

    /// Registers this device as the primary of a new account. Connect (or
    /// reconnect) afterwards; `Event::Registered` follows.
    pub fn register(&mut self, handle: &str, server_url: &str, now: u64) -> Result<(), Error> {
        self.register_inner(handle, server_url, None, now)
    }

    /// Registers with a registration token (servers with `--registration token`).
    pub fn register_with_token(&mut self, handle: &str, server_url: &str, token: &str, now: u64) -> Result<(), Error> {
        self.register_inner(handle, server_url, Some(token.to_string()), now)
    }

    fn register_inner(&mut self, handle: &str, server_url: &str, token: Option<String>, now: u64) -> Result<(), Error> {
        if let Some(h) = self.handle() {
            return Err(Error::AlreadyRegistered(h.to_string()));
        }
        let handle = normalize_handle(handle)?;
        self.me.server_url = server_url.to_string();
        self.save_me();
        let r = Registration { handle, seed: self.random::<32>(), token };
        self.linking.registering = Some(r.clone());
        if self.is_open() {
            self.send_register(&r, now);
        }
        self.finish();
        Ok(())
    }

    /// A registration (or a restore from the recovery phrase) is waiting
    /// for the connection or the server's answer: an adapter connects
    /// while this is true.
    pub fn registering(&self) -> bool {
        self.linking.registering.is_some() || self.linking.restoring.is_some()
    }

    pub(super) fn send_register(&mut self, r: &Registration, now: u64) {
        let key = AccountKey::from_seed(&r.seed);
        let list = f::DeviceList { handle: r.handle.clone(), version: 1, devices: vec![self.own_entry(&r.handle, PRIMARY_DEVICE, now)], issued_at_ms: now };
        let signed = key.sign(&list);
        let req = Request::Register(f::Register {
            handle: r.handle.clone(),
            account_key: key.public().to_vec(),
            device_list: Some(signed.clone()),
            token: r.token.clone().unwrap_or_default(),
        });
        self.request(req, Pending::Register { handle: r.handle.clone(), seed: r.seed, list: signed }, now);
    }

    pub(super) fn registered(&mut self, handle: String, seed: [u8; 32], list: &f::SignedDeviceList, now: u64) {
        self.linking.registering = None;
        self.me.role = Role::Primary { handle: handle.clone(), account_seed: seed.to_vec() };
        self.me.device_names.insert(PRIMARY_DEVICE, self.info.name.clone());
        self.save_me();
        self.directory.set_own(list, &mut self.fx);
        self.upload_prekeys(now);
        self.fx.emit(Event::Registered { handle, fingerprint: self.me.pin.clone().unwrap_or_default() });
    }

    /// This device's entry in `handle`'s list, with its self-signature.
    pub(super) fn own_entry(&self, handle: &str, device_id: u32, now: u64) -> f::DeviceEntry {
        let noise = StaticKey::from_private(&self.me.noise_private).map(|k| k.public().to_vec()).unwrap_or_default();
        let mut entry = f::DeviceEntry {
            device_id,
            noise_key: noise,
            identity_key: self.olm.identity_key().to_vec(),
            signing_key: self.olm.signing_key().to_vec(),
            platform: self.info.platform.clone(),
            // Kept on the device (SelfState::device_names), not in the list.
            name: String::new(),
            linked_at_ms: now,
            self_signature: vec![],
        };
        entry.self_signature = self.olm.sign(&device_list::entry_signed_bytes(handle, &entry));
        entry
    }

    // ------------------------------------------------------------ prekeys

    pub(super) fn upload_prekeys(&mut self, now: u64) {
        let (otks, fallback) = self.olm.new_prekeys(PREKEY_BATCH);
        let base = now; // key ids only need to be unique per device
        let req = Request::UploadPrekeys(f::UploadPrekeys {
            one_time_keys: otks
                .into_iter()
                .enumerate()
                .map(|(i, k)| f::OneTimeKey { key_id: base + i as u64, key: k.key.to_vec(), signature: k.signature })
                .collect(),
            fallback: fallback.map(|k| f::OneTimeKey { key_id: base + PREKEY_BATCH as u64, key: k.key.to_vec(), signature: k.signature }),
        });
        self.fx.ops.push(self.olm.save_account());
        self.request(req, Pending::Prekeys, now);
    }

    /// A claimed one-time (or fallback) key: a session with the device if
    /// the device signed the key (checked against its signing key in the
    /// verified list). A key it did not sign (the server's own, or altered)
    /// starts nothing: the messages to it wait, and are retried later.
    pub(super) fn prekey_claimed(&mut self, handle: &str, device_id: u32, bundle: f::PrekeyBundle, now: u64) {
        let account = self.account();
        let device = self.directory.devices(account.as_ref(), handle).and_then(|d| d.into_iter().find(|d| d.device_id == device_id));
        let (Some(device), Some(key)) = (device, bundle.key) else { return self.pump(now) };
        if device_list::verify_prekey(&device.signing_key, &key.key, &key.signature).is_err() {
            self.link.retry_at = Some(now + RETRY_MS);
            let message = format!("{handle} (device {device_id}): the server handed out a one-time key that device did not sign; nothing was encrypted to it");
            self.fx.emit(Event::Error { code: None, message });
            return;
        }
        let peer = Peer::new(handle, device_id, &device.identity_key);
        if let Err(e) = self.olm.start_session(&peer, &key.key, &mut self.fx.ops) {
            self.fx.error(e.0);
        }
        self.fx.ops.push(self.olm.save_account());
        self.pump(now);
    }

    // ----------------------------------------------------------- contacts

    /// Adds (or renames) a contact; its device list is fetched and its
    /// account key pinned. Adding someone accepts them (their message
    /// request, if any, becomes the chat).
    pub fn add_contact(&mut self, handle: &str, name: &str, now: u64) -> Result<(), Error> {
        let me = self.handle().ok_or(Error::NotRegistered)?;
        let handle = normalize_handle(handle)?;
        if handle == me {
            // Writing to oneself is the note to self, not a contact.
            return Err(Error::Invalid("that is this account: write to yourself in the note to self".into()));
        }
        self.directory.upsert(&handle, name, &mut self.fx);
        self.accept_by_adding(&handle, now);
        self.need_list(&handle, now);
        self.finish();
        Ok(())
    }

    /// Accepts a contact's new account key after the user checked it.
    pub fn trust_contact(&mut self, handle: &str, now: u64) -> Result<(), Error> {
        self.directory.trust(handle, &mut self.fx)?;
        self.need_list(handle, now);
        self.finish();
        Ok(())
    }

    /// Asks the server for this account's devices; `Event::Devices` follows.
    pub fn request_devices(&mut self, now: u64) -> Result<(), Error> {
        self.handle().ok_or(Error::NotRegistered)?;
        self.online()?;
        self.request(Request::ListDevices(f::ListDevices {}), Pending::Devices, now);
        self.finish();
        Ok(())
    }

    // -------------------------------------------------------------- lists

    pub(super) fn need_list(&mut self, handle: &str, now: u64) {
        if !self.link.requests.list_pending(handle) {
            let req = Request::GetDeviceList(f::GetDeviceList { handle: handle.to_string() });
            self.request(req, Pending::List { handle: handle.to_string() }, now);
        }
    }

    /// Verifies a served list and keeps it (or warns and refuses it).
    pub(super) fn apply_list_reply(&mut self, handle: &str, reply: f::DeviceListReply, now: u64) {
        let account = self.account();
        self.directory.rechecked(handle);
        match self.directory.apply_list(account.as_ref(), handle, reply, &mut self.fx) {
            ListOutcome::Contact | ListOutcome::Older => {}
            ListOutcome::Own { list, removed } => self.resign_if_needed(&list, &removed, now),
            ListOutcome::Refused(warning) => self.warn(handle, &warning),
        }
    }

    /// A safety warning: on a contact (nothing is encrypted to them until
    /// the user acts), or about this account itself.
    pub(super) fn warn(&mut self, handle: &str, warning: &str) {
        let own = Some(handle) == self.handle();
        if own || self.directory.warn(handle, warning, &mut self.fx) {
            self.fx.emit(Event::SafetyWarning { handle: handle.to_string(), warning: warning.to_string() });
        }
    }

    /// Primary: the server removed devices the signed list still has (a
    /// companion logged itself out, or the inactivity rules): sign anew.
    fn resign_if_needed(&mut self, _list: &f::DeviceList, removed: &[u32], now: u64) {
        let Some(key) = self.me.role.account_key() else { return };
        if removed.is_empty() {
            return;
        }
        match self.directory.sign_own(&key, now, |l| l.devices.retain(|d| !removed.contains(&d.device_id))) {
            Ok(signed) => {
                let req = Request::PublishDeviceList(f::PublishDeviceList { list: Some(signed.clone()) });
                self.request(req, Pending::PublishList { list: signed }, now);
            }
            Err(e) => self.fx.error(e.to_string()),
        }
    }

    /// Primary: a list signed before entries carried self-signatures gets
    /// the primary's own, signed anew (every client refuses a primary entry
    /// without one).
    pub(super) fn mend_own_entry(&mut self, now: u64) {
        let (Some(key), Some(handle)) = (self.me.role.account_key(), self.handle().map(str::to_string)) else { return };
        let Some(list) = self.directory.own_list(&key.public()) else { return };
        let Some(mine) = list.devices.iter().find(|d| d.device_id == PRIMARY_DEVICE) else { return };
        if device_list::verify_entry(&handle, mine).is_ok() {
            return;
        }
        if mine.identity_key != self.olm.identity_key() {
            return self.fx.error("this account's signed list names other keys for this primary device");
        }
        let fresh = self.own_entry(&handle, PRIMARY_DEVICE, mine.linked_at_ms);
        let fresh = f::DeviceEntry { platform: mine.platform.clone(), name: mine.name.clone(), ..fresh };
        match self.directory.sign_own(&key, now, |l| l.devices.iter_mut().filter(|d| d.device_id == PRIMARY_DEVICE).for_each(|d| *d = fresh.clone())) {
            Ok(signed) => {
                let req = Request::PublishDeviceList(f::PublishDeviceList { list: Some(signed.clone()) });
                self.request(req, Pending::PublishList { list: signed }, now);
            }
            Err(e) => self.fx.error(e.to_string()),
        }
    }

    /// Primary: removes a companion (the server closes its socket at once).
    pub fn remove_device(&mut self, device_id: u32, now: u64) -> Result<(), Error> {
        let key = self.me.role.account_key().ok_or(Error::NotPrimary)?;
        if device_id == PRIMARY_DEVICE {
            return Err(Error::Invalid("the primary cannot unlink itself".into()));
        }
        self.online()?;
        if !self.own_devices().contains(&device_id) {
            return Err(Error::UnknownDevice(device_id));
        }
        let new = self.directory.sign_own(&key, now, |l| l.devices.retain(|d| d.device_id != device_id))?;
        let req = Request::RemoveDevice(f::RemoveDevice { device_id, new_list: Some(new.clone()) });
        self.request(req, Pending::RemoveDevice { device_id, list: Some(new) }, now);
        self.finish();
        Ok(())
    }

    /// The device ids this account's verified list holds (active ones).
    pub fn own_devices(&self) -> Set<u32> {
        let account = self.account();
        account
            .as_ref()
            .and_then(|a| self.directory.devices(Some(a), &a.handle))
            .map(|d| d.into_iter().map(|d| d.device_id).collect())
            .unwrap_or_default()
    }
}
