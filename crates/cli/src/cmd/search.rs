//! `tether search`: messages on this computer with every word of a query,
//! newest first (after catching up; the server has nothing to search: it
//! never sees a message's text).

use super::groups::target;
use super::listen::message_json;
use super::{Home, caught_up};
use crate::format::{body_text, clean_line, clock, short_id};
use tether_client::SEARCH_LIMIT;
use tether_client::groups::group_of;

/// Search the messages on this computer (every word must appear).
///
/// Ignoring case, newest first; texts, links (title, address, selected
/// text) and files (name, caption). Each hit starts with the message's id.
#[derive(Debug, clap::Args)]
pub struct Search {
    /// The words to look for.
    #[arg(required = true)]
    words: Vec<String>,
    /// Only in this chat: a contact's handle, a group's name or id, or `me`.
    #[arg(long, short = 'c', value_name = "CHAT")]
    chat: Option<String>,
    /// At most this many hits.
    #[arg(long, short = 'n', default_value_t = 50)]
    last: usize,
    /// One JSON object a line: the `listen --json` message object with
    /// "chat_name".
    #[arg(long)]
    json: bool,
}

impl Search {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let (s, offline) = caught_up(engine).await;
        let chat = match &self.chat {
            Some(c) => match target(&s.engine, c, false) {
                Ok(t) => Some(t.chat()),
                Err(miss) => {
                    s.close().await;
                    return Err(miss.message);
                }
            },
            None => None,
        };
        let query = self.words.join(" ");
        let hits = s.engine.search(&query, chat.as_deref(), self.last.min(SEARCH_LIMIT));
        let me = s.engine.handle().unwrap_or_default().to_string();
        for h in &hits {
            let m = &h.message;
            if self.json {
                let mut v = message_json(&s.engine, m);
                v["chat_name"] = h.chat_name.clone().into();
                println!("{v}");
                continue;
            }
            let name = clean_line(&h.chat_name);
            let sender = clean_line(&if m.from_me { me.clone() } else { s.engine.display_name(&m.sender_handle) });
            // Where and who: "Carol in “Ski trip”", "bob", "alice to bob", "Note to self".
            let place = if group_of(&m.chat).is_some() {
                format!("{sender} in “{name}”")
            } else if Some(m.chat.as_str()) == s.engine.note_to_self() {
                name
            } else if m.from_me {
                format!("{sender} to {name}")
            } else {
                sender
            };
            println!("{} [{}] {place}: {}", short_id(&m.id), clock(m.time_ms), body_text(&m.body));
        }
        if hits.is_empty() && !self.json {
            println!("No messages with “{}”{}.", clean_line(&query), if chat.is_some() { " in that chat" } else { "" });
        }
        s.close().await;
        match offline {
            Some(e) => {
                Err(format!("{e}\n(these are the messages on this computer; newer ones may wait on the server)"))
            }
            None => Ok(()),
        }
    }
}
