//! Display names: the one rule for every name that enters the engine (a
//! name the user types, a profile name a peer sends, names in history from
//! the primary), and how a name a peer chose is shown.
//!
//! A name is cleaned, not refused: control characters, bidirectional
//! overrides and isolates (U+202A–U+202E, U+2066–U+2069), direction marks
//! (U+200E, U+200F, U+061C) and invisible joiners and spaces (U+200B–U+200D,
//! U+2060, U+FEFF) are removed, runs of white space become one space, the
//! ends are trimmed, and at most [`MAX_NAME_CHARS`] characters are kept.
//! A name that is empty after that is no name.

/// The longest name kept, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// `name` under the rule above.
pub fn sanitize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_NAME_CHARS * 4));
    let mut space = false;
    for c in name.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() || invisible(c) {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out.chars().take(MAX_NAME_CHARS).collect::<String>().trim_end().to_string()
}

/// Characters that reorder or hide text.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
    )
}

/// A name the peer chose for themselves, as shown: always with the handle
/// beside it, so nobody can pass for a contact by picking their name.
pub fn peer_chosen(name: &str, handle: &str) -> String {
    format!("{name} ({handle})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_controls_bidi_and_invisible_characters_and_are_capped() {
        assert_eq!(sanitize_name("  Mom\u{202e}  "), "Mom");
        assert_eq!(sanitize_name("M\u{200b}om"), "Mom");
        assert_eq!(sanitize_name("\u{2067}evil\u{2069}\u{200f}"), "evil");
        assert_eq!(sanitize_name("Line\nbreak\t and\u{1b}[2J esc"), "Line break and[2J esc");
        assert_eq!(sanitize_name("Zoë Ödegaard 👋"), "Zoë Ödegaard 👋");
        assert_eq!(sanitize_name(&"x".repeat(100)).chars().count(), MAX_NAME_CHARS);
        assert_eq!(sanitize_name("\u{202e}\u{200b} "), "");
        assert_eq!(peer_chosen("Mom", "mallory"), "Mom (mallory)");
    }
}
