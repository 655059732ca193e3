//! `tether chats`: the chat list with unread counts, after catching up;
//! groups by name, marked `[group]`.

use super::{Home, caught_up};
use crate::format::{ago, clean_line};
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

/// One chat: handle (a group: its name, marked), unread count, last
/// activity, preview, flags.
fn line(c: &ChatSummary) -> String {
    let flags = [(c.pinned, "pinned"), (c.muted, "muted"), (c.archived, "archived")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",");
    let unread = if c.unread > 0 { format!("({} unread)", c.unread) } else { String::new() };
    let who = if c.group { format!("{} [group]", clean_line(&c.name)) } else { clean_line(&c.handle) };
    format!("{who:<20} {:<12} {:<11} {} {}", unread, ago(c.last_ms), clean_line(&c.last_preview), flags)
}
