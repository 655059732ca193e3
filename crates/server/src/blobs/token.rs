//! Blob tokens (docs/protocol.md §14.3): stateless bearer tokens for the
//! blob routes, issued over a device's authenticated socket.
//!
//! ```text
//! token = base64url(blob_id ‖ direction ‖ len(account) ‖ account ‖ device ‖ expires_ms ‖ mac)
//!         16 bytes    1 byte      1 byte       UTF-8      u32 BE   u64 BE       32 bytes
//! mac   = HMAC-SHA-256(key, everything before it)
//! key   = HKDF-SHA-256(ikm = the server's static private key, salt = "tether blob tokens v1",
//!                      info = "hmac key"), 32 bytes
//! ```
//!
//! Nothing is stored: a token survives a restart and works on every node
//! that holds the same server key. The MAC is checked in constant time
//! (`hmac`'s `verify_slice`). Tokens are never logged.

use crate::store::BlobId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long a token is valid.
pub const TOKEN_TTL_MS: u64 = 60 * 60 * 1000;
const SALT: &[u8] = b"tether blob tokens v1";
const INFO: &[u8] = b"hmac key";
const MAC_LEN: usize = 32;
/// Longest account handle a token carries (handles are at most 32 bytes).
const MAX_ACCOUNT: usize = 64;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `HEAD` and `PATCH`.
    Upload = 1,
    /// `GET`.
    Download = 2,
}

/// What a token says: one blob, one direction, one device, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub blob: BlobId,
    pub direction: Direction,
    pub handle: String,
    pub device_id: u32,
    pub expires_ms: u64,
}

/// Why a token is refused (all answered `401 bad_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not base64url, wrong length or layout, or the MAC does not verify.
    Malformed,
    Expired,
    /// A valid token for another blob or direction.
    Mismatch,
}

/// The key tokens are made and checked with.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// Derives the key from the server's static private key.
    pub fn derive(server_private: &[u8]) -> Self {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(SALT), server_private)
            .expand(INFO, &mut key)
            .expect("32 bytes is a valid HKDF length");
        Self(key)
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(body);
        mac
    }

    /// Makes the token for `grant`.
    pub fn issue(&self, grant: &Grant) -> String {
        let handle = grant.handle.as_bytes();
        assert!(handle.len() <= MAX_ACCOUNT, "handles are short");
        let mut body = Vec::with_capacity(16 + 1 + 1 + handle.len() + 4 + 8 + MAC_LEN);
        body.extend_from_slice(&grant.blob.0);
        body.push(grant.direction as u8);
        body.push(handle.len() as u8);
        body.extend_from_slice(handle);
        body.extend_from_slice(&grant.device_id.to_be_bytes());
        body.extend_from_slice(&grant.expires_ms.to_be_bytes());
        let tag = self.mac(&body).finalize().into_bytes();
        body.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(body)
    }

    /// Checks a token for `blob` and `direction` at `now_ms`; the grant if
    /// it holds.
    pub fn verify(&self, token: &str, blob: &BlobId, direction: Direction, now_ms: u64) -> Result<Grant, Refused> {
        let grant = self.open(token)?;
        if grant.blob != *blob || grant.direction != direction {
            return Err(Refused::Mismatch);
        }
        if now_ms >= grant.expires_ms {
            return Err(Refused::Expired);
        }
        Ok(grant)
    }

    /// Decodes a token and checks its MAC.
    fn open(&self, token: &str) -> Result<Grant, Refused> {
        if token.len() > 4 * (16 + 2 + MAX_ACCOUNT + 12 + MAC_LEN) / 3 + 4 {
            return Err(Refused::Malformed);
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| Refused::Malformed)?;
        if raw.len() < 16 + 2 + 12 + MAC_LEN {
            return Err(Refused::Malformed);
        }
        let (body, tag) = raw.split_at(raw.len() - MAC_LEN);
        self.mac(body).verify_slice(tag).map_err(|_| Refused::Malformed)?;
        // Authentic: the server wrote this layout.
        let blob = BlobId(body[..16].try_into().map_err(|_| Refused::Malformed)?);
        let direction = match body[16] {
            1 => Direction::Upload,
            2 => Direction::Download,
            _ => return Err(Refused::Malformed),
        };
        let n = usize::from(body[17]);
        if body.len() != 18 + n + 12 {
            return Err(Refused::Malformed);
        }
        let handle = std::str::from_utf8(&body[18..18 + n]).map_err(|_| Refused::Malformed)?.to_string();
        let rest = &body[18 + n..];
        let device_id = u32::from_be_bytes(rest[..4].try_into().map_err(|_| Refused::Malformed)?);
        let expires_ms = u64::from_be_bytes(rest[4..12].try_into().map_err(|_| Refused::Malformed)?);
        Ok(Grant { blob, direction, handle, device_id, expires_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            blob: BlobId([7; 16]),
            direction: Direction::Upload,
            handle: "alice".into(),
            device_id: 3,
            expires_ms: 1_000,
        }
    }

    #[test]
    fn a_token_holds_for_its_blob_direction_and_time_only() {
        let key = TokenKey::derive(&[1; 32]);
        let token = key.issue(&grant());
        assert_eq!(key.verify(&token, &BlobId([7; 16]), Direction::Upload, 999), Ok(grant()));
        assert_eq!(key.verify(&token, &BlobId([7; 16]), Direction::Upload, 1_000), Err(Refused::Expired));
        assert_eq!(key.verify(&token, &BlobId([8; 16]), Direction::Upload, 0), Err(Refused::Mismatch));
        assert_eq!(key.verify(&token, &BlobId([7; 16]), Direction::Download, 0), Err(Refused::Mismatch));
    }

    #[test]
    fn an_altered_or_foreign_token_is_refused() {
        let key = TokenKey::derive(&[1; 32]);
        let token = key.issue(&grant());
        let other = TokenKey::derive(&[2; 32]);
        assert_eq!(other.verify(&token, &BlobId([7; 16]), Direction::Upload, 0), Err(Refused::Malformed));
        // Flip one bit of every byte in turn: never accepted.
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            let bad = URL_SAFE_NO_PAD.encode(bad);
            assert!(key.verify(&bad, &BlobId([7; 16]), Direction::Upload, 0).is_err(), "byte {i}");
        }
        // A later expiry under the old MAC.
        let mut later = raw.clone();
        let at = later.len() - MAC_LEN - 8;
        later[at..at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(key.verify(&URL_SAFE_NO_PAD.encode(later), &BlobId([7; 16]), Direction::Upload, 0).is_err());
        for junk in ["", "!!!", "AAAA", &"A".repeat(10_000)] {
            assert_eq!(key.verify(junk, &BlobId([7; 16]), Direction::Upload, 0), Err(Refused::Malformed));
        }
    }

    #[test]
    fn the_key_depends_on_the_server_key() {
        let a = TokenKey::derive(&[1; 32]).issue(&grant());
        let b = TokenKey::derive(&[1; 32]).issue(&grant());
        let c = TokenKey::derive(&[2; 32]).issue(&grant());
        assert_eq!(a, b, "the same key after a restart");
        assert_ne!(a, c);
    }
}
