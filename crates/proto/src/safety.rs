//! Safety numbers: what two people compare to know that each holds the
//! other's real account key (docs/protocol.md §13).
//!
//! An account key signs its account's device list, so one number per pair
//! of accounts covers every device of both. Each side's half is a
//! fingerprint of (version, account key, handle), iterated like Signal's
//! numeric fingerprint; the number shown is both halves as digits, the
//! smaller first, so both people see the same 60 digits. The QR payload
//! (`tether://verify#…`) carries both halves and handles, in the order "the
//! one showing it, then the other", so a scanner can tell a match from a
//! mismatch (someone's key differs) and from a code for another pair.

use crate::Error;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha512};

/// Version of the computation, hashed into every fingerprint and the first
/// byte of the QR payload.
pub const SAFETY_VERSION: u16 = 1;

/// How many times each fingerprint is hashed (as Signal does): makes a
/// search for a key with a colliding number 5200 times dearer.
pub const ITERATIONS: u32 = 5200;

/// What a QR payload starts with.
pub const VERIFY_URI_PREFIX: &str = "tether://verify#";

/// One side's fingerprint: the first 32 bytes of the iterated hash.
pub type Fingerprint = [u8; 32];

/// The fingerprint of one account: `H0 = SHA-512(version_be16 || key ||
/// handle)`, `Hi = SHA-512(H(i-1) || key)` for i in 1..=5200, first 32 bytes.
pub fn fingerprint(handle: &str, account_key: &[u8]) -> Fingerprint {
    let mut h = Sha512::new();
    h.update(SAFETY_VERSION.to_be_bytes());
    h.update(account_key);
    h.update(handle.as_bytes());
    let mut hash = h.finalize();
    for _ in 0..ITERATIONS {
        let mut h = Sha512::new();
        h.update(hash);
        h.update(account_key);
        hash = h.finalize();
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&hash[..32]);
    out
}

/// A fingerprint as 30 digits: its first 30 bytes in six 5-byte chunks,
/// each read as a big-endian integer, modulo 100000, zero-padded to 5.
pub fn digits(fp: &Fingerprint) -> String {
    fp[..30]
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect()
}

/// The safety number of a pair of accounts, as seen from one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    local_handle: String,
    local: Fingerprint,
    remote_handle: String,
    remote: Fingerprint,
}

/// What a scanned QR payload says about this pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Both fingerprints agree: each holds the other's real key.
    Match,
    /// The code is for this pair, but a key differs: someone may be in between.
    Mismatch,
    /// The code belongs to another pair of accounts (another contact's).
    WrongPair,
}

impl SafetyNumber {
    /// The number between this account (`local_*`) and a contact.
    pub fn new(local_handle: &str, local_key: &[u8], remote_handle: &str, remote_key: &[u8]) -> Self {
        Self {
            local_handle: local_handle.to_string(),
            local: fingerprint(local_handle, local_key),
            remote_handle: remote_handle.to_string(),
            remote: fingerprint(remote_handle, remote_key),
        }
    }

    /// The 60 digits: both sides' 30, the smaller string first.
    pub fn digits(&self) -> String {
        let (a, b) = (digits(&self.local), digits(&self.remote));
        if a <= b { a + &b } else { b + &a }
    }

    /// As people read it: 12 groups of 5 digits, separated by spaces.
    pub fn display(&self) -> String {
        let d = self.digits();
        (0..12).map(|i| &d[i * 5..i * 5 + 5]).collect::<Vec<_>>().join(" ")
    }

    /// The QR payload: [`VERIFY_URI_PREFIX`] then base64url (no padding) of
    /// `version (1 byte) || local fp (32) || remote fp (32) || len || local
    /// handle || len || remote handle` (lengths one byte each).
    pub fn qr_payload(&self) -> String {
        let mut b = Vec::with_capacity(1 + 64 + 2 + self.local_handle.len() + self.remote_handle.len());
        b.push(SAFETY_VERSION as u8);
        b.extend_from_slice(&self.local);
        b.extend_from_slice(&self.remote);
        for h in [&self.local_handle, &self.remote_handle] {
            b.push(h.len().min(255) as u8);
            b.extend_from_slice(&h.as_bytes()[..h.len().min(255)]);
        }
        format!("{VERIFY_URI_PREFIX}{}", URL_SAFE_NO_PAD.encode(b))
    }

    /// Compares the other side's QR payload with this number.
    pub fn compare(&self, scanned: &str) -> Result<Comparison, Error> {
        let p = Payload::parse(scanned)?;
        // Theirs reads "them, then us".
        if p.first_handle != self.remote_handle || p.second_handle != self.local_handle {
            return Ok(Comparison::WrongPair);
        }
        if p.first == self.remote && p.second == self.local { Ok(Comparison::Match) } else { Ok(Comparison::Mismatch) }
    }
}

/// A parsed QR payload.
struct Payload {
    first: Fingerprint,
    second: Fingerprint,
    first_handle: String,
    second_handle: String,
}

impl Payload {
    fn parse(text: &str) -> Result<Self, Error> {
        let bad = Error::InvalidSafetyCode;
        let encoded = text.trim().strip_prefix(VERIFY_URI_PREFIX).ok_or(bad("not a tether://verify code"))?;
        let b = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| bad("bad base64"))?;
        let (&version, rest) = b.split_first().ok_or(bad("empty"))?;
        if u16::from(version) != SAFETY_VERSION {
            return Err(Error::UnsupportedVersion { what: "safety number", version: version.into() });
        }
        if rest.len() < 66 {
            return Err(bad("too short"));
        }
        let first: Fingerprint = rest[..32].try_into().map_err(|_| bad("too short"))?;
        let second: Fingerprint = rest[32..64].try_into().map_err(|_| bad("too short"))?;
        let mut rest = &rest[64..];
        let mut handle = || -> Result<String, Error> {
            let (&n, r) = rest.split_first().ok_or(bad("too short"))?;
            let n = usize::from(n);
            if r.len() < n {
                return Err(bad("too short"));
            }
            let h = std::str::from_utf8(&r[..n]).map_err(|_| bad("handle is not UTF-8"))?.to_string();
            rest = &r[n..];
            Ok(h)
        };
        let first_handle = handle()?;
        let second_handle = handle()?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Self { first, second, first_handle, second_handle })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known-answer vector of docs/protocol.md §13.4: alice's key is 32
    /// bytes of 0x01, bob's 32 bytes of 0x02.
    ///
    /// - fingerprint("alice", 01×32) = `5e36478c3b3c0bf25c15c1de69f5f22ba8e78528b41bcb11edf58cc80689e69d`
    /// - fingerprint("bob", 02×32) = `c9fc8715947638180052b856bffb6714d39c371ed8660b906cb40409c17726fb`
    /// - number: `37812 37970 04775 76222 69836 61495 84443 70421 74322 38920 06509 06633`
    /// - alice's QR: `tether://verify#AV42R4w7PAvyXBXB3mn18iuo54UotBvLEe31jMgGieadyfyHFZR2OBgAUrhWv_tnFNOcNx7YZguQbLQECcF3JvsFYWxpY2UDYm9i`
    ///
    /// Checked independently with Python's hashlib (see the spec).
    #[test]
    fn known_answer() {
        let alice = SafetyNumber::new("alice", &[1; 32], "bob", &[2; 32]);
        let bob = SafetyNumber::new("bob", &[2; 32], "alice", &[1; 32]);
        assert_eq!(hex(&alice.local), KAT_ALICE_FP);
        assert_eq!(hex(&alice.remote), KAT_BOB_FP);
        assert_eq!(alice.display(), KAT_NUMBER);
        assert_eq!(bob.display(), KAT_NUMBER, "both sides see the same number");
        assert_eq!(alice.qr_payload(), KAT_ALICE_QR);
    }

    const KAT_ALICE_FP: &str = "5e36478c3b3c0bf25c15c1de69f5f22ba8e78528b41bcb11edf58cc80689e69d";
    const KAT_BOB_FP: &str = "c9fc8715947638180052b856bffb6714d39c371ed8660b906cb40409c17726fb";
    const KAT_NUMBER: &str = "37812 37970 04775 76222 69836 61495 84443 70421 74322 38920 06509 06633";
    const KAT_ALICE_QR: &str =
        "tether://verify#AV42R4w7PAvyXBXB3mn18iuo54UotBvLEe31jMgGieadyfyHFZR2OBgAUrhWv_tnFNOcNx7YZguQbLQECcF3JvsFYWxpY2UDYm9i";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn scanning_the_other_sides_code_matches_and_anything_else_does_not() {
        let alice = SafetyNumber::new("alice", &[1; 32], "bob", &[2; 32]);
        let bob = SafetyNumber::new("bob", &[2; 32], "alice", &[1; 32]);
        assert_eq!(alice.compare(&bob.qr_payload()).unwrap(), Comparison::Match);
        assert_eq!(bob.compare(&alice.qr_payload()).unwrap(), Comparison::Match);
        // Scanning one's own code is not the other side's.
        assert_eq!(alice.compare(&alice.qr_payload()).unwrap(), Comparison::WrongPair);
        // A server in between gave bob another key for alice.
        let fooled = SafetyNumber::new("bob", &[2; 32], "alice", &[9; 32]);
        assert_eq!(alice.compare(&fooled.qr_payload()).unwrap(), Comparison::Mismatch);
        assert_ne!(alice.digits(), fooled.digits());
        // Another contact's code.
        let carol = SafetyNumber::new("carol", &[3; 32], "alice", &[1; 32]);
        assert_eq!(alice.compare(&carol.qr_payload()).unwrap(), Comparison::WrongPair);
        // Garbage is an error, never a match.
        assert!(alice.compare("tether://link#AAAA").is_err());
        assert!(alice.compare("tether://verify#AQ").is_err());
        let mut p = bob.qr_payload();
        p.push('A');
        assert!(alice.compare(&p).is_err());
    }

    #[test]
    fn the_number_has_sixty_digits_in_twelve_groups() {
        let n = SafetyNumber::new("alice", &[1; 32], "bob", &[2; 32]);
        assert_eq!(n.digits().len(), 60);
        assert!(n.digits().chars().all(|c| c.is_ascii_digit()));
        assert_eq!(n.display().split(' ').count(), 12);
        // The handle is covered too.
        assert_ne!(fingerprint("alice", &[1; 32]), fingerprint("alicf", &[1; 32]));
    }
}
