//! Signed device lists: the primary's account key signs which devices belong
//! to the account. The server stores and serves them but cannot forge one;
//! every client verifies a list before encrypting to its devices.

use crate::Error;
use crate::frames::{DeviceEntry, DeviceList, SignedDeviceList};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use prost::Message;

/// Domain separation for device-list signatures.
pub const DEVICE_LIST_CONTEXT: &[u8] = b"tether device list v1\0";

/// The id of the primary device in every account.
pub const PRIMARY_DEVICE: u32 = 0;

/// Domain separation for a device's self-signature on its list entry.
pub const DEVICE_ENTRY_CONTEXT: &[u8] = b"tether device entry v1\0";

/// Domain separation for a device's signature on a one-time or fallback key.
pub const PREKEY_CONTEXT: &[u8] = b"tether prekey v1\0";

/// How long after its link a companion's entry may lack its own signature:
/// it can sign only once the approval tells it its handle and device id,
/// and then hands the signature in (`PublishEntrySignature`).
pub const COMPANION_SIGNATURE_GRACE_MS: u64 = 10 * 60 * 1000;

/// An account's Ed25519 signing key (held by the primary only).
pub struct AccountKey(SigningKey);

impl AccountKey {
    /// The key from its 32-byte seed (randomness is the caller's).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The seed, for the primary's own store.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key every client pins for this account.
    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs a list.
    pub fn sign(&self, list: &DeviceList) -> SignedDeviceList {
        let body = list.encode_to_vec();
        let signature = self.0.sign(&[DEVICE_LIST_CONTEXT, &body].concat()).to_bytes().to_vec();
        SignedDeviceList { body, signature, entry_signatures: vec![] }
    }

    /// Signs `context || msg` (Ed25519). `context` is a domain-separation
    /// string naming what is signed, so a signature made for one purpose can
    /// never be replayed as another; it must be fixed per purpose and must not
    /// be a prefix of another purpose's context (end it with `\0`).
    pub fn sign_bytes(&self, context: &[u8], msg: &[u8]) -> [u8; 64] {
        self.0.sign(&[context, msg].concat()).to_bytes()
    }
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKey").finish_non_exhaustive()
    }
}

/// Verifies a signed list with an account's public key and decodes it.
/// Also checks that it is well formed: device ids and Noise keys unique,
/// the primary present, keys 32 bytes.
pub fn verify(account_key: &[u8], signed: &SignedDeviceList) -> Result<DeviceList, Error> {
    let key: [u8; 32] = account_key.try_into().map_err(|_| Error::InvalidKey("account"))?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| Error::InvalidKey("account"))?;
    let sig = Signature::from_slice(&signed.signature).map_err(|_| Error::BadSignature("device list"))?;
    key.verify(&[DEVICE_LIST_CONTEXT, &signed.body].concat(), &sig).map_err(|_| Error::BadSignature("device list"))?;
    let list = DeviceList::decode(signed.body.as_slice())?;
    check(&list)?;
    Ok(list)
}

/// [`verify`], then every entry's self-signature ([`verify_entries`]), taken
/// from the body or from `entry_signatures`: what a client checks before it
/// encrypts to (or decrypts from) a device. The list returned carries the
/// signatures found in either place. The server checks only the account's
/// signature (and each signature handed in).
pub fn verify_with_entries(account_key: &[u8], signed: &SignedDeviceList) -> Result<DeviceList, Error> {
    let mut list = verify(account_key, signed)?;
    for s in &signed.entry_signatures {
        if let Some(d) = list.devices.iter_mut().find(|d| d.device_id == s.device_id && d.self_signature.is_empty()) {
            d.self_signature = s.signature.clone();
        }
    }
    verify_entries(&list)?;
    Ok(list)
}

/// Checks the self-signature of every entry of a list. The primary's is
/// always required. A companion signs its entry only once it is signed in,
/// so its entry may lack one in a list issued within
/// [`COMPANION_SIGNATURE_GRACE_MS`] of its link; later, it must have one.
pub fn verify_entries(list: &DeviceList) -> Result<(), Error> {
    for d in &list.devices {
        if !d.self_signature.is_empty() {
            verify_entry(&list.handle, d)?;
        } else if d.device_id == PRIMARY_DEVICE {
            return Err(Error::BadSignature("device entry"));
        } else if list.issued_at_ms > d.linked_at_ms.saturating_add(COMPANION_SIGNATURE_GRACE_MS) {
            return Err(Error::InvalidDeviceList("a companion's entry is not signed by the companion"));
        }
    }
    Ok(())
}

/// The bytes a device signs (with its Ed25519 `signing_key`) to prove its
/// entry in `handle`'s list: the context, then the handle (length-prefixed,
/// u32 big-endian), the device id (u32 big-endian) and the three keys. Its
/// platform, name and link time are not covered.
pub fn entry_signed_bytes(handle: &str, entry: &DeviceEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(DEVICE_ENTRY_CONTEXT.len() + 8 + handle.len() + 96);
    out.extend_from_slice(DEVICE_ENTRY_CONTEXT);
    out.extend_from_slice(&(handle.len() as u32).to_be_bytes());
    out.extend_from_slice(handle.as_bytes());
    out.extend_from_slice(&entry.device_id.to_be_bytes());
    out.extend_from_slice(&entry.noise_key);
    out.extend_from_slice(&entry.identity_key);
    out.extend_from_slice(&entry.signing_key);
    out
}

/// Checks an entry's self-signature: made by its own `signing_key` over
/// [`entry_signed_bytes`] for `handle`. An account that lists another
/// device's keys (another account's, or a key it does not hold) fails here.
pub fn verify_entry(handle: &str, entry: &DeviceEntry) -> Result<(), Error> {
    verify_with(&entry.signing_key, &entry_signed_bytes(handle, entry), &entry.self_signature, "device entry")
}

/// The bytes a device signs for each one-time and fallback key it uploads.
pub fn prekey_signed_bytes(key: &[u8]) -> Vec<u8> {
    [PREKEY_CONTEXT, key].concat()
}

/// Checks a claimed one-time (or fallback) key's signature against the
/// device's `signing_key` from its verified list.
pub fn verify_prekey(signing_key: &[u8], key: &[u8], signature: &[u8]) -> Result<(), Error> {
    verify_with(signing_key, &prekey_signed_bytes(key), signature, "one-time key")
}

fn verify_with(signing_key: &[u8], msg: &[u8], sig: &[u8], what: &'static str) -> Result<(), Error> {
    let key: [u8; 32] = signing_key.try_into().map_err(|_| Error::InvalidKey("device signing"))?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| Error::InvalidKey("device signing"))?;
    let sig = Signature::from_slice(sig).map_err(|_| Error::BadSignature(what))?;
    key.verify_strict(msg, &sig).map_err(|_| Error::BadSignature(what))
}

/// Verifies an [`AccountKey::sign_bytes`] signature over `context || msg`
/// with an account's public key. Fails with [`Error::InvalidKey`] if the key
/// is not a valid Ed25519 public key and [`Error::BadSignature`] otherwise.
pub fn verify_bytes(account_key: &[u8], context: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), Error> {
    let key: [u8; 32] = account_key.try_into().map_err(|_| Error::InvalidKey("account"))?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| Error::InvalidKey("account"))?;
    let sig = Signature::from_slice(sig).map_err(|_| Error::BadSignature("message"))?;
    key.verify_strict(&[context, msg].concat(), &sig).map_err(|_| Error::BadSignature("message"))
}

fn check(list: &DeviceList) -> Result<(), Error> {
    if !list.devices.iter().any(|d| d.device_id == PRIMARY_DEVICE) {
        return Err(Error::InvalidDeviceList("no primary device"));
    }
    // Sorted vectors, not hash sets: a list has a few devices, and the
    // wasm core links no hash table code of its own for them (1.5 KB
    // gzipped; vodozemac still links hashbrown for its one-time keys).
    let mut ids: Vec<u32> = Vec::with_capacity(list.devices.len());
    let mut keys: Vec<&[u8]> = Vec::with_capacity(list.devices.len());
    for d in &list.devices {
        if d.noise_key.len() != 32 {
            return Err(Error::InvalidDeviceList("bad or duplicate noise key"));
        }
        if d.identity_key.len() != 32 || d.signing_key.len() != 32 {
            return Err(Error::InvalidDeviceList("bad identity key"));
        }
        ids.push(d.device_id);
        keys.push(&d.noise_key);
    }
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::InvalidDeviceList("duplicate device id"));
    }
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::InvalidDeviceList("bad or duplicate noise key"));
    }
    Ok(())
}

/// The device with `id`, if listed.
pub fn device(list: &DeviceList, id: u32) -> Option<&DeviceEntry> {
    list.devices.iter().find(|d| d.device_id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry of `handle`'s list, self-signed by a device key made from `byte`.
    fn signed_entry(handle: &str, id: u32, byte: u8) -> DeviceEntry {
        let device = SigningKey::from_bytes(&[byte; 32]);
        let mut e = DeviceEntry {
            device_id: id,
            noise_key: vec![byte; 32],
            identity_key: vec![byte; 32],
            signing_key: device.verifying_key().to_bytes().to_vec(),
            platform: "cli/linux".into(),
            name: "test".into(),
            linked_at_ms: 1,
            self_signature: vec![],
        };
        e.self_signature = device.sign(&entry_signed_bytes(handle, &e)).to_bytes().to_vec();
        e
    }

    fn entry(id: u32, byte: u8) -> DeviceEntry {
        signed_entry("alice", id, byte)
    }

    #[test]
    fn entries_must_prove_their_keys() {
        let key = AccountKey::from_seed(&[7; 32]);
        let list = |devices| DeviceList { handle: "alice".into(), version: 1, devices, issued_at_ms: 1 };
        assert!(verify_with_entries(&key.public(), &key.sign(&list(vec![entry(0, 1), entry(1, 2)]))).is_ok());

        // Another account's device, copied with its self-signature: it
        // names bob, not alice.
        let bobs = signed_entry("bob", 1, 2);
        assert!(matches!(
            verify_with_entries(&key.public(), &key.sign(&list(vec![entry(0, 1), bobs]))),
            Err(Error::BadSignature(_))
        ));

        // Moved to another device id: refused.
        let mut moved = entry(1, 2);
        moved.device_id = 2;
        assert!(verify_with_entries(&key.public(), &key.sign(&list(vec![entry(0, 1), moved]))).is_err());

        // The primary's entry must carry one.
        let mut bare = entry(0, 1);
        bare.self_signature.clear();
        assert!(verify_with_entries(&key.public(), &key.sign(&list(vec![bare]))).is_err());

        // A key swapped under a valid signature: refused.
        let mut swapped = entry(0, 1);
        swapped.identity_key = vec![9; 32];
        assert!(verify_with_entries(&key.public(), &key.sign(&list(vec![swapped]))).is_err());
    }

    #[test]
    fn a_list_has_one_primary_and_no_device_id_or_noise_key_twice() {
        let list = |devices| DeviceList { handle: "alice".into(), version: 1, devices, issued_at_ms: 1 };
        assert!(check(&list(vec![entry(0, 1), entry(1, 2), entry(2, 3)])).is_ok());
        let refused = |devices, why: &str| match check(&list(devices)) {
            Err(Error::InvalidDeviceList(w)) => assert_eq!(w, why),
            other => panic!("{why}: {other:?}"),
        };
        refused(vec![entry(1, 2)], "no primary device");
        refused(vec![entry(0, 1), entry(2, 2), entry(2, 3)], "duplicate device id");
        refused(vec![entry(0, 1), entry(1, 2), entry(2, 2)], "bad or duplicate noise key");
        let mut short = entry(1, 2);
        short.noise_key.pop();
        refused(vec![entry(0, 1), short], "bad or duplicate noise key");
        let mut bad = entry(1, 2);
        bad.signing_key.clear();
        refused(vec![entry(0, 1), bad], "bad identity key");
    }

    #[test]
    fn a_companion_signs_its_entry_after_the_link_and_must_within_the_grace() {
        let key = AccountKey::from_seed(&[7; 32]);
        let at = |issued_at_ms, devices| DeviceList { handle: "alice".into(), version: 1, devices, issued_at_ms };
        let signed_companion = entry(1, 2);
        let mut bare = signed_companion.clone();
        bare.self_signature.clear();
        // Just linked (issued at its link time): an unsigned companion passes.
        assert!(verify_with_entries(&key.public(), &key.sign(&at(1, vec![entry(0, 1), bare.clone()]))).is_ok());
        // Issued later than the grace: refused without its signature …
        let late = 1 + COMPANION_SIGNATURE_GRACE_MS + 1;
        let mut signed = key.sign(&at(late, vec![entry(0, 1), bare.clone()]));
        assert!(matches!(verify_with_entries(&key.public(), &signed), Err(Error::InvalidDeviceList(_))));
        // … and accepted with the one it handed in, outside the body.
        signed
            .entry_signatures
            .push(crate::frames::EntrySignature { device_id: 1, signature: signed_companion.self_signature.clone() });
        let list = verify_with_entries(&key.public(), &signed).unwrap();
        assert_eq!(list.devices[1].self_signature, signed_companion.self_signature, "the list returned carries it");
        // A signature handed in for another device does not fit.
        signed.entry_signatures[0].device_id = 0;
        assert!(verify_with_entries(&key.public(), &signed).is_err());
    }

    #[test]
    fn prekey_signatures_bind_the_key_to_the_device() {
        let device = SigningKey::from_bytes(&[5; 32]);
        let public = device.verifying_key().to_bytes();
        let otk = [6u8; 32];
        let sig = device.sign(&prekey_signed_bytes(&otk)).to_bytes();
        assert!(verify_prekey(&public, &otk, &sig).is_ok());
        assert!(verify_prekey(&public, &[7u8; 32], &sig).is_err(), "another key under the signature");
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(verify_prekey(&other, &otk, &sig).is_err(), "another device's key");
        assert!(verify_prekey(&public, &otk, &[]).is_err(), "unsigned");
    }

    #[test]
    fn a_signed_list_verifies_and_a_tampered_one_does_not() {
        let key = AccountKey::from_seed(&[7; 32]);
        let list = DeviceList { handle: "alice".into(), version: 1, devices: vec![entry(0, 1)], issued_at_ms: 5 };
        let signed = key.sign(&list);
        assert_eq!(verify(&key.public(), &signed).unwrap(), list);

        // The server slips in a device: the signature no longer matches.
        let mut forged = list.clone();
        forged.devices.push(entry(1, 2));
        let tampered = SignedDeviceList {
            body: forged.encode_to_vec(),
            signature: signed.signature.clone(),
            entry_signatures: vec![],
        };
        assert!(matches!(verify(&key.public(), &tampered), Err(Error::BadSignature(_))));

        let other = AccountKey::from_seed(&[8; 32]);
        assert!(verify(&other.public(), &signed).is_err());
    }

    #[test]
    fn signed_bytes_verify_only_with_same_key_context_and_message() {
        let key = AccountKey::from_seed(&[7; 32]);
        let sig = key.sign_bytes(b"ctx a\0", b"hello");
        assert!(verify_bytes(&key.public(), b"ctx a\0", b"hello", &sig).is_ok());
        assert!(verify_bytes(&key.public(), b"ctx b\0", b"hello", &sig).is_err());
        assert!(verify_bytes(&key.public(), b"ctx a\0", b"hellO", &sig).is_err());
        let other = AccountKey::from_seed(&[8; 32]);
        assert!(verify_bytes(&other.public(), b"ctx a\0", b"hello", &sig).is_err());
        assert!(matches!(verify_bytes(&key.public()[..31], b"ctx a\0", b"hello", &sig), Err(Error::InvalidKey(_))));
        assert!(verify_bytes(&key.public(), b"ctx a\0", b"hello", &sig[..63]).is_err());
    }

    #[test]
    fn malformed_lists_are_refused() {
        let key = AccountKey::from_seed(&[7; 32]);
        let no_primary = DeviceList { handle: "a".into(), version: 1, devices: vec![entry(1, 1)], issued_at_ms: 0 };
        assert!(verify(&key.public(), &key.sign(&no_primary)).is_err());
        let dup =
            DeviceList { handle: "a".into(), version: 1, devices: vec![entry(0, 1), entry(1, 1)], issued_at_ms: 0 };
        assert!(verify(&key.public(), &key.sign(&dup)).is_err());
    }
}
