//! The pairing code: linking without a camera, through a PAKE.
//!
//! The companion shows an 8-symbol code (`XXXX-XXXX`, 40 random bits) and the
//! person types it on the primary. The code is never sent anywhere. Its first
//! three symbols (15 bits) name a *slot* on the server, where the two sides
//! meet; the whole code is the password of a SPAKE2 exchange (RustCrypto's
//! `spake2`, Ed25519 group, the companion as side A, the primary as side B)
//! that the server relays but cannot join:
//!
//! 1. Companion → slot: its SPAKE2 message `A` (33 bytes).
//! 2. Primary fetches `A` (the server lets one device fetch a slot, once),
//!    answers `B || confirm` where `confirm` is an HMAC under a key only the
//!    holder of the code can derive ([`Pake::finish`], [`PairingKeys`]).
//! 3. Companion checks `confirm` ([`PairingKeys::check_primary`]): a wrong
//!    code (a guessing server, a typo) stops here, before anything about the
//!    companion is revealed. Only then it sends its link code
//!    (`tether://link#…`) encrypted under the shared key
//!    ([`PairingKeys::seal_offer`]); the primary's successful decryption is
//!    the companion's key confirmation.
//! 4. Both screens show the same 6-digit confirmation ([`PairingKeys::sas`]).
//!
//! What the server sees (the slot number, `A`, `B`, the confirmation MAC and
//! the encrypted offer) lets it test no guess of the code offline: SPAKE2's
//! messages are blinded by the password, and the keys depend on secret
//! exponents the server does not know. An active server gets one online
//! guess per code shown (one fetch per slot): a 2⁻²⁵ chance beyond the
//! slot's 15 public bits, and a failed guess makes the companion show a
//! new code.
//!
//! The alphabet is `ABCDEFGHJKLMNPQRSTUVWXYZ23456789`: upper-case letters
//! without `I` and `O`, digits without `0` and `1`. Since neither member of
//! the look-alike pairs O/0 and I/1 is in it, a code as displayed can never
//! contain a look-alike, and [`normalize_code`] does not guess a mapping for
//! them: it refuses `O`, `0`, `I` and `1` with an error that says so.

use crate::Error;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};

/// The 32 symbols of a pairing code, indexed by 5-bit value.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Symbols per code.
const CODE_LEN: usize = 8;
/// Symbols that name the slot (15 bits).
const SLOT_SYMBOLS: usize = 3;
/// SPAKE2 identities of the two sides.
const ID_COMPANION: &[u8] = b"tether pairing v2 companion";
const ID_PRIMARY: &[u8] = b"tether pairing v2 primary";
/// HKDF info for the keys derived from the SPAKE2 key.
const KEYS_INFO: &[u8] = b"tether pairing v2 keys";
/// What the primary's confirmation MAC covers.
const CONFIRM_LABEL: &[u8] = b"tether pairing v2 primary confirms";
/// Associated data of the encrypted offer.
const OFFER_AAD: &[u8] = b"tether pairing v2 offer";
/// Length of a SPAKE2 message (Ed25519 group: a 1-byte side tag and a point).
pub const PAKE_MESSAGE_LEN: usize = 33;
/// Length of the primary's confirmation MAC.
pub const CONFIRM_LEN: usize = 32;

/// A new pairing code from 5 random bytes (40 bits): 8 symbols of the
/// pairing alphabet, 5 bits each (most significant bits first), shown as
/// `XXXX-XXXX`.
pub fn new_code(random: [u8; 5]) -> String {
    let mut bits = random.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut symbols = [0u8; CODE_LEN];
    for s in symbols.iter_mut().rev() {
        *s = ALPHABET[(bits & 0x1f) as usize];
        bits >>= 5;
    }
    format(&symbols)
}

/// Normalizes a typed pairing code to `XXXX-XXXX`.
///
/// Upper-cases it and removes all whitespace and dashes (ASCII `-` and the
/// Unicode hyphens and dashes U+2010 to U+2015 and U+2212, which copy and
/// paste sometimes produces) wherever they are. Look-alikes are not mapped:
/// `O`, `0`, `I` and `1` are refused with a message saying that codes never
/// contain them (see the module documentation). Then checks that exactly 8
/// symbols of the alphabet remain.
pub fn normalize_code(input: &str) -> Result<String, Error> {
    let mut symbols = Vec::with_capacity(CODE_LEN);
    for c in input.chars() {
        if c.is_whitespace() || matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}') {
            continue;
        }
        let c = c.to_ascii_uppercase();
        if matches!(c, 'O' | '0' | 'I' | '1') {
            return Err(Error::InvalidPairingCode(
                "codes never contain O, 0, I or 1; check the code on the other device",
            ));
        }
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return Err(Error::InvalidPairingCode("only letters A-Z and digits 2-9 can appear in a code"));
        }
        if symbols.len() == CODE_LEN {
            return Err(Error::InvalidPairingCode("the code has more than 8 characters"));
        }
        symbols.push(c as u8);
    }
    if symbols.len() != CODE_LEN {
        return Err(Error::InvalidPairingCode("the code has fewer than 8 characters"));
    }
    Ok(format(&symbols))
}

/// The server slot a code names: its first three symbols, 15 bits, as two
/// big-endian bytes (the top bit is always 0).
pub fn slot(code: &str) -> Result<[u8; 2], Error> {
    let normalized = normalize_code(code)?;
    let value = normalized.bytes().take(SLOT_SYMBOLS).fold(0u16, |acc, b| (acc << 5) | symbol_value(b));
    Ok(value.to_be_bytes())
}

/// The 5-bit value of an alphabet symbol (the symbol is known to be valid).
fn symbol_value(b: u8) -> u16 {
    ALPHABET.iter().position(|&a| a == b).unwrap_or(0) as u16
}

/// Which side of the exchange this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Shows the code (SPAKE2 side A).
    Companion,
    /// Types the code (SPAKE2 side B).
    Primary,
}

/// One side's half-finished SPAKE2 exchange. `Debug` is redacted.
pub struct Pake {
    state: Spake2<Ed25519Group>,
}

impl std::fmt::Debug for Pake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pake").finish_non_exhaustive()
    }
}

impl Pake {
    /// Starts the exchange for `code` (any accepted spelling) on `side`,
    /// with 64 random bytes from the caller; returns the state and the
    /// message to send (33 bytes).
    pub fn start(side: Side, code: &str, random: [u8; 64]) -> Result<(Self, Vec<u8>), Error> {
        let password = Password::new(normalize_code(code)?.as_bytes());
        let (a, b) = (Identity::new(ID_COMPANION), Identity::new(ID_PRIMARY));
        let rng = FixedRng { bytes: random, used: 0 };
        let (state, message) = match side {
            Side::Companion => Spake2::<Ed25519Group>::start_a_with_rng(&password, &a, &b, rng),
            Side::Primary => Spake2::<Ed25519Group>::start_b_with_rng(&password, &a, &b, rng),
        };
        Ok((Self { state }, message))
    }

    /// Finishes with the other side's message. Succeeds for any well-formed
    /// message: whether both typed the same code shows only in the keys
    /// (see [`PairingKeys::check_primary`] and [`PairingKeys::open_offer`]).
    pub fn finish(self, theirs: &[u8]) -> Result<PairingKeys, Error> {
        let key = self.state.finish(theirs).map_err(|_| Error::InvalidPairingCode("the other side's pairing message is malformed"))?;
        let mut okm = [0u8; 68];
        hkdf::Hkdf::<Sha256>::new(None, &key).expand(KEYS_INFO, &mut okm).expect("68 bytes is a valid HKDF length");
        let mut confirm = [0u8; 32];
        let mut offer = [0u8; 32];
        confirm.copy_from_slice(&okm[..32]);
        offer.copy_from_slice(&okm[32..64]);
        let sas = u32::from_be_bytes([okm[64], okm[65], okm[66], okm[67]]) % 1_000_000;
        Ok(PairingKeys { confirm, offer, sas })
    }
}

/// The keys both sides derive when the exchange finishes. Equal on both
/// sides exactly when both used the same code. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingKeys {
    confirm: [u8; 32],
    offer: [u8; 32],
    sas: u32,
}

impl std::fmt::Debug for PairingKeys {
    /// Redacted: never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingKeys").finish_non_exhaustive()
    }
}

impl PairingKeys {
    /// The primary's key confirmation (32 bytes): HMAC-SHA256 under the
    /// confirmation key of a fixed label.
    pub fn primary_confirmation(&self) -> [u8; CONFIRM_LEN] {
        self.mac().finalize().into_bytes().into()
    }

    /// The companion checks the primary's confirmation (constant time).
    pub fn check_primary(&self, confirmation: &[u8]) -> Result<(), Error> {
        self.mac().verify_slice(confirmation).map_err(|_| Error::PairingMismatch)
    }

    fn mac(&self) -> hmac::Hmac<Sha256> {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.confirm).expect("HMAC takes any key length");
        mac.update(CONFIRM_LABEL);
        mac
    }

    /// The companion's offer (its link code) encrypted under the offer key.
    pub fn seal_offer(&self, uri: &str, nonce: [u8; 12]) -> Vec<u8> {
        crate::seal::encrypt_with_key(&self.offer, uri.as_bytes(), OFFER_AAD, nonce)
    }

    /// The primary opens the offer; failure means the companion did not
    /// derive the same keys (or the offer was altered).
    pub fn open_offer(&self, sealed: &[u8]) -> Result<String, Error> {
        let plain = crate::seal::decrypt_with_key(&self.offer, sealed, OFFER_AAD).map_err(|_| Error::PairingMismatch)?;
        String::from_utf8(plain).map_err(|_| Error::InvalidLink("the pairing offer is not text"))
    }

    /// The short confirmation both screens show: 6 digits, `123 456`.
    pub fn sas(&self) -> String {
        let digits = format!("{:06}", self.sas);
        format!("{} {}", &digits[..3], &digits[3..])
    }
}

/// The caller's randomness as the `rand_core` generator `spake2` wants
/// (it draws one 64-byte scalar; more, if ever asked, is derived by hashing).
struct FixedRng {
    bytes: [u8; 64],
    used: usize,
}

impl spake2::rand_core::TryRng for FixedRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        for d in dest {
            if self.used == self.bytes.len() {
                use sha2::Digest;
                self.bytes = sha2::Sha512::digest(self.bytes).into();
                self.used = 0;
            }
            *d = self.bytes[self.used];
            self.used += 1;
        }
        Ok(())
    }
}

impl spake2::rand_core::TryCryptoRng for FixedRng {}

/// `XXXX-XXXX` from 8 ASCII symbols.
fn format(symbols: &[u8]) -> String {
    let mut s = String::with_capacity(CODE_LEN + 1);
    for (i, &b) in symbols.iter().enumerate() {
        if i == CODE_LEN / 2 {
            s.push('-');
        }
        s.push(char::from(b));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_codes_are_two_groups_of_four_alphabet_symbols() {
        for random in [[0u8; 5], [0xff; 5], [0x12, 0x34, 0x56, 0x78, 0x9a]] {
            let code = new_code(random);
            assert_eq!(code.len(), 9, "{code}");
            assert_eq!(&code[4..5], "-");
            assert!(code.bytes().enumerate().all(|(i, b)| i == 4 || ALPHABET.contains(&b)), "{code}");
            assert_eq!(normalize_code(&code).unwrap(), code);
        }
        assert_eq!(new_code([0; 5]), "AAAA-AAAA");
        assert_eq!(new_code([0xff; 5]), "9999-9999");
        // 0x0842108421 is 00001 repeated eight times.
        assert_eq!(new_code([0x08, 0x42, 0x10, 0x84, 0x21]), "BBBB-BBBB");
        // Every bit matters: the lowest and the highest.
        assert_ne!(new_code([0, 0, 0, 0, 1]), new_code([0; 5]));
        assert_ne!(new_code([0x80, 0, 0, 0, 0]), new_code([0; 5]));
    }

    #[test]
    fn the_alphabet_has_32_distinct_symbols_without_look_alikes() {
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 32);
        for b in *b"OI01" {
            assert!(!ALPHABET.contains(&b));
        }
    }

    #[test]
    fn normalize_accepts_common_spellings() {
        for input in ["abcd efgh", "ABCD-EFGH", "ABCDEFGH", "  abcd-EFgh\n", "a b c d - e f g h", "ABCD\u{2013}EFGH"] {
            assert_eq!(normalize_code(input).unwrap(), "ABCD-EFGH", "{input:?}");
        }
    }

    #[test]
    fn normalize_rejects_wrong_length_and_symbols() {
        for bad in [
            "",
            "ABCD-EFG",
            "ABCD-EFGHJ",
            "ABCD-EFG0",
            "ABCD-EFGO",
            "ABCD-EFG1",
            "ABCD-EFGI",
            "ABCD_EFGH",
            "ABCD-EFG\u{c4}",
            "ABCD.EFGH",
        ] {
            assert!(matches!(normalize_code(bad), Err(Error::InvalidPairingCode(_))), "{bad:?} must be refused");
        }
    }

    #[test]
    fn the_slot_is_the_first_three_symbols() {
        assert_eq!(slot("AAAA-AAAA").unwrap(), [0, 0]);
        assert_eq!(slot("999A-AAAA").unwrap(), [0x7f, 0xff], "15 bits, top bit clear");
        assert_eq!(slot("BAA9-9999").unwrap(), [0x04, 0x00]);
        assert_eq!(slot("abc def gh").unwrap(), slot("ABCD-EFGH").unwrap());
        assert!(slot("ABCD-EFG").is_err());
    }

    /// Runs the exchange; returns both sides' keys.
    fn exchange(companion_code: &str, primary_code: &str) -> (PairingKeys, PairingKeys) {
        let (c, a) = Pake::start(Side::Companion, companion_code, [1; 64]).unwrap();
        let (p, b) = Pake::start(Side::Primary, primary_code, [2; 64]).unwrap();
        assert_eq!((a.len(), b.len()), (PAKE_MESSAGE_LEN, PAKE_MESSAGE_LEN));
        (c.finish(&b).unwrap(), p.finish(&a).unwrap())
    }

    #[test]
    fn the_same_code_gives_the_same_keys_and_confirmations() {
        let (c, p) = exchange("ABCD-EFGH", "abcd efgh");
        assert_eq!(c, p);
        c.check_primary(&p.primary_confirmation()).unwrap();
        let sealed = c.seal_offer("tether://link#x", [3; 12]);
        assert_eq!(p.open_offer(&sealed).unwrap(), "tether://link#x");
        assert_eq!(c.sas(), p.sas());
        assert_eq!(c.sas().len(), 7);
        assert_eq!(format!("{c:?}"), "PairingKeys { .. }");
    }

    #[test]
    fn a_wrong_code_is_caught_by_both_confirmations() {
        let (c, p) = exchange("ABCD-EFGH", "ABCD-EFGJ");
        assert_ne!(c, p);
        assert!(matches!(c.check_primary(&p.primary_confirmation()), Err(Error::PairingMismatch)));
        let sealed = c.seal_offer("tether://link#x", [3; 12]);
        assert!(matches!(p.open_offer(&sealed), Err(Error::PairingMismatch)));
    }

    #[test]
    fn a_relay_that_swaps_in_its_own_message_learns_nothing_usable() {
        // The server runs side B itself with a guess; the companion's check
        // fails unless the guess is the code.
        let (c, a) = Pake::start(Side::Companion, "ABCD-EFGH", [1; 64]).unwrap();
        let (evil, b) = Pake::start(Side::Primary, "ABCD-EFGJ", [9; 64]).unwrap();
        let evil_keys = evil.finish(&a).unwrap();
        let c_keys = c.finish(&b).unwrap();
        assert!(c_keys.check_primary(&evil_keys.primary_confirmation()).is_err());
        // A reflected message (A back to A) does not confirm either.
        let (c2, a2) = Pake::start(Side::Companion, "ABCD-EFGH", [4; 64]).unwrap();
        if let Ok(k) = c2.finish(&a2) {
            assert!(k.check_primary(&[0; 32]).is_err());
        }
        // Garbage is an error, not a panic.
        let (c3, _) = Pake::start(Side::Companion, "ABCD-EFGH", [5; 64]).unwrap();
        assert!(c3.finish(&[0xff; 7]).is_err());
    }
}
