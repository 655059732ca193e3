//! `tether listen`: stay connected and print what arrives; reconnects
//! when the connection drops, until this device is unlinked.

use super::messages::about;
use super::{Home, registered};
use crate::format::{body_text, clean_line, clock, excerpt, short_id};
use crate::session::{Session, now};
use std::io::Write;
use std::time::Duration;
use tether_client::{Change, Chat, ChatMessage, Engine, Event, MessageBody};

/// How long to wait before connecting again after the server could not be reached.
const RETRY: Duration = Duration::from_secs(5);

/// How long to wait before reconnecting after a connection dropped.
const RECONNECT: Duration = Duration::from_secs(2);

/// Stay connected and print what arrives (--json for scripts).
///
/// Messages, reactions, edits and deletes (this also sends queued ones).
/// Messages from people who are
/// not contacts are marked as message requests (`"event": "request"` with
/// --json); see `tether requests`. Group messages name the group
/// (`"group": {"id", "name"}` with --json, null for a contact's chat).
#[derive(Debug, clap::Args)]
#[command(after_help = JSON_EVENTS)]
pub struct Listen {
    /// One JSON object a line, for scripts (own messages and changes too;
    /// the events are listed below).
    #[arg(long)]
    json: bool,
}

/// The `--json` events, under `tether listen --help` (README.md has them too).
const JSON_EVENTS: &str = "With --json, one object a line; \"event\" says which:
  message   a message was added: id, chat, from, device, from_me, time_ms, kind (text, link, file,
            group_event, deleted, undecryptable), text, url, title, selection, group ({id, name} or
            null), reply_to ({id, author, text} or null), reactions ({handle: emoji}), edited (bool),
            expires_ms (when it disappears, 0: never), file ({name, mime_type, size, ...}) for files,
            and preview ({description, site_name, has_image}) for a link with its sender's preview
  request   the same, from someone who is not a contact, with count
  status    an own message got further: chat, id, status (sent, delivered, read)
  reaction  id, chat, group, from (who reacted), emoji (\"\": taken back)
  edited    id, chat, group, from, text (the new text or caption)
  deleted   id, chat, group, from: deleted for everyone
  removed   id, chat, expired: gone from this device (deleted for me, or it disappeared)
  chat      chat, name, draft, disappear_secs, marked_unread: one of these changed
  unlinked  reason;  error  message";

/// What `listen` last said about a chat's settings: (draft,
/// disappearing timer, marked unread), to report only their changes.
type ChatState = std::collections::HashMap<String, (String, u32, bool)>;

impl Listen {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let mut engine = home.open_registered()?;
        let mut chats: ChatState = engine.chats().into_iter().map(|c| (c.handle.clone(), settings(c))).collect();
        // The last reason connecting failed, so a down server is reported
        // once, not every few seconds.
        let mut failing: Option<String> = None;
        loop {
            let mut s = Session::new(engine);
            if let Err(e) = s.connect().await {
                engine = s.engine;
                registered(&engine)?;
                if failing.as_ref() != Some(&e) {
                    eprintln!("tether: {e}");
                    eprintln!("tether: trying again every {} s (Ctrl-C to stop)…", RETRY.as_secs());
                    failing = Some(e);
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
            failing = None;
            if !self.json {
                eprintln!("Listening as {} (Ctrl-C to stop)…", s.engine.handle().unwrap_or_default());
            }
            let ended = s
                .wait(Duration::MAX / 4, |engine, e| {
                    let e = e?;
                    self.print(engine, &e, &mut chats);
                    matches!(e, Event::Unlinked { .. }).then_some(())
                })
                .await;
            engine = s.engine;
            registered(&engine)?;
            if let Err(e) = ended {
                eprintln!("tether: {e}; reconnecting in {} s", RECONNECT.as_secs());
                tokio::time::sleep(RECONNECT).await;
            }
        }
    }

    /// Prints one event: messages and changes on stdout, problems on
    /// stderr (or all as JSON lines on stdout).
    fn print(&self, engine: &Engine, e: &Event, chats: &mut ChatState) {
        if self.json {
            if let Some(v) = event_json(engine, e, chats) {
                println!("{v}");
            }
        } else {
            human(engine, e);
        }
        let _ = std::io::stdout().flush();
    }
}

/// A chat's settings that `listen --json` reports changes of.
fn settings(c: &Chat) -> (String, u32, bool) {
    (c.draft.clone(), c.disappear_secs, c.marked_unread)
}

/// One event for people: messages from others and changes to messages
/// on stdout, problems on stderr.
fn human(engine: &Engine, e: &Event) {
    let me = engine.handle().unwrap_or_default();
    match e {
        Event::Message { message: m } if !m.from_me => {
            let head = format!("{} [{}]", short_id(&m.id), clock(m.time_ms));
            let replying = m.reply_to.as_ref().map_or(String::new(), |r| {
                let who = if r.author == me { "you".to_string() } else { engine.display_name(&r.author) };
                format!(" (replying to {}: “{}”)", clean_line(&who), excerpt(&r.text, 40))
            });
            match engine.group_info(&m.chat) {
                Some(g) if matches!(m.body, MessageBody::GroupEvent { .. }) => {
                    println!("{head} {}: {}", clean_line(&g.name), body_text(&m.body))
                }
                Some(g) => println!(
                    "{head} {} in {}{replying}: {}",
                    clean_line(&engine.display_name(&m.sender_handle)),
                    clean_line(&g.name),
                    body_text(&m.body)
                ),
                None => println!("{head} {}{replying}: {}", clean_line(&m.sender_handle), body_text(&m.body)),
            }
        }
        Event::MessageChanged { message: m, change } => {
            let head = format!("{} [{}]", short_id(&m.id), clock(now()));
            let place = match engine.group_info(&m.chat) {
                Some(g) => format!(" in {}", clean_line(&g.name)),
                None => String::new(),
            };
            match change {
                Change::Reaction { handle, emoji } if handle != me => {
                    let whose = about(engine, m);
                    let who = clean_line(&engine.display_name(handle));
                    if emoji.is_empty() {
                        println!("{head} {who} took back their reaction to {whose}{place}");
                    } else {
                        println!("{head} {who} reacted {} to {whose}{place}", clean_line(emoji));
                    }
                }
                Change::Edited if !m.from_me => {
                    let who = clean_line(&engine.display_name(&m.sender_handle));
                    println!("{head} {who} edited a message{place}: {}", body_text(&m.body));
                }
                Change::Deleted if !m.from_me => {
                    let who = clean_line(&engine.display_name(&m.sender_handle));
                    println!("{head} {who} deleted a message{place}");
                }
                _ => {}
            }
        }
        Event::Request { message: m, count, .. } => {
            println!("[{}] {} (message request, {count}): {}", clock(m.time_ms), m.sender_handle, body_text(&m.body))
        }
        Event::Unlinked { reason } => eprintln!("tether: {}", clean_line(reason)),
        Event::Error { message, .. } | Event::SafetyWarning { warning: message, .. } => {
            eprintln!("tether: {}", clean_line(message))
        }
        _ => {}
    }
}

/// One event as the JSON line `listen --json` prints (see [`JSON_EVENTS`]),
/// or None for events scripts are not told about.
fn event_json(engine: &Engine, e: &Event, chats: &mut ChatState) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match e {
        Event::Message { message: m } => message_json(engine, m),
        Event::Request { message: m, count, .. } => {
            let mut v = message_json(engine, m);
            v["event"] = "request".into();
            v["count"] = (*count).into();
            v
        }
        Event::MessageStatus { chat, id, status } => {
            json!({"event": "status", "chat": chat, "id": id, "status": status})
        }
        Event::MessageChanged { message: m, change } => {
            let mut v = json!({"event": "", "id": m.id, "chat": m.chat, "group": group_json(engine, &m.chat)});
            match change {
                Change::Reaction { handle, emoji } => {
                    v["event"] = "reaction".into();
                    v["from"] = handle.as_str().into();
                    v["emoji"] = emoji.as_str().into();
                }
                Change::Edited => {
                    v["event"] = "edited".into();
                    v["from"] = m.sender_handle.as_str().into();
                    v["text"] = match &m.body {
                        MessageBody::Text { body } => body.as_str(),
                        MessageBody::File { caption, .. } => caption.as_str(),
                        _ => "",
                    }
                    .into();
                }
                Change::Deleted => {
                    v["event"] = "deleted".into();
                    v["from"] = m.sender_handle.as_str().into();
                }
                // The quote lost the deleted words: not news for a script.
                Change::QuoteDeleted => return None,
            }
            v
        }
        Event::MessageRemoved { chat, id, expired } => {
            json!({"event": "removed", "id": id, "chat": chat, "expired": expired})
        }
        Event::ChatChanged { chat: c } => {
            let now = settings(c);
            let was = chats.insert(c.handle.clone(), now.clone()).unwrap_or_default();
            if was == now {
                return None;
            }
            json!({
                "event": "chat", "chat": c.handle, "name": engine.chat_name(&c.handle), "draft": c.draft,
                "disappear_secs": c.disappear_secs, "marked_unread": c.marked_unread,
            })
        }
        Event::Unlinked { reason } => json!({"event": "unlinked", "reason": reason}),
        Event::Error { message, .. } | Event::SafetyWarning { warning: message, .. } => {
            json!({"event": "error", "message": message})
        }
        _ => return None,
    })
}

/// A group's id and name for the JSON events (null in a contact's chat).
fn group_json(engine: &Engine, chat: &str) -> serde_json::Value {
    engine.group_info(chat).map_or(serde_json::Value::Null, |g| serde_json::json!({ "id": g.id, "name": g.name }))
}

/// A message as one JSON object (the `--json` format scripts read); a
/// group's message names the group (`"group": {"id", "name"}`, else null);
/// a link with its sender's preview has `"preview": {"description",
/// "site_name", "has_image"}`.
pub fn message_json(engine: &Engine, m: &ChatMessage) -> serde_json::Value {
    let (kind, text, url, title, selection) = match &m.body {
        MessageBody::Text { body } => ("text", body.as_str(), "", "", ""),
        MessageBody::Link { url, title, selection, .. } => {
            ("link", "", url.as_str(), title.as_str(), selection.as_str())
        }
        MessageBody::File { caption, .. } => ("file", caption.as_str(), "", "", ""),
        MessageBody::Undecryptable { reason } => ("undecryptable", reason.as_str(), "", "", ""),
        MessageBody::GroupEvent { text } => ("group_event", text.as_str(), "", "", ""),
        MessageBody::Deleted => ("deleted", "", "", "", ""),
    };
    let reply_to = m
        .reply_to
        .as_ref()
        .map_or(serde_json::Value::Null, |r| serde_json::json!({ "id": r.id, "author": r.author, "text": r.text }));
    let mut v = serde_json::json!({
        "event": "message", "id": m.id, "chat": m.chat, "from": m.sender_handle, "device": m.sender_device,
        "from_me": m.from_me, "time_ms": m.time_ms, "kind": kind, "text": text, "url": url, "title": title,
        "selection": selection, "group": group_json(engine, &m.chat), "reply_to": reply_to,
        "reactions": m.reactions.iter().collect::<std::collections::BTreeMap<_, _>>(), "edited": m.edited_ms > 0, "expires_ms": m.expires_ms,
    });
    if let MessageBody::File { file, .. } = &m.body {
        // What a script needs to show and fetch it (`tether download <id>`); never the key.
        v["file"] = serde_json::json!({
            "name": file.file_name, "mime_type": file.mime_type, "size": file.size, "width": file.width,
            "height": file.height, "duration_ms": file.duration_ms, "uploaded": !file.blob_id.is_empty(),
        });
    }
    if let MessageBody::Link { preview: Some(p), .. } = &m.body {
        // The sender's preview of the page (the picture's bytes stay out of the line).
        v["preview"] = serde_json::json!({ "description": p.description, "site_name": p.site_name, "has_image": !p.image.is_empty() });
    }
    v
}
