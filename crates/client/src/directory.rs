//! The directory: contacts with their pinned account keys and verified
//! device lists, and this account's own signed list — the one place that
//! verifies lists, refuses older ones, and edits and signs the own list.

use crate::effects::Effects;
use crate::error::Error;
use crate::event::Event;
use crate::model::Contact;
use crate::store::{KvStore, decode, load_all};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tether_proto::device_list::{self, AccountKey};
use tether_proto::frames::{DeviceEntry, DeviceList, DeviceListReply, SignedDeviceList};

const NS_CONTACTS: &str = "contacts";
const NS_SELF: &str = "self";
const OWN_LIST_KEY: &str = "own_list";

/// This account as the directory needs it: its handle and public account key.
pub(crate) struct Account {
    pub handle: String,
    pub key: Vec<u8>,
}

/// The own account's list as last verified.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnList {
    /// Encoded SignedDeviceList (empty until known).
    #[serde(default, alias = "own_list")]
    list: Vec<u8>,
    /// Devices the server reports removed since that list was signed.
    #[serde(default, alias = "own_removed")]
    removed: Vec<u32>,
    /// Primary: the next companion id to hand out (never reused).
    #[serde(default, alias = "next_device")]
    next_device: u32,
}

#[derive(Default)]
pub struct Directory {
    /// By handle.
    contacts: BTreeMap<String, Contact>,
    own: OwnList,
    /// Lists the server sent with `device_list_changed`, to spot a server
    /// that keeps demanding devices no signed list contains.
    served: HashMap<String, Vec<u8>>,
    /// Lists already verified (account key, encoded list → the list, or
    /// None if refused): a list's signatures (the account's and one per
    /// entry) are checked once, not on every send.
    checked: Mutex<HashMap<(Vec<u8>, Vec<u8>), Option<DeviceList>>>,
}

/// Verified lists remembered at most (the cache is emptied beyond).
const CHECKED_MAX: usize = 1024;

/// What became of a served device list.
pub(crate) enum ListOutcome {
    /// A contact's list was kept (or was already known).
    Contact,
    /// The own list was kept; the primary re-signs if the server removed devices.
    Own { list: DeviceList, removed: Vec<u32> },
    /// Not newer than the one already verified: ignored.
    Older,
    /// Refused, with the warning to show.
    Refused(String),
}

impl Directory {
    pub(crate) fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let contacts = load_all::<Contact>(store, NS_CONTACTS, "contact")?.into_iter().map(|c| (c.handle.clone(), c)).collect();
        let rows = store.scan(NS_SELF).map_err(Error::Store)?;
        // Older stores kept the own list inside the device record ("me").
        let own = match rows.iter().find(|(k, _)| k == OWN_LIST_KEY).or_else(|| rows.iter().find(|(k, _)| k == "me")) {
            Some((_, v)) => decode("own device list", v)?,
            None => OwnList::default(),
        };
        Ok(Self { contacts, own, ..Self::default() })
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    // ------------------------------------------------------------ contacts

    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values()
    }

    pub fn contact(&self, handle: &str) -> Option<&Contact> {
        self.contacts.get(handle)
    }

    /// What the user (or their profile) calls them, else the handle.
    pub fn display_name(&self, handle: &str) -> String {
        self.contacts.get(handle).map(|c| c.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| handle.to_string())
    }

    /// Adds a contact (or renames it when `name` is not empty).
    pub(crate) fn upsert(&mut self, handle: &str, name: &str, fx: &mut Effects) {
        let c = self.contacts.entry(handle.to_string()).or_insert_with(|| Contact { handle: handle.to_string(), ..Default::default() });
        if !name.is_empty() {
            c.name = name.to_string();
        }
        let c = c.clone();
        fx.put(NS_CONTACTS, handle, &c);
        fx.emit(Event::ContactChanged { contact: c });
    }

    /// A contact for someone who wrote to us, named by their handle.
    pub(crate) fn ensure(&mut self, handle: &str, fx: &mut Effects) {
        if !self.contacts.contains_key(handle) {
            let c = Contact { handle: handle.to_string(), name: handle.to_string(), ..Default::default() };
            fx.put(NS_CONTACTS, handle, &c);
            self.contacts.insert(handle.to_string(), c);
        }
    }

    /// A contact from the primary's history, as the primary has it.
    pub(crate) fn import(&mut self, c: Contact, fx: &mut Effects) {
        fx.put(NS_CONTACTS, &c.handle, &c);
        self.contacts.insert(c.handle.clone(), c);
    }

    /// Their profile name, unless the user named them.
    pub(crate) fn profile_name(&mut self, handle: &str, name: &str, fx: &mut Effects) {
        if let Some(c) = self.contacts.get_mut(handle) {
            if c.name.is_empty() || c.name == c.handle {
                c.name = name.to_string();
                let c = c.clone();
                fx.put(NS_CONTACTS, handle, &c);
                fx.emit(Event::ContactChanged { contact: c });
            }
        }
    }

    /// Accepts a contact's new account key after the user checked it: the
    /// key and list are pinned anew from the next list served.
    pub(crate) fn trust(&mut self, handle: &str, fx: &mut Effects) -> Result<(), Error> {
        let c = self.contacts.get_mut(handle).ok_or_else(|| Error::UnknownContact(handle.into()))?;
        c.account_key.clear();
        c.list.clear();
        c.removed.clear();
        c.warning = None;
        let c = c.clone();
        fx.put(NS_CONTACTS, handle, &c);
        Ok(())
    }

    /// Why nothing is encrypted to a contact right now, if so.
    pub(crate) fn warning(&self, handle: &str) -> Option<&str> {
        self.contacts.get(handle).and_then(|c| c.warning.as_deref())
    }

    /// Records a safety warning on a contact; true if it is new.
    pub(crate) fn warn(&mut self, handle: &str, warning: &str, fx: &mut Effects) -> bool {
        let c = self.contacts.entry(handle.to_string()).or_insert_with(|| Contact { handle: handle.to_string(), name: handle.to_string(), ..Default::default() });
        if c.warning.as_deref() == Some(warning) {
            return false;
        }
        c.warning = Some(warning.to_string());
        let c = c.clone();
        fx.put(NS_CONTACTS, handle, &c);
        fx.emit(Event::ContactChanged { contact: c });
        true
    }

    /// Contacts whose list is still unknown (and not refused).
    pub(crate) fn missing_lists(&self) -> Vec<String> {
        self.contacts.values().filter(|c| c.list.is_empty() && c.warning.is_none()).map(|c| c.handle.clone()).collect()
    }

    // --------------------------------------------------------------- lists

    /// Verifies a served list and keeps it if it is newer than what we
    /// have. The own account's list must carry the own key; a contact's
    /// key is pinned on first contact and never changes silently.
    pub(crate) fn apply_list(&mut self, me: Option<&Account>, handle: &str, reply: DeviceListReply, fx: &mut Effects) -> ListOutcome {
        let own = me.filter(|m| m.handle == handle);
        let key = match own {
            Some(m) => m.key.clone(),
            None => {
                let pinned = self.contacts.get(handle).map(|c| c.account_key.clone()).unwrap_or_default();
                if !pinned.is_empty() && pinned != reply.account_key {
                    return ListOutcome::Refused(
                        "their account key changed: this may be a new phone, or someone impersonating them. Check with them, then accept the new key".into(),
                    );
                }
                reply.account_key.clone()
            }
        };
        let Some(signed) = reply.list else { return ListOutcome::Refused("the server sent no device list".into()) };
        let list = match device_list::verify(&key, &signed) {
            Ok(l) if l.handle == handle && device_list::verify_entries(&l).is_err() => {
                return ListOutcome::Refused(
                    "a device in their list does not prove it holds its keys (it may be another account's device): nothing is encrypted to it".into(),
                );
            }
            Ok(l) if l.handle == handle => l,
            Ok(_) => return ListOutcome::Refused("the server sent another account's device list".into()),
            Err(_) => {
                return ListOutcome::Refused(
                    "the server's device list is not signed by this account: nothing is encrypted to it (the server may be adding a device)".into(),
                );
            }
        };
        let bytes = signed.encode_to_vec();
        if own.is_some() {
            if verified(&key, &self.own.list).is_some_and(|cur| cur.version > list.version) {
                return ListOutcome::Older;
            }
            self.own.list = bytes;
            self.own.removed = reply.removed.clone();
            self.own.next_device = self.own.next_device.max(list.devices.iter().map(|d| d.device_id + 1).max().unwrap_or(1));
            self.save_own(fx);
            return ListOutcome::Own { list, removed: reply.removed };
        }
        let c = self.contacts.entry(handle.to_string()).or_insert_with(|| Contact { handle: handle.to_string(), ..Default::default() });
        if verified(&key, &c.list).is_some_and(|cur| cur.version > list.version) {
            return ListOutcome::Older;
        }
        let changed = c.list != bytes || c.removed != reply.removed || c.warning.is_some();
        c.account_key = key;
        c.list = bytes;
        c.removed = reply.removed;
        c.warning = None;
        if c.name.is_empty() {
            c.name = handle.to_string();
        }
        let c = c.clone();
        fx.put(NS_CONTACTS, handle, &c);
        if changed {
            fx.emit(Event::ContactChanged { contact: c });
        }
        ListOutcome::Contact
    }

    /// Verified, active devices of an account (for the own one: all of
    /// them, this device included). None while unknown or refused.
    pub(crate) fn devices(&self, me: Option<&Account>, handle: &str) -> Option<Vec<DeviceEntry>> {
        let (list, removed, key) = match me.filter(|m| m.handle == handle) {
            Some(m) => (&self.own.list, &self.own.removed, m.key.as_slice()),
            None => {
                let c = self.contacts.get(handle)?;
                if c.warning.is_some() {
                    return None;
                }
                (&c.list, &c.removed, c.account_key.as_slice())
            }
        };
        let list = self.verified_once(key, list)?;
        Some(list.devices.into_iter().filter(|d| !removed.contains(&d.device_id)).collect())
    }

    /// [`verified`], remembered.
    fn verified_once(&self, key: &[u8], bytes: &[u8]) -> Option<DeviceList> {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        let id = (key.to_vec(), bytes.to_vec());
        if let Some(list) = checked.get(&id) {
            return list.clone();
        }
        let list = verified(key, bytes);
        if checked.len() >= CHECKED_MAX {
            checked.clear();
        }
        checked.insert(id, list.clone());
        list
    }

    /// The server sent this list with `device_list_changed`; true if it is
    /// the very list it sent last time (it demands devices no signed list has).
    pub(crate) fn served_again(&mut self, reply: &DeviceListReply) -> bool {
        let bytes = reply.encode_to_vec();
        self.served.insert(reply.handle.clone(), bytes.clone()).is_some_and(|before| before == bytes)
    }

    /// A send went through: lists served so far are settled.
    pub(crate) fn settled(&mut self) {
        self.served.clear();
    }

    // ------------------------------------------------------------ own list

    /// Primary: the next device id to hand out.
    pub(crate) fn next_device(&self) -> u32 {
        self.own.next_device.max(1)
    }

    /// Primary: the own list as last signed, checked with the account key
    /// only (not the entries' self-signatures), to mend it.
    pub(crate) fn own_list(&self, key: &[u8]) -> Option<DeviceList> {
        let signed = SignedDeviceList::decode(self.own.list.as_slice()).ok()?;
        device_list::verify(key, &signed).ok()
    }

    /// Primary: the own list edited by `edit`, one version up, signed.
    pub(crate) fn sign_own(&self, key: &AccountKey, now: u64, edit: impl FnOnce(&mut DeviceList)) -> Result<SignedDeviceList, Error> {
        let signed = SignedDeviceList::decode(self.own.list.as_slice()).map_err(|e| Error::Proto(e.into()))?;
        let mut list = device_list::verify(&key.public(), &signed)?;
        edit(&mut list);
        list.version += 1;
        list.issued_at_ms = now;
        Ok(key.sign(&list))
    }

    /// The own list as the server now holds it (after registration, a
    /// link, a removal or a re-signing).
    pub(crate) fn set_own(&mut self, signed: &SignedDeviceList, fx: &mut Effects) {
        self.own.list = signed.encode_to_vec();
        self.own.removed.clear();
        // Signed by this very primary (or verified on receipt): the body decodes.
        if let Ok(list) = DeviceList::decode(signed.body.as_slice()) {
            self.own.next_device = self.own.next_device.max(list.devices.iter().map(|d| d.device_id + 1).max().unwrap_or(1));
        }
        self.save_own(fx);
    }

    fn save_own(&self, fx: &mut Effects) {
        fx.put(NS_SELF, OWN_LIST_KEY, &self.own);
    }
}

/// An encoded signed list, verified with `key`, every entry proving its keys.
fn verified(key: &[u8], bytes: &[u8]) -> Option<DeviceList> {
    if bytes.is_empty() {
        return None;
    }
    let signed = SignedDeviceList::decode(bytes).ok()?;
    device_list::verify_with_entries(key, &signed).ok()
}
