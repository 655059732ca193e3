//! `tether send` and `tether share`: write a message to the outbox, then
//! connect and wait until the server accepted it.
//!
//! The engine persists the message in its outbox before anything leaves,
//! so when the server cannot be reached (or the connection drops before
//! the server took it) the message is not lost: the command says it is
//! queued and fails, and the next command that connects sends it, in
//! the order it was written. Sending it again would make a duplicate.

use super::{Home, WAIT, fail, handle, report};
use crate::session::Session;
use crate::session::now;
use std::time::Duration;
use tether_client::{Engine, Event};

/// How long, after this message went, the rest of the outbox may take.
const DRAIN: Duration = Duration::from_secs(10);

/// Send a text message.
#[derive(Debug, clap::Args)]
pub struct Send {
    /// The contact's handle (see `tether contacts`).
    contact: String,
    /// The message (quote it).
    text: String,
}

/// Share a link (with a title and selected text).
#[derive(Debug, clap::Args)]
pub struct Share {
    /// The contact's handle (see `tether contacts`).
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
        deliver(home, &self.contact, |e, chat| e.send_link(chat, &self.url, &self.title, &self.text, now())).await
    }
}

/// How a message's send ended, when the server answered.
enum Outcome {
    /// The server stored it for the recipient.
    Sent,
    /// It waits in the outbox until the user resolves a warning about the contact.
    Held(String),
    /// The server refused it; it left the outbox.
    Refused(String),
}

/// Queues a message with `write`, connects, and waits for the server.
async fn deliver(
    home: &Home,
    contact: &str,
    write: impl FnOnce(&mut Engine, &str) -> Result<String, tether_client::Error>,
) -> Result<(), String> {
    let mut engine = home.open_registered()?;
    let chat = handle(contact)?;
    if engine.contact(&chat).is_none() {
        return Err(format!("unknown contact {chat}: add it first (`tether contacts add {chat}`)"));
    }
    let id = write(&mut engine, &chat).map_err(fail)?;
    // From here on the message is in the outbox, on disk.
    let held = engine.contact(&chat).and_then(|c| c.warning.clone());
    let mut s = Session::new(engine);
    let outcome = match held {
        // Nothing goes to them until the user acts: no need to ask the server.
        Some(warning) => Ok(Outcome::Held(warning)),
        None => match s.connect().await {
            Ok(()) => s.wait(WAIT, |engine, e| step(engine, e, &id, &chat)).await,
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(Outcome::Sent) => {
            drain(&mut s).await;
            s.close().await;
            println!("Sent to {chat}.");
            Ok(())
        }
        Ok(Outcome::Held(warning)) => {
            s.close().await;
            Err(format!(
                "not sent yet: {warning}\nThe message waits in the outbox on this computer: once you have checked with them, \
                 `tether contacts trust {chat}` fetches their keys again and sends it. Do not send it again."
            ))
        }
        Ok(Outcome::Refused(message)) => {
            s.close().await;
            Err(format!("not sent: {message}"))
        }
        Err(e) => Err(queued(&e, s.engine.outbox_len())),
    }
}

/// Follows the engine until it is clear what became of message `id`.
fn step(engine: &Engine, e: Option<Event>, id: &str, chat: &str) -> Option<Outcome> {
    match e {
        Some(Event::Sent { id: done }) if done == id => Some(Outcome::Sent),
        Some(Event::SafetyWarning { handle, warning }) if handle == chat => Some(Outcome::Held(warning)),
        Some(Event::Error { message, .. }) if !engine.outbox().contains(id) => Some(Outcome::Refused(message)),
        Some(other) => {
            report(&other);
            None
        }
        // It left the outbox without being sent: it was refused (the
        // reason was reported as it came).
        None if !engine.outbox().contains(id) => Some(Outcome::Refused("the server did not take it".into())),
        None => None,
    }
}

/// Gives the rest of the outbox (messages queued earlier to other
/// contacts, receipts) a moment to go; what does not stays queued.
async fn drain(s: &mut Session) {
    let _ = s
        .wait(DRAIN, |engine, e| {
            if let Some(e) = &e {
                report(e);
            }
            (e.is_none() && !engine.busy()).then_some(())
        })
        .await;
    let left = s.engine.outbox_len();
    if left > 0 {
        eprintln!("tether: {left} earlier message(s) still queued; they go with the next connection.");
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
