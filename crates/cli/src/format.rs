//! How messages, ticks and times are written on the terminal.

use crate::session::now;
use tether_client::{MessageBody, Status};

/// Peer text made safe for a terminal: escape sequences (CSI, OSC, DCS
/// and the rest: `ESC` and what it introduces) are removed, and so are
/// other C0 and C1 control characters and DEL, bidirectional overrides and
/// isolates (which reorder what follows), except newline and tab. Everything
/// a peer or the server wrote goes through this (or `clean_line`) before
/// it is printed.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            // ESC: drop it and the sequence it starts.
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \\).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || c == '\u{9c}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                // Other two-character sequences (ESC c, ESC 7, …).
                _ => {}
            },
            // C1 CSI and string introducers: drop what they start as well.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// [`clean`], on one line: newlines and tabs become spaces (names,
/// handles, device names, previews, error messages).
pub fn clean_line(text: &str) -> String {
    clean(text).replace(['\n', '\t'], " ")
}

/// Characters that reorder the text around them (LRE…RLO, LRI…PDI, LRM, RLM, ALM).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// A message's body as one or two lines of text, safe for a terminal.
pub fn body_text(b: &MessageBody) -> String {
    clean(&body_raw(b))
}

fn body_raw(b: &MessageBody) -> String {
    match b {
        MessageBody::Text { body } => body.clone(),
        MessageBody::Link { url, title, selection, .. } => {
            let mut s = if title.is_empty() { url.clone() } else { format!("{title} <{url}>") };
            if !selection.is_empty() {
                s.push_str(&format!("\n    “{selection}”"));
            }
            s
        }
        MessageBody::File { file, caption } => {
            let mut s = format!("{} ({})", file.preview(""), size(file.size));
            if !caption.is_empty() {
                s.push_str(&format!("\n    {caption}"));
            }
            s
        }
        MessageBody::Undecryptable { reason } => format!("⚠ could not be decrypted: {reason}"),
        MessageBody::GroupEvent { text } => format!("— {text} —"),
        MessageBody::Deleted => "🚫 This message was deleted".to_string(),
    }
}

/// The first 8 hex digits of a message id: enough to name it in
/// `tether reply`, `react`, `edit` and `delete`.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The start of a text on one line, safe for a terminal, at most `chars`
/// characters (`…` when cut): quotes of replied-to and changed messages.
pub fn excerpt(text: &str, chars: usize) -> String {
    let line = clean_line(text.trim());
    if line.chars().count() <= chars {
        return line;
    }
    let cut: String = line.chars().take(chars.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// A disappearing-messages timer as the commands take it: `off`, `24h`,
/// `7d`, `90d` (also `0`, `1d`, `1w`, `3m`, and the seconds themselves).
pub fn parse_timer(text: &str) -> Result<u32, String> {
    let t = text.trim().to_ascii_lowercase().replace(' ', "");
    let secs = match t.as_str() {
        "off" | "0" | "none" | "never" => 0,
        "24h" | "1d" | "24hours" | "1day" => 86_400,
        "7d" | "1w" | "7days" | "1week" => 604_800,
        "90d" | "3m" | "90days" | "3months" => 7_776_000,
        other => match other.parse::<u32>() {
            Ok(n) if tether_client::DISAPPEAR_TIMERS.contains(&n) => n,
            _ => return Err(format!("“{}” is not a timer: off, 24h, 7d or 90d", clean_line(text))),
        },
    };
    Ok(secs)
}

/// A timer in words: "off", "24 hours", "7 days", "90 days".
pub fn timer(secs: u32) -> String {
    if secs == 0 { "off".into() } else { tether_client::timer_words(secs) }
}

/// A size for people: `812 B`, `1.4 MB`, in the units of 1,024 that mail
/// and chat apps use (so the 64 MB limit reads "64 MB").
pub fn size(bytes: u64) -> String {
    const K: f64 = 1024.0;
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / K),
        b if b < 1024 * 1024 * 1024 => format!("{:.1} MB", b as f64 / (K * K)).replace(".0 MB", " MB"),
        b => format!("{:.2} GB", b as f64 / (K * K * K)),
    }
}

/// How far an own message got, as shown after it.
pub fn status_tick(s: Status) -> &'static str {
    match s {
        Status::Failed => "(not sent)",
        Status::Pending => "(queued)",
        Status::Sent => "✓",
        Status::Delivered => "✓✓",
        Status::Read => "✓✓ read",
    }
}

/// A message time: the clock time (UTC) today, or how many days ago.
pub fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m) = ((secs / 3600) % 24, (secs / 60) % 60);
    let days = secs / 86_400;
    let today = now() / 1000 / 86_400;
    if days == today {
        format!("{h:02}:{m:02}")
    } else {
        format!("{} days ago {h:02}:{m:02}", today.saturating_sub(days))
    }
}

/// How long ago something happened, roughly ("never" for 0).
pub fn ago(ms: u64) -> String {
    if ms == 0 {
        return "never".into();
    }
    let s = now().saturating_sub(ms) / 1000;
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use tether_client::MessageBody;

    #[test]
    fn links_show_title_url_and_selection() {
        let link =
            MessageBody::Link { url: "https://example.org".into(), title: "Page".into(), selection: "words".into(), preview: None };
        assert_eq!(super::body_text(&link), "Page <https://example.org>\n    “words”");
        let bare =
            MessageBody::Link { url: "https://example.org".into(), title: String::new(), selection: String::new(), preview: None };
        assert_eq!(super::body_text(&bare), "https://example.org");
    }

    #[test]
    fn terminal_control_sequences_from_peers_are_removed() {
        use super::{clean, clean_line};
        assert_eq!(clean("\u{1b}[2Jcleared?"), "cleared?");
        assert_eq!(clean("a\u{1b}[1;31mred\u{1b}[0m b"), "ared b");
        assert_eq!(clean("\u{1b}]0;evil title\u{7}x"), "x");
        assert_eq!(clean("\u{1b}]8;;http://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\"), "link");
        assert_eq!(clean("bell\u{7}\rback\u{8}\u{7f}"), "bellback");
        assert_eq!(clean("c1\u{9b}2Jx\u{85}y"), "c1xy");
        assert_eq!(clean("Mom\u{202e}gnp.exe\u{2066}"), "Momgnp.exe");
        assert_eq!(clean("two\nlines\tand tab"), "two\nlines\tand tab");
        assert_eq!(clean_line("two\nlines"), "two lines");
        assert_eq!(clean("grüße 👋"), "grüße 👋");
        let m = MessageBody::Text { body: "\u{1b}[2J\u{1b}[Hhi".into() };
        assert_eq!(super::body_text(&m), "hi");
    }

    #[test]
    fn timers_read_and_print_as_people_write_them() {
        use super::{parse_timer, timer};
        assert_eq!(parse_timer("off"), Ok(0));
        assert_eq!(parse_timer("24h"), Ok(86_400));
        assert_eq!(parse_timer("7D"), Ok(604_800));
        assert_eq!(parse_timer("90d"), Ok(7_776_000));
        assert_eq!(parse_timer("604800"), Ok(604_800));
        assert!(parse_timer("5m").unwrap_err().contains("off, 24h, 7d or 90d"));
        assert!(parse_timer("3600").is_err());
        assert_eq!(timer(0), "off");
        assert_eq!(timer(86_400), "24 hours");
        assert_eq!(timer(7_776_000), "90 days");
    }

    #[test]
    fn excerpts_are_one_cut_line() {
        assert_eq!(super::excerpt("short", 10), "short");
        assert_eq!(super::excerpt("two\nlines", 20), "two lines");
        assert_eq!(super::excerpt("a rather long sentence", 10), "a rather…");
        assert_eq!(super::short_id("0123456789abcdef"), "01234567");
    }

    #[test]
    fn times_read_as_durations() {
        assert_eq!(super::ago(0), "never");
        assert_eq!(super::ago(super::now()), "just now");
        assert_eq!(super::ago(super::now() - 3 * 3_600_000), "3 h ago");
    }
}
