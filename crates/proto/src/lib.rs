//! Tether's wire protocol: frames, the Noise handshake and transport, signed
//! device lists, error codes and handles. No I/O happens here.
//!
//! The protocol is specified in `docs/protocol.md`; this crate is the single
//! place in code where it lives, shared by the server, the engine (native and
//! wasm) and the tests.
#![forbid(unsafe_code)]

mod code;
pub mod device_list;
mod error;
pub mod frames;
pub mod link;
pub mod media;
pub mod noise;
pub mod pairing;
pub mod safety;
pub mod seal;

pub use code::ErrorCode;
pub use error::Error;

use sha2::{Digest, Sha256};

/// Name of the protocol, carried in the Noise prologue so that a client and a
/// server speaking different protocols fail the handshake instead of
/// misreading each other.
pub const PROTOCOL_NAME: &str = "tether";

/// Wire protocol version. Bumped only for changes an older peer cannot
/// ignore; additive changes (new optional fields) keep the version.
pub const PROTOCOL_VERSION: u16 = 1;

/// The Noise prologue: `tether/<version>`. Both sides mix it into the
/// handshake hash, so a version mismatch is detected by the handshake itself.
pub fn prologue() -> Vec<u8> {
    format!("{PROTOCOL_NAME}/{PROTOCOL_VERSION}").into_bytes()
}

/// A server's identity as clients pin it: SHA-256 over its Noise static
/// public key. Shown to people as 8 groups of 4 hex digits (the first 16
/// bytes); compared in full.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a server's Noise static public key.
    pub fn of(server_key: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"tether server key\0");
        h.update(server_key);
        Self(h.finalize().into())
    }

    /// Parses the full 64-hex-digit form (as stored), ignoring spaces and dashes.
    pub fn parse(s: &str) -> Option<Self> {
        let hex: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | ':'))
            .collect();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }

    /// The full 64-hex-digit form, for storage.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Display for Fingerprint {
    /// `a1b2-c3d4-…` (8 groups): what people compare.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_fingerprint(&self.to_hex()))
    }
}

/// A fingerprint as people compare it: `a1b2-c3d4-…` (the first 8 groups
/// of 4 hex digits), from a full or partial hex string (a server's
/// `/healthz` answer, say). Empty input gives "".
pub fn format_fingerprint(hex: &str) -> String {
    let hex: String = hex.chars().filter(char::is_ascii_hexdigit).take(32).collect();
    let groups: Vec<&str> = (0..hex.len().div_ceil(4)).map(|i| &hex[i * 4..(i * 4 + 4).min(hex.len())]).collect();
    groups.join("-")
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Checks an account handle: a phone number in E.164 form (`+` and 8 to 15
/// digits, no leading 0) or a user name (3-32 of `a-z 0-9 _ .`, starting
/// with a letter). Returns the canonical form (user names lower-cased).
pub fn normalize_handle(handle: &str) -> Result<String, Error> {
    let h = handle.trim();
    if let Some(digits) = h.strip_prefix('+') {
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        return if ok {
            Ok(h.to_string())
        } else {
            Err(Error::InvalidHandle)
        };
    }
    let lower = h.to_ascii_lowercase();
    let ok = (3..=32).contains(&lower.len())
        && lower.starts_with(|c: char| c.is_ascii_lowercase())
        && lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if ok {
        Ok(lower)
    } else {
        Err(Error::InvalidHandle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologue_names_protocol_and_version() {
        assert_eq!(prologue(), b"tether/1".to_vec());
    }

    #[test]
    fn fingerprints_print_in_groups_and_parse_back() {
        let fp = Fingerprint::of(&[3; 32]);
        let shown = fp.to_string();
        assert_eq!(shown.len(), 8 * 4 + 7);
        assert_eq!(Fingerprint::parse(&fp.to_hex()), Some(fp));
        assert_ne!(Fingerprint::of(&[4; 32]), fp);
        assert_eq!(Fingerprint::parse("zz"), None);
    }

    #[test]
    fn handles_are_e164_numbers_or_user_names() {
        assert_eq!(
            normalize_handle("+4915112345678").unwrap(),
            "+4915112345678"
        );
        assert_eq!(normalize_handle("Alice_B").unwrap(), "alice_b");
        for bad in [
            "+0123456789",
            "+12",
            "12345678",
            "ab",
            "1abc",
            "al ice",
            "",
            "+49151abc4567",
        ] {
            assert!(normalize_handle(bad).is_err(), "{bad} must be refused");
        }
    }
}
