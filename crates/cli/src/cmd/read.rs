//! `tether read`: a chat's history (a contact's or a group's), then marks
//! it read.

use super::groups::{Target, target};
use super::{Home, WAIT, caught_up, fail, report};
use crate::format::{body_text, clean_line, clock, status_tick};
use crate::session::now;
use tether_client::{ChatMessage, Engine, GroupInfo, MessageBody, Status};

/// Show a chat's history and mark it read.
#[derive(Debug, clap::Args)]
pub struct Read {
    /// The contact's handle, or a group's name or id (see `tether group --help`).
    contact: String,
    /// How many of the latest messages to show.
    #[arg(long, short = 'n', default_value_t = 50)]
    last: usize,
}

impl Read {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let (mut s, offline) = caught_up(engine).await;
        let found = match target(&s.engine, &self.contact, false) {
            Ok(t) => t,
            Err(miss) => {
                s.close().await;
                return Err(match offline {
                    Some(e) => format!("{}\n(could not check with the server: {e})", miss.message),
                    None => miss.message,
                });
            }
        };
        let chat = found.chat();
        match &found {
            Target::Contact(_) => self.print(&s.engine, &chat),
            Target::Group(g) => self.print_group(&s.engine, g),
        }
        if let Some(e) = offline {
            return Err(format!("{e}\n(this is the history on this computer; newer messages may wait on the server)"));
        }
        s.engine.mark_read(&chat, now()).map_err(fail)?;
        s.settle(WAIT, report).await?;
        s.close().await;
        Ok(())
    }

    /// The chat's last messages, oldest first.
    fn last<'a>(&self, engine: &'a Engine, chat: &str) -> &'a [ChatMessage] {
        let msgs = engine.messages(chat);
        &msgs[msgs.len().saturating_sub(self.last)..]
    }

    /// A contact's chat.
    fn print(&self, engine: &Engine, chat: &str) {
        let me = engine.handle().unwrap_or_default();
        for m in self.last(engine, chat) {
            let who = clean_line(if m.from_me { me } else { m.sender_handle.as_str() });
            let tick = if m.from_me { status_tick(m.status) } else { "" };
            println!("[{}] {who}: {} {tick}", clock(m.time_ms), body_text(&m.body));
            file_hint(m);
        }
    }

    /// A group's chat: a header, each message with its sender's name,
    /// changes as lines of their own, and for own messages how far they
    /// got with the members.
    fn print_group(&self, engine: &Engine, g: &GroupInfo) {
        let names: Vec<String> = g.members.iter().map(|m| clean_line(if m.me { "you" } else { &m.name })).collect();
        println!("“{}” ({} members: {})", clean_line(&g.name), g.members.len(), names.join(", "));
        let me = engine.handle().unwrap_or_default();
        let others = g.members.iter().filter(|m| !m.me).count();
        for m in self.last(engine, &g.chat) {
            if let MessageBody::GroupEvent { .. } = m.body {
                println!("[{}] {}", clock(m.time_ms), body_text(&m.body));
                continue;
            }
            let who = clean_line(&if m.from_me { me.to_string() } else { engine.display_name(&m.sender_handle) });
            let tick = if m.from_me { own_tick(engine, m, others) } else { String::new() };
            println!("{}", format!("[{}] {who}: {} {tick}", clock(m.time_ms), body_text(&m.body)).trim_end());
            file_hint(m);
        }
        if !g.am_member {
            println!("(you are not in this group any more)");
        }
    }
}

/// A received file's id, to download it.
fn file_hint(m: &ChatMessage) {
    if matches!(m.body, MessageBody::File { .. }) && !m.from_me {
        println!("    id {} (`tether download {}`)", m.id, &m.id[..8]);
    }
}

/// An own group message's tick, and who has it: names in a small group,
/// counts in a large one.
fn own_tick(engine: &Engine, m: &ChatMessage, others: usize) -> String {
    let tick = status_tick(m.status);
    // Read by everyone (or not sent yet): the tick says it all.
    if m.receipts.is_empty() || matches!(m.status, Status::Pending | Status::Failed | Status::Read) {
        return tick.to_string();
    }
    let receipts = engine.message_receipts(&m.id);
    let read: Vec<String> = receipts.iter().filter(|(_, s)| *s == Status::Read).map(|(n, _)| clean_line(n)).collect();
    let got: Vec<String> =
        receipts.iter().filter(|(_, s)| *s == Status::Delivered).map(|(n, _)| clean_line(n)).collect();
    if others > 5 {
        return format!("{tick} (read by {} of {others}, delivered to {})", read.len(), read.len() + got.len());
    }
    let mut parts = Vec::new();
    if !read.is_empty() {
        parts.push(format!("read by {}", read.join(", ")));
    }
    if !got.is_empty() {
        parts.push(format!("delivered to {}", got.join(", ")));
    }
    format!("{tick} ({})", parts.join("; "))
}
