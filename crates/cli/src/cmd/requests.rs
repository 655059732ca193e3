//! Message requests on the command line: `tether requests` lists messages
//! from people who are not contacts; `accept`, `block`, `unblock` and
//! `report` answer them (on this device at once, and on the account's
//! other devices through the server).

use super::{Home, WAIT, caught_up, fail, handle, report};
use crate::format::ago;
use crate::session::{Session, now};
use tether_client::Engine;

/// List message requests: messages from people who are not contacts yet.
#[derive(Debug, clap::Args)]
pub struct Requests {
    /// List blocked senders instead.
    #[arg(long)]
    blocked: bool,
}

/// Accept a message request: it becomes a chat, and later messages notify.
#[derive(Debug, clap::Args)]
pub struct Accept {
    /// Whose request (their handle).
    handle: String,
}

/// Block a sender: its request goes and everything it sends is dropped.
#[derive(Debug, clap::Args)]
pub struct Block {
    handle: String,
}

/// Unblock a sender (its next message is a new request).
#[derive(Debug, clap::Args)]
pub struct Unblock {
    handle: String,
}

/// Report a sender as spam: blocks it and deletes its request. The report
/// is kept on this account's devices (the server has no report endpoint).
#[derive(Debug, clap::Args)]
pub struct Report {
    handle: String,
}

/// Delete a message request without blocking (they may write again).
#[derive(Debug, clap::Args)]
pub struct Decline {
    handle: String,
}

impl Requests {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let (s, offline) = caught_up(engine).await;
        if self.blocked {
            let blocked = s.engine.blocked_list();
            if blocked.is_empty() {
                println!("Nobody is blocked.");
            }
            for b in blocked {
                let why = if b.reported { "reported as spam" } else { "blocked" };
                println!("{:<20} {why} {}", b.handle, ago(b.blocked_ms));
            }
        } else {
            print_requests(&s.engine);
        }
        s.close().await;
        match offline {
            Some(e) => {
                Err(format!("{e}\n(these are the requests on this computer; newer messages may wait on the server)"))
            }
            None => Ok(()),
        }
    }
}

/// One line per request: handle, count, last activity, first message.
fn print_requests(engine: &Engine) {
    let requests = engine.message_requests();
    if requests.is_empty() {
        println!("No message requests.");
        return;
    }
    for r in requests {
        let count = if r.count == 1 { "1 message".to_string() } else { format!("{} messages", r.count) };
        println!(
            "{:<20} {:<14} {:<11} {}",
            crate::format::clean_line(&r.handle),
            count,
            ago(r.last_ms),
            // A stranger's text: escape sequences stripped whole, as everywhere.
            crate::format::clean_line(&r.first_preview)
        );
    }
    println!("Answer with `tether accept|block|report|decline <handle>`.");
}

/// Applies one answer here, then syncs it to the account's other devices.
async fn answer(
    home: &Home,
    who: &str,
    done: &str,
    act: impl FnOnce(&mut Engine, &str, u64) -> Result<(), tether_client::Error>,
) -> Result<(), String> {
    let mut engine = home.open_registered()?;
    let who = handle(who)?;
    act(&mut engine, &who, now()).map_err(fail)?;
    println!("{done} {who}.");
    let mut s = Session::new(engine);
    let synced = match s.connect().await {
        Ok(()) => s.settle(WAIT, report).await,
        Err(e) => Err(e),
    };
    s.close().await;
    synced.map_err(|e| {
        format!("{e}\n(done on this computer; your other devices hear of it with the next command that connects)")
    })
}

impl Accept {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        answer(home, &self.handle, "Accepted", |e, h, now| e.accept_request(h, now)).await
    }
}

impl Block {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        answer(home, &self.handle, "Blocked", |e, h, now| e.block(h, now)).await
    }
}

impl Unblock {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        answer(home, &self.handle, "Unblocked", |e, h, now| e.unblock(h, now)).await
    }
}

impl Report {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        answer(home, &self.handle, "Reported and blocked", |e, h, now| e.report_spam(h, now)).await
    }
}

impl Decline {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        answer(home, &self.handle, "Deleted the request from", |e, h, now| e.delete_request(h, now)).await
    }
}
