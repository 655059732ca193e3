//! `tether chats`: the chat list with unread counts, after catching up;
//! groups by name, marked `[group]`.

use super::{Home, caught_up};
use crate::format::{ago, clean_line, excerpt, timer};
use tether_client::view::ChatSummary;

/// List chats with unread counts (after fetching what arrived).
#[derive(Debug, clap::Args)]
pub struct Chats {}

impl Chats {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let (s, offline) = caught_up(engine).await;
        let chats = s.engine.chat_list();
        if chats.is_empty() {
            println!("No chats yet: `tether send <contact> <text>`.");
        }
        for c in &chats {
            println!("{}", line(c));
        }
        s.close().await;
        match offline {
            Some(e) => {
                Err(format!("{e}\n(these are the chats on this computer; newer messages may wait on the server)"))
            }
            None => Ok(()),
        }
    }
}

/// One chat: handle (a group: its name, marked; the note to self by that
/// name), unread count (or "unread" when marked so), last activity,
/// preview (or the draft), flags.
fn line(c: &ChatSummary) -> String {
    let disappearing = (c.disappear_secs > 0).then(|| format!("disappearing {}", timer(c.disappear_secs)));
    let flags = [(c.pinned, "pinned"), (c.muted, "muted"), (c.archived, "archived")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.to_string())
        .chain(disappearing)
        .collect::<Vec<_>>()
        .join(",");
    let unread = match (c.unread, c.marked_unread) {
        (0, false) => String::new(),
        (0, true) => "(unread)".to_string(),
        (n, _) => format!("({n} unread)"),
    };
    let who = if c.group {
        format!("{} [group]", clean_line(&c.name))
    } else if c.note_to_self {
        clean_line(&c.name)
    } else {
        clean_line(&c.handle)
    };
    let preview =
        if c.draft.is_empty() { clean_line(&c.last_preview) } else { format!("Draft: {}", excerpt(&c.draft, 60)) };
    format!("{who:<20} {:<12} {:<11} {preview} {flags}", unread, ago(c.last_ms)).trim_end().to_string()
}
