//! How messages, ticks and times are written on the terminal.

use crate::session::now;
use tether_client::{MessageBody, Status};

/// A message's body as one or two lines of text.
pub fn body_text(b: &MessageBody) -> String {
    match b {
        MessageBody::Text { body } => body.clone(),
        MessageBody::Link { url, title, selection } => {
            let mut s = if title.is_empty() { url.clone() } else { format!("{title} <{url}>") };
            if !selection.is_empty() {
                s.push_str(&format!("\n    “{selection}”"));
            }
            s
        }
        MessageBody::Undecryptable { reason } => format!("⚠ could not be decrypted: {reason}"),
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
            MessageBody::Link { url: "https://example.org".into(), title: "Page".into(), selection: "words".into() };
        assert_eq!(super::body_text(&link), "Page <https://example.org>\n    “words”");
        let bare =
            MessageBody::Link { url: "https://example.org".into(), title: String::new(), selection: String::new() };
        assert_eq!(super::body_text(&bare), "https://example.org");
    }

    #[test]
    fn times_read_as_durations() {
        assert_eq!(super::ago(0), "never");
        assert_eq!(super::ago(super::now()), "just now");
        assert_eq!(super::ago(super::now() - 3 * 3_600_000), "3 h ago");
    }
}
