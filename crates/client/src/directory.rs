//! The directory: contacts with their pinned account keys and verified
//! device lists, and this account's own signed list — the one place that
//! verifies lists, refuses older ones, and edits and signs the own list.

use crate::effects::Effects;
use crate::error::Error;
use crate::event::Event;
use crate::model::Contact;
use crate::names::{self, sanitize_name};
use crate::store::{KvStore, decode, load_all};
use prost::Message;
use serde::{Deserialize, Serialize};
use crate::sorted::{Map, Set};
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
    contacts: Map<String, Contact>,
    own: OwnList,
    /// Lists the server sent with `device_list_changed`, to spot a server
    /// that keeps demanding devices no signed list contains.
    served: Map<String, (Vec<u8>, u64)>,
    /// Counts the lists served and applied (see `served_again`).
    serve_generation: u64,
    /// Contacts whose list is fetched again, on this connection, before
    /// anything is encrypted to them (see `Engine::on_open`): a key change
    /// while we were away is caught before a message goes to the old keys.
    recheck: Set<String>,
    /// Lists already verified (account key, encoded list → the list, or
    /// None if refused): a list's signatures (the account's and one per
    /// entry) are checked once, not on every send.
    checked: Mutex<Map<(Vec<u8>, Vec<u8>), Option<DeviceList>>>,
}

/// Verified lists remembered at most (the cache is emptied beyond): more
/// than the accounts of the largest group, so a group send does not verify
/// every member's list again.
const CHECKED_MAX: usize = 4096;

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

    /// What the user calls them; else the name they chose, with their
    /// handle beside it; else the handle.
    pub fn display_name(&self, handle: &str) -> String {
        let Some(c) = self.contacts.get(handle) else { return handle.to_string() };
        if !c.name.is_empty() && c.name != c.handle {
            c.name.clone()
        } else if !c.profile_name.is_empty() {
            names::peer_chosen(&c.profile_name, handle)
        } else {
            handle.to_string()
        }
    }

    /// Adds a contact (or renames it when `name` is not empty after cleaning).
    pub(crate) fn upsert(&mut self, handle: &str, name: &str, fx: &mut Effects) {
        let name = sanitize_name(name);
        let c = self.contacts.entry(handle.to_string()).or_insert_with(|| Contact { handle: handle.to_string(), ..Default::default() });
        if !name.is_empty() {
            c.name = name;
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
    pub(crate) fn import(&mut self, mut c: Contact, fx: &mut Effects) {
        c.name = sanitize_name(&c.name);
        c.profile_name = sanitize_name(&c.profile_name);
        fx.put(NS_CONTACTS, &c.handle, &c);
        self.contacts.insert(c.handle.clone(), c);
    }

    /// The name they chose for themselves (cleaned). Kept apart from the
    /// name the user gave them, which it never replaces.
    pub(crate) fn profile_name(&mut self, handle: &str, name: &str, fx: &mut Effects) {
        let name = sanitize_name(name);
        if let Some(c) = self.contacts.get_mut(handle).filter(|c| c.profile_name != name) {
            c.profile_name = name;
            let c = c.clone();
            fx.put(NS_CONTACTS, handle, &c);
            fx.emit(Event::ContactChanged { contact: c });
        }
    }

    /// Accepts a contact's new account key after the user checked it: the
    /// key the warning was about is pinned (a list under any other key is
    /// a new warning), and its list fetched anew. Without such a key (the
    /// list, not the key, was refused) the next list served is pinned.
    pub(crate) fn trust(&mut self, handle: &str, fx: &mut Effects) -> Result<(), Error> {
        let c = self.contacts.get_mut(handle).ok_or_else(|| Error::UnknownContact(handle.into()))?;
        c.account_key = std::mem::take(&mut c.offered_key);
        c.list.clear();
        c.removed.clear();
        c.warning = None;
        // Whatever key is pinned next was never compared with them.
        c.verified = false;
        let c = c.clone();
        fx.put(NS_CONTACTS, handle, &c);
        fx.emit(Event::ContactChanged { contact: c });
        Ok(())
    }

    /// Records that the user compared (or un-compared) the safety number of
    /// the contact's pinned key. Refused while no key is pinned or a key
    /// change waits for the user.
    pub(crate) fn set_verified(&mut self, handle: &str, verified: bool, fx: &mut Effects) -> Result<(), Error> {
        let c = self.contacts.get_mut(handle).ok_or_else(|| Error::UnknownContact(handle.into()))?;
        if verified && (c.account_key.is_empty() || c.warning.is_some()) {
            return Err(Error::Invalid(format!("{handle}'s keys are not settled: accept or fetch them first")));
        }
        if c.verified != verified {
            c.verified = verified;
            let c = c.clone();
            fx.put(NS_CONTACTS, handle, &c);
            fx.emit(Event::ContactChanged { contact: c });
        }
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

    /// Fetch `handle`'s list again before encrypting to it.
    pub(crate) fn recheck(&mut self, handle: &str) {
        self.recheck.insert(handle.to_string());
    }

    /// Whether `handle`'s list waits to be fetched again.
    pub(crate) fn needs_recheck(&self, handle: &str) -> bool {
        self.recheck.contains(handle)
    }

    /// `handle`'s list was answered (or refused): no longer waiting.
    pub(crate) fn rechecked(&mut self, handle: &str) {
        self.recheck.remove(handle);
    }

    /// The connection closed: what waited is asked again next time.
    pub(crate) fn disconnected(&mut self) {
        self.recheck.clear();
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
                    // What was verified was the old key: the user compares
                    // anew. The key shown is the one accepting would pin.
                    if let Some(c) = self.contacts.get_mut(handle).filter(|c| c.verified || c.offered_key != reply.account_key) {
                        c.verified = false;
                        c.offered_key = reply.account_key.clone();
                        fx.put(NS_CONTACTS, handle, &*c);
                    }
                    return ListOutcome::Refused(
                        "their account key changed: this may be a new phone, or someone impersonating them. Check with them, then accept the new key".into(),
                    );
                }
                reply.account_key.clone()
            }
        };
        let Some(signed) = reply.list else { return ListOutcome::Refused("the server sent no device list".into()) };
        let list = match device_list::verify(&key, &signed) {
            Ok(l) if l.handle == handle && device_list::verify_with_entries(&key, &signed).is_err() => {
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
        if c.account_key != key {
            c.verified = false;
        }
        c.account_key = key;
        c.offered_key.clear();
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

    /// The version of an account's verified list (0 while unknown or
    /// refused): what a send states it encrypted for.
    pub(crate) fn list_version(&self, me: Option<&Account>, handle: &str) -> u64 {
        let (list, key) = match me.filter(|m| m.handle == handle) {
            Some(m) => (&self.own.list, m.key.as_slice()),
            None => match self.contacts.get(handle).filter(|c| c.warning.is_none()) {
                Some(c) => (&c.list, c.account_key.as_slice()),
                None => return 0,
            },
        };
        self.verified_once(key, list).map_or(0, |l| l.version)
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

    /// The server sent this list with `device_list_changed` in answer to a
    /// send encrypted at serve generation `sent_at`; true if it is the very
    /// list it sent before and the send was made with that list applied
    /// (it demands devices no signed list has). A send that was already in
    /// flight when the list first came (several sends at once) is no proof.
    pub(crate) fn served_again(&mut self, reply: &DeviceListReply, sent_at: u64) -> bool {
        let bytes = reply.encode_to_vec();
        if let Some((before, applied_at)) = self.served.get(&reply.handle)
            && *before == bytes
        {
            return sent_at >= *applied_at;
        }
        self.serve_generation += 1;
        self.served.insert(reply.handle.clone(), (bytes, self.serve_generation));
        false
    }

    /// The serve generation now (a send records it; see `served_again`).
    pub(crate) fn serve_generation(&self) -> u64 {
        self.serve_generation
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
        // The signatures companions handed in still hold for their entries
        // (they cover the handle, id and keys, not the version).
        let mut new = key.sign(&list);
        new.entry_signatures = signed.entry_signatures.into_iter().filter(|s| device_list::device(&list, s.device_id).is_some()).collect();
        Ok(new)
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

    /// Primary: companion ids below `next` are used up (a restore learns
    /// them from the list it replaces: ids are never reused).
    pub(crate) fn reserve_device_ids(&mut self, next: u32, fx: &mut Effects) {
        self.own.next_device = self.own.next_device.max(next);
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
