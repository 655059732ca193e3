//! `tether send` and `tether share`: write a message to the outbox, then
//! connect and wait until the server accepted it.
//!
//! The engine persists the message in its outbox before anything leaves,
//! so when the server cannot be reached (or the connection drops before
//! the server took it) the message is not lost: the command says it is
//! queued and fails, and the next command that connects sends it, in
//! the order it was written. Sending it again would make a duplicate.

use super::groups::{self, Outcome, Target};
use super::wait::until_accepted;
use super::{Home, fail};
use crate::format::{clean_line, short_id};
use crate::session::{Session, now};
use tether_client::Engine;

/// Send a text message to a contact, a group or `me`; prints its id.
///
/// The id names the message in `tether reply`, `react`, `edit` and `delete`.
#[derive(Debug, clap::Args)]
#[command(after_help = NOTE)]
pub struct Send {
    /// The contact's handle, a group's name or id, or `me` (the note to self).
    contact: String,
    /// The message (quote it).
    text: String,
    /// Print {"id", "chat", "status"} as one JSON line (for scripts):
    /// status is "sent", or, when it fails, "queued" (it goes with the next
    /// connection), "held" (a key warning) or "refused".
    #[arg(long)]
    json: bool,
}

/// Under `tether send --help`.
const NOTE: &str = "`tether send me TEXT` (or `self`, or your own handle) writes to your note to self, a chat that
only your own devices have. The id printed (its first 8 hex digits are enough) names the message
in `tether reply`, `react`, `edit` and `delete`; `tether read` shows every message's id too.";

/// Share a link (with a title and selected text).
#[derive(Debug, clap::Args)]
pub struct Share {
    /// The contact's handle, a group's name or id, or `me`.
    contact: String,
    /// The page's address.
    url: String,
    /// The page's title.
    #[arg(long, default_value = "", hide_default_value = true)]
    title: String,
    /// Text selected on the page, quoted under the link.
    #[arg(long, default_value = "", hide_default_value = true)]
    text: String,
    /// Print {"id", "chat", "status"} as one JSON line (see `tether send --help`).
    #[arg(long)]
    json: bool,
}

impl Send {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        deliver(home, &self.contact, self.json, |e, chat| e.send_text(chat, &self.text, now())).await
    }
}

impl Share {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        deliver(home, &self.contact, self.json, |e, chat| {
            e.send_link(chat, &self.url, &self.title, &self.text, None, now())
        })
        .await
    }
}

/// Finds the chat, queues a message with `write`, connects, and waits for the server.
async fn deliver(
    home: &Home,
    contact: &str,
    json: bool,
    write: impl FnOnce(&mut Engine, &str) -> Result<String, tether_client::Error>,
) -> Result<(), String> {
    let engine = home.open_registered()?;
    let (s, target) = groups::find(engine, contact, false).await?;
    if let Target::Group(g) = &target
        && !g.am_member
    {
        s.close().await;
        return Err(format!("you are not in “{}” any more (you left or were removed)", clean_line(&g.name)));
    }
    let chat = target.chat();
    let done = match &target {
        Target::Note(_) => "Saved in Note to self.".to_string(),
        t => format!("Sent to {}.", t.label()),
    };
    post(s, &target, json, done, |e| write(e, &chat)).await
}

/// Queues a message in `target`'s chat with `write`, connects if needed,
/// waits until the server took it, and prints `done` and its id (or, with
/// `json`, one line {"id", "chat", "status"}, whatever became of it).
pub async fn post(
    mut s: Session,
    target: &Target,
    json: bool,
    done: String,
    write: impl FnOnce(&mut Engine) -> Result<String, tether_client::Error>,
) -> Result<(), String> {
    let before = s.engine.outbox().ids();
    let id = match write(&mut s.engine) {
        Ok(id) => id,
        Err(e) => {
            s.close().await;
            return Err(fail(e));
        }
    };
    // From here on the message is in the outbox, on disk.
    let outcome = until_accepted(&mut s, &before, &target.watched()).await;
    let (status, result) = match outcome {
        Ok(Outcome::Sent) => {
            groups::drain(&mut s).await;
            s.close().await;
            ("sent", Ok(()))
        }
        Ok(Outcome::Held(h, warning)) => {
            s.close().await;
            let why = format!(
                "not sent yet: {}\nThe message waits in the outbox on this computer: once you have checked with them, \
                 `tether contacts trust {h}` fetches their keys again and sends it. Do not send it again.",
                clean_line(&warning)
            );
            ("held", Err(why))
        }
        Ok(Outcome::Refused(message)) => {
            s.close().await;
            ("refused", Err(format!("not sent: {message}")))
        }
        Err(e) => ("queued", Err(queued(&e, s.engine.outbox_len()))),
    };
    if json {
        println!("{}", serde_json::json!({ "id": id, "chat": target.chat(), "status": status }));
    } else if result.is_ok() {
        println!("{done} (id {})", short_id(&id));
    }
    result
}

/// The error for a message that is queued but could not be sent now.
fn queued(why: &str, waiting: usize) -> String {
    format!(
        "{why}\ntether: the message is queued on this computer ({waiting} waiting) and goes out, in order, with the next \
         connection: `tether listen`, `tether chats` or the next `tether send`. Do not send it again."
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_queued_message_says_so_and_what_sends_it() {
        let text = super::queued("cannot reach the Tether server at http://x", 3);
        assert!(text.starts_with("cannot reach"));
        assert!(text.contains("queued on this computer (3 waiting)") && text.contains("tether listen"), "{text}");
        assert!(text.contains("Do not send it again"));
    }
}
