//! `tether reply`, `react`, `edit` and `delete`: what is done to one
//! message, named by its id (`tether send` prints it, `tether read` shows
//! the first 8 hex digits before every message). The chat is the
//! message's own, so none of them takes a chat.
//!
//! Like `send`, each waits until the server took what it queued (the
//! change goes to the chat's other party or group and to this account's
//! other devices), then says what it did.

use super::groups::Target;
use super::send::post;
use super::wait::apply;
use super::{Home, WAIT, report};
use crate::format::{clean_line, excerpt, short_id};
use crate::session::{Session, now};
use tether_client::groups::group_of;
use tether_client::{ChatMessage, Engine, MessageBody};

/// Reply to a message (by its id), quoting it; prints the reply's id.
///
/// The reply goes to the message's chat.
#[derive(Debug, clap::Args)]
pub struct Reply {
    /// The message's id (its first 8 or more hex digits; `tether read` shows them).
    id: String,
    /// The reply (quote it).
    text: String,
    /// Print {"id", "chat", "status"} as one JSON line (see `tether send --help`).
    #[arg(long)]
    json: bool,
}

/// React to a message with an emoji (--remove takes it back).
///
/// One reaction per person: a new one replaces yours.
#[derive(Debug, clap::Args)]
pub struct React {
    /// The message's id (its first 8 or more hex digits).
    id: String,
    /// The emoji, e.g. 👍 (quote it in a shell if need be).
    #[arg(required_unless_present = "remove")]
    emoji: Option<String>,
    /// Take your reaction back.
    #[arg(long, conflicts_with = "emoji")]
    remove: bool,
}

/// Edit one of your messages (within 24 hours of sending it).
///
/// A text, or a file's caption; everyone sees the new text, marked "edited".
#[derive(Debug, clap::Args)]
pub struct Edit {
    /// The message's id (its first 8 or more hex digits).
    id: String,
    /// The new text (quote it).
    text: String,
}

/// Delete messages for you, or (--everyone) your own for everyone.
///
/// Without --everyone, the messages go from this computer and your other
/// devices; the others in the chat keep theirs. With --everyone, your own
/// messages, within 48 hours of sending them, show as deleted for everyone
/// in the chat.
#[derive(Debug, clap::Args)]
pub struct Delete {
    /// The messages' ids (each its first 8 or more hex digits).
    #[arg(required = true)]
    ids: Vec<String>,
    /// Delete for everyone: each shows as "This message was deleted".
    #[arg(long)]
    everyone: bool,
}

impl Reply {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let (s, m) = located(Session::new(home.open_registered()?), &self.id).await?;
        let target = chat_target(&s.engine, &m.chat);
        let place = match &target {
            Target::Group(_) => format!(" in {}", target.label()),
            _ => String::new(),
        };
        let done = format!("Replied to {}{place}.", about(&s.engine, &m));
        post(s, &target, self.json, done, |e| e.reply(&m.chat, &m.id, &self.text, now())).await
    }
}

impl React {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let (s, m) = located(Session::new(home.open_registered()?), &self.id).await?;
        let emoji = if self.remove { String::new() } else { self.emoji.unwrap_or_default().trim().to_string() };
        let me = s.engine.handle().unwrap_or_default().to_string();
        let what = about(&s.engine, &m);
        if emoji.is_empty() && !m.reactions.contains_key(&me) {
            s.close().await;
            return Err(format!("you have not reacted to {what}"));
        }
        let watched = chat_target(&s.engine, &m.chat).watched();
        apply(s, &watched, |e| e.react(&m.chat, &m.id, &emoji, now())).await?;
        if emoji.is_empty() {
            println!("Took back your reaction to {what}.");
        } else {
            println!("Reacted {} to {what}.", clean_line(&emoji));
        }
        Ok(())
    }
}

impl Edit {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let (s, m) = located(Session::new(home.open_registered()?), &self.id).await?;
        let target = chat_target(&s.engine, &m.chat);
        apply(s, &target.watched(), |e| e.edit(&m.chat, &m.id, &self.text, now())).await?;
        println!("Edited your message {} in {}.", short_id(&m.id), target.label());
        Ok(())
    }
}

impl Delete {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let mut s = Session::new(home.open_registered()?);
        let mut found: Vec<ChatMessage> = Vec::new();
        for id in &self.ids {
            let (session, m) = located(s, id).await?;
            s = session;
            if !found.iter().any(|f| f.id == m.id) {
                found.push(m);
            }
        }
        let mut watched: Vec<String> = Vec::new();
        let mut chats: Vec<String> = Vec::new();
        for m in &found {
            if !chats.contains(&m.chat) {
                chats.push(m.chat.clone());
                watched.extend(chat_target(&s.engine, &m.chat).watched());
            }
        }
        let labels: Vec<String> = chats.iter().map(|c| chat_target(&s.engine, c).label()).collect();
        let n = found.len();
        let count = if n == 1 { "1 message".to_string() } else { format!("{n} messages") };
        if self.everyone {
            apply(s, &watched, |e| {
                for m in &found {
                    e.delete_for_everyone(&m.chat, &m.id, now())?;
                }
                Ok(())
            })
            .await?;
            println!("Deleted {count} for everyone in {}.", labels.join(", "));
        } else {
            apply(s, &[], |e| {
                for chat in &chats {
                    let ids: Vec<String> = found.iter().filter(|m| &m.chat == chat).map(|m| m.id.clone()).collect();
                    e.delete_for_me(chat, &ids, now())?;
                }
                Ok(())
            })
            .await?;
            println!("Deleted {count} from this computer and your other devices (in {}).", labels.join(", "));
        }
        Ok(())
    }
}

/// The chat a message is in, as the commands that take a chat name it.
pub fn chat_target(engine: &Engine, chat: &str) -> Target {
    if group_of(chat).is_some()
        && let Some(g) = engine.group_info(chat)
    {
        return Target::Group(g);
    }
    if Some(chat) == engine.note_to_self() {
        return Target::Note(chat.to_string());
    }
    Target::Contact(chat.to_string())
}

/// A message in words: `bob's “see you at 7…”`, `your “on my way”`.
pub fn about(engine: &Engine, m: &ChatMessage) -> String {
    let who = if m.from_me {
        "your".to_string()
    } else {
        format!("{}'s", clean_line(&engine.display_name(&m.sender_handle)))
    };
    match &m.body {
        MessageBody::Deleted => format!("{who} deleted message"),
        _ => format!("{who} “{}”", excerpt(&m.preview(), 40)),
    }
}

/// The message `text` names (see [`find_message`]), catching up with the
/// server first when nothing here has that id (it may just have arrived).
/// The session is connected if it caught up.
pub async fn located(mut s: Session, text: &str) -> Result<(Session, ChatMessage), String> {
    match find_message(&s.engine, text) {
        Ok(m) => return Ok((s, m)),
        Err(Lookup::Unknown(_)) => {}
        Err(miss) => {
            s.close().await;
            return Err(miss.message());
        }
    }
    let connected = if s.engine.is_open() { Ok(()) } else { s.connect().await };
    let offline = match connected {
        Ok(()) => s.settle(WAIT, report).await.err(),
        Err(e) => Some(e),
    };
    match find_message(&s.engine, text) {
        Ok(m) => Ok((s, m)),
        Err(miss) => {
            s.close().await;
            Err(match offline {
                Some(e) => format!("{}\n(could not check with the server: {e})", miss.message()),
                None => miss.message(),
            })
        }
    }
}

/// Why an id names no one message.
#[derive(Debug)]
pub enum Lookup {
    /// Not an id at all.
    Malformed(String),
    /// No message here has it (yet).
    Unknown(String),
    /// Several messages start with it: their ids, chats and previews.
    Ambiguous(String),
}

impl Lookup {
    pub fn message(&self) -> String {
        match self {
            Lookup::Malformed(m) | Lookup::Unknown(m) | Lookup::Ambiguous(m) => m.clone(),
        }
    }
}

/// The message whose id is `text` or starts with it (8 or more hex
/// digits), in any chat on this computer.
pub fn find_message(engine: &Engine, text: &str) -> Result<ChatMessage, Lookup> {
    let prefix = text.trim().trim_start_matches('#').to_ascii_lowercase();
    if prefix.len() < 8 || prefix.len() > 32 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Lookup::Malformed(format!(
            "“{}” is not a message id: give its first 8 or more hex digits (`tether read <chat>` shows them)",
            clean_line(text)
        )));
    }
    let chats = engine.conversations();
    let found: Vec<&ChatMessage> =
        chats.all().flat_map(|c| chats.messages(&c.handle)).filter(|m| m.id.starts_with(&prefix)).collect();
    match found.as_slice() {
        [m] => Ok((*m).clone()),
        [] => Err(Lookup::Unknown(format!(
            "no message with id {prefix} on this computer (`tether read <chat>` shows the ids; `tether search` finds messages)"
        ))),
        several => {
            let mut s = format!("{prefix} names {} messages; give more digits:", several.len());
            for m in several {
                s.push_str(&format!(
                    "\n  {}  in {}: {}",
                    m.id,
                    clean_line(&engine.chat_name(&m.chat)),
                    excerpt(&m.preview(), 40)
                ));
            }
            Err(Lookup::Ambiguous(s))
        }
    }
}
