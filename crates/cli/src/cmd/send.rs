//! `tether send` and `tether share`: write a message to the outbox, then
//! connect and wait until the server accepted it.
//!
//! The engine persists the message in its outbox before anything leaves,
//! so when the server cannot be reached (or the connection drops before
//! the server took it) the message is not lost: the command says it is
//! queued and fails, and the next command that connects sends it, in
//! the order it was written. Sending it again would make a duplicate.

use super::groups::{self, Outcome, Target};
use super::{Home, WAIT, fail};
use crate::format::clean_line;
use crate::session::now;
use tether_client::Engine;

/// Send a text message to a contact or a group.
#[derive(Debug, clap::Args)]
pub struct Send {
    /// The contact's handle, or a group's name or id (see `tether group --help`).
    contact: String,
    /// The message (quote it).
    text: String,
}

/// Share a link (with a title and selected text).
#[derive(Debug, clap::Args)]
pub struct Share {
    /// The contact's handle, or a group's name or id.
    contact: String,
    /// The page's address.
    url: String,
    /// The page's title.
    #[arg(long, default_value = "", hide_default_value = true)]
    title: String,
    /// Text selected on the page, quoted under the link.
    #[arg(long, default_value = "", hide_default_value = true)]
    text: String,
}

impl Send {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        deliver(home, &self.contact, |e, chat| e.send_text(chat, &self.text, now())).await
    }
}

impl Share {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        deliver(home, &self.contact, |e, chat| e.send_link(chat, &self.url, &self.title, &self.text, None, now())).await
    }
}

/// Queues a message with `write`, connects, and waits for the server.
async fn deliver(
    home: &Home,
    contact: &str,
    write: impl FnOnce(&mut Engine, &str) -> Result<String, tether_client::Error>,
) -> Result<(), String> {
    let engine = home.open_registered()?;
    let (mut s, target) = groups::find(engine, contact, false).await?;
    if let Target::Group(g) = &target
        && !g.am_member
    {
        s.close().await;
        return Err(format!("you are not in “{}” any more (you left or were removed)", clean_line(&g.name)));
    }
    let chat = target.chat();
    let watched = target.watched();
    let id = match write(&mut s.engine, &chat) {
        Ok(id) => id,
        Err(e) => {
            s.close().await;
            return Err(fail(e));
        }
    };
    // From here on the message is in the outbox, on disk.
    let outcome = match groups::held(&s.engine, &watched) {
        // Nothing goes to them until the user acts: no need to ask the server.
        Some((h, warning)) => Ok(Outcome::Held(h, warning)),
        None => {
            let connected = if s.engine.is_open() { Ok(()) } else { s.connect().await };
            match connected {
                Ok(()) => s.wait(WAIT, |engine, e| groups::step(engine, e, &id, &watched)).await,
                Err(e) => Err(e),
            }
        }
    };
    let label = target.label();
    match outcome {
        Ok(Outcome::Sent) => {
            groups::drain(&mut s).await;
            s.close().await;
            println!("Sent to {label}.");
            Ok(())
        }
        Ok(Outcome::Held(h, warning)) => {
            s.close().await;
            Err(format!(
                "not sent yet: {}\nThe message waits in the outbox on this computer: once you have checked with them, \
                 `tether contacts trust {h}` fetches their keys again and sends it. Do not send it again.",
                clean_line(&warning)
            ))
        }
        Ok(Outcome::Refused(message)) => {
            s.close().await;
            Err(format!("not sent: {message}"))
        }
        Err(e) => Err(queued(&e, s.engine.outbox_len())),
    }
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
