//! `tether read`: a chat's history (a contact's, a group's or the note to
//! self), then marks it read. Each message starts with its short id, the
//! name `reply`, `react`, `edit` and `delete` take.

use super::groups::{Target, target};
use super::{Home, WAIT, caught_up, fail, report};
use crate::format::{body_text, clean_line, clock, excerpt, short_id, status_tick, timer};
use crate::session::now;
use tether_client::{ChatMessage, Engine, GroupInfo, MessageBody, NOTE_TO_SELF, ReplyRef, Status};

/// Show a chat's history (with message ids) and mark it read.
///
/// Each message starts with its id (the first 8 hex digits, enough for
/// `tether reply`, `react`, `edit` and `delete`); under it, what it
/// replies to and its reactions.
#[derive(Debug, clap::Args)]
pub struct Read {
    /// The contact's handle, a group's name or id (see `tether group --help`), or `me`.
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
            Target::Contact(_) | Target::Note(_) => self.print(&s.engine, &chat),
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

    /// A contact's chat (or the note to self).
    fn print(&self, engine: &Engine, chat: &str) {
        if Some(chat) == engine.note_to_self() {
            println!("{NOTE_TO_SELF} (only your own devices have it)");
        }
        timer_line(engine, chat);
        let me = engine.handle().unwrap_or_default();
        for m in self.last(engine, chat) {
            let who = clean_line(if m.from_me { me } else { m.sender_handle.as_str() });
            let tick = if m.from_me { status_tick(m.status).to_string() } else { String::new() };
            print_message(engine, m, &who, &tick);
        }
        draft_line(engine, chat);
    }

    /// A group's chat: a header, each message with its sender's name,
    /// changes as lines of their own, and for own messages how far they
    /// got with the members.
    fn print_group(&self, engine: &Engine, g: &GroupInfo) {
        let names: Vec<String> = g.members.iter().map(|m| clean_line(if m.me { "you" } else { &m.name })).collect();
        println!("“{}” ({} members: {})", clean_line(&g.name), g.members.len(), names.join(", "));
        timer_line(engine, &g.chat);
        let me = engine.handle().unwrap_or_default();
        let others = g.members.iter().filter(|m| !m.me).count();
        for m in self.last(engine, &g.chat) {
            let who = clean_line(&if m.from_me { me.to_string() } else { engine.display_name(&m.sender_handle) });
            let tick = if m.from_me { own_tick(engine, m, others) } else { String::new() };
            print_message(engine, m, &who, &tick);
        }
        if !g.am_member {
            println!("(you are not in this group any more)");
        }
        draft_line(engine, &g.chat);
    }
}

/// One message: its short id (what `reply`, `react`, `edit` and `delete`
/// take), time, sender and text, "(edited)" and how far an own one got;
/// then what it replies to, its reactions, and a file's id. Changes of the
/// chat (a group's, the disappearing timer) are lines of their own.
fn print_message(engine: &Engine, m: &ChatMessage, who: &str, tick: &str) {
    let head = format!("{} [{}]", short_id(&m.id), clock(m.time_ms));
    match &m.body {
        MessageBody::GroupEvent { .. } => {
            println!("{head} {}", body_text(&m.body));
            return;
        }
        // Deleted for everyone: nothing is left to show but that.
        MessageBody::Deleted => {
            println!("{head} {who}: {}", body_text(&m.body));
            return;
        }
        _ => {}
    }
    let edited = if m.edited_ms > 0 { " (edited)" } else { "" };
    println!("{}", format!("{head} {who}: {}{edited} {tick}", body_text(&m.body)).trim_end());
    if let Some(r) = &m.reply_to {
        println!("    ↳ {}", replying_to(engine, &m.chat, r));
    }
    if !m.reactions.is_empty() {
        println!("    {}", reactions(engine, m));
    }
    file_hint(m);
}

/// What a reply answers: `replying to bob: “see you at…”`, as the
/// answered message is now if it is here (deleted: not what it said).
fn replying_to(engine: &Engine, chat: &str, r: &ReplyRef) -> String {
    let original = engine.conversations().find_in(chat, &r.id);
    if original.is_some_and(|o| o.body == MessageBody::Deleted) {
        return "replying to a deleted message".into();
    }
    let who =
        if Some(r.author.as_str()) == engine.handle() { "you".to_string() } else { engine.display_name(&r.author) };
    let text = original.map_or_else(|| r.text.clone(), ChatMessage::preview);
    format!("replying to {}: “{}”", clean_line(&who), excerpt(&text, 60))
}

/// Reactions, a person each: `👍 bob, ❤️ you`.
fn reactions(engine: &Engine, m: &ChatMessage) -> String {
    let me = engine.handle().unwrap_or_default();
    m.reactions
        .iter()
        .map(|(h, emoji)| {
            let who = if h == me { "you".to_string() } else { engine.display_name(h) };
            format!("{} {}", clean_line(emoji), clean_line(&who))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The chat's disappearing-messages timer, when it is on.
fn timer_line(engine: &Engine, chat: &str) {
    if let Some(c) = engine.chat(chat).filter(|c| c.disappear_secs > 0) {
        println!("(new messages disappear {} after they are sent)", timer(c.disappear_secs));
    }
}

/// The chat's unsent text, when there is some.
fn draft_line(engine: &Engine, chat: &str) {
    if let Some(c) = engine.chat(chat).filter(|c| !c.draft.is_empty()) {
        println!("Draft (not sent): {}", excerpt(&c.draft, 200));
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
