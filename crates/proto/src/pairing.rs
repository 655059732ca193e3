//! The pairing code: linking without a camera.
//!
//! The companion shows an 8-symbol code (`XXXX-XXXX`, 40 random bits) and the
//! person types it on the primary. Both sides derive the same [`CodeKeys`]
//! from it with PBKDF2: a `lookup` id the server indexes the companion's
//! offer under (the server never sees the code) and a `key` that encrypts
//! the offer (see [`crate::seal::encrypt_with_key`]).
//!
//! The alphabet is `ABCDEFGHJKLMNPQRSTUVWXYZ23456789`: upper-case letters
//! without `I` and `O`, digits without `0` and `1`. Since neither member of
//! the look-alike pairs O/0 and I/1 is in it, a code as displayed can never
//! contain a look-alike, and [`normalize_code`] does not guess a mapping for
//! them: it refuses `O`, `0`, `I` and `1` with an error that says so.

use crate::Error;
use sha2::Sha256;

/// The 32 symbols of a pairing code, indexed by 5-bit value.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Symbols per code.
const CODE_LEN: usize = 8;
/// PBKDF2 salt: fixed, since the code itself is random and single-use.
const SALT: &[u8] = b"tether pairing v1";
/// PBKDF2 iterations (as WhatsApp's pairing code).
const ITERATIONS: u32 = 131_072;

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

/// The keys both sides derive from a pairing code. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeKeys {
    /// What the server indexes the companion's offer under (16 bytes).
    pub lookup: [u8; 16],
    /// AES-256-GCM key for the offer and the answer.
    pub key: [u8; 32],
}

impl std::fmt::Debug for CodeKeys {
    /// Redacted: never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeKeys").finish_non_exhaustive()
    }
}

/// Derives the [`CodeKeys`] of a code: PBKDF2-HMAC-SHA256 over the
/// normalized code (`XXXX-XXXX`, as [`normalize_code`] returns it, dash
/// included) with salt `tether pairing v1` and 131 072 iterations, 48 bytes
/// of output: `lookup` is the first 16, `key` the last 32. The same code (in
/// any accepted spelling) always gives the same keys. Fails if the code does
/// not normalize. Deliberately slow (tens of milliseconds in release builds).
pub fn derive(code: &str) -> Result<CodeKeys, Error> {
    let normalized = normalize_code(code)?;
    let out: [u8; 48] = pbkdf2::pbkdf2_hmac_array::<Sha256, 48>(normalized.as_bytes(), SALT, ITERATIONS);
    let mut lookup = [0u8; 16];
    let mut key = [0u8; 32];
    lookup.copy_from_slice(&out[..16]);
    key.copy_from_slice(&out[16..]);
    Ok(CodeKeys { lookup, key })
}

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

    /// PBKDF2-HMAC-SHA256 outputs computed independently with Python's
    /// `hashlib.pbkdf2_hmac("sha256", code, b"tether pairing v1", 131072, 48)`:
    /// they pin the salt, the iteration count and the lookup/key split.
    const ABCD_EFGH: &str = "ff9e28d9aab4b25e0d09ff5ab89bd8d2\
                             2b2512e03f7d174cec5a3254d88a83faf995a45c3eff82b9852695ca9b66c367";
    const ABCD_EFGJ: &str = "9b8b9daee84bfa8e3881da5fafe4227a\
                             0b7d74ac8a359bddc96361b7f0f403538c76c87bccdfa81bb96d773c84a850b6";

    fn hex(keys: &CodeKeys) -> String {
        keys.lookup.iter().chain(keys.key.iter()).map(|b| format!("{b:02x}")).collect()
    }

    // PBKDF2 with 131 072 iterations is slow in debug builds (about 2 s per
    // call), so these tests derive only three times in all.

    #[test]
    fn derive_is_deterministic_across_spellings() {
        let a = derive("abcd efgh").unwrap();
        let b = derive("ABCD-EFGH").unwrap();
        assert_eq!(a, b);
        assert_eq!(hex(&a), ABCD_EFGH);
        assert_eq!(format!("{a:?}"), "CodeKeys { .. }");
        // Refused before any PBKDF2 work.
        assert!(matches!(derive("ABCD-EFG"), Err(Error::InvalidPairingCode(_))));
    }

    #[test]
    fn derive_differs_for_different_codes() {
        let c = derive("ABCD-EFGJ").unwrap();
        assert_eq!(hex(&c), ABCD_EFGJ);
        assert_ne!(&hex(&c)[..32], &ABCD_EFGH[..32], "lookup");
        assert_ne!(&hex(&c)[32..], &ABCD_EFGH[32..], "key");
    }
}
