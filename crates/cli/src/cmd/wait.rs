//! Waiting until the server took what a command queued: a message, a
//! reply, or a change (a reaction, an edit, a delete, a timer, a draft or a
//! flag synced to this account's other devices).
//!
//! The engine queues such things as outbox entries and persists them
//! before anything leaves, so a command that cannot reach the server loses
//! nothing: it says the change is queued and fails, and the next command
//! that connects sends it. A command learns which entries are its own by
//! comparing the outbox's ids before and after it asked the engine.

use super::groups::{Outcome, drain, held};
use super::{WAIT, fail, report};
use crate::format::clean_line;
use crate::session::Session;
use std::collections::BTreeSet;
use tether_client::{Engine, Event, Status};

/// Makes a change with `what`, connects if needed, and waits until the
/// server took every outbox entry it queued (a key warning about one of
/// `watched` holds them). Returns what `what` returned; the session is
/// closed either way.
pub async fn apply<T>(
    mut s: Session,
    watched: &[String],
    what: impl FnOnce(&mut Engine) -> Result<T, tether_client::Error>,
) -> Result<T, String> {
    let before = s.engine.outbox().ids();
    let value = match what(&mut s.engine) {
        Ok(v) => v,
        Err(e) => {
            s.close().await;
            return Err(fail(e));
        }
    };
    // From here on the change is on disk, in the outbox.
    match until_accepted(&mut s, &before, watched).await {
        Ok(Outcome::Sent) => {
            drain(&mut s).await;
            s.close().await;
            Ok(value)
        }
        Ok(Outcome::Held(h, warning)) => {
            s.close().await;
            Err(format!(
                "not done yet: {}: {}\nIt waits on this computer: once you have checked with them, `tether contacts trust {h}` \
                 fetches their keys again and it goes. Do not do it again.",
                clean_line(&h),
                clean_line(&warning)
            ))
        }
        Ok(Outcome::Refused(why)) => {
            s.close().await;
            Err(format!("not done: {}", clean_line(&why)))
        }
        Err(e) => Err(format!(
            "{e}\ntether: the change is queued on this computer and goes with the next connection \
             (`tether listen`, `tether chats`). Do not do it again."
        )),
    }
}

/// Connects if needed and waits until the server took every outbox entry
/// that is not in `before` (what the command just queued). A key warning
/// about one of `watched` holds them without asking the server. An `Err`
/// is a connection problem: the entries stay queued.
pub async fn until_accepted(s: &mut Session, before: &[String], watched: &[String]) -> Result<Outcome, String> {
    let mine: Vec<String> = s.engine.outbox().ids().into_iter().filter(|id| !before.contains(id)).collect();
    if mine.is_empty() {
        return Ok(Outcome::Sent); // nothing to send (a change that was already so)
    }
    if let Some((h, warning)) = held(&s.engine, watched) {
        // Nothing goes to them until the user acts: no need to ask the server.
        return Ok(Outcome::Held(h, warning));
    }
    if !s.engine.is_open() {
        s.connect().await?;
    }
    let mut sent = BTreeSet::new();
    let mut error: Option<String> = None;
    s.wait(WAIT, |engine, e| step(engine, e, &mine, watched, &mut sent, &mut error)).await
}

/// Follows the engine until it is clear what became of the entries `mine`.
fn step(
    engine: &Engine,
    e: Option<Event>,
    mine: &[String],
    watched: &[String],
    sent: &mut BTreeSet<String>,
    error: &mut Option<String>,
) -> Option<Outcome> {
    match e {
        Some(Event::Sent { id }) => {
            sent.insert(id);
            None
        }
        Some(Event::SafetyWarning { handle, warning }) if watched.contains(&handle) => {
            Some(Outcome::Held(handle, warning))
        }
        Some(Event::Error { message, .. }) => {
            eprintln!("tether: {}", clean_line(&message));
            *error = Some(message);
            None
        }
        Some(other) => {
            report(&other);
            None
        }
        None if mine.iter().any(|id| engine.outbox().contains(id)) => None,
        // All gone. An entry leaves without being sent when nobody is to
        // get it (a sync with no other own device, a note to self on a
        // single device); one the engine gave up on leaves an error, and
        // its message shows as not sent.
        None => {
            let failed = mine.iter().any(|id| {
                !sent.contains(id)
                    && (engine.conversations().find(id).is_some_and(|m| m.status == Status::Failed) || error.is_some())
            });
            Some(if failed {
                // The engine's error was printed as it came.
                let seen = if error.is_some() { " (see above)" } else { "" };
                Outcome::Refused(format!("the server did not take it{seen}"))
            } else {
                Outcome::Sent
            })
        }
    }
}
