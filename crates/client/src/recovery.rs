//! The recovery phrase: the 32-byte account seed as 24 BIP-39 English words
//! (256 bits of entropy and an 8-bit checksum, the `bip39` crate of
//! rust-bitcoin). Every primary has one, accounts made before it included:
//! it is a spelling of the seed, not a second secret. Whoever holds it can
//! restore the account on a new device (see `Engine::restore`).

use bip39::{Language, Mnemonic};

/// Words in a recovery phrase.
pub const PHRASE_WORDS: usize = 24;

/// Why a recovery phrase was refused. Never carries the words themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhraseError {
    /// Not 24 words.
    #[error("a recovery phrase has 24 words; this one has {words}")]
    WrongLength {
        /// How many words were given.
        words: usize,
    },
    /// A word that is not on the BIP-39 English list (1-based position).
    #[error("word {position} is not a recovery-phrase word: check its spelling")]
    UnknownWord {
        /// Where it stands, counting from 1.
        position: usize,
    },
    /// Every word is valid but they do not fit together (the last word
    /// carries a checksum).
    #[error("the words do not fit together: one of them is wrong, or two are swapped")]
    BadChecksum,
}

/// The recovery phrase of an account seed: 24 words, space-separated.
pub fn phrase(seed: &[u8; 32]) -> String {
    // 32 bytes are always valid BIP-39 entropy.
    let m = Mnemonic::from_entropy_in(Language::English, seed).expect("32 bytes of entropy make 24 words");
    let words: Vec<&str> = m.words().collect();
    words.join(" ")
}

/// The account seed a recovery phrase spells. Case and spacing do not
/// matter, and numbers before words (`1.`, `2)`, as `tether register`
/// prints them) are skipped.
pub fn seed(phrase: &str) -> Result<[u8; 32], PhraseError> {
    let words: Vec<String> = phrase
        .split_whitespace()
        .filter(|w| !w.trim_end_matches(['.', ')', ':']).chars().all(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
        .collect();
    if words.len() != PHRASE_WORDS {
        return Err(PhraseError::WrongLength { words: words.len() });
    }
    if let Some(i) = words.iter().position(|w| Language::English.find_word(w).is_none()) {
        return Err(PhraseError::UnknownWord { position: i + 1 });
    }
    let m = Mnemonic::parse_in_normalized(Language::English, &words.join(" ")).map_err(|e| match e {
        bip39::Error::UnknownWord(i) => PhraseError::UnknownWord { position: i + 1 },
        bip39::Error::BadWordCount(n) => PhraseError::WrongLength { words: n },
        _ => PhraseError::BadChecksum,
    })?;
    let (entropy, len) = m.to_entropy_array();
    <[u8; 32]>::try_from(&entropy[..len]).map_err(|_| PhraseError::WrongLength { words: words.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_round_trips_through_its_phrase() {
        let seed: [u8; 32] = std::array::from_fn(|i| (i * 7 + 3) as u8);
        let p = phrase(&seed);
        assert_eq!(p.split(' ').count(), 24);
        assert_eq!(super::seed(&p), Ok(seed));
        // Case, spacing and the numbers `tether register` prints are ignored.
        let numbered: String =
            p.split(' ').enumerate().map(|(i, w)| format!("{:>2}. {}\n", i + 1, w.to_uppercase())).collect();
        assert_eq!(super::seed(&numbered), Ok(seed));
    }

    #[test]
    fn the_bip39_test_vector_for_all_zero_entropy() {
        // BIP-39's published vector for 256 bits of zeros.
        let p = phrase(&[0; 32]);
        assert_eq!(p, format!("{}art", "abandon ".repeat(23)));
    }

    #[test]
    fn malformed_phrases_give_typed_errors() {
        let p = phrase(&[9; 32]);
        let words: Vec<&str> = p.split(' ').collect();
        assert_eq!(seed(&words[..23].join(" ")), Err(PhraseError::WrongLength { words: 23 }));
        assert_eq!(seed(""), Err(PhraseError::WrongLength { words: 0 }));
        let mut typo = words.clone();
        typo[4] = "tetherx";
        assert_eq!(seed(&typo.join(" ")), Err(PhraseError::UnknownWord { position: 5 }));
        let mut swapped = words.clone();
        swapped.swap(0, 23);
        assert_ne!(words[0], words[23]);
        assert_eq!(seed(&swapped.join(" ")), Err(PhraseError::BadChecksum));
        // The error names the position, never the words.
        assert!(!PhraseError::UnknownWord { position: 5 }.to_string().contains("tetherx"));
    }
}
