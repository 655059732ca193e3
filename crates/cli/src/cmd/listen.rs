//! `tether listen`: stay connected and print what arrives; reconnects
//! when the connection drops, until this device is unlinked.

use super::{Home, registered};
use crate::format::{body_text, clean_line, clock};
use crate::session::Session;
use std::io::Write;
use std::time::Duration;
use tether_client::{ChatMessage, Engine, Event, MessageBody};

/// How long to wait before connecting again after the server could not be reached.
const RETRY: Duration = Duration::from_secs(5);

/// How long to wait before reconnecting after a connection dropped.
const RECONNECT: Duration = Duration::from_secs(2);

/// Stay connected and print incoming messages (this also sends queued
/// ones). Messages from people who are not contacts are marked as message
/// requests (`"event": "request"` with --json); see `tether requests`.
/// Group messages name the group (`"group": {"id", "name"}` with --json,
/// null for a contact's chat).
#[derive(Debug, clap::Args)]
pub struct Listen {
    /// One JSON object a line, for scripts (own messages and status changes too).
    #[arg(long)]
    json: bool,
}

impl Listen {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let mut engine = home.open_registered()?;
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
                    self.print(engine, &e);
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

    /// Prints one event: messages on stdout, problems on stderr (or all
    /// as JSON lines on stdout).
    fn print(&self, engine: &Engine, e: &Event) {
        match e {
            Event::Message { message: m } if self.json => println!("{}", message_json(engine, m)),
            Event::Message { message: m } if !m.from_me => match engine.group_info(&m.chat) {
                Some(g) if matches!(m.body, MessageBody::GroupEvent { .. }) => {
                    println!("[{}] {}: {}", clock(m.time_ms), clean_line(&g.name), body_text(&m.body))
                }
                Some(g) => println!(
                    "[{}] {} in {}: {}",
                    clock(m.time_ms),
                    clean_line(&engine.display_name(&m.sender_handle)),
                    clean_line(&g.name),
                    body_text(&m.body)
                ),
                None => println!("[{}] {}: {}", clock(m.time_ms), clean_line(&m.sender_handle), body_text(&m.body)),
            },
            Event::Request { message: m, count, .. } if self.json => {
                let mut v = message_json(engine, m);
                v["event"] = "request".into();
                v["count"] = (*count).into();
                println!("{v}");
            }
            Event::Request { message: m, count, .. } => {
                println!("[{}] {} (message request, {count}): {}", clock(m.time_ms), m.sender_handle, body_text(&m.body))
            }
            Event::MessageStatus { chat, id, status } if self.json => {
                println!("{}", serde_json::json!({"event": "status", "chat": chat, "id": id, "status": status}));
            }
            Event::Unlinked { reason } if self.json => {
                println!("{}", serde_json::json!({"event": "unlinked", "reason": reason}))
            }
            Event::Unlinked { reason } => eprintln!("tether: {}", clean_line(reason)),
            Event::Error { message, .. } | Event::SafetyWarning { warning: message, .. } if self.json => {
                println!("{}", serde_json::json!({"event": "error", "message": message}));
            }
            Event::Error { message, .. } | Event::SafetyWarning { warning: message, .. } => {
                eprintln!("tether: {}", clean_line(message))
            }
            _ => {}
        }
        let _ = std::io::stdout().flush();
    }
}

/// A message as one JSON object (the `--json` format scripts read); a
/// group's message names the group (`"group": {"id", "name"}`, else null);
/// a link with its sender's preview has `"preview": {"description",
/// "site_name", "has_image"}`.
fn message_json(engine: &Engine, m: &ChatMessage) -> serde_json::Value {
    let (kind, text, url, title, selection) = match &m.body {
        MessageBody::Text { body } => ("text", body.as_str(), "", "", ""),
        MessageBody::Link { url, title, selection, .. } => ("link", "", url.as_str(), title.as_str(), selection.as_str()),
        MessageBody::File { caption, .. } => ("file", caption.as_str(), "", "", ""),
        MessageBody::Undecryptable { reason } => ("undecryptable", reason.as_str(), "", "", ""),
        MessageBody::GroupEvent { text } => ("group_event", text.as_str(), "", "", ""),
        MessageBody::Deleted => ("deleted", "", "", "", ""),
    };
    let mut v = serde_json::json!({
        "event": "message", "id": m.id, "chat": m.chat, "from": m.sender_handle, "device": m.sender_device,
        "from_me": m.from_me, "time_ms": m.time_ms, "kind": kind, "text": text, "url": url, "title": title,
        "selection": selection, "group": null,
    });
    if let Some(g) = engine.group_info(&m.chat) {
        v["group"] = serde_json::json!({ "id": g.id, "name": g.name });
    }
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
