//! Sealed boxes: one-shot public-key encryption for history and contacts sent
//! to a newly linked companion, and the symmetric AES-256-GCM used by pairing.
//!
//! A sealed box is X25519 (the sender's fresh ephemeral key with the
//! recipient's static key) → HKDF-SHA256 → AES-256-GCM:
//!
//! ```text
//! version (1 byte, = 1) || ephemeral public (32) || nonce (12) || ciphertext || tag (16)
//! key  = HKDF-SHA256(salt = "tether seal v1", ikm = X25519(eph, recipient),
//!                    info = "tether seal v1\0" || version || ephemeral public || recipient public)
//! AEAD associated data = version || ephemeral public || nonce || caller's aad
//! ```
//!
//! The associated data covers the whole header (fixed length, so the caller's
//! `aad` that follows cannot be confused with it). Randomness (the ephemeral
//! secret and the nonce) is passed in by the caller; nothing here touches the
//! OS.

use crate::Error;
use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use aes_gcm::{Aes256Gcm, Key};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

/// Format version of a sealed box (its first byte).
const SEAL_VERSION: u8 = 1;
/// HKDF salt and (with a terminating NUL) the start of the HKDF info.
const SEAL_LABEL: &[u8] = b"tether seal v1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// version || ephemeral public || nonce.
const HEADER_LEN: usize = 1 + 32 + NONCE_LEN;

/// Encrypts `plaintext` to `recipient` (an X25519 public key), authenticating
/// `aad` as well. `ephemeral_secret` and `nonce` must be fresh random bytes
/// from the caller (use a new ephemeral secret for every box; the nonce then
/// only needs to be random, not unique across boxes).
///
/// Output: `version (1) || ephemeral public (32) || nonce (12) || ciphertext+tag`.
/// The HKDF info binds both public keys, so a box cannot be re-addressed.
///
/// # Panics
///
/// If `recipient` is a low-order point (for which every shared secret is
/// all zeros, so the box would be readable by anyone): a caller bug, since
/// recipients come from checked sources such as
/// [`LinkPayload::from_uri`](crate::link::LinkPayload::from_uri), which
/// refuses such keys. Also if `plaintext` exceeds AES-GCM's limit (64 GiB).
pub fn seal(
    recipient: &[u8; 32],
    plaintext: &[u8],
    aad: &[u8],
    ephemeral_secret: [u8; 32],
    nonce: [u8; 12],
) -> Vec<u8> {
    let eph = StaticSecret::from(ephemeral_secret);
    let eph_public = PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&PublicKey::from(*recipient));
    assert!(shared.was_contributory(), "seal: the recipient key is a low-order point");
    let key = box_key(shared.as_bytes(), &eph_public, recipient);

    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(SEAL_VERSION);
    out.extend_from_slice(&eph_public);
    out.extend_from_slice(&nonce);
    let full_aad = [&out[..HEADER_LEN], aad].concat();
    let ciphertext = cipher(&key)
        .encrypt(&Nonce::<Aes256Gcm>::from(nonce), Payload { msg: plaintext, aad: &full_aad })
        .expect("AES-GCM plaintext limit exceeded");
    out.extend_from_slice(&ciphertext);
    out
}

/// Opens a box made by [`seal`] with the recipient's X25519 secret and the
/// same `aad`. Fails with [`Error::UnsupportedVersion`] for an unknown
/// version byte, [`Error::MalformedCiphertext`] if it is too short, and
/// [`Error::DecryptFailed`] for a wrong key, a wrong `aad`, any tampering, or
/// a low-order ephemeral key.
pub fn open(recipient_secret: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    let Some(&version) = sealed.first() else {
        return Err(Error::MalformedCiphertext("sealed box"));
    };
    if version != SEAL_VERSION {
        return Err(Error::UnsupportedVersion { what: "sealed box", version: u32::from(version) });
    }
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(Error::MalformedCiphertext("sealed box"));
    }
    let (header, ciphertext) = sealed.split_at(HEADER_LEN);
    let eph_public: [u8; 32] = header[1..33].try_into().expect("32 bytes");
    let nonce = &header[33..HEADER_LEN];

    let secret = StaticSecret::from(*recipient_secret);
    let recipient = PublicKey::from(&secret).to_bytes();
    let shared = secret.diffie_hellman(&PublicKey::from(eph_public));
    if !shared.was_contributory() {
        return Err(Error::DecryptFailed("sealed box"));
    }
    let key = box_key(shared.as_bytes(), &eph_public, &recipient);
    let full_aad = [header, aad].concat();
    cipher(&key)
        .decrypt(&nonce_of(nonce), Payload { msg: ciphertext, aad: &full_aad })
        .map_err(|_| Error::DecryptFailed("sealed box"))
}

/// The X25519 public key of `secret` (for the companion's link key, which
/// goes into the QR code as [`LinkPayload::link_key`](crate::link::LinkPayload::link_key)).
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

/// Symmetric AES-256-GCM with a caller-supplied key (used by pairing).
/// `nonce` must be random (or otherwise never repeat under the same key).
/// Output: `nonce (12) || ciphertext+tag`; `aad` is authenticated.
///
/// # Panics
///
/// If `plaintext` exceeds AES-GCM's limit (64 GiB).
pub fn encrypt_with_key(key: &[u8; 32], plaintext: &[u8], aad: &[u8], nonce: [u8; 12]) -> Vec<u8> {
    let ciphertext = cipher(key)
        .encrypt(&Nonce::<Aes256Gcm>::from(nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM plaintext limit exceeded");
    [&nonce[..], &ciphertext].concat()
}

/// Decrypts the output of [`encrypt_with_key`] with the same key and `aad`.
/// Fails with [`Error::MalformedCiphertext`] if it is too short and
/// [`Error::DecryptFailed`] for a wrong key, a wrong `aad` or any tampering.
pub fn decrypt_with_key(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::MalformedCiphertext("encrypted data"));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher(key)
        .decrypt(&nonce_of(nonce), Payload { msg: ciphertext, aad })
        .map_err(|_| Error::DecryptFailed("encrypted data"))
}

/// AES-256-GCM keyed with `key`.
fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
}

/// A nonce from a slice the caller has already cut to 12 bytes.
fn nonce_of(bytes: &[u8]) -> Nonce<Aes256Gcm> {
    let array: [u8; NONCE_LEN] = bytes.try_into().expect("12-byte nonce");
    Nonce::<Aes256Gcm>::from(array)
}

/// HKDF-SHA256 from the shared secret to the box's AES key, binding the
/// version and both public keys.
fn box_key(shared: &[u8; 32], eph_public: &[u8; 32], recipient: &[u8; 32]) -> [u8; KEY_LEN] {
    let info = [SEAL_LABEL, b"\0", &[SEAL_VERSION], eph_public, recipient].concat();
    let mut key = [0u8; KEY_LEN];
    Hkdf::<Sha256>::new(Some(SEAL_LABEL), shared)
        .expand(&info, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [0x11; 32];
    const EPH: [u8; 32] = [0x22; 32];
    const NONCE: [u8; 12] = [0x33; 12];

    fn boxed(msg: &[u8], aad: &[u8]) -> Vec<u8> {
        seal(&public_key(&SECRET), msg, aad, EPH, NONCE)
    }

    #[test]
    fn seal_then_open_round_trips() {
        let sealed = boxed(b"history", b"ctx");
        assert_eq!(sealed.len(), 1 + 32 + 12 + 7 + 16);
        assert_eq!(sealed[0], SEAL_VERSION);
        assert_eq!(&sealed[1..33], &public_key(&EPH));
        assert_eq!(&sealed[33..45], &NONCE);
        assert!(!sealed.windows(7).any(|w| w == b"history"));
        assert_eq!(open(&SECRET, &sealed, b"ctx").unwrap(), b"history");
        // Empty plaintext works too.
        assert_eq!(open(&SECRET, &boxed(b"", b""), b"").unwrap(), b"");
    }

    #[test]
    fn open_with_the_wrong_key_fails() {
        let sealed = boxed(b"history", b"ctx");
        assert!(matches!(open(&[0x12; 32], &sealed, b"ctx"), Err(Error::DecryptFailed(_))));
    }

    #[test]
    fn tampering_anywhere_is_detected() {
        let sealed = boxed(b"history", b"ctx");
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open(&SECRET, &bad, b"ctx").is_err(), "byte {i} flipped");
        }
        let mut bad = sealed.clone();
        bad[0] = 2;
        assert!(matches!(open(&SECRET, &bad, b"ctx"), Err(Error::UnsupportedVersion { version: 2, .. })));
        assert!(matches!(
            open(&SECRET, &sealed[..HEADER_LEN + TAG_LEN - 1], b"ctx"),
            Err(Error::MalformedCiphertext(_))
        ));
        assert!(open(&SECRET, &[], b"ctx").is_err());
    }

    #[test]
    fn the_wrong_aad_fails() {
        let sealed = boxed(b"history", b"ctx");
        assert!(matches!(open(&SECRET, &sealed, b"ctX"), Err(Error::DecryptFailed(_))));
        assert!(open(&SECRET, &sealed, b"").is_err());
    }

    #[test]
    fn a_low_order_ephemeral_key_is_refused() {
        let mut sealed = boxed(b"history", b"");
        sealed[1..33].copy_from_slice(&[0; 32]);
        assert!(matches!(open(&SECRET, &sealed, b""), Err(Error::DecryptFailed(_))));
    }

    #[test]
    #[should_panic(expected = "low-order")]
    fn sealing_to_a_low_order_key_panics() {
        seal(&[0; 32], b"x", b"", EPH, NONCE);
    }

    #[test]
    fn public_key_matches_x25519() {
        // RFC 7748 section 6.1 test vector (Alice).
        let secret: [u8; 32] = [
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c,
            0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
        ];
        let public: [u8; 32] = [
            0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a, 0x0d, 0xbf,
            0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a,
        ];
        assert_eq!(public_key(&secret), public);
    }

    #[test]
    fn encrypt_with_key_round_trips_and_detects_tampering() {
        let key = [0x44; 32];
        let sealed = encrypt_with_key(&key, b"offer", b"aad", NONCE);
        assert_eq!(sealed.len(), 12 + 5 + 16);
        assert_eq!(&sealed[..12], &NONCE);
        assert_eq!(decrypt_with_key(&key, &sealed, b"aad").unwrap(), b"offer");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert!(matches!(decrypt_with_key(&key, &bad, b"aad"), Err(Error::DecryptFailed(_))), "byte {i} flipped");
        }
        assert!(decrypt_with_key(&[0x45; 32], &sealed, b"aad").is_err());
        assert!(decrypt_with_key(&key, &sealed, b"aaD").is_err());
        assert!(matches!(decrypt_with_key(&key, &sealed[..27], b"aad"), Err(Error::MalformedCiphertext(_))));
    }
}
