//! A chat's settings: `tether draft` (the unsent text, kept on all of this
//! account's devices), `tether disappear` (the disappearing-messages
//! timer, for both sides) and `tether unread` (mark as unread).
//!
//! Each change goes to the others it concerns (drafts and marks: this
//! account's other devices; a timer: the chat too) and the command waits
//! until the server took it, like `send`.

use super::groups::{find, target};
use super::wait::apply;
use super::{Home, caught_up};
use crate::format::{clean, clean_line, parse_timer, timer};
use crate::session::now;
use std::io::Read;
use tether_client::ChatFlag;

/// Show or set a chat's draft (kept on all your devices).
///
/// The draft is the text you have not sent yet; the browser's composer
/// shows it, and sending to the chat clears it.
#[derive(Debug, clap::Args)]
#[command(after_help = DRAFTS)]
pub struct Draft {
    /// A contact's handle, a group's name or id, or `me`; without it, every
    /// chat's draft.
    chat: Option<String>,
    /// The new draft; `-` reads it from standard input. Without it, the
    /// draft is printed as it is (nothing when there is none).
    text: Option<String>,
    /// Remove the chat's draft.
    #[arg(long, conflicts_with = "text", requires = "chat")]
    clear: bool,
}

/// Under `tether draft --help`.
const DRAFTS: &str = "For scripts: `tether draft bob` prints only the draft's text (and exits 0 with no output when
there is none), so `text=$(tether draft bob)` works; `tether draft bob - < file` sets it from a file.
`tether draft` lists the chats that have one, a line each (chat, then the draft's first line).";

/// Show or set a chat's disappearing-messages timer (off, 24h, 7d, 90d).
///
/// When it is on, new messages (from everyone in the chat) are removed
/// from every device that long after they were sent; both sides see the
/// change as a line in the chat.
#[derive(Debug, clap::Args)]
pub struct Disappear {
    /// A contact's handle, or a group's name or id.
    chat: String,
    /// off, 24h, 7d or 90d; without it, the chat's timer is shown.
    #[arg(value_parser = parse_timer)]
    timer: Option<u32>,
}

/// Mark a chat as unread (on all your devices; reading it clears the mark).
#[derive(Debug, clap::Args)]
pub struct Unread {
    /// A contact's handle, a group's name or id, or `me`.
    chat: String,
}

impl Draft {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let Some(chat) = self.chat else { return list(home).await };
        let new = match (self.clear, self.text.as_deref()) {
            (true, _) => Some(String::new()),
            (false, Some("-")) => {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read standard input: {e}"))?;
                Some(text.strip_suffix('\n').unwrap_or(&text).to_string())
            }
            (false, Some(text)) => Some(text.to_string()),
            (false, None) => None,
        };
        let Some(text) = new else {
            // Show it: after catching up, a draft typed on another device is here.
            let (s, offline) = caught_up(engine).await;
            let found = target(&s.engine, &chat, false).map_err(|m| m.message);
            let draft = found.as_ref().ok().and_then(|t| s.engine.chat(&t.chat())).map(|c| c.draft.clone());
            s.close().await;
            found?;
            if let Some(d) = draft.filter(|d| !d.is_empty()) {
                println!("{}", clean(&d));
            }
            if let Some(e) = offline {
                eprintln!("tether: {e}\n(this is the draft on this computer)");
            }
            return Ok(());
        };
        let (s, target) = find(engine, &chat, false).await?;
        let label = target.label();
        apply(s, &[], |e| e.set_draft(&target.chat(), &text, now())).await?;
        if text.is_empty() {
            println!("Cleared the draft for {label}.");
        } else {
            println!("Saved the draft for {label}.");
        }
        Ok(())
    }
}

/// Every chat's draft: chat, then its first line.
async fn list(home: &Home) -> Result<(), String> {
    let (s, offline) = caught_up(home.open_registered()?).await;
    let drafts: Vec<(String, String)> = s
        .engine
        .chat_list()
        .into_iter()
        .filter(|c| !c.draft.is_empty())
        .map(|c| (if c.group || c.note_to_self { c.name } else { c.handle }, c.draft))
        .collect();
    s.close().await;
    if drafts.is_empty() {
        println!("No drafts.");
    }
    for (chat, draft) in drafts {
        println!("{}: {}", clean_line(&chat), clean_line(draft.lines().next().unwrap_or("")));
    }
    match offline {
        Some(e) => Err(format!("{e}\n(these are the drafts on this computer)")),
        None => Ok(()),
    }
}

impl Disappear {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let Some(secs) = self.timer else {
            let (s, offline) = caught_up(engine).await;
            let found = target(&s.engine, &self.chat, false).map_err(|m| m.message);
            let now_set = found.as_ref().ok().and_then(|t| s.engine.chat(&t.chat())).map_or(0, |c| c.disappear_secs);
            s.close().await;
            let t = found?;
            println!("Disappearing messages in {}: {}", t.label(), timer(now_set));
            if let Some(e) = offline {
                eprintln!("tether: {e}\n(this is the setting on this computer)");
            }
            return Ok(());
        };
        let (s, target) = find(engine, &self.chat, false).await?;
        let label = target.label();
        apply(s, &target.watched(), |e| e.set_disappearing(&target.chat(), secs, now())).await?;
        if secs == 0 {
            println!("Disappearing messages are off in {label}.");
        } else {
            println!("New messages in {label} now disappear {} after they are sent.", timer(secs));
        }
        Ok(())
    }
}

impl Unread {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let (s, target) = find(home.open_registered()?, &self.chat, false).await?;
        let label = target.label();
        apply(s, &[], |e| e.set_chat_flag(&target.chat(), ChatFlag::Unread, true, now())).await?;
        println!("Marked {label} as unread.");
        Ok(())
    }
}
