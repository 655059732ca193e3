//! snow's primitives for `Noise_XX_25519_AESGCM_SHA256`, taken from the
//! crates the rest of the tree already links (x25519-dalek 3, aes-gcm 0.11,
//! sha2 0.11, getrandom 0.4): snow's own default resolver pins the previous
//! RustCrypto generation (curve25519-dalek 4, aes-gcm 0.10, sha2 0.10,
//! getrandom 0.3), which linked a second copy of each into the wasm core.
//! Natively the cipher is aes-gcm 0.10's (Cargo.toml says why). Only glue: every primitive is the well-kept crate's, and the framing
//! (nonce layout, tag placement) is snow's default resolver's, byte for byte
//! (the known-answer vectors of `docs/protocol.md` check it).

#[cfg(target_arch = "wasm32")]
use aes_gcm::Aes256Gcm;
#[cfg(target_arch = "wasm32")]
use aes_gcm::aead::{AeadInOut, Key, KeyInit, Nonce, Tag};
use sha2::{Digest, Sha256};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};

/// Key length of the cipher and of X25519 keys.
const KEY_LEN: usize = 32;
/// AES-GCM's tag.
const TAG_LEN: usize = 16;

/// Resolves exactly the primitives of [`super::NOISE_PARAMS`]; any other
/// choice is unsupported (`None`), so snow refuses to build it.
pub(super) struct Resolver;

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(OsRandom))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::<X25519>::default()),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        match choice {
            HashChoice::SHA256 => Some(Box::<Sha256Hash>::default()),
            _ => None,
        }
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        match choice {
            CipherChoice::AESGCM => Some(Box::<AesGcm>::default()),
            _ => None,
        }
    }
}

/// The platform's randomness (the OS; `crypto.getRandomValues` in wasm).
struct OsRandom;

impl Random for OsRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        getrandom::fill(dest).map_err(|_| snow::Error::Rng)
    }
}

/// X25519 through x25519-dalek (clamps the scalar, as Noise's DH does).
#[derive(Default)]
struct X25519 {
    private: [u8; KEY_LEN],
    public: [u8; KEY_LEN],
}

impl X25519 {
    fn set_private(&mut self, private: [u8; KEY_LEN]) {
        self.private = private;
        self.public = x25519_dalek::x25519(private, x25519_dalek::X25519_BASEPOINT_BYTES);
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        KEY_LEN
    }

    fn priv_len(&self) -> usize {
        KEY_LEN
    }

    fn set(&mut self, privkey: &[u8]) {
        let mut private = [0u8; KEY_LEN];
        private.copy_from_slice(&privkey[..KEY_LEN]);
        self.set_private(private);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut private = [0u8; KEY_LEN];
        rng.try_fill_bytes(&mut private)?;
        self.set_private(private);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.private
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let public: [u8; KEY_LEN] = pubkey.get(..KEY_LEN).and_then(|k| k.try_into().ok()).ok_or(snow::Error::Dh)?;
        out[..KEY_LEN].copy_from_slice(&x25519_dalek::x25519(self.private, public));
        Ok(())
    }
}

/// SHA-256; snow derives HMAC and HKDF from it.
#[derive(Default)]
struct Sha256Hash(Sha256);

impl Hash for Sha256Hash {
    fn name(&self) -> &'static str {
        "SHA256"
    }

    fn block_len(&self) -> usize {
        64
    }

    fn hash_len(&self) -> usize {
        32
    }

    fn reset(&mut self) {
        self.0 = Sha256::default();
    }

    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn result(&mut self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.0.finalize_reset());
    }
}

/// AES-256-GCM with Noise's nonce: four zero bytes, then the counter
/// big-endian; the tag follows the ciphertext.
#[derive(Default)]
struct AesGcm {
    key: [u8; KEY_LEN],
}

impl AesGcm {
    #[cfg(target_arch = "wasm32")]
    fn aead(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.key))
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn nonce_ni(counter: u64) -> aes_gcm_ni::Nonce<aes_gcm_ni::aead::consts::U12> {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    bytes.into()
}

#[cfg(target_arch = "wasm32")]
fn nonce(counter: u64) -> Nonce<Aes256Gcm> {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::<Aes256Gcm>::from(bytes)
}

impl Cipher for AesGcm {
    fn name(&self) -> &'static str {
        "AESGCM"
    }

    fn set(&mut self, key: &[u8; KEY_LEN]) {
        self.key = *key;
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn encrypt(&self, counter: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        use aes_gcm_ni::aead::{AeadInPlace, KeyInit};
        let len = plaintext.len();
        out[..len].copy_from_slice(plaintext);
        let aead = aes_gcm_ni::Aes256Gcm::new(&self.key.into());
        let tag = aead
            .encrypt_in_place_detached(&nonce_ni(counter), authtext, &mut out[..len])
            .expect("a Noise message is within AES-GCM's length limit");
        out[len..len + TAG_LEN].copy_from_slice(&tag);
        len + TAG_LEN
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn decrypt(&self, counter: u64, authtext: &[u8], ciphertext: &[u8], out: &mut [u8]) -> Result<usize, snow::Error> {
        use aes_gcm_ni::aead::{AeadInPlace, KeyInit};
        let len = ciphertext.len().checked_sub(TAG_LEN).ok_or(snow::Error::Decrypt)?;
        let (body, tag) = ciphertext.split_at(len);
        out[..len].copy_from_slice(body);
        let aead = aes_gcm_ni::Aes256Gcm::new(&self.key.into());
        aead.decrypt_in_place_detached(&nonce_ni(counter), authtext, &mut out[..len], tag.into())
            .map_err(|_| snow::Error::Decrypt)?;
        Ok(len)
    }

    #[cfg(target_arch = "wasm32")]
    fn encrypt(&self, counter: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let len = plaintext.len();
        out[..len].copy_from_slice(plaintext);
        let tag = self
            .aead()
            .encrypt_inout_detached(&nonce(counter), authtext, (&mut out[..len]).into())
            .expect("a Noise message is within AES-GCM's length limit");
        out[len..len + TAG_LEN].copy_from_slice(&tag);
        len + TAG_LEN
    }

    #[cfg(target_arch = "wasm32")]
    fn decrypt(&self, counter: u64, authtext: &[u8], ciphertext: &[u8], out: &mut [u8]) -> Result<usize, snow::Error> {
        let len = ciphertext.len().checked_sub(TAG_LEN).ok_or(snow::Error::Decrypt)?;
        let (body, tag) = ciphertext.split_at(len);
        let tag = Tag::<Aes256Gcm>::try_from(tag).map_err(|_| snow::Error::Decrypt)?;
        out[..len].copy_from_slice(body);
        self.aead()
            .decrypt_inout_detached(&nonce(counter), authtext, (&mut out[..len]).into(), &tag)
            .map_err(|_| snow::Error::Decrypt)?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NOISE_PARAMS, builder};
    use snow::{Builder, HandshakeState};

    /// snow's own resolver (the crates it pins), as the reference.
    fn reference() -> Builder<'static> {
        Builder::new(NOISE_PARAMS.parse().unwrap())
    }

    fn step(from: &mut HandshakeState, to: &mut HandshakeState, payload: &[u8]) {
        let mut msg = vec![0u8; 65535];
        let n = from.write_message(payload, &mut msg).unwrap();
        let mut out = vec![0u8; 65535];
        let m = to.read_message(&msg[..n], &mut out).unwrap();
        assert_eq!(&out[..m], payload);
    }

    /// A full XX handshake and transport messages both ways between this
    /// resolver and snow's default one, in both roles: same keys, same hash,
    /// same ciphertexts.
    #[test]
    fn interoperates_with_snows_default_resolver() {
        for ours_initiates in [true, false] {
            let (a, b) = (builder().generate_keypair().unwrap(), reference().generate_keypair().unwrap());
            let ours = builder().local_private_key(&a.private).unwrap().prologue(b"p").unwrap();
            let theirs = reference().local_private_key(&b.private).unwrap().prologue(b"p").unwrap();
            let (mut i, mut r) = if ours_initiates {
                (ours.build_initiator().unwrap(), theirs.build_responder().unwrap())
            } else {
                (theirs.build_initiator().unwrap(), ours.build_responder().unwrap())
            };
            step(&mut i, &mut r, b"");
            step(&mut r, &mut i, b"hello from the responder");
            step(&mut i, &mut r, b"hello from the initiator");
            assert_eq!(i.get_handshake_hash(), r.get_handshake_hash());
            assert_eq!(r.get_remote_static().unwrap(), if ours_initiates { &a.public[..] } else { &b.public[..] });
            let (mut i, mut r) = (i.into_transport_mode().unwrap(), r.into_transport_mode().unwrap());
            for n in 0..3u8 {
                let plain = vec![n; 1000 * usize::from(n)];
                let mut c = vec![0u8; 65535];
                let len = i.write_message(&plain, &mut c).unwrap();
                let mut p = vec![0u8; 65535];
                let m = r.read_message(&c[..len], &mut p).unwrap();
                assert_eq!(&p[..m], &plain[..]);
                let len = r.write_message(&plain, &mut c).unwrap();
                let m = i.read_message(&c[..len], &mut p).unwrap();
                assert_eq!(&p[..m], &plain[..]);
            }
            // A flipped bit fails to decrypt, with an error, not a panic.
            let mut c = vec![0u8; 65535];
            let len = i.write_message(b"x", &mut c).unwrap();
            c[0] ^= 1;
            let mut p = vec![0u8; 65535];
            assert!(r.read_message(&c[..len], &mut p).is_err());
            assert!(r.read_message(&c[..10], &mut p).is_err());
        }
    }

    /// Key pairs it makes are X25519 pairs (the public half is the private
    /// half times the base point).
    #[test]
    fn generated_keys_are_x25519_pairs() {
        let kp = builder().generate_keypair().unwrap();
        let private: [u8; 32] = kp.private.as_slice().try_into().unwrap();
        let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(private));
        assert_eq!(kp.public, public.as_bytes());
    }
}
