//! Sealed boxes, pairing ciphertexts and signed device lists from arbitrary
//! bytes: `seal::open`, `seal::decrypt_with_key` and `device_list::verify`
//! must refuse what is not genuine without panicking.
//!
//! Input: `selector (1 byte) || aad_len (1 byte) || aad || rest`.
use prost::Message;
use tether_proto::device_list::{self, AccountKey};
use tether_proto::frames::{DeviceList, SignedDeviceList};
use tether_proto::seal;

const SECRET: [u8; 32] = [0x11; 32];
const KEY: [u8; 32] = [0x44; 32];

/// Runs one input (the fuzz target's body).
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Some((&aad_len, rest)) = rest.split_first() else { return };
    let (aad, body) = rest.split_at(usize::from(aad_len).min(rest.len()));
    match selector % 4 {
        0 => {
            // Anything that opens must have been sealed to SECRET: the
            // fuzzer cannot forge a tag, so only a seed can open.
            let _ = seal::open(&SECRET, body, aad);
            // A box re-sealed from the body opens to the body.
            let eph: [u8; 32] = std::array::from_fn(|i| aad.get(i).copied().unwrap_or(i as u8) | 1);
            let sealed = seal::seal(&seal::public_key(&SECRET), body, aad, eph, [7; 12]);
            assert_eq!(seal::open(&SECRET, &sealed, aad).ok().as_deref(), Some(body));
        }
        1 => {
            let _ = seal::decrypt_with_key(&KEY, body, aad);
        }
        2 => {
            // Arbitrary bytes as a signed list, under a fixed account key and
            // under a key taken from the input (often not a curve point).
            let account = AccountKey::from_seed(&[7; 32]);
            if let Ok(signed) = SignedDeviceList::decode(body) {
                let _ = device_list::verify(&account.public(), &signed);
                let _ = device_list::verify(aad, &signed);
            }
        }
        _ => {
            // Arbitrary bytes as a list body, genuinely signed: reaches the
            // checks behind the signature (primary, duplicates, key sizes).
            let account = AccountKey::from_seed(&[7; 32]);
            if let Ok(list) = DeviceList::decode(body) {
                let signed = account.sign(&list);
                if let Ok(verified) = device_list::verify(&account.public(), &signed) {
                    assert_eq!(verified, list);
                }
            }
            let raw = SignedDeviceList {
                body: body.to_vec(),
                signature: account.sign_bytes(device_list::DEVICE_LIST_CONTEXT, body).to_vec(),
                entry_signatures: vec![],
            };
            let _ = device_list::verify(&account.public(), &raw);
        }
    }
}
